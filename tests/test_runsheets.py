"""Run sheets: the service (assigning, moving, capacity, handing out, the core closing stops), its JSON, its pages
and its PDF, and who may use them (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import base64
import re
import shutil
import subprocess
import threading
import zlib
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.domain.parcels import Parcel
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import AuditEntry, RunSheet, RunSheetStop, Shipment, TrackingEvent
from app.services.field import runsheets
from app.services.field.couriers import CourierFields
from app.services.field.runsheets import (
    NothingAssigned,
    assign_stops,
    dispatch_runsheet,
    list_runsheets,
    local_today,
    runsheet_view,
)
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.status_changes import record_status_change
from app.services.staff.users import UserChanges, create_user, update_user

TZ = "Asia/Kolkata"
PASSWORD = "correct-horse-1"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "12 MG Road, Ernakulam, Kochi",
                  parcel=Parcel(destination_pincode="682016", pieces=2))
READY = ("Picked Up", "In Transit")  # In Transit at the hub: ready to go out
UNKNOWN = "0000ABCD"


def book(*statuses: str, pickup: bool = False, cod: str | None = None, receiver: str = "Vikram Nair") -> str:
    parcel = replace(NEW.parcel, pickup=pickup, payment="cod" if cod else "prepaid",
                     cod_amount=Decimal(cod) if cod else None)
    tracking_id = create_shipment(replace(NEW, parcel=parcel, receiver_name=receiver), actor="setup").tracking_id
    for status in statuses:
        record_status_change(tracking_id, status, "Kochi Hub", None, actor="setup")
    db.session.commit()
    return tracking_id


def make_courier(username: str = "ravi", **details) -> None:
    create_user(username, PASSWORD, "courier", courier=CourierFields(**{"vehicle": "two_wheeler", **details}))
    db.session.commit()


def assign(courier: str, tracking_ids: list[str], day: date | None = None):
    result = assign_stops(courier, tracking_ids, day=day, actor="op1", timezone=TZ)
    db.session.commit()
    return result


def reasons(result) -> dict[str, str]:
    return {refusal.tracking_id: refusal.reason for refusal in result.rejected}


def status_of(tracking_id: str) -> str:
    return db.session.scalar(select(Shipment.status).where(Shipment.tracking_id == tracking_id))


def stop_states(tracking_id: str) -> list[tuple[int, str, str | None]]:
    """(run sheet, state, outcome) of every stop of a parcel, oldest first."""
    return [tuple(row) for row in db.session.execute(
        select(RunSheetStop.runsheet_id, RunSheetStop.state, RunSheetStop.outcome)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(Shipment.tracking_id == tracking_id).order_by(RunSheetStop.id))]


def audit(action: str) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# --- assigning ----------------------------------------------------------------------------------------------------

def test_a_run_sheet_is_made_for_today_with_the_stops_in_the_given_order(app_ctx):
    make_courier()
    first, second = book(*READY), book(*READY)
    result = assign("RAVI", [second, first.lower()])
    sheet = result.runsheet
    assert (sheet.courier, sheet.date, sheet.dispatched_at, result.rejected) == ("ravi", local_today(TZ), None, [])
    assert [(s.tracking_id, s.sequence, s.status, s.state) for s in sheet.stops] == [
        (second, 1, "In Transit", "open"), (first, 2, "In Transit", "open")]
    row = audit("runsheet_assigned")[0]
    assert (row.actor, row.target_type, row.target_id) == ("op1", "runsheet", str(sheet.id))
    assert row.details == {"courier": "ravi", "date": local_today(TZ).isoformat(), "added": [second, first],
                           "moved": [], "rejected": {}}


def test_more_stops_go_after_the_ones_already_there_on_the_same_run_sheet(app_ctx):
    make_courier()
    first, second, third = book(*READY), book(*READY), book(*READY)
    one = assign("ravi", [first])
    two = assign("ravi", [third, second])
    assert two.runsheet.id == one.runsheet.id and count(RunSheet) == 1
    assert [(s.tracking_id, s.sequence) for s in two.runsheet.stops] == [(first, 1), (third, 2), (second, 3)]


def test_each_id_that_cannot_go_on_is_refused_alone_with_its_reason(app_ctx):
    make_courier()
    ready, attempted = book(*READY), book(*READY, "Out for Delivery", "Delivery Attempted")
    out, pickup = book(*READY, "Out for Delivery"), book(pickup=True)
    delivered = book(*READY, "Out for Delivery", "Delivered")
    cancelled, booked, picked, held = book("Cancelled"), book(), book("Picked Up"), book(*READY, "On Hold")
    result = assign("ravi", [ready, "not an id", UNKNOWN, delivered, cancelled, booked, picked, held, ready.lower(),
                             attempted, pickup, out])
    assert [s.tracking_id for s in result.runsheet.stops] == [ready, attempted, pickup, out]
    assert [s.kind for s in result.runsheet.stops] == ["delivery", "delivery", "pickup", "delivery"]
    assert [(r.tracking_id, r.reason) for r in result.rejected] == [
        ("not an id", "unknown_id"), (UNKNOWN, "unknown_id"), (delivered, "final"), (cancelled, "final"),
        (booked, "not_ready"), (picked, "not_ready"), (held, "not_ready"), (ready, "repeated")]
    errors = {r.tracking_id: r.error for r in result.rejected}
    assert "Delivered is final" in errors[delivered] and "Picked Up cannot go on a run sheet" in errors[picked]
    assert audit("runsheet_assigned")[0].details["rejected"] == {"unknown_id": 2, "final": 2, "not_ready": 3,
                                                                 "repeated": 1}
    again = assign("ravi", [out, book(*READY)])
    assert reasons(again) == {out: "already_on_runsheet"}


def test_capacity_counts_the_open_stops_and_refuses_the_ids_beyond_it(app_ctx):
    make_courier(capacity=3)
    ids = [book(*READY) for _ in range(5)]
    assign("ravi", ids[:2])
    result = assign("ravi", ids[2:])
    assert [s.tracking_id for s in result.runsheet.stops] == ids[:3]
    assert reasons(result) == {ids[3]: "over_capacity", ids[4]: "over_capacity"}
    assert "capacity of 3 parcels" in result.rejected[0].error
    record_status_change(ids[0], "Out for Delivery", "Kochi Hub", None, actor="op1")
    record_status_change(ids[0], "Delivered", "Kochi", None, actor="op1")  # a done stop no longer counts
    db.session.commit()
    assert reasons(assign("ravi", ids[3:])) == {ids[4]: "over_capacity"}


def test_when_no_id_can_go_on_nothing_is_written(app_ctx):
    make_courier()
    delivered = book(*READY, "Out for Delivery", "Delivered")
    with pytest.raises(NothingAssigned) as refused:
        assign_stops("ravi", [delivered, UNKNOWN], day=None, actor="op1", timezone=TZ)
    assert refused.value.status_code == 400 and set(refused.value.fields) == {"tracking_ids"}
    assert [r["reason"] for r in refused.value.to_dict()["rejected"]] == ["final", "unknown_id"]
    db.session.rollback()
    assert count(RunSheet) == 0 and audit("runsheet_assigned") == []


def test_a_past_day_is_refused_and_each_day_has_its_own_run_sheet(app_ctx):
    make_courier()
    tracking_id = book(*READY)
    today = local_today(TZ)
    with pytest.raises(ValidationError) as refused:
        assign_stops("ravi", [tracking_id], day=today - timedelta(days=1), actor="op1", timezone=TZ)
    assert set(refused.value.fields) == {"date"}
    tomorrow = assign("ravi", [tracking_id], day=today + timedelta(days=1))
    assert tomorrow.runsheet.date == today + timedelta(days=1)
    assert assign("ravi", [book(*READY)]).runsheet.id != tomorrow.runsheet.id


@pytest.mark.parametrize("username", ["nobody", "asha", "gone", ""])
def test_a_run_sheet_is_only_for_an_active_courier(app_ctx, username):
    create_user("asha", PASSWORD, "operator")
    make_courier("gone")
    update_user("gone", UserChanges(active=False), actor="chief")
    db.session.commit()
    with pytest.raises(ValidationError) as refused:
        assign_stops(username, [book(*READY)], day=None, actor="op1", timezone=TZ)
    assert set(refused.value.fields) == {"courier"}


def test_a_parcel_open_on_another_run_sheet_moves_and_the_audit_says_from_where(app_ctx):
    make_courier("ravi")
    make_courier("meena")
    tracking_id, other = book(*READY), book(*READY)
    first = assign("ravi", [other, tracking_id]).runsheet
    second = assign("meena", [tracking_id]).runsheet
    assert [s.tracking_id for s in second.stops] == [tracking_id]
    assert stop_states(tracking_id) == [(first.id, "moved", None), (second.id, "open", None)]
    assert [s.state for s in runsheet_view(first.id).stops] == ["open", "moved"]
    moved = audit("runsheet_stop_moved")
    assert [(m.target_type, m.target_id) for m in moved] == [("shipment", tracking_id)]
    assert moved[0].details == {"from_runsheet": first.id, "from_courier": "ravi", "to_runsheet": second.id,
                                "to_courier": "meena"}
    assert audit("runsheet_assigned")[-1].details["moved"] == [
        {"tracking_id": tracking_id, "from_runsheet": first.id, "from_courier": "ravi"}]
    # Moving back opens a new stop on the first sheet, after its others.
    back = assign("ravi", [tracking_id]).runsheet
    assert [(s.tracking_id, s.sequence, s.state) for s in back.stops] == [
        (other, 1, "open"), (tracking_id, 2, "moved"), (tracking_id, 3, "open")]


def test_the_unique_index_decides_when_another_run_sheet_took_the_parcel_meanwhile(app_ctx, monkeypatch):
    """The plan saw no open stop (it read before the other request wrote); the insert finds one: busy."""
    make_courier("ravi")
    make_courier("meena")
    tracking_id, free = book(*READY), book(*READY)
    first = assign("ravi", [tracking_id]).runsheet
    monkeypatch.setattr(runsheets, "_open_stops", lambda shipment_ids: {})
    result = assign("meena", [tracking_id, free])
    assert reasons(result) == {tracking_id: "busy"} and [s.tracking_id for s in result.runsheet.stops] == [free]
    assert stop_states(tracking_id) == [(first.id, "open", None)]


def test_a_stop_that_left_its_run_sheet_meanwhile_is_not_moved_twice(app_ctx, monkeypatch):
    """The plan saw the parcel open on one run sheet; by the write it had been moved elsewhere: busy."""
    make_courier("ravi")
    make_courier("meena")
    make_courier("asha")
    tracking_id = book(*READY)
    first = assign("ravi", [tracking_id]).runsheet
    stale = runsheets._open_stops(db.session.scalars(select(Shipment.id)).all())
    second = assign("meena", [tracking_id]).runsheet
    monkeypatch.setattr(runsheets, "_open_stops", lambda shipment_ids: stale)
    with pytest.raises(NothingAssigned) as refused:
        assign("asha", [tracking_id])
    assert refused.value.rejected[0].reason == "busy"
    db.session.rollback()
    assert stop_states(tracking_id) == [(first.id, "moved", None), (second.id, "open", None)]


def test_two_offices_giving_one_parcel_to_two_couriers_at_once_put_it_on_one_run_sheet(app):
    with app.app_context():
        make_courier("ravi")
        make_courier("meena")
        tracking_id = book(*READY)
        db.session.remove()
    outcomes, errors = {}, []
    first_wrote, second_started = threading.Event(), threading.Event()

    def run(courier: str, hold: bool) -> None:
        with app.app_context():
            try:
                if not hold:
                    first_wrote.wait(5)
                    second_started.set()
                try:
                    outcomes[courier] = reasons(assign_stops(courier, [tracking_id], day=None, actor=courier,
                                                             timezone=TZ)) or "added"
                except NothingAssigned as refused:
                    outcomes[courier] = refused.rejected[0].reason
                if hold:  # keep the new stop uncommitted until the other request is on its way
                    first_wrote.set()
                    second_started.wait(5)
                    threading.Event().wait(0.3)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions
                db.session.rollback()
                errors.append(exc)
                first_wrote.set()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=("ravi", True)), threading.Thread(target=run, args=("meena", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert outcomes == {"ravi": "added", "meena": "busy"}
    with app.app_context():
        assert [state for _, state, _ in stop_states(tracking_id)] == ["open"]


# --- the core closes stops -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("statuses, outcome", [
    (("Delivered",), "Delivered"),
    (("Delivery Attempted",), "Delivery Attempted"),
    (("On Hold",), "On Hold"),
])
def test_a_stop_closes_when_its_parcel_moves_past_it_whoever_records_it(app_ctx, statuses, outcome):
    make_courier()
    tracking_id = book(*READY)
    sheet = assign("ravi", [tracking_id]).runsheet
    dispatch_runsheet(sheet.id, actor="op1", timezone=TZ)
    for status in statuses:
        record_status_change(tracking_id, status, "Kochi", None, actor="someone")
    db.session.commit()
    assert stop_states(tracking_id) == [(sheet.id, "done", outcome)]
    assert db.session.scalar(select(RunSheetStop.closed_at)) is not None
    assert runsheet_view(sheet.id).open_stops() == []


def test_an_attempted_parcel_goes_on_again_as_a_new_stop(app_ctx):
    make_courier()
    tracking_id = book(*READY)
    sheet = assign("ravi", [tracking_id]).runsheet
    dispatch_runsheet(sheet.id, actor="op1", timezone=TZ)
    record_status_change(tracking_id, "Delivery Attempted", "Kochi", None, actor="ravi")
    db.session.commit()
    again = assign("ravi", [tracking_id]).runsheet
    assert [(s.sequence, s.state, s.outcome) for s in again.stops] == [(1, "done", "Delivery Attempted"),
                                                                        (2, "open", None)]


# --- handing out ---------------------------------------------------------------------------------------------------

def test_dispatch_sends_the_delivery_stops_out_in_one_call_with_the_courier_as_the_actor(app_ctx, monkeypatch):
    make_courier()
    transit, attempted = book(*READY), book(*READY, "Out for Delivery", "Delivery Attempted")
    out, pickup = book(*READY, "Out for Delivery"), book(pickup=True)
    sheet = assign("ravi", [transit, pickup, attempted, out]).runsheet
    calls = []
    core = runsheets.apply_status_changes
    monkeypatch.setattr(runsheets, "apply_status_changes", lambda *a, **kw: calls.append(a) or core(*a, **kw))
    result = dispatch_runsheet(sheet.id, actor="op1", timezone=TZ)
    db.session.commit()
    assert len(calls) == 1 and [c.tracking_id for c in calls[0][0]] == [transit, attempted]
    assert [(s.tracking_id, s.status, s.state) for s in result.runsheet.stops] == [
        (transit, "Out for Delivery", "open"), (pickup, "Booked", "open"), (attempted, "Out for Delivery", "open"),
        (out, "Out for Delivery", "open")]
    assert (result.runsheet.dispatched_by, result.rejected) == ("op1", [])
    events = db.session.execute(select(Shipment.tracking_id, TrackingEvent.actor, TrackingEvent.location)
                                .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
                                .where(TrackingEvent.status == "Out for Delivery", TrackingEvent.actor == "ravi")
                                ).all()
    assert sorted(events) == sorted([(transit, "ravi", "Kochi Hub"), (attempted, "ravi", "Kochi Hub")])
    row = audit("runsheet_dispatched")[0]
    assert (row.actor, row.target_id) == ("op1", str(sheet.id))
    assert row.details == {"courier": "ravi", "date": sheet.date.isoformat(),
                           "out_for_delivery": [transit, attempted], "refused": []}
    # The sheet's row audits the handing out once: no status_changed row of its own.
    assert [r.actor for r in audit("status_changed") if r.actor != "setup"] == []


def test_dispatching_again_moves_only_the_stops_not_yet_out(app_ctx):
    make_courier()
    first, later = book(*READY), book(*READY)
    sheet = assign("ravi", [first]).runsheet
    handed = dispatch_runsheet(sheet.id, actor="op1", timezone=TZ).runsheet
    db.session.commit()
    events = count(TrackingEvent)
    again = dispatch_runsheet(sheet.id, actor="meena", timezone=TZ).runsheet
    db.session.commit()
    assert count(TrackingEvent) == events
    assert (again.dispatched_at, again.dispatched_by) == (handed.dispatched_at, "op1")
    assign("ravi", [later])
    dispatch_runsheet(sheet.id, actor="op1", timezone=TZ)
    db.session.commit()
    assert count(TrackingEvent) == events + 1 and status_of(later) == "Out for Delivery"
    assert [r.details["out_for_delivery"] for r in audit("runsheet_dispatched")] == [[first], [], [later]]


def test_dispatch_refuses_an_empty_a_future_or_an_orphaned_run_sheet(app_ctx):
    make_courier()
    done = book(*READY)
    sheet = assign("ravi", [done]).runsheet
    for status in ("Out for Delivery", "Delivered"):
        record_status_change(done, status, "Kochi", None, actor="op1")
    db.session.commit()
    with pytest.raises(Conflict, match="no open stops"):
        dispatch_runsheet(sheet.id, actor="op1", timezone=TZ)
    later = assign("ravi", [book(*READY)], day=local_today(TZ) + timedelta(days=1)).runsheet
    with pytest.raises(Conflict, match="hand it out on that day"):
        dispatch_runsheet(later.id, actor="op1", timezone=TZ)
    with pytest.raises(NotFound):
        dispatch_runsheet(later.id + 100, actor="op1", timezone=TZ)
    today = assign("ravi", [book(*READY)]).runsheet
    update_user("ravi", UserChanges(active=False), actor="chief")
    with pytest.raises(Conflict, match="no longer an active courier"):
        dispatch_runsheet(today.id, actor="op1", timezone=TZ)


def test_the_list_counts_each_sheets_stops_by_state(app_ctx):
    make_courier("ravi")
    make_courier("meena")
    moved, done, open_one = book(*READY), book(*READY), book(*READY)
    assign("ravi", [moved, done, open_one])
    assign("meena", [moved])
    for status in ("Out for Delivery", "Delivered"):
        record_status_change(done, status, "Kochi", None, actor="op1")
    db.session.commit()
    sheets = list_runsheets(local_today(TZ))
    assert [(s.courier, s.stops_open, s.stops_done, s.stops_moved) for s in sheets] == [
        ("meena", 1, 0, 0), ("ravi", 1, 1, 1)]
    assert [s.courier for s in list_runsheets(local_today(TZ), " RAVI ")] == ["ravi"]
    assert list_runsheets(local_today(TZ) + timedelta(days=1)) == []


# --- JSON ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def operator(auth, app):
    with app.app_context():
        make_courier("ravi")
        make_courier("meena")
    auth.login("op1", role="operator")
    return auth


@pytest.fixture
def parcels(app):
    """Four parcels ready to go out, the first two cash on delivery."""
    def make(n: int = 4) -> list[str]:
        with app.app_context():
            return [book(*READY, cod="1250" if i < 2 else None, receiver=f"Receiver {i}") for i in range(n)]
    return make


def post_runsheet(client, auth, body, **headers):
    return client.post("/admin/runsheets", json=body, headers={**auth.headers(), **headers})


def test_post_makes_a_run_sheet_and_answers_201_with_it_and_the_refusals(client, operator, parcels, app):
    ids = parcels(2)
    response = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": [ids[1], UNKNOWN, ids[0]]})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"/admin/runsheets/{body['id']}"
    assert (body["courier"], body["date"], body["dispatched_at"]) == ("ravi", local_today(TZ).isoformat(), None)
    assert [(s["tracking_id"], s["sequence"], s["status"], s["state"]) for s in body["stops"]] == [
        (ids[1], 1, "In Transit", "open"), (ids[0], 2, "In Transit", "open")]
    assert body["stops"][0]["cod_amount"] == "1250.00" and body["stops"][0]["destination_pincode"] == "682016"
    assert body["rejected"] == [{"tracking_id": UNKNOWN, "reason": "unknown_id",
                                 "error": "No shipment has this tracking ID."}]
    tomorrow = (local_today(TZ) + timedelta(days=1)).isoformat()
    later = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": [ids[0]], "date": tomorrow})
    assert later.status_code == 201 and later.get_json()["date"] == tomorrow


def test_post_with_no_acceptable_id_is_400_with_the_refusals(client, operator, parcels, app):
    response = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": [UNKNOWN, UNKNOWN]})
    assert response.status_code == 400
    body = response.get_json()
    assert "tracking_ids" in body["fields"]
    assert [r["reason"] for r in body["rejected"]] == ["unknown_id", "repeated"]
    with app.app_context():
        assert count(RunSheet) == 0


@pytest.mark.parametrize("body, field", [
    ({"tracking_ids": ["X"]}, "courier"),
    ({"courier": "", "tracking_ids": ["X"]}, "courier"),
    ({"courier": 7, "tracking_ids": ["X"]}, "courier"),
    ({"courier": "nobody", "tracking_ids": ["READY"]}, "courier"),
    ({"courier": "op1", "tracking_ids": ["READY"]}, "courier"),
    ({"courier": "ravi"}, "tracking_ids"),
    ({"courier": "ravi", "tracking_ids": []}, "tracking_ids"),
    ({"courier": "ravi", "tracking_ids": "READY"}, "tracking_ids"),
    ({"courier": "ravi", "tracking_ids": [7]}, "tracking_ids"),
    ({"courier": "ravi", "tracking_ids": ["X"] * 1001}, "tracking_ids"),
    ({"courier": "ravi", "tracking_ids": ["READY"], "date": "tomorrow"}, "date"),
    ({"courier": "ravi", "tracking_ids": ["READY"], "date": "2020-01-01"}, "date"),
    ({"courier": "ravi", "tracking_ids": ["READY"], "stops": []}, "stops"),
])
def test_bad_bodies_are_400_with_fields_and_write_nothing(client, operator, parcels, app, body, field):
    ready = parcels(1)[0]
    if isinstance(body.get("tracking_ids"), list):
        body = {**body, "tracking_ids": [ready if i == "READY" else i for i in body["tracking_ids"]]}
    response = post_runsheet(client, operator, body)
    assert response.status_code == 400
    assert field in response.get_json()["fields"], response.get_json()
    with app.app_context():
        assert count(RunSheet) == 0 and count(RunSheetStop) == 0


def test_post_needs_json_or_a_form_and_the_csrf_token(client, operator, parcels, app):
    ready = parcels(1)[0]
    response = client.post("/admin/runsheets", json={"courier": "ravi", "tracking_ids": [ready]})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    response = client.post("/admin/runsheets", data="[1]", content_type="application/json",
                           headers=operator.headers())
    assert response.status_code == 400
    with app.app_context():
        assert count(RunSheet) == 0


def test_get_lists_a_days_run_sheets_filtered_by_courier(client, operator, parcels):
    ids = parcels(3)
    post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": ids[:2]})
    post_runsheet(client, operator, {"courier": "meena", "tracking_ids": ids[2:]})
    body = client.get("/admin/runsheets").get_json()
    assert body["date"] == local_today(TZ).isoformat()
    assert [(r["courier"], r["stops_open"], r["stops_done"], r["stops_moved"]) for r in body["runsheets"]] == [
        ("meena", 1, 0, 0), ("ravi", 2, 0, 0)]
    assert set(body["runsheets"][0]) == {"id", "courier", "date", "stops_open", "stops_done", "stops_moved",
                                         "created_at", "created_by", "dispatched_at", "dispatched_by"}
    assert [r["courier"] for r in client.get("/admin/runsheets?courier=Ravi").get_json()["runsheets"]] == ["ravi"]
    tomorrow = (local_today(TZ) + timedelta(days=1)).isoformat()
    assert client.get(f"/admin/runsheets?date={tomorrow}").get_json() == {"date": tomorrow, "runsheets": []}
    response = client.get("/admin/runsheets?date=someday")
    assert response.status_code == 400 and "date" in response.get_json()["fields"]


def test_get_one_run_sheet_as_json_and_as_a_page(client, operator, parcels):
    ids = parcels(3)
    sheet = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": ids}).get_json()
    body = client.get(f"/admin/runsheets/{sheet['id']}").get_json()
    assert [s["tracking_id"] for s in body["stops"]] == ids
    assert set(body["stops"][0]) == {"tracking_id", "sequence", "status", "state", "outcome", "kind",
                                     "receiver_name", "destination", "destination_pincode", "pieces", "payment",
                                     "cod_amount", "eta"}
    assert (body["stops"][0]["payment"], body["stops"][2]["cod_amount"]) == ("cod", None)
    page = client.get(f"/admin/runsheets/{sheet['id']}", headers=HTML).get_data(as_text=True)
    for text in (*ids, "Receiver 0", "12 MG Road, Ernakulam, Kochi", "682016", "Prepaid", "Hand out"):
        assert text in page, text
    assert client.get("/admin/runsheets/999").status_code == 404
    assert client.get("/admin/runsheets/999", headers=HTML).status_code == 404


def test_dispatch_answers_200_with_the_run_sheet_and_409_when_nothing_is_open(client, operator, parcels, app):
    ids = parcels(2)
    sheet = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": ids}).get_json()
    response = client.post(f"/admin/runsheets/{sheet['id']}/dispatch", headers=operator.headers())
    assert response.status_code == 200
    body = response.get_json()
    assert {s["status"] for s in body["stops"]} == {"Out for Delivery"} and body["rejected"] == []
    assert body["dispatched_at"].endswith("Z") and body["dispatched_by"] == "op1"
    again = client.post(f"/admin/runsheets/{sheet['id']}/dispatch", json={}, headers=operator.headers())
    assert again.status_code == 200 and again.get_json()["dispatched_at"] == body["dispatched_at"]
    with app.app_context():
        for tracking_id in ids:
            record_status_change(tracking_id, "Delivered", "Kochi", None, actor="ravi", received_by="Vikram")
        db.session.commit()
    response = client.post(f"/admin/runsheets/{sheet['id']}/dispatch", headers=operator.headers())
    assert response.status_code == 409 and "no open stops" in response.get_json()["error"]
    assert client.post("/admin/runsheets/999/dispatch", headers=operator.headers()).status_code == 404
    assert client.post(f"/admin/runsheets/{sheet['id']}/dispatch").status_code == 400  # no CSRF token


# --- the pages ----------------------------------------------------------------------------------------------------

def test_the_page_lists_the_day_and_its_form_makes_a_run_sheet_from_a_textarea(client, operator, parcels, app):
    ids = parcels(2)
    page = client.get("/admin/runsheets", headers=HTML).get_data(as_text=True)
    assert "No run sheets for this day." in page and '<option value="ravi">ravi</option>' in page
    response = client.post("/admin/runsheets", headers=HTML, data={
        "csrf_token": operator.csrf_token, "courier": "ravi", "tracking_ids": f"{ids[1]}\n{UNKNOWN}, {ids[0]}\n",
        "date": ""})
    assert response.status_code == 201
    page = response.get_data(as_text=True)
    assert page.index(ids[1]) < page.index(ids[0]) and "1 tracking ID refused" in page and UNKNOWN in page
    with app.app_context():
        assert [s.tracking_id for s in runsheet_view(db.session.scalar(select(RunSheet.id))).stops] == [ids[1],
                                                                                                       ids[0]]
    listing = client.get("/admin/runsheets", headers=HTML).get_data(as_text=True)
    assert "ravi" in listing and "not yet" in listing


def test_the_page_shows_a_refused_request_beside_the_form(client, operator, app):
    response = client.post("/admin/runsheets", headers=HTML, data={
        "csrf_token": operator.csrf_token, "courier": "ravi", "tracking_ids": UNKNOWN})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "No stops were added" in page and "1 tracking ID refused" in page
    response = client.post("/admin/runsheets", headers=HTML, data={
        "csrf_token": operator.csrf_token, "courier": "", "tracking_ids": ""})
    assert response.status_code == 400 and "Choose the courier." in response.get_data(as_text=True)
    with app.app_context():
        assert count(RunSheet) == 0


def test_the_pages_dispatch_button_hands_the_run_sheet_out(client, operator, parcels, app):
    ids = parcels(1)
    sheet = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": ids}).get_json()
    response = client.post(f"/admin/runsheets/{sheet['id']}/dispatch", headers=HTML,
                           data={"csrf_token": operator.csrf_token})
    assert response.status_code == 200 and "Handed out" in response.get_data(as_text=True)
    with app.app_context():
        assert status_of(ids[0]) == "Out for Delivery"
        for status in ("Delivered",):
            record_status_change(ids[0], status, "Kochi", None, actor="ravi", received_by="Vikram")
        db.session.commit()
    response = client.post(f"/admin/runsheets/{sheet['id']}/dispatch", headers=HTML,
                           data={"csrf_token": operator.csrf_token})
    assert response.status_code == 409 and "no open stops" in response.get_data(as_text=True)


# --- the PDF ------------------------------------------------------------------------------------------------------

PDF_STREAM = re.compile(rb"/Filter \[ /ASCII85Decode /FlateDecode \] /Length \d+\s*>>\s*stream\r?\n(.*?)~>", re.S)


def pdf_content(pdf: bytes) -> str:
    """The drawing operators of every page, as the PDF's content streams hold them (reportlab writes them
    Flate-compressed in ASCII85)."""
    return "\n".join(zlib.decompress(base64.a85decode(stream.strip(), adobe=False)).decode("latin-1")
                     for stream in PDF_STREAM.findall(pdf))


def test_the_pdf_prints_the_open_stops_for_a_courier_without_a_phone(client, operator, parcels, app, tmp_path):
    ids = parcels(3)
    with app.app_context():
        hindi = book(*READY, receiver="अनीता शर्मा")
        pickup = create_shipment(replace(NEW, sender_mobile="+919812345678", parcel=replace(
            NEW.parcel, pickup=True, sender_address="4 Temple Street, Madurai", sender_pincode="625001"))).tracking_id
        db.session.commit()
    sheet = post_runsheet(client, operator, {"courier": "ravi", "tracking_ids": [*ids, hindi, pickup]}).get_json()
    post_runsheet(client, operator, {"courier": "meena", "tracking_ids": [ids[2]]})  # moved away: not printed
    response = client.get(f"/admin/runsheets/{sheet['id']}.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    pdf = response.get_data()
    assert pdf.startswith(b"%PDF")
    content = pdf_content(pdf)
    for tracking_id in (ids[0], ids[1], hindi, pickup):
        assert f"({tracking_id}) Tj" in content, tracking_id
    assert f"({ids[2]}) Tj" not in content
    with app.app_context():
        row = audit("runsheet_printed")[0]
        assert (row.actor, row.target_id, row.details) == (
            "op1", str(sheet["id"]), {"courier": "ravi", "date": sheet["date"], "stops": 4})
    # Latin text is drawn as it is; a Hindi name shaped, with the text as typed alongside (its ActualText).
    for words in ("Courier: ravi", "Receiver 0", "12 MG Road, Ernakulam, Kochi", "682016", "+919876543210",
                  "INR 1250.00", "Prepaid", "Received by: name and signature", "(4 stops",
                  "Pick up: Asha Rao", "4 Temple Street, Madurai", "625001", "+919812345678",
                  "cash to collect INR 2500.00)", ("\ufeffअनीता शर्मा").encode("utf-16-be").hex().upper()):
        assert words in content, words
    if shutil.which("pdftotext") is not None:  # and as a reader finds it, where poppler-utils is installed
        (tmp_path / "sheet.pdf").write_bytes(pdf)
        text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "sheet.pdf"), "-"], check=True,
                              capture_output=True, text=True).stdout
        assert "अनीता शर्मा" in text and "Receiver 0" in text


def test_a_long_run_sheet_prints_on_several_pages(app_ctx):
    make_courier(capacity=60)
    ids = [book(*READY) for _ in range(40)]
    sheet = assign("ravi", ids).runsheet
    pdf = runsheets_pdf(sheet.id)
    assert len(re.findall(rb"/Type /Page\b", pdf)) >= 3
    content = pdf_content(pdf)
    assert all(f"({tracking_id}) Tj" in content for tracking_id in ids)
    assert "(Page 3) Tj" in content


def runsheets_pdf(runsheet_id: int) -> bytes:
    from app.services.field.runsheet_pdf import print_runsheet

    return print_runsheet(runsheet_id, actor="op1", timezone=TZ)[1]


# --- who may ------------------------------------------------------------------------------------------------------

RUNSHEET_ROUTES = [("GET", "/admin/runsheets"), ("GET", "/admin/runsheets/{id}"), ("GET", "/admin/runsheets/{id}.pdf"),
                   ("POST", "/admin/runsheets"), ("POST", "/admin/runsheets/{id}/dispatch")]


@pytest.mark.parametrize("role", ["courier", "viewer"])
def test_couriers_and_viewers_are_403_on_every_run_sheet_route(client, auth, app, role):
    with app.app_context():
        make_courier("ravi")
        sheet_id = assign("ravi", [book(*READY)]).runsheet.id
        if role == "courier":
            make_courier("meena")
    auth.login("meena", role=role, create=role != "courier")
    for method, url in RUNSHEET_ROUTES:
        url = url.format(id=sheet_id)
        for headers in ({}, HTML):
            response = client.open(url, method=method, headers={**auth.headers(), **headers},
                                   json={"courier": "ravi", "tracking_ids": ["X"]} if method == "POST" else None)
            assert response.status_code == 403, (method, url)
    with app.app_context():
        assert status_of(db.session.scalar(select(Shipment.tracking_id))) == "In Transit"
        assert count(RunSheet) == 1 and audit("runsheet_printed") == [] and audit("runsheet_dispatched") == []


def test_visitors_must_sign_in(client, app):
    for method, url in RUNSHEET_ROUTES:
        assert client.open(url.format(id=1), method=method, json={}).status_code == 401, url
