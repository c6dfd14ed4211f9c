"""The return leg: RTO Initiated and RTO In Transit, through the HTTP routes and the services, on both databases:
the transitions, the recipient's messages in English and Hindi, the tracking page and JSON, the proof at the end of
the leg, and the sender's notices."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from app import create_app
from app.errors import ValidationError
from app.extensions import db
from app.models import DeliveryProof, Notification, Shipment, TrackingEvent
from app.notifier.sms import fitting_text, sms_encoding
from app.notifier.worker import OutboxWorker
from app.services.outbox import messages, preferences
from app.services.shipments.proofs import RECEIVED_BY_AT_THE_SENDER, check_proof, missing_proof
from app.services.shipments.scans import ScanBatch, record_scans
from app.services.shipments.status_changes import record_status_change
from tests import api_support
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING, clean_database
from tests.notifications.conftest import FAST, session_smtp_server, smtp_server  # noqa: F401 - fixtures

HTML = {"Accept": "text/html"}
DEVANAGARI = re.compile("[\u0900-\u097f]")
TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")
TO_THE_ATTEMPT = (*TO_THE_DOOR, "Delivery Attempted")
SENDER_CLERK = "Meena Iyer"  # who takes the parcel back at the sender's
ON_THE_WAY_BACK = (*TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")


def book(client, language: str = "en") -> str:
    response = client.post(f"/create?lang={language}", json=VALID_BOOKING)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def move(client, auth, tracking_id: str, *statuses: str, location: str = "Kochi Hub", **proof):
    """Each status in turn through the paper's POST /update; the last answer."""
    response = None
    for status in statuses:
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": location, **proof},
                               headers=auth.headers())
        assert response.status_code == 200, (status, response.get_json())
    return response


def render_for(app, tracking_id: str, channel: str, status: str):
    """The message of `channel` about the shipment's latest event in `status`, rendered as the worker would (the
    row need not be queued: the recipient's defaults decide that, not the template)."""
    with app.test_request_context():
        shipment_id, event_id = db.session.execute(
            select(Shipment.id, TrackingEvent.id).join(TrackingEvent, TrackingEvent.shipment_id == Shipment.id)
            .where(Shipment.tracking_id == tracking_id, TrackingEvent.status == status)
            .order_by(TrackingEvent.id.desc()).limit(1)).one()
        row = SimpleNamespace(id=1, channel=channel, recipient="someone", subject="", shipment_id=shipment_id,
                              event_id=event_id)
        return messages.render(row, messages.load_facts([row]))


# --- the state machine, through the routes ----------------------------------------------------------------------

def test_the_return_leg_runs_hub_to_hub_back_to_the_sender(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT)
    body = move(client, auth, tracking_id, "RTO Initiated", location="Kochi Hub").get_json()
    assert body["status"] == "RTO Initiated"
    move(client, auth, tracking_id, "RTO In Transit", location="Kochi Hub")
    move(client, auth, tracking_id, "RTO In Transit", location="Pune Hub")  # repeatable: a new hub
    body = move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK).get_json()
    assert body["status"] == "Returned to Sender"
    assert [e["status"] for e in body["events"]][-4:] == [
        "RTO Initiated", "RTO In Transit", "RTO In Transit", "Returned to Sender"]
    refused = client.post(f"/update/{tracking_id}", json={"status": "RTO In Transit", "location": "Hub"},
                          headers=auth.headers())
    assert refused.status_code == 409 and refused.get_json()["allowed"] == []


@pytest.mark.parametrize("path, requested, allowed", [
    (TO_THE_DOOR, "RTO Initiated", ["Delivered", "Delivery Attempted", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated"), "Returned to Sender", ["RTO In Transit", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated"), "Out for Delivery", ["RTO In Transit", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit"), "Delivered",
     ["RTO In Transit", "Returned to Sender", "On Hold"]),
    (("Picked Up", "On Hold"), "RTO In Transit", ["Picked Up", "RTO Initiated"]),
    (("On Hold",), "RTO Initiated", ["Booked"]),
])
def test_a_move_off_the_return_leg_is_a_409_naming_the_allowed_statuses(client, auth, path, requested, allowed):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *path)
    response = client.post(f"/update/{tracking_id}", json={"status": requested, "location": "Hub"},
                           headers=auth.headers())
    assert response.status_code == 409
    body = response.get_json()
    assert body["allowed"] == allowed and ", ".join(allowed) in body["error"]


def test_a_parcel_held_on_its_way_out_is_sent_back_from_the_hold(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, "Picked Up", "In Transit", "On Hold")
    detail = client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert detail["allowed_next_statuses"] == ["In Transit", "RTO Initiated"]
    move(client, auth, tracking_id, "RTO Initiated", "On Hold")  # the return leg may be held too…
    detail = client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert detail["allowed_next_statuses"] == ["RTO Initiated"]  # …and goes on where it stopped
    body = move(client, auth, tracking_id, "RTO Initiated", "RTO In Transit").get_json()
    assert body["status"] == "RTO In Transit"


# --- the recipient's messages -----------------------------------------------------------------------------------

def test_the_delivery_day_choice_hears_that_the_parcel_goes_back_but_not_each_hub(app, client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT)
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        preferences.set_choice(shipment_id, "email", "delivery_day")
        db.session.commit()
    move(client, auth, tracking_id, "RTO Initiated", "RTO In Transit", "RTO In Transit")
    with app.app_context():
        subjects = list(db.session.scalars(
            select(Notification.subject).where(Notification.shipment_id == shipment_id, Notification.channel == "email")
            .order_by(Notification.id)))
    assert subjects[-1] == f"Shipment {tracking_id}: RTO Initiated"  # it stops the delivery: said that day


@pytest.mark.one_database  # rendering: the same on either database
def test_the_recipient_hears_of_the_return_leg_in_english(app, client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated")
    move(client, auth, tracking_id, "RTO In Transit", location="Pune Hub")
    sender = VALID_BOOKING["sender_name"]
    email = render_for(app, tracking_id, "email", "RTO Initiated")
    assert email.subject == f"Shipment {tracking_id}: RTO Initiated"
    assert f"Your shipment {tracking_id} could not be delivered and is being sent back to {sender}." in email.body_text
    assert "Going back to the sender" in email.body_html
    email = render_for(app, tracking_id, "email", "RTO In Transit")
    assert f"is on its way back to {sender}. Its latest stop is Pune Hub." in email.body_text
    assert "On its way back" in email.body_html and "Estimated delivery" not in email.body_text
    for status, news in (("RTO Initiated", "will go back to the sender."),
                         ("RTO In Transit", "is returning to the sender.")):
        text = fitting_text(render_for(app, tracking_id, "sms", status).texts)
        assert text.startswith(f"Waybill: {tracking_id} {news} Track:"), text
        assert sms_encoding(text).encoding == "GSM-7" and sms_encoding(text).segments == 1


@pytest.mark.one_database
def test_the_recipient_hears_of_the_return_leg_in_hindi(app, client, auth):
    tracking_id = book(client, "hi")
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    for status, headline, news in (
            ("RTO Initiated", "भेजने वाले को वापसी", "को वापस भेजा जा रहा है।"),
            ("RTO In Transit", "वापसी के रास्ते में", "के पास वापस जा रहा है।")):
        email = render_for(app, tracking_id, "email", status)
        assert DEVANAGARI.search(email.subject) and status not in email.subject, email.subject
        assert headline in email.body_html and news in email.body_text, email.body_text
        text = fitting_text(render_for(app, tracking_id, "sms", status).texts)
        encoding = sms_encoding(text)
        assert encoding.encoding == "UCS-2" and encoding.segments <= 2, (text, encoding)
        assert DEVANAGARI.search(text) and status not in text and f"/track/{tracking_id}" in text, text


# --- the public tracking page and JSON --------------------------------------------------------------------------

def test_the_tracking_page_says_the_parcel_is_on_its_way_back(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    auth.logout()
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Your shipment is on its way back to its sender." in page
    assert 'class="notice notice--rto-in-transit"' in page and "badge-rto-in-transit" in page
    assert page.count("progress__step--stopped") == 1  # Delivered will not happen; the rest was reached
    assert 'aria-current="step"' not in page and "Estimated delivery" not in page
    hindi = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert "आपका शिपमेंट भेजने वाले के पास वापस जा रहा है।" in hindi and "वापसी के रास्ते में" in hindi


def test_public_json_shows_the_return_leg_and_no_personal_data(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK,
         note="Signed at the back office")
    auth.logout()
    response = client.get(f"/track/{tracking_id}")
    body = response.get_json()
    assert body["status"] == "Returned to Sender" and body["estimated_delivery"] is None
    assert [e["status"] for e in body["events"]][-3:] == ["RTO Initiated", "RTO In Transit", "Returned to Sender"]
    assert "delivery" not in body  # who took it back at the sender's is for staff
    text = response.get_data(as_text=True)
    for private in (SENDER_CLERK, "Meena", "Signed at the back office", VALID_BOOKING["email"],
                    VALID_BOOKING["receiver_name"], VALID_BOOKING["sender_name"]):
        assert private not in text, private
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Your shipment could not be delivered and was returned to its sender." in page
    assert SENDER_CLERK not in page and "Meena" not in page


# --- who took it back: the proof at the end of the return leg ---------------------------------------------------

def test_check_proof_takes_a_name_with_returned_to_sender_and_missing_proof_asks_for_it_after_the_leg():
    assert check_proof("Returned to Sender", f"  {SENDER_CLERK} ", None, required=True).received_by == SENDER_CLERK
    assert check_proof("returned to sender", "   ", "nobody_home", required=True) is None  # never required here
    with pytest.raises(ValidationError) as caught:
        check_proof("Returned to Sender", "Meena\u202eIyer", None, required=False)
    assert set(caught.value.fields) == {"received_by"}
    assert missing_proof("Returned to Sender", "RTO In Transit", None) == {"received_by": RECEIVED_BY_AT_THE_SENDER}
    assert missing_proof("Returned to Sender", "RTO In Transit", check_proof(
        "Returned to Sender", SENDER_CLERK, None, required=True)) == {}
    assert missing_proof("Returned to Sender", "Delivery Attempted", None) == {}  # the direct path: none needed
    assert missing_proof("RTO In Transit", "RTO In Transit", None) == {}


def proof_rows(app, tracking_id: str) -> list[tuple[str, str | None]]:
    """The proofs recorded on the return leg (the delivery attempt before it has its own, with its reason)."""
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(TrackingEvent.status, DeliveryProof.received_by)
            .join(DeliveryProof, DeliveryProof.event_id == TrackingEvent.id)
            .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
            .where(Shipment.tracking_id == tracking_id, TrackingEvent.status != "Delivery Attempted"))]


def status_of(app, tracking_id: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Shipment.status).where(Shipment.tracking_id == tracking_id))


def test_the_api_needs_who_took_it_back_at_the_end_of_the_return_leg(app, client, issue_key):
    key = bearer(issue_key("integrator", role="operator"))
    returning = api_support.book(app, *ON_THE_WAY_BACK)
    events = f"/api/v1/shipments/{returning}/events"
    refused = client.post(events, headers=key, json={"status": "Returned to Sender", "location": "Mumbai"})
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == {"received_by": RECEIVED_BY_AT_THE_SENDER}
    assert status_of(app, returning) == "RTO In Transit" and proof_rows(app, returning) == []
    accepted = client.post(events, headers=key, json={"status": "Returned to Sender", "location": "Mumbai",
                                                      "received_by": SENDER_CLERK})
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["allowed_next_statuses"] == []
    assert proof_rows(app, returning) == [("Returned to Sender", SENDER_CLERK)]
    document = json.loads(render_for(app, returning, "webhook", "Returned to Sender").body)
    assert document["data"]["event"]["received_by"] == SENDER_CLERK  # integrators see the handover, as Delivered
    assert document["data"]["previous_status"] == "RTO In Transit"

    straight_back = api_support.book(app, *TO_THE_ATTEMPT)  # no return leg: no name needed
    response = client.post(f"/api/v1/shipments/{straight_back}/events", headers=key,
                           json={"status": "Returned to Sender", "location": "Kochi Hub"})
    assert response.status_code == 201, response.get_json()
    assert proof_rows(app, straight_back) == []


def test_the_published_document_says_when_returned_to_sender_needs_a_name(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["NewEvent"]
    rules = {rule["if"]["properties"]["status"]["const"]: rule["then"] for rule in schema["allOf"]}
    assert "required" not in rules["Returned to Sender"]  # it depends on the shipment's current status…
    assert "RTO In Transit" in rules["Returned to Sender"]["description"]  # …so it is said in words
    assert "RTO In Transit" in schema["properties"]["received_by"]["description"]


def test_a_bulk_call_and_a_scan_batch_refuse_only_the_parcels_at_the_end_of_a_return_leg(app, client, issue_key):
    key = bearer(issue_key("integrator", role="operator"))
    returning, straight_back = api_support.book(app, *ON_THE_WAY_BACK), api_support.book(app, *TO_THE_ATTEMPT)
    response = client.post("/api/v1/events", headers=key, json={"changes": [
        {"tracking_id": tracking_id, "status": "Returned to Sender", "location": "Mumbai"}
        for tracking_id in (returning, straight_back)]})
    results = response.get_json()["results"]
    assert [(r["ok"], r.get("reason")) for r in results] == [(False, "proof_missing"), (True, None)]
    assert "received_by" in results[0]["error"] and results[0]["status"] == "RTO In Transit"

    scanned_back, scanned_straight = api_support.book(app, *ON_THE_WAY_BACK), api_support.book(app, *TO_THE_ATTEMPT)
    with app.app_context():
        report = record_scans(ScanBatch("Returned to Sender", "Mumbai", [scanned_back, scanned_straight]), "op1")
        db.session.commit()
    assert [(o.ok, o.refusal) for o in report.outcomes] == [(False, "proof_missing"), (True, None)]
    with app.app_context():
        report = record_scans(ScanBatch("Returned to Sender", "Mumbai", [scanned_back],
                                        received_by=SENDER_CLERK), "op1")
        db.session.commit()
    assert report.accepted == 1 and proof_rows(app, scanned_back) == [("Returned to Sender", SENDER_CLERK)]


def test_the_staff_page_asks_for_who_took_it_back(app, client, auth):
    tracking_id = api_support.book(app, *ON_THE_WAY_BACK)
    auth.login()
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert 'data-proof-for="Returned to Sender"' in page and 'name="received_by"' in page
    form = {"csrf_token": auth.csrf_token, "status": "Returned to Sender", "location": "Mumbai", "note": "",
            "customer_message": "", "received_by": "", "attempt_reason": "", "signature": ""}
    response = client.post(f"/admin/shipments/{tracking_id}", data=form, headers=HTML)
    assert response.status_code == 400
    assert RECEIVED_BY_AT_THE_SENDER.replace("'", "&#39;") in response.get_data(as_text=True)
    assert status_of(app, tracking_id) == "RTO In Transit"
    response = client.post(f"/admin/shipments/{tracking_id}", data={**form, "received_by": SENDER_CLERK},
                           headers=HTML)
    assert response.status_code == 302
    assert proof_rows(app, tracking_id) == [("Returned to Sender", SENDER_CLERK)]


# --- the sender's notices ---------------------------------------------------------------------------------------

SENDER_EMAIL, SENDER_MOBILE = "asha.dispatch@example.com", "+919000012345"
SENDER_CHANNELS = ("sender_email", "sender_sms")


def give_sender_contacts(app, tracking_id: str, email: str | None = SENDER_EMAIL,
                         mobile: str | None = SENDER_MOBILE) -> None:
    with app.app_context():
        db.session.execute(update(Shipment).where(Shipment.tracking_id == tracking_id)
                           .values(sender_email=email, sender_mobile=mobile))
        db.session.commit()


def sender_rows(app, tracking_id: str) -> list[tuple[str, str, str, str]]:
    """(event status, channel, recipient, state) of the shipment's sender notices, oldest first."""
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(TrackingEvent.status, Notification.channel, Notification.recipient, Notification.state)
            .join(TrackingEvent, TrackingEvent.id == Notification.event_id)
            .join(Shipment, Shipment.id == Notification.shipment_id)
            .where(Shipment.tracking_id == tracking_id, Notification.channel.in_(SENDER_CHANNELS))
            .order_by(Notification.id))]


def queued_for(app, tracking_id: str, channel: str, status: str):
    """The rendered message of the queued row of `channel` about the latest event in `status`."""
    with app.test_request_context():
        row = db.session.scalars(
            select(Notification).join(TrackingEvent, TrackingEvent.id == Notification.event_id)
            .join(Shipment, Shipment.id == Notification.shipment_id)
            .where(Shipment.tracking_id == tracking_id, Notification.channel == channel,
                   TrackingEvent.status == status).order_by(Notification.id.desc()).limit(1)).one()
        return messages.render(row, messages.load_facts([row]))


def token_of(app, tracking_id: str, channel: str) -> str:
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        return preferences.choices_token(shipment_id, channel)


def test_the_sender_hears_when_the_parcel_starts_back_and_when_it_is_back(app, client, auth):
    tracking_id = book(client)
    give_sender_contacts(app, tracking_id)
    auth.login()
    move(client, auth, tracking_id, *ON_THE_WAY_BACK, "RTO In Transit")
    move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK)
    assert sender_rows(app, tracking_id) == [
        ("RTO Initiated", "sender_email", SENDER_EMAIL, "pending"),
        ("RTO Initiated", "sender_sms", SENDER_MOBILE, "pending"),
        ("Returned to Sender", "sender_email", SENDER_EMAIL, "pending"),
        ("Returned to Sender", "sender_sms", SENDER_MOBILE, "pending"),
    ]
    with app.app_context():  # the recipient's own messages are as they were
        recipients = set(db.session.scalars(select(Notification.recipient).where(Notification.channel == "email")))
    assert recipients == {VALID_BOOKING["email"]}


def test_no_notice_goes_to_a_contact_the_sender_did_not_give(app, client, auth):
    without, email_only = book(client), book(client)
    give_sender_contacts(app, email_only, mobile=None)
    auth.login()
    for tracking_id in (without, email_only):
        move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated")
    move(client, auth, without, "RTO In Transit")
    move(client, auth, without, "Returned to Sender", received_by=SENDER_CLERK)
    assert sender_rows(app, without) == []
    assert sender_rows(app, email_only) == [("RTO Initiated", "sender_email", SENDER_EMAIL, "pending")]


def test_the_direct_return_and_a_scan_batch_notify_the_sender_too(app, client, auth):
    tracking_id = book(client)
    give_sender_contacts(app, tracking_id, mobile=None)
    scanned = api_support.book(app, *ON_THE_WAY_BACK)
    give_sender_contacts(app, scanned, email=None)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "Returned to Sender")
    with app.app_context():
        record_scans(ScanBatch("Returned to Sender", "Mumbai", [scanned], received_by=SENDER_CLERK), "op1")
        db.session.commit()
    assert sender_rows(app, tracking_id) == [("Returned to Sender", "sender_email", SENDER_EMAIL, "pending")]
    assert sender_rows(app, scanned) == [("Returned to Sender", "sender_sms", SENDER_MOBILE, "pending")]


@pytest.mark.one_database  # rendering: the same on either database
def test_the_senders_notices_greet_the_sender_in_the_booking_language(app, client, auth):
    english, hindi = book(client), book(client, "hi")
    auth.login()
    for tracking_id in (english, hindi):
        give_sender_contacts(app, tracking_id)
        move(client, auth, tracking_id, *ON_THE_WAY_BACK)
        move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK)
    sender, receiver = VALID_BOOKING["sender_name"], VALID_BOOKING["receiver_name"]

    email = queued_for(app, english, "sender_email", "RTO Initiated")
    assert email.subject == f"Shipment {english}: RTO Initiated"
    assert email.body_text.startswith(f"Hello {sender},")
    assert (f"Your shipment {english} to {receiver} could not be delivered. It is being sent back to you."
            in email.body_text)
    assert "Coming back to you" in email.body_html and f"Hello {sender}," in email.body_html
    assert f"/n/{token_of(app, english, 'sender_email')}" in email.unsubscribe_url  # the sender's own choices
    email = queued_for(app, english, "sender_email", "Returned to Sender")
    assert (f"Your shipment {english} to {receiver} has been returned to you and was received by {SENDER_CLERK}."
            in email.body_text)
    assert "Returned to you" in email.body_html
    for status, news in (("RTO Initiated", "is coming back to you."), ("Returned to Sender", "was returned to you.")):
        text = fitting_text(queued_for(app, english, "sender_sms", status).texts)
        assert text.startswith(f"Waybill: {english} {news} Track: http://waybill.test/track/{english}"), text
        assert f"/n/{token_of(app, english, 'sender_sms')}" in text  # short enough for the sender's choices link
        assert sms_encoding(text).encoding == "GSM-7" and sms_encoding(text).segments == 1

    email = queued_for(app, hindi, "sender_email", "RTO Initiated")
    assert DEVANAGARI.search(email.subject) and "RTO Initiated" not in email.subject
    assert f"नमस्ते {sender}," in email.body_text and "इसे आपके पास वापस भेजा जा रहा है।" in email.body_text
    email = queued_for(app, hindi, "sender_email", "Returned to Sender")
    assert f"आपको लौटा दिया गया है और इसे {SENDER_CLERK} ने लिया।" in email.body_text
    for status, news in (("RTO Initiated", "आपके पास वापस आ रहा है।"), ("Returned to Sender", "आपको लौटा दिया गया।")):
        text = fitting_text(queued_for(app, hindi, "sender_sms", status).texts)
        encoding = sms_encoding(text)
        assert encoding.encoding == "UCS-2" and encoding.segments <= 2, (text, encoding)
        assert f"Waybill: {hindi} {news}" in text and status not in text, text


def test_the_senders_choices_and_the_recipients_are_their_own(app, client, auth):
    tracking_id = book(client)
    give_sender_contacts(app, tracking_id)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT)
    recipient_off = app.test_client().post(f"/n/{token_of(app, tracking_id, 'email')}",
                                           data={"List-Unsubscribe": "One-Click"})
    assert recipient_off.status_code == 200
    move(client, auth, tracking_id, "RTO Initiated")
    assert sender_rows(app, tracking_id) == [
        ("RTO Initiated", "sender_email", SENDER_EMAIL, "pending"),
        ("RTO Initiated", "sender_sms", SENDER_MOBILE, "pending")]

    # The sender's one-click stop: their queued email is suppressed, their SMS and the recipient's choice stay.
    link = f"/n/{token_of(app, tracking_id, 'sender_email')}"
    page = client.get(link, headers=HTML).get_data(as_text=True)
    assert tracking_id in page and VALID_BOOKING["sender_name"] not in page and SENDER_EMAIL not in page
    assert client.get(link).get_json() == {"tracking_id": tracking_id, "channel": "sender_email",
                                           "choice": "default"}
    response = app.test_client().post(link, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    move(client, auth, tracking_id, "RTO In Transit")
    move(client, auth, tracking_id, "Returned to Sender", received_by=SENDER_CLERK)
    assert sender_rows(app, tracking_id) == [
        ("RTO Initiated", "sender_email", SENDER_EMAIL, "suppressed"),
        ("RTO Initiated", "sender_sms", SENDER_MOBILE, "pending"),
        ("Returned to Sender", "sender_sms", SENDER_MOBILE, "pending")]
    assert client.get(f"/n/{token_of(app, tracking_id, 'email')}").get_json()["choice"] == "none"


@pytest.fixture
def smtp_app(make_config, smtp_server):  # noqa: F811
    application = create_app(make_config(**smtp_server.settings(**FAST)))
    yield application
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


def test_the_worker_sends_the_senders_notices(smtp_app, smtp_server, make_user):  # noqa: F811
    client = smtp_app.test_client()
    tracking_id = book(client)
    give_sender_contacts(smtp_app, tracking_id)
    with smtp_app.app_context():
        for status in (*TO_THE_ATTEMPT, "RTO Initiated"):
            record_status_change(tracking_id, status, "Kochi Hub", None, actor="op1")
        db.session.commit()
    report = OutboxWorker(smtp_app).drain()  # the worker's own path: claim, render, send
    assert (report.dead, report.retrying) == (0, 0) and report.sent >= 2
    assert {state for *_, state in sender_rows(smtp_app, tracking_id)} == {"sent"}
    [notice] = [m for m in smtp_server.sink.received() if m["To"] == SENDER_EMAIL]
    assert notice["Subject"] == f"Shipment {tracking_id}: RTO Initiated"
    assert f"/n/{token_of(smtp_app, tracking_id, 'sender_email')}" in notice["List-Unsubscribe"]
    assert f"Hello {VALID_BOOKING['sender_name']}," in notice.get_body(("plain",)).get_content()
