"""Scan mode: the bulk status service, its JSON call and its page (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, Notification, Shipment, TrackingEvent
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.scans import MAX_SCANS, ScanBatch, record_scans
from app.services.shipments.status_changes import record_status_change
from tests.test_tracking_cache import cached_app, document, wait_until  # noqa: F401 - cached_app is a fixture

NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "Kochi")
HTML = {"Accept": "text/html"}


def book(*statuses: str, location: str = "Hub") -> str:
    tid = create_shipment(NEW, actor="setup").tracking_id
    for status in statuses:
        record_status_change(tid, status, location, None, actor="setup")
    db.session.commit()
    return tid


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def written() -> tuple[int, int, int]:
    """Events, queued emails and the audit rows of status changes (per change, or per scan batch)."""
    return (count(TrackingEvent), count(Notification),
            count(AuditEntry, AuditEntry.action.in_(("status_changed", "scan_batch"))))


# --- the service ------------------------------------------------------------------------------------------------

def test_each_scan_gets_its_own_result_and_refusals_stop_nothing(app_ctx):
    booked, picked, held = book(), book("Picked Up"), book("Picked Up", "In Transit", "On Hold")
    done = book("Picked Up", "In Transit", "Out for Delivery", "Delivered")
    before = written()
    report = record_scans(ScanBatch("In Transit", "Kochi Hub", [booked, f" {picked.lower()} ", "FFFFFFFF",
                                                                   held, done, "not-an-id"]), actor="op1")
    db.session.commit()
    outcomes = report.outcomes
    assert [o.ok for o in outcomes] == [False, True, False, True, False, False]
    assert (report.accepted, report.refused) == (2, 4)
    assert outcomes[0].refusal == "not_allowed" and outcomes[0].status == "Booked"
    assert "allowed next: Picked Up, Cancelled, On Hold" in outcomes[0].error
    assert outcomes[1].tracking_id == picked and outcomes[1].status == "In Transit"
    assert outcomes[2].refusal == "unknown_id" and "Unknown ID" in outcomes[2].error
    assert outcomes[3].status == "In Transit"  # On Hold goes back to what it was held from
    assert outcomes[4].refusal == "not_allowed" and "final" in outcomes[4].error
    assert outcomes[5].refusal == "unknown_id" and outcomes[5].tracking_id == "not-an-id"
    events, emails, audits = written()
    assert (events - before[0], emails - before[1], audits - before[2]) == (2, 2, 1)  # one audit row per batch
    statuses = dict(db.session.execute(select(Shipment.tracking_id, Shipment.status)).all())
    assert statuses == {booked: "Booked", picked: "In Transit", held: "In Transit", done: "Delivered"}


def test_an_accepted_scan_writes_what_a_single_update_writes(app_ctx):
    tid = book()
    record_scans(ScanBatch("picked up", "Kochi Hub", [tid], note="Shelf 4"), actor="op1")
    db.session.commit()
    shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tid)).one()
    event = db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.id.desc())).first()
    assert (shipment.status, event.status, event.location, event.note, event.actor) == \
        ("Picked Up", "Picked Up", "Kochi Hub", "Shelf 4", "op1")
    assert shipment.updated_at == event.occurred_at
    email = db.session.scalars(select(Notification).where(Notification.event_id == event.id)).one()
    assert (email.recipient, email.subject, email.state, email.attempts) == \
        ("vikram@example.com", f"Shipment {tid}: Picked Up", "pending", 0)
    assert email.next_attempt_at == event.occurred_at
    batch = db.session.scalars(select(AuditEntry)).one()  # scan mode audits the batch, never each scan
    assert (batch.action, batch.actor, batch.target_type) == ("scan_batch", "op1", "shipments")
    assert batch.details == {"status": "Picked Up", "location": "Kochi Hub", "scanned": 1, "accepted": 1,
                             "refused": 0, "changed": [tid]}


def test_the_same_id_twice_in_a_batch_is_one_change_and_one_refusal(app_ctx):
    tid = book("Picked Up", "In Transit")
    before = written()
    report = record_scans(ScanBatch("In Transit", "Delhi Hub", [tid, tid.lower()]), actor="op1")
    db.session.commit()
    assert [o.ok for o in report.outcomes] == [True, False]
    assert report.outcomes[1].refusal == "repeated_in_batch"
    assert tuple(after - b for after, b in zip(written(), before, strict=True)) == (1, 1, 1)


def test_already_in_that_status_at_that_location_is_refused(app_ctx):
    moving = book("Picked Up", "In Transit", location="Kochi Hub")
    report = record_scans(ScanBatch("In Transit", "  kochi   HUB ", [moving]), actor="op1")
    assert report.outcomes[0].refusal == "already_there"
    assert report.outcomes[0].error == "Already In Transit at Kochi Hub."
    # At another hub the same status is a new step.
    assert record_scans(ScanBatch("In Transit", "Delhi Hub", [moving]), actor="op1").outcomes[0].ok
    picked = book("Picked Up", location="Kochi Hub")
    assert record_scans(ScanBatch("Picked Up", "Kochi Hub", [picked]), actor="op1").outcomes[0].refusal \
        == "already_there"


@pytest.mark.parametrize("batch, field", [
    (ScanBatch("Teleported", "Hub", ["ABCD1234"]), "status"),
    (ScanBatch("In Transit", "", ["ABCD1234"]), "location"),
    (ScanBatch("In Transit", "Hub", []), "tracking_ids"),
    (ScanBatch("In Transit", "Hub", ["ABCD1234"] * (MAX_SCANS + 1)), "tracking_ids"),
])
def test_a_batch_the_service_cannot_take_is_a_validation_error(app_ctx, batch, field):
    with pytest.raises(ValidationError) as info:
        record_scans(batch, actor="op1")
    assert field in info.value.fields


def test_a_full_batch_of_a_thousand(app_ctx):
    tids = [create_shipment(NEW).tracking_id for _ in range(MAX_SCANS)]
    db.session.commit()
    report = record_scans(ScanBatch("Picked Up", "Kochi Hub", tids), actor="op1")
    db.session.commit()
    assert report.accepted == MAX_SCANS
    assert count(Shipment, Shipment.status == "Picked Up") == MAX_SCANS
    assert written() == (2 * MAX_SCANS, 2 * MAX_SCANS, 1)


def test_a_rolled_back_batch_leaves_nothing(app_ctx):
    tid = book()
    before = written()
    record_scans(ScanBatch("Picked Up", "Hub", [tid]), actor="op1")
    db.session.rollback()
    assert written() == before
    assert db.session.scalar(select(Shipment.status)) == "Booked"
    assert count(AuditEntry, AuditEntry.action == "scan_batch") == 0


def test_two_hubs_scanning_the_same_parcels_at_once_record_each_change_once(app):
    with app.app_context():
        tids = [create_shipment(NEW).tracking_id for _ in range(30)]
        db.session.commit()
        db.session.remove()
    reports, errors = {}, []
    first_has_rows, second_started = threading.Event(), threading.Event()

    def run(name: str, location: str, hold: bool) -> None:
        with app.app_context():
            try:
                if not hold:
                    first_has_rows.wait(5)
                    second_started.set()
                reports[name] = record_scans(ScanBatch("Picked Up", location, tids), actor=name)
                if hold:  # keep the rows locked until the other batch is waiting on them
                    first_has_rows.set()
                    second_started.wait(5)
                    threading.Event().wait(0.3)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions
                db.session.rollback()
                errors.append(exc)
                first_has_rows.set()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=("first", "Hub A", True)),
               threading.Thread(target=run, args=("second", "Hub B", False))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert reports["first"].accepted == 30 and reports["second"].accepted == 0
    assert {o.refusal for o in reports["second"].outcomes} == {"not_allowed"}  # checked again: now Picked Up
    with app.app_context():
        assert count(TrackingEvent, TrackingEvent.status == "Picked Up") == 30
        assert count(Notification) == 60 and count(AuditEntry, AuditEntry.action == "status_changed") == 0
        batches = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "scan_batch")).all()
        assert sorted(len(batch.details["changed"]) for batch in batches) == [0, 30]
        assert {e.location for e in db.session.scalars(select(TrackingEvent).where(
            TrackingEvent.status == "Picked Up"))} == {"Hub A"}


def test_a_batch_tells_every_process_which_shipments_changed(cached_app, create_shipment):  # noqa: F811
    reader, writer = cached_app(), cached_app()  # two apps: two caches and listeners, like two processes
    tids = [create_shipment() for _ in range(3)]
    cache = reader.extensions["waybill_tracking_cache"]
    for tid in tids:
        assert document(reader, tid)["status"] == "Booked" and cache.get(tid) is not None
    with writer.app_context():
        record_scans(ScanBatch("Picked Up", "Kochi Hub", [*tids, "FFFFFFFF"]), actor="op1")
        db.session.commit()
        db.session.remove()
    assert wait_until(lambda: all(cache.get(tid) is None for tid in tids)), "the reader was not told"
    assert {document(reader, tid)["status"] for tid in tids} == {"Picked Up"}


# --- the JSON call ----------------------------------------------------------------------------------------------

@pytest.fixture
def operator(auth):
    auth.login()
    return auth


def scan(client, auth, body, **headers):
    return client.post("/admin/scans", json=body, headers={**auth.headers(), **headers})


def test_the_json_call_answers_per_id(client, operator, create_shipment, app):
    booked, other = create_shipment(), create_shipment()
    response = scan(client, operator, {"status": "Picked Up", "location": "Kochi Hub", "note": "Dock 2",
                                       "tracking_ids": [booked, "FFFFFFFF", other, booked]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["accepted"], body["refused"]) == (2, 2)
    assert body["results"][0] == {"tracking_id": booked, "ok": True, "status": "Picked Up"}
    assert body["results"][1]["ok"] is False and body["results"][1]["reason"] == "unknown_id"
    assert "status" not in body["results"][1] and body["results"][1]["error"]
    assert body["results"][3]["reason"] == "repeated_in_batch" and body["results"][3]["status"] == "Picked Up"
    with app.app_context():
        assert written() == (4, 4, 1)
        assert {e.actor for e in db.session.scalars(select(TrackingEvent).where(
            TrackingEvent.status == "Picked Up"))} == {"operator1"}


def test_proof_fields_are_accepted_and_length_checked(client, operator, create_shipment, app):
    tid = create_shipment()
    ok = scan(client, operator, {"status": "Picked Up", "location": "Hub", "received_by": "Meera",
                                 "attempt_reason": "Door locked", "tracking_ids": [tid]})
    assert ok.status_code == 200 and ok.get_json()["accepted"] == 1
    long = scan(client, operator, {"status": "Picked Up", "location": "Hub", "received_by": "x" * 101,
                                   "attempt_reason": "y" * 201, "tracking_ids": [tid]})
    assert long.status_code == 400 and {"received_by", "attempt_reason"} <= set(long.get_json()["fields"])


BAD_BODIES = [
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": ["ABCD1234"] * 1001}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": []}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": "ABCD1234"}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": [1, 2]}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": ["ABCD1234", ""]}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": ["A" * 65]}, "tracking_ids"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": ["AB\nCD"]}, "tracking_ids"),
    ({"status": "Teleported", "location": "Hub", "tracking_ids": ["ABCD1234"]}, "status"),
    ({"status": "Booked", "location": "Hub", "tracking_ids": ["ABCD1234"]}, "status"),
    ({"status": 3, "location": "Hub", "tracking_ids": ["ABCD1234"]}, "status"),
    ({"location": "Hub", "tracking_ids": ["ABCD1234"]}, "status"),
    ({"status": "Picked Up", "tracking_ids": ["ABCD1234"]}, "location"),
    ({"status": "Picked Up", "location": "H" * 121, "tracking_ids": ["ABCD1234"]}, "location"),
    ({"status": "Picked Up", "location": "Hub", "note": "n" * 501, "tracking_ids": ["ABCD1234"]}, "note"),
    ({"status": "Picked Up", "location": "Hub\x00", "tracking_ids": ["ABCD1234"]}, "location"),
    ({"status": "Picked Up", "location": "Hub", "tracking_ids": ["ABCD1234"], "colour": "red"}, "colour"),
    ([], None),
    ("ABCD1234", None),
]


@pytest.mark.parametrize("body, field", BAD_BODIES)
def test_bad_bodies_are_400_and_write_nothing(client, operator, create_shipment, app, body, field):
    tid = create_shipment()
    if isinstance(body, dict) and body.get("tracking_ids") == ["ABCD1234"]:
        body = {**body, "tracking_ids": [tid]}
    response = scan(client, operator, body)
    assert response.status_code == 400, response.get_json()
    answer = response.get_json()
    assert answer["error"]
    if field:
        assert field in answer["fields"], answer
    with app.app_context():
        assert written() == (1, 1, 0)
        assert count(AuditEntry, AuditEntry.action == "scan_batch") == 0


def test_not_json_and_not_an_object_are_400(client, operator):
    for data, content_type in ((b"{", "application/json"), (b"status=x", "application/x-www-form-urlencoded")):
        response = client.post("/admin/scans", data=data, content_type=content_type, headers=operator.headers())
        assert response.status_code == 400 and "error" in response.get_json()


def test_viewers_are_refused_and_visitors_must_log_in(client, auth, create_shipment, app):
    tid = create_shipment()
    body = {"status": "Picked Up", "location": "Hub", "tracking_ids": [tid]}
    assert client.post("/admin/scans", json=body).status_code == 401
    auth.login("support1", role="viewer")
    assert scan(client, auth, body).status_code == 403
    assert client.get("/admin/scan", headers=HTML).status_code == 403
    form = {"csrf_token": auth.csrf_token, "status": "Picked Up", "location": "Hub", "tracking_id": tid}
    assert client.post("/admin/scan", data=form).status_code == 403
    with app.app_context():
        assert written() == (1, 1, 0)
    auth.logout()
    auth.login("boss", role="admin")
    assert scan(client, auth, body).get_json()["accepted"] == 1


def test_the_json_call_needs_the_csrf_token(client, operator, create_shipment, app):
    tid = create_shipment()
    response = client.post("/admin/scans", json={"status": "Picked Up", "location": "Hub", "tracking_ids": [tid]})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    with app.app_context():
        assert written() == (1, 1, 0)


# --- the page, without JavaScript ---------------------------------------------------------------------------------

def test_the_page_records_one_id_per_post_and_keeps_the_settings_and_count(client, operator, create_shipment, app):
    first, second, third = create_shipment(), create_shipment(), create_shipment()
    page = client.get("/admin/scan", headers=HTML)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'action="/admin/scan"' in html and 'name="tracking_id"' in html and 'name="tracking_ids"' in html
    assert re.search(r"/static/js/scan\.[0-9a-f]{12}\.js", html)
    assert '<a href="/admin/scan" aria-current="page">Scan</a>' in html
    form = {"csrf_token": operator.csrf_token, "status": "Picked Up", "location": "Kochi Hub",
            "tracking_id": first.lower()}
    answer = client.post("/admin/scan", data=form, headers=HTML)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert f"Accepted {first}: Picked Up" in html
    assert 'value="Kochi Hub"' in html and '<option selected value="Picked Up">' in html
    assert re.search(r'name="accepted_so_far" type="hidden" value="1"', html)
    again = client.post("/admin/scan", headers=HTML, data={
        **form, "tracking_id": first, "tracking_ids": f"{second}\n\nFFFFFFFF, {third}\n",
        "accepted_so_far": "1", "refused_so_far": "0"})
    html = again.get_data(as_text=True)
    assert again.status_code == 200
    assert re.search(r'name="accepted_so_far" type="hidden" value="3"', html)
    assert re.search(r'name="refused_so_far" type="hidden" value="2"', html)
    assert "Already Picked Up at Kochi Hub." in html and "Unknown ID" in html
    with app.app_context():
        assert count(Shipment, Shipment.status == "Picked Up") == 3


def test_the_page_shows_problems_beside_the_fields(client, operator, app):
    response = client.post("/admin/scan", headers=HTML, data={"csrf_token": operator.csrf_token, "status": "",
                                                               "location": "", "tracking_id": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose a status." in html and "Enter the location." in html and "Scan or type at least one" in html
    with app.app_context():
        assert count(AuditEntry, AuditEntry.action == "scan_batch") == 0


def test_the_form_needs_its_csrf_token(client, operator, create_shipment, app):
    tid = create_shipment()
    response = client.post("/admin/scan", headers=HTML,
                           data={"status": "Picked Up", "location": "Hub", "tracking_id": tid})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    with app.app_context():
        assert written() == (1, 1, 0)


def test_the_menu_offers_scan_mode_to_those_who_may_change_shipments(client, auth):
    auth.login("support1", role="viewer")
    assert 'href="/admin/scan"' not in client.get("/admin", headers=HTML).get_data(as_text=True)
    auth.logout()
    auth.login("ravi", role="operator")
    assert 'href="/admin/scan"' in client.get("/admin", headers=HTML).get_data(as_text=True)
