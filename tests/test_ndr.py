"""Failed deliveries (app.services.ndr): a report per failed attempt, opened with its Delivery Attempted event; the
recipient's, staff's and an integrator's answers (each 400 and 409); the steps that run on their own (reattempt
due, escalation, return to origin) with a fixed clock and durations in seconds; webhooks, audit rows, the
courier's stop, dispatch eligibility and the state machine's new move (collected at the hub)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.domain.status import Status, allowed_next_statuses
from app.domain.timeutil import to_local, utcnow
from app.extensions import db
from app.jobs.timers import run_due_timers
from app.models import Alert, AuditEntry, NonDeliveryReport, Notification, Shipment, Timer, TrackingEvent
from app.services.ndr.queries import due_for_dispatch_clause
from app.services.ndr.reports import answer_token
from app.services.outbox.messages import load_facts, render
from app.services.outbox.webhooks import create_subscription
from app.services.shipments.status_changes import record_status_change
from app.services.staff.users import create_user
from tests.field_support import Field

TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")


@pytest.fixture
def ctx(app):
    app.config.update(NDR_REATTEMPT_AFTER=(timedelta(seconds=2), timedelta(seconds=4)),
                      NDR_RTO_AFTER=timedelta(seconds=3), NDR_MAX_ATTEMPTS=3, NDR_MAX_DAYS_AHEAD=5,
                      WEBHOOK_ALLOW_PRIVATE=True)
    with app.app_context():
        yield app
        db.session.remove()


def book(client, lang: str = "en", **overrides) -> str:
    body = {"sender_name": "Asha Rao", "receiver_name": "Vikram Nair", "mobile": "+91 98765 43210",
            "email": "vikram@example.com", "destination": "Kochi", "sender_email": "asha@example.com", **overrides}
    response = client.post(f"/create?lang={lang}", json=body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def move(tracking_id: str, *statuses: str, reason: str = "nobody_home") -> None:
    for status in statuses:
        record_status_change(tracking_id, status, "Kochi Hub", None, "operator1",
                             attempt_reason=reason if status == Status.DELIVERY_ATTEMPTED else None,
                             received_by="Vikram" if status == Status.DELIVERED else None)
    db.session.commit()


def attempted(client, reason: str = "nobody_home", **booking) -> str:
    tracking_id = book(client, **booking)
    move(tracking_id, *TO_THE_DOOR, Status.DELIVERY_ATTEMPTED, reason=reason)
    return tracking_id


def shipment_of(tracking_id: str) -> Shipment:
    return db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)
                              .execution_options(populate_existing=True)).one()


def reports(tracking_id: str) -> list[NonDeliveryReport]:
    db.session.expire_all()
    return list(db.session.scalars(select(NonDeliveryReport).join(Shipment)
                                   .where(Shipment.tracking_id == tracking_id).order_by(NonDeliveryReport.id)))


def pending_steps(tracking_id: str) -> list[tuple[str, str]]:
    return [(t.kind, t.key) for t in db.session.scalars(
        select(Timer).join(Shipment, Shipment.id == Timer.shipment_id)
        .where(Shipment.tracking_id == tracking_id, Timer.state == "pending").order_by(Timer.id))]


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def dispatchable(tracking_id: str, now) -> bool:
    return db.session.scalar(select(func.count()).select_from(Shipment).where(
        Shipment.tracking_id == tracking_id, due_for_dispatch_clause(now))) == 1


def answer_link(tracking_id: str) -> str:
    return f"/r/{answer_token(shipment_of(tracking_id).id)}"


def subscribe(events=("shipment.status_changed", "shipment.ndr_opened", "shipment.ndr_resolved")) -> None:
    owner = create_user("integrator", "correct-horse-1", "operator")
    create_subscription(owner.id, "https://hooks.example.com/waybill", list(events), actor="admin")
    db.session.commit()


# --- opened and closed with the status changes -------------------------------------------------------------------

def test_an_attempt_opens_a_report_and_the_next_attempt_closes_it(ctx, client):
    subscribe()
    tracking_id = attempted(client)
    [report] = reports(tracking_id)
    assert (report.attempt, report.reason, report.state) == (1, "nobody_home", "open")
    assert report.deadline == report.opened_at + timedelta(seconds=2)
    assert pending_steps(tracking_id) == [("ndr.reattempt_due", f"ndr:{report.id}:reattempt")]
    move(tracking_id, "Out for Delivery")  # the reattempt is under way: still open
    assert [r.state for r in reports(tracking_id)] == ["open"]
    move(tracking_id, "Delivery Attempted")
    first, second = reports(tracking_id)
    assert (first.state, first.outcome, second.attempt, second.state) == ("closed", "reattempted", 2, "open")
    assert second.deadline == second.opened_at + timedelta(seconds=4)
    assert pending_steps(tracking_id) == [("ndr.reattempt_due", f"ndr:{second.id}:reattempt")]
    webhooks = sorted((n.subject, n.event_id) for n in db.session.scalars(
        select(Notification).where(Notification.channel.in_(["ndr_opened", "ndr_resolved"]))))
    assert webhooks == sorted([("shipment.ndr_opened", first.event_id), ("shipment.ndr_resolved", first.event_id),
                               ("shipment.ndr_opened", second.event_id)])


@pytest.mark.parametrize(("events", "expected"), [
    (("shipment.status_changed",), []),
    (("shipment.ndr_opened",), ["shipment.ndr_opened", "shipment.ndr_opened"]),
    (("shipment.ndr_resolved", "shipment.delivered"), ["shipment.ndr_resolved"]),
])
def test_the_report_events_go_only_to_subscriptions_that_chose_them(ctx, client, events, expected):
    subscribe(events)
    tracking_id = attempted(client)
    move(tracking_id, "Out for Delivery")
    move(tracking_id, "Delivery Attempted")  # the first report resolved, a second opened
    sent = sorted(n.subject for n in db.session.scalars(
        select(Notification).where(Notification.channel.in_(["ndr_opened", "ndr_resolved"]))))
    assert sent == expected


@pytest.mark.parametrize(("settle", "outcome"), [
    (("Delivered",), "delivered"), (("RTO Initiated",), "rto"), (("Returned to Sender",), "returned")])
def test_a_status_that_settles_the_parcel_closes_its_report_and_cancels_its_step(ctx, client, settle, outcome):
    tracking_id = attempted(client)
    move(tracking_id, *settle)
    [report] = reports(tracking_id)
    assert (report.state, report.outcome, report.deadline) == ("closed", outcome, None)
    assert pending_steps(tracking_id) == []


def test_on_hold_pauses_the_report_and_the_release_plans_its_step_again(ctx, client):
    tracking_id = attempted(client)
    move(tracking_id, "On Hold")
    assert pending_steps(tracking_id) == [] and reports(tracking_id)[0].deadline is None
    move(tracking_id, "Delivery Attempted")  # released: not a new attempt
    [report] = reports(tracking_id)
    assert report.attempt == 1 and pending_steps(tracking_id) == [("ndr.reattempt_due", f"ndr:{report.id}:reattempt")]


def test_the_hub_may_record_delivered_after_an_attempt_collected_at_the_hub():
    assert "Delivered" in allowed_next_statuses("Delivery Attempted")
    assert allowed_next_statuses("Out for Delivery") == ["Delivered", "Delivery Attempted", "On Hold"]


# --- the whole workflow, on its own -------------------------------------------------------------------------------

def test_without_answers_a_parcel_is_reattempted_escalated_and_returned_to_its_sender(ctx, client):
    subscribe()
    tracking_id = attempted(client)
    start = reports(tracking_id)[0].opened_at
    assert run_due_timers(start + timedelta(seconds=1)) is None  # nothing due yet
    assert not dispatchable(tracking_id, start + timedelta(seconds=1))
    assert run_due_timers(start + timedelta(seconds=2)) == "1 step done"
    assert reports(tracking_id)[0].reattempt_due_at is not None
    assert dispatchable(tracking_id, start + timedelta(seconds=2))

    move(tracking_id, "Out for Delivery", "Delivery Attempted")  # second failure
    second = reports(tracking_id)[1].opened_at
    assert run_due_timers(second + timedelta(seconds=4)) == "1 step done"
    move(tracking_id, "Out for Delivery", "Delivery Attempted")  # third failure: escalated at once
    third = reports(tracking_id)[2]
    assert pending_steps(tracking_id) == [("ndr.escalate", f"ndr:{third.id}:escalate")]
    assert not dispatchable(tracking_id, third.opened_at + timedelta(days=1))
    now = third.opened_at
    assert run_due_timers(now) == "1 step done"
    third = reports(tracking_id)[2]
    assert third.escalated_at == now and third.deadline == now + timedelta(seconds=3)
    [alert] = db.session.scalars(select(Alert)).all()
    assert (alert.kind, alert.cause, alert.details["tracking_id"]) == ("ndr_escalated", f"ndr:{third.id}",
                                                                        tracking_id)
    last_chance = {n.channel: n.recipient for n in db.session.scalars(
        select(Notification).where(Notification.channel.in_(["ndr_email", "ndr_sms"])))}
    assert last_chance == {"ndr_email": "vikram@example.com", "ndr_sms": "+919876543210"}
    assert run_due_timers(now + timedelta(seconds=2)) is None
    assert shipment_of(tracking_id).status == "Delivery Attempted"

    assert run_due_timers(now + timedelta(seconds=3)) == "1 step done"
    assert shipment_of(tracking_id).status == "RTO Initiated"
    latest = db.session.scalars(select(TrackingEvent).join(Shipment).where(Shipment.tracking_id == tracking_id)
                                .order_by(TrackingEvent.id.desc())).first()
    assert (latest.status, latest.actor) == ("RTO Initiated", "system")
    assert [(r.state, r.outcome) for r in reports(tracking_id)] == [("closed", "reattempted")] * 2 + [
        ("closed", "rto")]
    assert count(Notification, Notification.channel == "sender_email", Notification.event_id == latest.id) == 1
    assert count(AuditEntry, AuditEntry.action == "status_changed", AuditEntry.actor == "system") == 1
    assert count(Notification, Notification.channel == "ndr_resolved") == 3
    assert run_due_timers(now + timedelta(days=5)) is None  # nothing left


def test_a_step_whose_parcel_moved_on_does_nothing(ctx, client):
    tracking_id = attempted(client)
    report = reports(tracking_id)[0]
    # Staff took the parcel out again before the step ran: its step is still pending (Out for Delivery keeps it)
    move(tracking_id, "Out for Delivery")
    assert run_due_timers(report.opened_at + timedelta(seconds=2)) == "1 step done"
    assert reports(tracking_id)[0].reattempt_due_at is None


def test_the_attempt_message_links_to_the_answer_page_in_the_booking_language(ctx, client):
    tracking_id = attempted(client, lang="hi")
    rows = db.session.scalars(select(Notification).join(TrackingEvent, TrackingEvent.id == Notification.event_id)
                              .where(TrackingEvent.status == "Delivery Attempted",
                                     Notification.channel.in_(["email", "sms"]))).all()
    link = f"{ctx.config['PUBLIC_BASE_URL'].rstrip('/')}{answer_link(tracking_id)}"
    facts = load_facts(rows)
    rendered = {row.channel: render(row, facts) for row in rows}
    assert f"{link}?lang=hi" in rendered["email"].body_text and f"{link}?lang=hi" in rendered["email"].body_html
    assert all(link in text and "बताएँ क्या करें" in text for text in rendered["sms"].texts)


def test_the_page_speaks_the_booking_language_unless_the_visitor_chose_another(app, client):
    # Requests outside the test's app context: the language of a request is kept in its own context (g)
    with app.app_context():
        link = answer_link(attempted(client, lang="hi"))
    page = client.get(link, headers={"Accept": "text/html", "Accept-Language": "en"})
    assert "हम क्या करें?" in page.get_data(as_text=True)
    english = client.get(f"{link}?lang=en", headers={"Accept": "text/html"})
    assert "What should we do?" in english.get_data(as_text=True)


# --- the recipient's page ---------------------------------------------------------------------------------------

def test_the_recipients_reattempt_with_instructions_reaches_the_couriers_stop(ctx, client, auth, make_user,
                                                                             create_shipment):
    tracking_id = attempted(client, reason="address_not_found")
    link = answer_link(tracking_id)
    page = client.get(link, headers={"Accept": "application/json"}).get_json()
    assert page["ndr"]["reason"] == "address_not_found" and page["actions"] == ["reattempt", "pickup_at_hub",
                                                                                 "return"]
    assert "mobile" not in str(page) and "Kochi" not in str(page)  # nothing personal for the link's holder
    day = to_local(utcnow(), ctx.config["DISPLAY_TIMEZONE"]).date() + timedelta(days=1)
    answer = client.post(link, json={"action": "reattempt", "date": day.isoformat(),
                                     "instructions": "Leave it with the guard at gate 2",
                                     "landmark": "Opposite the temple", "alternate_mobile": "98765 00000"})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["ndr"]["action"] == "reattempt" and answer.get_json()["ndr"]["date"] == day.isoformat()
    [report] = reports(tracking_id)
    assert (report.answered_by, report.alternate_mobile, report.deadline) == ("recipient", "+919876500000", None)
    assert pending_steps(tracking_id) == []
    assert not dispatchable(tracking_id, utcnow())  # from the start of the day asked for
    assert dispatchable(tracking_id, report.reattempt_due_at)
    [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "ndr_answered")).all()
    assert audit.actor == "recipient" and audit.details["action"] == "reattempt"
    assert "98765" not in str(audit.details) and "gate" not in str(audit.details)

    field = Field(ctx, client, auth, make_user, create_shipment)
    courier_id = field.courier()
    move(tracking_id, "Out for Delivery")
    field.assign(courier_id, [tracking_id])
    field.sign_in()
    [stop] = client.get("/courier/stops").get_json()["stops"]
    assert "Leave it with the guard at gate 2" in stop["instructions"]
    assert "Opposite the temple" in stop["instructions"] and "+919876500000" in stop["instructions"]


def test_pickup_at_hub_holds_the_parcel_for_collection(ctx, client):
    tracking_id = attempted(client)
    response = client.post(answer_link(tracking_id), json={"action": "pickup_at_hub"})
    assert response.status_code == 200
    assert pending_steps(tracking_id) == [] and not dispatchable(tracking_id, utcnow() + timedelta(days=9))
    move(tracking_id, "Delivered")
    assert [(r.state, r.outcome) for r in reports(tracking_id)] == [("closed", "delivered")]


def test_return_sends_it_back_at_once_as_the_recipient(ctx, client):
    tracking_id = attempted(client)
    link = answer_link(tracking_id)
    assert client.post(link, json={"action": "return"}).status_code == 200
    assert shipment_of(tracking_id).status == "RTO Initiated"
    event = db.session.scalars(select(TrackingEvent).where(TrackingEvent.status == "RTO Initiated")).one()
    assert event.actor == "recipient"
    assert count(Notification, Notification.channel == "sender_email", Notification.event_id == event.id) == 1
    assert [(r.state, r.outcome, r.action) for r in reports(tracking_id)] == [("closed", "rto", "return")]
    again = client.post(link, json={"action": "pickup_at_hub"})
    assert again.status_code == 409


def test_the_page_answers_through_its_form_and_asks_for_the_csrf_token(ctx, client):
    tracking_id = attempted(client)
    link = answer_link(tracking_id)
    page = client.get(link, headers={"Accept": "text/html"})
    assert page.status_code == 200 and b'name="action"' in page.data
    refused = client.post(link, data={"action": "pickup_at_hub"}, headers={"Accept": "text/html"})
    assert refused.status_code == 400 and reports(tracking_id)[0].action is None
    token = page.data.split(b'name="csrf_token" value="')[1].split(b'"')[0].decode()
    saved = client.post(link, data={"action": "reattempt", "date": "", "instructions": "Ring twice",
                                    "csrf_token": token}, headers={"Accept": "text/html"})
    assert saved.status_code == 303 and "saved=1" in saved.headers["Location"]
    assert reports(tracking_id)[0].instructions == "Ring twice"
    bad = client.post(link, data={"action": "reattempt", "instructions": "x" * 201, "csrf_token": token},
                      headers={"Accept": "text/html"})
    assert bad.status_code == 400 and b"At most 200 characters" in bad.data


def today_plus(ctx, days: int) -> str:
    return (to_local(utcnow(), ctx.config["DISPLAY_TIMEZONE"]).date() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("reason", "body", "field"), [
    ("nobody_home", {}, "action"),
    ("nobody_home", {"action": "deliver"}, "action"),
    ("nobody_home", {"action": 3}, "action"),
    ("nobody_home", {"action": "reattempt", "date": "tomorrow"}, "date"),
    ("nobody_home", {"action": "reattempt", "date": "PAST"}, "date"),
    ("nobody_home", {"action": "reattempt", "date": "FAR"}, "date"),
    ("nobody_home", {"action": "reattempt", "instructions": "x" * 201}, "instructions"),
    ("nobody_home", {"action": "reattempt", "landmark": "x" * 121}, "landmark"),
    ("nobody_home", {"action": "reattempt", "corrected_address": "x" * 201}, "corrected_address"),
    ("nobody_home", {"action": "reattempt", "alternate_mobile": "12"}, "alternate_mobile"),
    ("nobody_home", {"action": "reattempt", "colour": "red"}, "colour"),
    ("address_not_found", {"action": "reattempt"}, "landmark"),
    ("rescheduled", {"action": "reattempt", "instructions": "Evening please"}, "date"),
])
def test_each_bad_answer_is_a_400_naming_its_field_and_changes_nothing(ctx, client, reason, body, field):
    tracking_id = attempted(client, reason=reason)
    if body.get("date") in ("PAST", "FAR"):
        body = {**body, "date": today_plus(ctx, -1 if body["date"] == "PAST" else 6)}
    response = client.post(answer_link(tracking_id), json=body)
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["fields"]
    assert reports(tracking_id)[0].action is None and count(AuditEntry, AuditEntry.action == "ndr_answered") == 0


def test_what_a_reason_needs_is_enough(ctx, client):
    lost = attempted(client, reason="address_not_found")
    assert client.post(answer_link(lost), json={"action": "reattempt", "corrected_address": "14 Marine Drive"}
                       ).status_code == 200
    later = attempted(client, reason="rescheduled")
    assert client.post(answer_link(later), json={"action": "reattempt", "date": today_plus(ctx, 5)}
                       ).status_code == 200
    # with another action, what only a reattempt takes is ignored
    other = attempted(client, reason="address_not_found")
    assert client.post(answer_link(other), json={"action": "pickup_at_hub", "date": "junk"}).status_code == 200


def test_no_report_a_closed_one_or_no_attempts_left_is_a_409(ctx, client):
    booked = book(client)
    assert client.post(answer_link(booked), json={"action": "return"}).status_code == 409
    tracking_id = attempted(client)
    move(tracking_id, "Out for Delivery", "Delivery Attempted", "Out for Delivery", "Delivery Attempted")
    link = answer_link(tracking_id)
    page = client.get(link, headers={"Accept": "application/json"}).get_json()
    assert page["ndr"]["attempt"] == 3 and page["actions"] == ["pickup_at_hub", "return"]
    refused = client.post(link, json={"action": "reattempt"})
    assert refused.status_code == 409 and "No attempts left" in refused.get_json()["error"]
    assert client.post(link, json={"action": "pickup_at_hub"}).status_code == 200
    assert client.post(link, json={"action": "return"}).status_code == 200  # the latest answer counts
    assert client.post(link, json={"action": "return"}).status_code == 409  # closed by the return


def test_a_bad_link_is_a_404_and_a_finished_journey_a_410(ctx, client):
    assert client.get("/r/12.forged", headers={"Accept": "application/json"}).status_code == 404
    tracking_id = attempted(client)
    link = answer_link(tracking_id)
    move(tracking_id, "Delivered")
    expired = client.get(link, headers={"Accept": "application/json"})
    assert expired.status_code == 410 and "expired" in expired.get_json()["error"]
    assert client.get(link, headers={"Accept": "text/html"}).status_code == 410
    assert client.post(link, json={"action": "return"}).status_code == 410


def test_the_tracking_page_links_to_the_answer_page_after_the_last_4_digits(ctx, client):
    tracking_id = attempted(client)
    page = client.get(f"/track/{tracking_id}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "/r/" not in page
    client.post(f"/track/{tracking_id}/details", data={"mobile_last4": "3210", "csrf_token": "x"})
    unlocked = client.post(f"/track/{tracking_id}/details", json={"mobile_last4": "3210"})
    assert unlocked.status_code == 200
    page = client.get(f"/track/{tracking_id}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert answer_link(tracking_id) in page


# --- staff and integrators -----------------------------------------------------------------------------------------

def test_staff_list_the_reports(ctx, client, auth):
    tracking_id = attempted(client)
    auth.login("viewer1", role="viewer")
    listing = client.get("/admin/ndr?state=open", headers={"Accept": "application/json"}).get_json()
    [row] = listing["ndrs"]
    assert (row["tracking_id"], row["attempt"], row["reason"], row["action"]) == (tracking_id, 1, "nobody_home", None)
    assert client.get("/admin/ndr?state=closed", headers={"Accept": "application/json"}).get_json()["ndrs"] == []
    assert client.get("/admin/ndr?state=lost", headers={"Accept": "application/json"}).status_code == 400
    assert client.get("/admin/ndr", headers={"Accept": "text/html"}).status_code == 200
    forbidden = client.post(f"/admin/shipments/{tracking_id}/ndr", json={"action": "return"}, headers=auth.headers())
    assert forbidden.status_code == 403


def test_staff_answer_for_the_recipient(ctx, client, auth):
    tracking_id = attempted(client)
    auth.login("operator1")
    answered = client.post(f"/admin/shipments/{tracking_id}/ndr", headers=auth.headers(),
                           json={"action": "reattempt", "instructions": "Call first"})
    assert answered.status_code == 200, answered.get_json()
    assert (answered.get_json()["answered_by"], answered.get_json()["instructions"]) == ("operator1", "Call first")
    bad = client.post(f"/admin/shipments/{tracking_id}/ndr", headers=auth.headers(), json={"action": "later"})
    assert bad.status_code == 400 and "action" in bad.get_json()["fields"]
    page = client.get(f"/admin/shipments/{tracking_id}", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Call first" in page and 'data-ndr-state="open"' in page
    detail = client.get(f"/admin/shipments/{tracking_id}", headers={"Accept": "application/json"}).get_json()
    assert detail["ndrs"][0]["action"] == "reattempt"
    [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "ndr_answered")).all()
    assert audit.actor == "operator1" and audit.details["via"] == "staff"


def test_an_integrator_answers_through_the_api(ctx, client, issue_key):
    tracking_id = attempted(client)
    secret = issue_key()
    headers = {"Authorization": f"Bearer {secret}"}
    response = client.post(f"/api/v1/shipments/{tracking_id}/ndr", json={"action": "pickup_at_hub"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["answered_by"].startswith("api:") and response.get_json()["action"] == "pickup_at_hub"
    bad = client.post(f"/api/v1/shipments/{tracking_id}/ndr", json={"action": "reattempt", "instructions": "x" * 201},
                      headers=headers)
    assert bad.status_code == 400
    unknown = client.post("/api/v1/shipments/00000000/ndr", json={"action": "return"}, headers=headers)
    assert unknown.status_code == 404
    assert client.post(f"/api/v1/shipments/{book(client)}/ndr", json={"action": "return"},
                       headers=headers).status_code == 409
