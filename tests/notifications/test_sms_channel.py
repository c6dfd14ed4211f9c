"""SMS on the outbox: status changes queue an SMS to the shipment's mobile for the configured statuses, and the
worker sends it through a real HTTP gateway receiver (an outage, then recovery) or SNS on a local AWS-compatible
server, with the email's retries, dead letters and admin retry. Every status's text fits its segment limit."""
from __future__ import annotations

import json
import re
import time

import pytest

from app.domain.status import ALL_STATUSES
from app.extensions import db
from app.models import Notification
from app.notifier.sms import fitting_text, sms_encoding, sms_fits
from app.notifier.worker import OutboxWorker
from app.services.outbox import messages
from tests.notifications.conftest import notification_rows
from tests.notifications.test_sms_webhook_senders import Receiver, aws_endpoint  # noqa: F401 - a fixture

MOBILE = "+919876543210"  # VALID_BOOKING's mobile, normalised
TO_OUT_FOR_DELIVERY = ("Picked Up", "In Transit", "Out for Delivery")


@pytest.fixture
def gateway():
    receiver = Receiver()
    yield receiver
    receiver.close()


def with_settings(make_app, mail_settings, **overrides):
    """An app on the test SMTP server, with these settings on top."""
    return make_app(**{**mail_settings, **overrides})


def sms_rows(application) -> list[Notification]:
    return [row for row in notification_rows(application) if row.channel == "sms"]


def move(desk, tracking_id: str, statuses) -> None:
    for status in statuses:
        response = desk.update(tracking_id, status)
        assert response.status_code == 200, response.get_json()


def test_sms_through_the_http_gateway_is_retried_after_an_outage_then_sent(make_app, desk_for, mail_settings,
                                                                           gateway):
    app = with_settings(make_app, mail_settings, SMS_BACKEND="http", SMS_HTTP_URL=f"http://127.0.0.1:{gateway.port}/sms",
                        SMS_HTTP_AUTHORIZATION="Bearer gateway-key", SMS_STATUSES=("Out for Delivery",))
    desk = desk_for(app)
    tracking_id = desk.book()
    move(desk, tracking_id, TO_OUT_FOR_DELIVERY)
    [row] = sms_rows(app)
    assert (row.recipient, row.state, row.subject) == (MOBILE, "pending", f"Shipment {tracking_id}: Out for Delivery")



    gateway.statuses = [503]  # the gateway is down for the first attempt
    OutboxWorker(app).drain()
    [row] = sms_rows(app)
    assert (row.state, row.attempts) == ("pending", 1) and "503" in row.last_error

    time.sleep(0.5)  # past the backoff (SMS_RETRY_BACKOFF 0.1 s)
    report = OutboxWorker(app).drain()
    assert report.sent == 1
    [row] = sms_rows(app)
    assert (row.state, row.attempts) == ("sent", 2) and row.sent_at is not None
    assert len(gateway.requests) == 2
    last = gateway.requests[-1]
    body = json.loads(last["body"])
    assert body["to"] == MOBILE and body["id"] == str(row.id)
    assert last["headers"]["Authorization"] == "Bearer gateway-key"
    assert f"http://waybill.test/track/{tracking_id}" in body["text"]
    assert "http://waybill.test/n/" in body["text"]  # the recipient's choices, since it fits
    assert sms_encoding(body["text"]).segments == 1
    # The emails went their own way: one per status, all sent.
    assert {r.state for r in notification_rows(app) if r.channel == "email"} == {"sent"}


def test_sms_through_sns(make_app, desk_for, mail_settings, aws_endpoint, monkeypatch):  # noqa: F811
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    app = with_settings(make_app, mail_settings, SMS_BACKEND="sns", SNS_ENDPOINT_URL=aws_endpoint,
                        AWS_REGION="ap-south-1", SMS_SENDER_ID="WAYBIL", SMS_STATUSES=("Out for Delivery", "Delivered"))
    desk = desk_for(app)
    tracking_id = desk.book()
    move(desk, tracking_id, (*TO_OUT_FOR_DELIVERY, "Delivered"))



    assert OutboxWorker(app).drain().dead == 0
    assert [row.state for row in sms_rows(app)] == ["sent", "sent"]
    sent = [text for number, text in sns_backends[DEFAULT_ACCOUNT_ID]["ap-south-1"].sms_messages.values()
            if number == MOBILE and tracking_id in text]
    assert len(sent) == 2
    assert any("out for delivery" in text for text in sent) and any("delivered" in text for text in sent)


@pytest.mark.parametrize("configured, expected", [
    (("Delivered",), ["Delivered"]),
    (("Out for Delivery", "Delivery Attempted", "Delivered"), ["Out for Delivery", "Delivered"]),
    ((), []),
    # The booking's own SMS is queued by the statement that books it (one round trip on PostgreSQL).
    (("Booked", "Delivered"), ["Booked", "Delivered"]),
])
def test_only_the_configured_statuses_send_an_sms(make_app, desk_for, mail_settings, configured, expected):
    app = with_settings(make_app, mail_settings, SMS_STATUSES=configured)
    desk = desk_for(app)
    tracking_id = desk.book()
    move(desk, tracking_id, (*TO_OUT_FOR_DELIVERY, "Delivered"))
    assert [row.subject.split(": ", 1)[1] for row in sms_rows(app)] == expected
    assert len([row for row in notification_rows(app) if row.channel == "email"]) == 5  # every change by email


def test_sms_statuses_setting_reads_any_case_and_refuses_unknown_statuses(monkeypatch):
    from app.config import Config

    monkeypatch.setenv("SMS_STATUSES", " out for delivery,DELIVERED ,")
    assert Config().SMS_STATUSES == ("Out for Delivery", "Delivered")
    monkeypatch.setenv("SMS_STATUSES", "none")
    assert Config().SMS_STATUSES == ()
    monkeypatch.setenv("SMS_STATUSES", "")
    assert Config().SMS_STATUSES == ("Out for Delivery", "Delivery Attempted", "Delivered")
    monkeypatch.setenv("SMS_STATUSES", "Delivered,Lost in Space")
    with pytest.raises(RuntimeError, match="Lost in Space"):
        Config()
    monkeypatch.delenv("SMS_STATUSES")
    assert Config().SMS_STATUSES == ("Out for Delivery", "Delivery Attempted", "Delivered")


@pytest.mark.parametrize("base_url", ["http://waybill.test", "https://track.waybill-couriers.example.in"])
def test_every_status_sms_fits_one_gsm_segment(make_app, base_url):
    """Rendered from the templates for every status, with the choices link where it fits, else without it."""
    app = make_app(PUBLIC_BASE_URL=base_url)
    shipment = type("Shipment", (), {"id": 2_000_000_000, "tracking_id": "3EE0AFAD", "language": "en"})
    with app.test_request_context():
        for index, status in enumerate(ALL_STATUSES, start=1):
            event = type("Event", (), {"id": index, "status": status})
            row = type("Row", (), {"id": 1, "channel": "sms", "recipient": MOBILE, "subject": "",
                                   "shipment_id": shipment.id, "event_id": index})
            facts = messages.MessageFacts({shipment.id: shipment}, {shipment.id: [event]})
            rendered = messages.render(row, facts)
            text = fitting_text(rendered.texts)
            encoding = sms_encoding(text)
            assert (encoding.encoding, encoding.segments) == ("GSM-7", 1), (status, text)
            # A failed attempt's SMS links to the recipient's answer page (which links to tracking) instead.
            assert f"{base_url}{'/r/' if status == 'Delivery Attempted' else '/track/3EE0AFAD'}" in text, status
            if base_url == "http://waybill.test" and status != "Delivery Attempted":  # two links: no room
                assert f"{base_url}/n/" in text, (status, text)  # short enough for the choices link too


@pytest.mark.parametrize("base_url", ["http://waybill.test", "https://track.waybill-couriers.example.in"])
def test_every_status_sms_of_a_hindi_booking_is_hindi_within_two_ucs2_segments(make_app, base_url):
    """A Hindi booking's SMS speaks Hindi (whatever the request's language), in at most two UCS-2 segments, with
    the tracking link always and the choices link where it fits."""
    app = make_app(PUBLIC_BASE_URL=base_url)
    shipment = type("Shipment", (), {"id": 2_000_000_000, "tracking_id": "3EE0AFAD", "language": "hi"})
    with app.test_request_context(headers={"Accept-Language": "en"}):
        for index, status in enumerate(ALL_STATUSES, start=1):
            event = type("Event", (), {"id": index, "status": status})
            row = type("Row", (), {"id": 1, "channel": "sms", "recipient": MOBILE, "subject": "",
                                   "shipment_id": shipment.id, "event_id": index})
            facts = messages.MessageFacts({shipment.id: shipment}, {shipment.id: [event]})
            text = fitting_text(messages.render(row, facts).texts)
            encoding = sms_encoding(text)
            assert encoding.encoding == "UCS-2" and encoding.segments <= 2, (status, text, encoding)
            attempt = status == "Delivery Attempted"  # links to the answer page instead (see above)
            assert re.search("[\u0900-\u097f]", text) and (attempt or "ट्रैक करें:" in text), (status, text)
            assert status not in text, (status, text)  # the status in Hindi words, not its English name
            assert f"{base_url}{'/r/' if attempt else '/track/3EE0AFAD'}" in text, status


def test_a_text_outside_the_gsm_alphabet_is_kept_within_two_ucs2_segments():
    link = "https://track.waybill-couriers.example.in/n/2000000000s.0123456789abcdefghijklmnopq"
    hindi = "वेबिल: आपका शिपमेंट 3EE0AFAD आज डिलीवरी के लिए निकला है। ट्रैक करें: https://w.example/track/3EE0AFAD"
    with_link = f"{hindi} विकल्प: {link}"
    assert not sms_fits(with_link)  # three UCS-2 segments: the sender drops the choices link
    chosen = fitting_text((with_link, hindi))
    assert chosen == hindi and sms_encoding(chosen).encoding == "UCS-2" and sms_encoding(chosen).segments <= 2
    assert sms_fits("x" * 160) and not sms_fits("x" * 161)


def test_a_dead_sms_is_listed_with_its_channel_and_an_operator_retries_it(make_app, desk_for, mail_settings,
                                                                          gateway):
    app = with_settings(make_app, mail_settings, SMS_BACKEND="http", SMS_HTTP_URL=f"http://127.0.0.1:{gateway.port}/sms",
                        SMS_STATUSES=("Out for Delivery",), SMS_MAX_ATTEMPTS=2)
    desk = desk_for(app)
    tracking_id = desk.book()
    move(desk, tracking_id, TO_OUT_FOR_DELIVERY)



    gateway.statuses = [400]  # refused for good: dead at once, whatever the attempts left
    OutboxWorker(app).drain()
    [row] = sms_rows(app)
    assert row.state == "dead" and "400" in row.last_error

    listing = desk.client.get("/admin/notifications?state=dead").get_json()
    assert [(n["id"], n["channel"]) for n in listing["notifications"]] == [(row.id, "sms")]
    page = desk.client.get("/admin/notifications", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert '<td data-label="Channel">SMS</td>' in page

    response = desk.client.post(f"/admin/notifications/{row.id}/retry", headers=desk.headers, json={})
    assert response.status_code == 200 and response.get_json()["notification"]["state"] == "pending"
    assert OutboxWorker(app).drain().sent == 1
    [row] = sms_rows(app)
    assert row.state == "sent" and len(gateway.requests) == 2


def test_a_console_sms_logs_a_masked_number_only(make_app, desk_for, mail_settings, caplog):
    app = with_settings(make_app, mail_settings, SMS_STATUSES=("Out for Delivery",))
    desk = desk_for(app)
    tracking_id = desk.book()
    move(desk, tracking_id, TO_OUT_FOR_DELIVERY)



    with caplog.at_level("INFO"):
        assert OutboxWorker(app).drain().sent == 5
    lines = [record.getMessage() for record in caplog.records
             if record.name in ("app.notifier.sms", "app.notifier.worker") and "sms" in record.getMessage().lower()]
    assert lines and all("+91••••••3210" in line and "98765" not in line for line in lines)
    with app.app_context():
        assert db.session.query(Notification).filter_by(channel="sms", state="sent").count() == 1
