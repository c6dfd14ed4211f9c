"""The recipient's notification choices: the one-click unsubscribe of every email (RFC 8058), the choices page
(with CSRF), suppression of messages already queued and at send time, bad tokens, what staff see, and the admin's
default statuses per channel (admin only, audited)."""
from __future__ import annotations

import re

import pytest
from itsdangerous import Signer
from sqlalchemy import select

from app import create_app
from app.domain.status import ALL_STATUSES
from app.extensions import db
from app.models import AuditEntry, Notification, NotificationChoice, NotificationDefault, Shipment
from app.notifier.worker import OutboxWorker
from app.services.outbox import preferences
from tests.conftest import VALID_BOOKING, clean_database
from tests.notifications.conftest import FAST, notification_rows, session_smtp_server, smtp_server  # noqa: F401 - fixtures

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
HTML = {"Accept": "text/html"}
TO_OUT_FOR_DELIVERY = ("Picked Up", "In Transit", "Out for Delivery")


@pytest.fixture
def staff(auth):
    auth.login()  # an operator
    return auth


def change(staff, tracking_id: str, *statuses: str) -> None:
    for status in statuses:
        response = staff.client.post(f"/update/{tracking_id}", headers=staff.headers(),
                                     json={"status": status, "location": "Mumbai Hub"})
        assert response.status_code == 200, response.get_json()


def shipment_id(app, tracking_id: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))


def token_for(app, tracking_id: str, channel: str = "email") -> str:
    with app.app_context():
        return preferences.choices_token(shipment_id(app, tracking_id), channel)


def rows_of(app, tracking_id: str, channel: str | None = None) -> list[Notification]:
    wanted = shipment_id(app, tracking_id)
    return [row for row in notification_rows(app)
            if row.shipment_id == wanted and (channel is None or row.channel == channel)]


def states(app, tracking_id: str, channel: str) -> list[str]:
    return [row.state for row in rows_of(app, tracking_id, channel)]


def choices_in_db(app) -> list[tuple[int, str, str]]:
    with app.app_context():
        return [(c.shipment_id, c.channel, c.choice) for c in db.session.scalars(select(NotificationChoice))]


# --- one-click unsubscribe -----------------------------------------------------------------------------------

@pytest.fixture
def smtp_app(make_config, smtp_server):  # noqa: F811
    application = create_app(make_config(**smtp_server.settings(**FAST)))
    yield application
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


def test_every_email_carries_a_one_click_unsubscribe_that_works_without_cookie_or_csrf(smtp_app, smtp_server,  # noqa: F811
                                                                                       make_user):
    client = smtp_app.test_client()
    tracking_id = client.post("/create", json=VALID_BOOKING).get_json()["tracking_id"]
    assert OutboxWorker(smtp_app).drain().sent == 1
    [message] = smtp_server.sink.received()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(r"<(http://waybill\.test(/n/[^>]+))>", message["List-Unsubscribe"])
    assert link, message["List-Unsubscribe"]
    assert link.group(1) in message.get_body(("plain",)).get_content()  # and the footer says where to choose

    mail_provider = smtp_app.test_client(use_cookies=False)  # no session, no CSRF token: only the link
    response = mail_provider.post(link.group(2), data=ONE_CLICK)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"tracking_id": tracking_id, "channel": "email", "choice": "none"}
    assert "Set-Cookie" not in response.headers

    make_user()
    login = client.post("/login", json={"username": "operator1", "password": "correct-horse-1"}).get_json()
    response = client.post(f"/update/{tracking_id}", json={"status": "Picked Up", "location": "Hub"},
                           headers={"X-CSRFToken": login["csrf_token"]})
    assert response.status_code == 200
    assert OutboxWorker(smtp_app).drain().sent == 0
    assert smtp_server.sink.count() == 1  # no later message on that channel


def test_one_click_suppresses_the_messages_already_queued_and_later_ones(app, client, create_shipment, staff):
    tracking_id = create_shipment()
    change(staff, tracking_id, *TO_OUT_FOR_DELIVERY)
    assert states(app, tracking_id, "email") == ["pending"] * 4
    assert states(app, tracking_id, "sms") == ["pending"]  # Out for Delivery is an SMS status by default

    response = app.test_client(use_cookies=False).post(f"/n/{token_for(app, tracking_id)}", data=ONE_CLICK)
    assert response.status_code == 200
    assert states(app, tracking_id, "email") == ["suppressed"] * 4
    assert all(row.last_error == preferences.SUPPRESSED_REASON for row in rows_of(app, tracking_id, "email"))
    assert states(app, tracking_id, "sms") == ["pending"]  # another channel, another choice

    change(staff, tracking_id, "Delivered")
    assert states(app, tracking_id, "email") == ["suppressed"] * 4  # no new email row
    assert states(app, tracking_id, "sms") == ["pending", "pending"]
    assert OutboxWorker(app).drain().sent == 2  # the two SMS only
    listing = staff.client.get("/admin/notifications?state=suppressed").get_json()
    assert {(n["channel"], n["state"]) for n in listing["notifications"]} == {("email", "suppressed")}
    assert listing["counts"]["suppressed"] == 4

    # The recipient's action is in the audit trail, with no personal data.
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "preferences_changed")).one()
        assert entry.actor == "customer" and entry.details == {"channel": "email", "choice": "none", "suppressed": 4}


def test_one_click_on_the_sms_link_stops_sms_only(app, create_shipment, staff):
    tracking_id = create_shipment()
    change(staff, tracking_id, *TO_OUT_FOR_DELIVERY)
    response = app.test_client().post(f"/n/{token_for(app, tracking_id, 'sms')}", data=ONE_CLICK)
    assert response.status_code == 200 and response.get_json()["channel"] == "sms"
    assert states(app, tracking_id, "sms") == ["suppressed"]
    assert states(app, tracking_id, "email") == ["pending"] * 4


def test_a_token_reaches_only_its_own_shipment(app, create_shipment, staff):
    first, second = create_shipment(), create_shipment(email="second@example.com")
    change(staff, second, "Picked Up")
    app.test_client().post(f"/n/{token_for(app, first)}", data=ONE_CLICK)
    assert states(app, first, "email") == ["suppressed"]
    assert states(app, second, "email") == ["pending", "pending"]
    assert choices_in_db(app) == [(shipment_id(app, first), "email", "none")]


def test_a_row_turned_off_after_it_was_queued_is_suppressed_when_the_worker_claims_it(app, create_shipment, staff):
    tracking_id = create_shipment()
    change(staff, tracking_id, "Picked Up")
    with app.app_context():  # the choice lands without touching the queued rows (as if they were queued after)
        db.session.add(NotificationChoice(shipment_id=shipment_id(app, tracking_id), channel="email",
                                          choice="delivery_day"))
        db.session.commit()
    report = OutboxWorker(app).drain()
    assert report.sent == 0
    assert states(app, tracking_id, "email") == ["suppressed", "suppressed"]


# --- bad tokens ----------------------------------------------------------------------------------------------

def _signed(app, value: str, salt: str = preferences.TOKEN_SALT) -> str:
    return Signer(app.config["SECRET_KEY"], salt=salt).sign(value).decode()


def test_bad_forged_and_foreign_tokens_are_404_and_change_nothing(app, create_shipment, staff):
    tracking_id = create_shipment()
    good = token_for(app, tracking_id)
    own_id = shipment_id(app, tracking_id)
    bad = [
        "garbage", "0", good[:-1], good[:-1] + ("A" if good[-1] != "A" else "B"), good + "x",
        good.replace(f"{own_id}e", f"{own_id}s", 1),  # the channel swapped: the signature no longer matches
        good.replace(f"{own_id}e", f"{own_id + 1}e", 1),  # another shipment's number under this signature
        _signed(app, f"{own_id}e", salt="other-salt"),  # signed for another purpose
        Signer("another-secret", salt=preferences.TOKEN_SALT).sign(f"{own_id}e").decode(),
        _signed(app, "999999e"),  # no such shipment
        _signed(app, f"{own_id}x"), _signed(app, f"{own_id}"), _signed(app, "0e"), _signed(app, "99999999999e"),
        _signed(app, "-1e"), "%C3%A9", "x" * 3000,
    ]
    for token in bad:
        for method, kwargs in (("GET", {}), ("POST", {"data": ONE_CLICK}), ("GET", {"headers": HTML})):
            response = app.test_client().open(f"/n/{token}", method=method, **kwargs)
            assert 400 <= response.status_code < 500, (token, method, response.status_code)
            if not kwargs.get("headers"):
                assert "error" in response.get_json(), token
    assert choices_in_db(app) == []
    assert states(app, tracking_id, "email") == ["pending"]


# --- the choices page ----------------------------------------------------------------------------------------

def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_choices_page_saves_with_csrf_and_delivery_day_only_is_honoured(app, create_shipment, staff):
    tracking_id = create_shipment()
    url = f"/n/{token_for(app, tracking_id)}"
    browser = app.test_client()
    page = browser.get(url, headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Email updates for shipment {tracking_id}" in text and "not chosen yet" in text
    for private in (VALID_BOOKING["sender_name"], VALID_BOOKING["receiver_name"], VALID_BOOKING["email"],
                    "98765", "43210", "Asha", "Vikram"):
        assert private not in text, private  # DESIGN rule 9: the link's holder sees no personal data

    refused = browser.post(url, data={"choice": "delivery_day"}, headers=HTML)  # the page's form, without its token
    assert refused.status_code == 400 and choices_in_db(app) == []
    bad = browser.post(url, data={"choice": "weekly", "csrf_token": _csrf(text)}, headers=HTML)
    assert bad.status_code == 400 and "Not a valid choice" in bad.get_data(as_text=True)
    assert choices_in_db(app) == []

    saved = browser.post(url, data={"choice": "delivery_day", "csrf_token": _csrf(text)}, headers=HTML)
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"{url}?saved=1")
    again = browser.get(saved.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "Saved." in again and re.search(r'<input[^>]* checked[^>]* value="delivery_day"', again)

    change(staff, tracking_id, "Picked Up", "In Transit")
    assert states(app, tracking_id, "email") == ["suppressed"]  # the booking's, queued before the choice
    change(staff, tracking_id, "Out for Delivery", "Delivered")
    subjects = [row.subject.split(": ", 1)[1] for row in rows_of(app, tracking_id, "email")]
    assert subjects == ["Booked", "Out for Delivery", "Delivered"]

    assert app.test_client().get(url).get_json() == {"tracking_id": tracking_id, "channel": "email",
                                                     "choice": "delivery_day"}


def test_choosing_delivery_day_suppresses_the_queued_messages_it_excludes(app, create_shipment, staff):
    tracking_id = create_shipment()
    change(staff, tracking_id, *TO_OUT_FOR_DELIVERY)
    with app.app_context():
        preferences.choose_by_token(token_for(app, tracking_id), "delivery_day")
        db.session.commit()
    assert states(app, tracking_id, "email") == ["suppressed", "suppressed", "suppressed", "pending"]


def test_all_updates_overrides_the_admins_defaults(app, create_shipment, staff):
    tracking_id = create_shipment()
    with app.app_context():
        preferences.set_channel_defaults("sms", [], actor="admin1")
        preferences.choose_by_token(token_for(app, tracking_id, "sms"), "all")
        db.session.commit()
    change(staff, tracking_id, "Picked Up")
    assert states(app, tracking_id, "sms") == ["pending"]


# --- what staff see ------------------------------------------------------------------------------------------

def test_staff_see_the_choices_and_the_suppressed_messages_on_the_shipment_page(app, create_shipment, auth):
    tracking_id = create_shipment()
    app.test_client().post(f"/n/{token_for(app, tracking_id)}", data=ONE_CLICK)
    auth.login("support1", role="viewer")
    body = auth.client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert body["notification_choices"] == {"email": "none", "sms": "default"}
    [suppressed] = body["suppressed_notifications"]
    assert (suppressed["channel"], suppressed["state"]) == ("email", "suppressed")
    page = auth.client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "None (turned off)" in page and "Suppressed messages" in page and "Default statuses" in page


# --- the admin's defaults ------------------------------------------------------------------------------------

def test_the_defaults_page_is_for_admins_only(app, client, auth):
    assert client.get("/admin/notifications/defaults").status_code == 401
    auth.login()  # operator
    assert client.get("/admin/notifications/defaults").status_code == 403
    response = client.post("/admin/notifications/defaults", headers=auth.headers(),
                           json={"channel": "email", "statuses": []})
    assert response.status_code == 403
    with app.app_context():
        assert db.session.scalars(select(NotificationDefault)).all() == []


def test_admins_set_the_default_statuses_per_channel_audited(app, client, auth, create_shipment):
    auth.login("admin1", role="admin")
    shown = client.get("/admin/notifications/defaults").get_json()["defaults"]
    assert shown["sms"] == ["Out for Delivery", "Delivered", "Delivery Attempted"]
    assert shown["email"] == list(ALL_STATUSES)  # every change by email

    response = client.post("/admin/notifications/defaults", headers=auth.headers(),
                           json={"channel": "email", "statuses": ["Out for Delivery", "Delivered"]})
    assert response.status_code == 200
    assert response.get_json()["defaults"]["email"] == ["Out for Delivery", "Delivered"]
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "preferences_changed")).one()
        assert (entry.actor, entry.target_type, entry.target_id) == ("admin1", "notification_defaults", "email")
        assert entry.details["on"] == [] and "In Transit" in entry.details["off"]

    tracking_id = create_shipment()
    assert states(app, tracking_id, "email") == []  # Booked no longer sends an email by default
    change(auth, tracking_id, "Picked Up", "In Transit", "Out for Delivery")
    assert [r.subject.split(": ", 1)[1] for r in rows_of(app, tracking_id, "email")] == ["Out for Delivery"]

    # The browser form, with the session's CSRF token.
    page = client.get("/admin/notifications/defaults", headers=HTML).get_data(as_text=True)
    assert page.count('name="statuses"') == 2 * len(ALL_STATUSES)
    response = client.post("/admin/notifications/defaults", headers=HTML,
                           data={"channel": "sms", "statuses": ["Delivered"], "csrf_token": _csrf(page)})
    assert response.status_code == 302
    assert client.get("/admin/notifications/defaults").get_json()["defaults"]["sms"] == ["Delivered"]


@pytest.mark.parametrize("body", [
    {"channel": "fax", "statuses": []},
    {"channel": "sms", "statuses": ["Lost in Space"]},
    {"channel": "sms", "statuses": "Delivered"},
    {"channel": "sms", "statuses": [1]},
    {"channel": "sms"},
    {"statuses": []},
    {"channel": "sms", "statuses": [], "extra": 1},
    {"channel": ["sms"], "statuses": []},
])
def test_bad_defaults_are_400_and_change_nothing(app, client, auth, body):
    auth.login("admin1", role="admin")
    response = client.post("/admin/notifications/defaults", headers=auth.headers(), json=body)
    assert response.status_code == 400
    assert response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalars(select(NotificationDefault)).all() == []
    form = client.post("/admin/notifications/defaults", headers={**HTML, **auth.headers()},
                       data={"channel": "sms", "statuses": ["Lost in Space"]})
    assert form.status_code == 400 and "There is a problem" in form.get_data(as_text=True)


def test_the_public_choices_route_is_rate_limited(make_config):
    application = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_CHOICES="2 per minute"))
    try:
        client = application.test_client()
        codes = [client.get("/n/garbage").status_code for _ in range(3)]
        assert codes == [404, 404, 429]
    finally:
        clean_database(application)
        with application.app_context():
            db.engine.dispose()


def test_the_set_based_insert_honours_choices_for_many_events_without_mobile(app, create_shipment, staff):
    """What a bulk caller does: events written first, then one INSERT … SELECT for all their messages, from a
    source with only the required columns (the mobile is read from shipments)."""
    from sqlalchemy import func

    from app.models import TrackingEvent
    from app.services.outbox.queueing import status_email_insert_from

    quiet, chatty = create_shipment(), create_shipment(email="chatty@example.com")
    app.test_client().post(f"/n/{token_for(app, quiet)}", data=ONE_CLICK)
    change(staff, quiet, *TO_OUT_FOR_DELIVERY)
    change(staff, chatty, *TO_OUT_FOR_DELIVERY)
    with app.app_context():
        db.session.execute(Notification.__table__.delete())  # queue them again, set-based
        events = (select(TrackingEvent.shipment_id, TrackingEvent.id.label("event_id"), Shipment.tracking_id,
                         TrackingEvent.status, Shipment.email.label("recipient"),
                         TrackingEvent.occurred_at.label("due_at"))
                  .join(Shipment, Shipment.id == TrackingEvent.shipment_id).subquery("events"))
        db.session.execute(status_email_insert_from(events))
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 4 + 1 + 1
    assert states(app, quiet, "email") == [] and len(states(app, quiet, "sms")) == 1
    assert len(states(app, chatty, "email")) == 4 and len(states(app, chatty, "sms")) == 1
    assert [row.recipient for row in rows_of(app, chatty, "sms")] == ["+919876543210"]
