"""The courier app's server side: the courier's own stops (GET /courier/stops) and the actions sent from the door
(POST /courier/events), applied at most once, at the courier's time, with the proof, cash and delivery code the
field settings ask for."""
from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from app.domain.status import Status
from app.domain.timeutil import isoformat_z, utcnow
from app.extensions import db
from app.models import (
    AuditEntry,
    CodCollection,
    CourierEventReceipt,
    DeliveryProof,
    Notification,
    RunSheetStop,
    Shipment,
    User,
)
from tests.field_support import COURIER, Field, jpeg_data_url, local_today, outcomes, png_data_url


@pytest.fixture
def field(app, client, auth, make_user, create_shipment):
    return Field(app, client, auth, make_user, create_shipment)


@pytest.fixture
def on_duty(field):
    """A signed-in courier with two parcels out for delivery on today's run sheet."""
    courier_id = field.courier()
    parcels = [field.parcel(), field.parcel(mobile="098765 43211")]
    field.assign(courier_id, parcels)
    field.sign_in()
    return courier_id, parcels


# --- the stops -------------------------------------------------------------------------------------------------

def test_the_courier_sees_their_open_stops_in_order_then_todays_done_ones(field):
    courier_id = field.courier()
    other_id = field.courier("meena")
    first, second = field.parcel(), field.parcel(payment="cod", cod_amount="1250.50")
    yesterday_left = field.parcel()
    tomorrows = field.parcel()
    someone_elses = field.parcel()
    field.assign(courier_id, [yesterday_left], day=local_today(field.app) - timedelta(days=1))
    field.assign(courier_id, [first, second])
    field.assign(courier_id, [tomorrows], day=local_today(field.app) + timedelta(days=1))
    field.assign(other_id, [someone_elses])
    field.sign_in()
    [applied] = field.send(field.event(first))
    assert applied["outcome"] == "applied"

    response = field.client.get("/courier/stops", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["courier"] == COURIER and body["date"] == local_today(field.app).isoformat()
    assert [(s["tracking_id"], s["state"]) for s in body["stops"]] == [
        (yesterday_left, "open"), (second, "open"), (first, "done")]
    stop = body["stops"][1]
    assert stop == {
        "tracking_id": second, "sequence": 2, "date": local_today(field.app).isoformat(),
        "status": "Out for Delivery", "state": "open", "kind": "delivery", "receiver_name": "Vikram Nair",
        "mobile": "+919876543210", "destination": "Kochi", "destination_pincode": None,
        "visit": {"name": "Vikram Nair", "mobile": "+919876543210", "address": "Kochi", "pincode": None},
        "pieces": 1, "payment": "cod", "cod_amount": "1250.50", "instructions": None, "otp_required": False,
        "proof": {"received_by": "required", "signature": "warn", "photo": "warn"}}
    assert body["stops"][2]["status"] == "Delivered"
    assert {"code": "nobody_home", "label": "Nobody home"} in body["attempt_reasons"]


def test_a_pickup_stop_sends_the_courier_to_the_sender_and_asks_no_proof(field):
    courier_id = field.courier()
    pickup = field.parcel(Status.BOOKED, pickup=True, sender_address="4 Beach Road, Kochi 682001",
                          sender_pincode="682001", sender_mobile="+91 98470 12345")
    field.assign(courier_id, [pickup])
    field.sign_in()
    [stop] = field.client.get("/courier/stops").get_json()["stops"]
    assert stop["kind"] == "pickup"
    assert stop["visit"] == {"name": "Asha Rao", "mobile": "+919847012345", "address": "4 Beach Road, Kochi 682001",
                             "pincode": "682001"}
    assert stop["proof"] == {"received_by": "off", "signature": "off", "photo": "off"}
    [result] = field.send(field.event(pickup, Status.PICKED_UP, received_by=None))
    assert result["outcome"] == "applied"
    assert field.status_of(pickup) == "Picked Up"
    assert field.events_of(pickup)[-1].location == "Kochi"
    [stop] = field.client.get("/courier/stops").get_json()["stops"]
    assert (stop["state"], stop["kind"]) == ("done", "pickup")


@pytest.mark.parametrize("path", ["/courier/stops", "/courier/events"])
def test_other_staff_may_not_use_the_courier_app(field, path):
    field.sign_in("operator1", role="operator", create=True)
    response = (field.client.get(path) if path.endswith("stops") else
                field.client.post(path, json={"events": []}, headers=field.auth.headers()))
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/admin", "/admin/field-settings", "/admin/users", "/admin/scan"])
def test_a_courier_may_not_use_staff_pages(field, path):
    field.courier()
    field.sign_in()
    assert field.client.get(path, headers={"Accept": "application/json"}).status_code == 403


def test_the_courier_app_needs_a_signed_in_courier(field):
    assert field.client.get("/courier/stops", headers={"Accept": "application/json"}).status_code == 401
    assert field.client.post("/courier/events", json={"events": []}).status_code == 401


# --- applying actions ------------------------------------------------------------------------------------------

def test_a_delivery_is_applied_with_the_couriers_time_and_proof(field, on_duty):
    _, (parcel, _) = on_duty
    at = utcnow().replace(microsecond=0) - timedelta(days=6)
    [result] = field.send(field.event(parcel, at=isoformat_z(at), received_by="Vikram  Nair",
                                      signature=png_data_url(), photo=jpeg_data_url()))
    assert result == {"id": "evt-0001", "outcome": "applied"}
    delivered = field.events_of(parcel)[-1]
    assert (delivered.status, delivered.actor, delivered.location) == ("Delivered", COURIER, "Kochi")
    assert delivered.occurred_at == at
    with field.app.app_context():
        proof = db.session.scalars(select(DeliveryProof).where(DeliveryProof.event_id == delivered.id)).one()
        assert proof.received_by == "Vikram Nair" and proof.signature_key and proof.photo_key
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "status_changed")).all()
        assert [(a.actor, a.target_id) for a in audit][-1] == (COURIER, parcel)
        receipt = db.session.scalars(select(CourierEventReceipt)).one()
        assert (receipt.outcome, receipt.event_id, receipt.happened_at) == ("applied", delivered.id, at)


def test_an_offset_time_is_read_as_the_instant_it_names(field, on_duty):
    _, (parcel, _) = on_duty
    at = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
    local = at.astimezone(ZoneInfo("Asia/Kolkata")).isoformat()
    assert local.endswith("+05:30")
    assert outcomes(field.send(field.event(parcel, at=local))) == ["applied"]
    assert field.events_of(parcel)[-1].occurred_at == at


def test_a_replayed_action_applies_nothing_twice(field, on_duty, app):
    from app.services.outbox.webhooks import create_subscription

    _, (parcel, _) = on_duty
    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    with app.app_context():
        owner = db.session.scalar(select(User.id).where(User.username == COURIER))
        create_subscription(owner, "http://127.0.0.1:9/hook", ["shipment.status_changed", "shipment.delivered"],
                            actor="admin1")
        db.session.commit()
    action = field.event(parcel)
    before = (len(field.events_of(parcel)), field.count(Notification), field.count(AuditEntry))
    assert outcomes(field.send(action)) == ["applied"]
    after = (len(field.events_of(parcel)), field.count(Notification), field.count(AuditEntry))
    webhooks = field.count(Notification, Notification.channel == "webhook")
    assert after[0] == before[0] + 1 and after[1] > before[1] and webhooks == 1 and after[2] == before[2] + 1
    assert field.send(action, action) == [{"id": action["id"], "outcome": "duplicate"}] * 2
    assert (len(field.events_of(parcel)), field.count(Notification), field.count(AuditEntry)) == after
    assert field.count(Notification, Notification.channel == "webhook") == 1


def test_an_id_sent_twice_in_one_batch_is_applied_once(field, on_duty):
    _, (parcel, _) = on_duty
    action = field.event(parcel)
    assert outcomes(field.send(action, action)) == ["applied", "duplicate"]
    assert len([e for e in field.events_of(parcel) if e.status == "Delivered"]) == 1


def test_a_refused_action_is_refused_again_when_replayed(field, on_duty):
    _, (parcel, _) = on_duty
    action = field.event(parcel, received_by=None)
    [first] = field.send(action)
    assert first["outcome"] == "refused" and first["error"] == "invalid"
    assert first["fields"] == {"received_by": "Required for a delivery."}
    [again] = field.send(action)
    assert (again["outcome"], again["error"]) == ("refused", "invalid")
    assert "received_by" in again["message"]
    assert field.status_of(parcel) == "Out for Delivery"


def test_actions_of_one_batch_are_separate_units(field, on_duty):
    _, (good, bad) = on_duty
    results = field.send(field.event(bad, received_by=None), field.event(good), field.event("NOPE"))
    assert outcomes(results) == ["refused", "applied", "refused"]
    assert (field.status_of(good), field.status_of(bad)) == ("Delivered", "Out for Delivery")


def test_an_attempt_then_nothing_more_on_that_stop(field, on_duty):
    _, (parcel, _) = on_duty
    attempt, delivery = field.event(parcel, Status.DELIVERY_ATTEMPTED), field.event(parcel)
    results = field.send(attempt, delivery)
    assert outcomes(results) == ["applied", "refused"]
    assert results[1]["error"] == "not_assigned"
    with field.app.app_context():
        stop = db.session.scalars(select(RunSheetStop).join(Shipment).where(Shipment.tracking_id == parcel)).one()
        assert (stop.state, stop.outcome) == ("done", "Delivery Attempted")


def test_a_later_action_on_a_parcel_counts_when_the_earlier_was_refused(field, on_duty):
    _, (parcel, _) = on_duty
    results = field.send(field.event(parcel, received_by=None), field.event(parcel))
    assert outcomes(results) == ["refused", "applied"]


@pytest.mark.parametrize("days, minutes, applied", [
    (8, 0, False), (0, -6, False), (6, 0, True), (0, -4, True)])
def test_the_couriers_time_is_believed_within_bounds(field, on_duty, days, minutes, applied):
    _, (parcel, _) = on_duty
    at = utcnow().replace(microsecond=0) - timedelta(days=days, minutes=minutes)
    [result] = field.send(field.event(parcel, at=isoformat_z(at)))
    if applied:
        assert result["outcome"] == "applied"
        assert field.events_of(parcel)[-1].occurred_at == at
    else:
        assert (result["outcome"], result["error"], list(result["fields"])) == ("refused", "invalid", ["at"])
        assert field.status_of(parcel) == "Out for Delivery"


def test_a_parcel_not_on_the_couriers_run_sheet_is_not_assigned(field, on_duty):
    someone_elses = field.parcel()
    field.assign(field.courier("meena"), [someone_elses])
    not_on_any = field.parcel()
    results = field.send(field.event(someone_elses), field.event(not_on_any), field.event("ABCDEF12"),
                         field.event("not an id"))
    assert [(r["outcome"], r["error"], r["message"]) for r in results] == [
        ("refused", "not_assigned", "This parcel is not on your run sheet.")] * 4
    assert field.status_of(someone_elses) == field.status_of(not_on_any) == "Out for Delivery"


def test_a_stop_on_a_later_days_run_sheet_is_not_yet_assigned(field):
    courier_id = field.courier()
    parcel = field.parcel()
    field.assign(courier_id, [parcel], day=local_today(field.app) + timedelta(days=1))
    field.sign_in()
    assert field.send(field.event(parcel))[0]["error"] == "not_assigned"


def test_the_status_must_fit_the_stop(field, on_duty):
    courier_id, (parcel, _) = on_duty
    pickup = field.parcel(Status.BOOKED, pickup=True, sender_address="4 Beach Road, Kochi 682001")
    field.assign(courier_id, [pickup])
    results = field.send(field.event(parcel, Status.PICKED_UP), field.event(pickup, Status.DELIVERED))
    assert [(r["outcome"], list(r["fields"])) for r in results] == [("refused", ["status"])] * 2


def test_a_parcel_not_yet_handed_out_cannot_be_delivered(field):
    courier_id = field.courier()
    parcel = field.parcel(Status.IN_TRANSIT)
    field.assign(courier_id, [parcel])
    field.sign_in()
    [result] = field.send(field.event(parcel))
    assert (result["outcome"], result["error"]) == ("refused", "not_allowed")
    assert "In Transit" in result["message"]


def test_an_attempt_needs_a_known_reason(field, on_duty):
    _, (first, second) = on_duty
    results = field.send(field.event(first, Status.DELIVERY_ATTEMPTED, attempt_reason=None),
                         field.event(second, Status.DELIVERY_ATTEMPTED, attempt_reason="aliens"))
    assert [list(r["fields"]) for r in results] == [["attempt_reason"], ["attempt_reason"]]
    [ok] = field.send(field.event(first, Status.DELIVERY_ATTEMPTED, attempt_reason="Refused"))
    assert ok["outcome"] == "applied"


@pytest.mark.parametrize("changes, sent, missing", [
    ({}, {"received_by": None}, ["received_by"]),
    ({"signature": "required", "photo": "required"}, {}, ["signature", "photo"]),
    ({"received_by": "off"}, {"received_by": None}, []),
    ({"received_by": "warn"}, {"received_by": None}, []),
])
def test_proof_follows_the_settings(field, on_duty, changes, sent, missing):
    _, (parcel, _) = on_duty
    field.settings(**changes)
    [result] = field.send(field.event(parcel, **sent))
    if missing:
        assert result["outcome"] == "refused" and sorted(result["fields"]) == sorted(missing)
    else:
        assert result["outcome"] == "applied"


def test_a_proof_that_is_sent_must_be_sound(field, on_duty):
    _, (first, second) = on_duty
    blank = png_data_url(colour=(0, 0, 0, 0))
    results = field.send(field.event(first, signature=blank), field.event(second, photo="data:image/jpeg;base64,!!"))
    assert [(r["outcome"], list(r["fields"])) for r in results] == [("refused", ["signature"]),
                                                                    ("refused", ["photo"])]
    assert field.count(DeliveryProof) == 0


# --- cash on delivery ------------------------------------------------------------------------------------------

@pytest.fixture
def cod_parcel(field):
    courier_id = field.courier()
    parcel = field.parcel(payment="cod", cod_amount="1250.50")
    prepaid = field.parcel(mobile="098765 43211")
    field.assign(courier_id, [parcel, prepaid])
    field.sign_in()
    return courier_id, parcel, prepaid


def test_cash_collected_on_delivery_is_recorded_with_the_event(field, cod_parcel):
    courier_id, parcel, _ = cod_parcel
    at = utcnow().replace(microsecond=0) - timedelta(hours=1)
    [result] = field.send(field.event(parcel, at=isoformat_z(at), cod_collected="1200.5", method="cash"))
    assert result["outcome"] == "applied"
    with field.app.app_context():
        collection = db.session.scalars(select(CodCollection)).one()
        assert (collection.expected, collection.collected) == (Decimal("1250.50"), Decimal("1200.50"))
        assert isinstance(collection.collected, Decimal)
        assert (collection.method, collection.upi_reference, collection.courier_id) == ("cash", None, courier_id)
        assert collection.collected_at == at
        assert collection.event_id == field.events_of(parcel)[-1].id


def test_upi_needs_its_reference(field, cod_parcel):
    _, parcel, _ = cod_parcel
    [refused] = field.send(field.event(parcel, cod_collected="1250.50", method="upi"))
    assert refused["fields"] == {"upi_reference": "Enter the UPI transaction reference."}
    [applied] = field.send(field.event(parcel, cod_collected="1250.50", method="UPI", upi_reference="412345678901"))
    assert applied["outcome"] == "applied"
    with field.app.app_context():
        assert db.session.scalar(select(CodCollection.upi_reference)) == "412345678901"


@pytest.mark.parametrize("sent, refused_fields", [
    ({}, ["cod_collected", "method"]),
    ({"cod_collected": "-5", "method": "cash"}, ["cod_collected"]),
    ({"cod_collected": "12.345", "method": "cash"}, ["cod_collected"]),
    ({"cod_collected": "lots", "method": "cash"}, ["cod_collected"]),
    ({"cod_collected": 12.5, "method": "cash"}, ["cod_collected"]),
    ({"cod_collected": "10", "method": "cheque"}, ["method"]),
    ({"cod_collected": "10", "method": "cash", "upi_reference": "412345678901"}, ["upi_reference"]),
])
def test_cash_on_delivery_fields_are_checked(field, cod_parcel, sent, refused_fields):
    _, parcel, _ = cod_parcel
    [result] = field.send(field.event(parcel, **sent))
    assert (result["outcome"], sorted(result["fields"])) == ("refused", sorted(refused_fields))
    assert field.count(CodCollection) == 0


def test_a_shortfall_or_nothing_collected_is_recorded_as_sent(field, cod_parcel):
    _, parcel, _ = cod_parcel
    assert outcomes(field.send(field.event(parcel, cod_collected="0", method="cash"))) == ["applied"]
    with field.app.app_context():
        assert db.session.scalar(select(CodCollection.collected)) == Decimal("0.00")


def test_cash_is_refused_where_none_is_due(field, cod_parcel):
    _, parcel, prepaid = cod_parcel
    results = field.send(field.event(prepaid, cod_collected="100", method="cash"),
                         field.event(parcel, Status.DELIVERY_ATTEMPTED, cod_collected="100"))
    assert [sorted(r["fields"]) for r in results] == [["cod_collected", "method"], ["cod_collected"]]
    assert field.count(CodCollection) == 0


# --- bad requests ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {"events": [{}] * 101},
    {"events": "all of them"},
    {"events": ["not an object"]},
    {},
    {"events": [], "extra": 1},
    [1, 2],
])
def test_a_malformed_batch_is_400_and_records_nothing(field, on_duty, body):
    response = field.client.post("/courier/events", json=body, headers=field.auth.headers())
    assert response.status_code == 400
    assert field.count(CourierEventReceipt) == 0


def test_a_body_that_is_not_json_is_400(field, on_duty):
    for data, content_type in (("{not json", "application/json"), ("events=1", "application/x-www-form-urlencoded")):
        response = field.client.post("/courier/events", data=data, content_type=content_type,
                                     headers=field.auth.headers())
        assert response.status_code == 400


def test_a_batch_without_the_csrf_token_is_refused(field, on_duty):
    _, (parcel, _) = on_duty
    response = field.client.post("/courier/events", json={"events": [field.event(parcel)]})
    assert response.status_code == 400
    assert field.status_of(parcel) == "Out for Delivery"


def test_a_batch_of_100_is_taken(field, on_duty):
    _, (parcel, _) = on_duty
    results = field.send(*[field.event("ABCDEF12") for _ in range(100)])
    assert len(results) == 100 and {r["error"] for r in results} == {"not_assigned"}


def test_bad_fields_refuse_only_their_action(field, on_duty):
    _, (parcel, _) = on_duty
    results = field.send(
        {"tracking_id": parcel, "status": "Delivered"},
        {"id": "x" * 65, "tracking_id": parcel, "status": "Delivered", "at": isoformat_z(utcnow())},
        field.event(parcel, status="Lost"),
        field.event(parcel, at="yesterday"),
        field.event(parcel, at="2026-01-01T10:00:00"),
        field.event(parcel, received_by=42),
        field.event(parcel, colour="blue"),
        field.event(parcel, otp="12a4"),
        field.event(parcel, received_by="Vik\x00ram"),
        field.event(parcel, **{"bad\x00name": 1}),
        field.event(parcel),
    )
    assert outcomes(results) == ["refused"] * 10 + ["applied"]
    assert [sorted(r["fields"]) for r in results[:10]] == [
        ["at", "id"], ["id"], ["status"], ["at"], ["at"], ["received_by"], ["colour"], ["otp"], ["received_by"],
        ["bad?name"]]
    assert results[0]["id"] is None and results[1]["id"] == "x" * 65
    assert field.count(CourierEventReceipt) == 9  # every action with a usable id has a receipt


# --- concurrency -----------------------------------------------------------------------------------------------

def test_two_replays_at_once_apply_once(field, on_duty, app, database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time: the race needs PostgreSQL")
    _, (parcel, _) = on_duty
    action = field.event(parcel)
    cookie = field.client.get_cookie("session")
    barrier = threading.Barrier(2)
    answers: list = []

    def send() -> None:
        client = app.test_client()
        client.set_cookie(cookie.key, cookie.value, domain=cookie.domain or "localhost")
        barrier.wait()
        answers.append(client.post("/courier/events", json={"events": [action]}, headers=field.auth.headers()))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.get_json()["results"][0]["outcome"] for a in answers) == ["applied", "duplicate"]
    assert len([e for e in field.events_of(parcel) if e.status == "Delivered"]) == 1


def test_an_action_that_lost_a_race_is_to_be_sent_again(field, on_duty, monkeypatch):
    from app.services.field import events
    from app.services.shipments.status_changes import ChangeOutcome, Refusal

    _, (parcel, _) = on_duty
    action = field.event(parcel)
    monkeypatch.setattr(events, "apply_status_changes", lambda changes, actor, **kw: [
        ChangeOutcome(c.tracking_id, ok=False, refusal=Refusal.BUSY, error="busy") for c in changes])
    [result] = field.send(action)
    assert (result["outcome"], result["error"]) == ("retry", "busy")
    assert field.count(CourierEventReceipt) == 0
    monkeypatch.undo()
    assert outcomes(field.send(action)) == ["applied"]


def test_a_body_over_the_limit_is_413(field, on_duty):
    from app.courier.routes import EVENTS_BODY_MAX

    _, (parcel, _) = on_duty
    body = b'{"events": [{"id": "big", "photo": "' + b"A" * EVENTS_BODY_MAX + b'"}]}'
    response = field.client.post("/courier/events", data=body, content_type="application/json",
                                 headers={**field.auth.headers(), "Accept": "application/json"})
    assert response.status_code == 413
    assert field.count(CourierEventReceipt) == 0
