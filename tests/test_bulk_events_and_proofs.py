"""Many status changes in one call (POST /api/v1/events), and proof of delivery wherever staff record it in bulk:
the same bulk service as scan mode, each change its own unit, Delivered needing who received it and Delivery
Attempted a reason, on both databases."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, DeliveryProof, Notification, Shipment, TrackingEvent
from tests.api_support import bearer, book

PROBLEM = "application/problem+json"
TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")


@pytest.fixture
def key(issue_key) -> dict[str, str]:
    return bearer(issue_key("integrator", role="operator"))



def count(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def status_of(app, tracking_id: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Shipment.status).where(Shipment.tracking_id == tracking_id))


def proofs(app) -> list[tuple[str, str | None, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(Shipment.tracking_id, DeliveryProof.received_by, DeliveryProof.attempt_reason)
            .join(Shipment, Shipment.id == DeliveryProof.shipment_id).order_by(DeliveryProof.id)).all()
        return [tuple(row) for row in rows]


# --- POST /api/v1/events ------------------------------------------------------------------------------------------

def test_each_change_of_a_bulk_call_is_accepted_or_refused_on_its_own(app, client, key):
    fresh, at_door, attempted = book(app), book(app, *TO_THE_DOOR), book(app, *TO_THE_DOOR)
    other_door, booked = book(app, *TO_THE_DOOR), book(app)
    events_before = count(app, TrackingEvent)
    emails_before = count(app, Notification, Notification.channel == "email")
    response = client.post("/api/v1/events", headers=key, json={"changes": [
        {"tracking_id": fresh, "status": "Picked Up", "location": "Kochi Hub"},
        {"tracking_id": fresh.lower(), "status": "Picked Up", "location": "Kochi Hub"},
        {"tracking_id": "FFFFFFFF", "status": "Picked Up", "location": "Kochi Hub"},
        {"tracking_id": at_door, "status": "Delivered", "location": "Kochi", "received_by": "Ravi Kumar"},
        {"tracking_id": other_door, "status": "Delivered", "location": "Kochi"},
        {"tracking_id": attempted, "status": "Delivery Attempted", "location": "Kochi",
         "attempt_reason": "nobody_home"},
        {"tracking_id": booked, "status": "Delivered", "location": "Kochi", "received_by": "Ravi"},
    ]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["accepted"], body["refused"]) == (3, 4)
    results = body["results"]
    assert [result["ok"] for result in results] == [True, False, False, True, False, True, False]
    assert [result.get("reason") for result in results] == [
        None, "repeated_in_batch", "unknown_id", None, "proof_missing", None, "not_allowed"]
    assert "received_by" in results[4]["error"]
    assert results[6]["allowed"] == ["Picked Up", "Cancelled", "On Hold"]
    assert results[0]["status"] == "Picked Up" and results[3]["status"] == "Delivered"
    assert status_of(app, other_door) == "Out for Delivery"  # the refused proof wrote nothing
    assert count(app, TrackingEvent) - events_before == 3
    assert count(app, Notification, Notification.channel == "email") - emails_before == 3
    assert count(app, AuditEntry, AuditEntry.action == "status_changed", AuditEntry.actor == "integrator") == 3
    assert proofs(app) == [(at_door, "Ravi Kumar", None), (attempted, None, "nobody_home")]


def test_a_bulk_delivery_shows_the_receivers_first_name_on_the_public_page(app, client, key):
    tracking_id = book(app, *TO_THE_DOOR)
    response = client.post("/api/v1/events", headers=key, json={"changes": [
        {"tracking_id": tracking_id, "status": "Delivered", "location": "Kochi", "received_by": "Ravi Kumar"}]})
    assert response.get_json()["accepted"] == 1
    public = client.get(f"/track/{tracking_id}").get_json()
    assert public["delivery"]["received_by"] == "Ravi"
    assert "Kumar" not in client.get(f"/track/{tracking_id}").get_data(as_text=True)


@pytest.mark.parametrize("body, field", [
    ({"changes": []}, "changes"),
    ({"changes": [{"tracking_id": "ABCD1234", "status": "Picked Up", "location": "Hub"}] * 1001}, "changes"),
    ({"changes": [{"tracking_id": "ABCD1234", "status": "Lost", "location": "Hub"}]}, "changes"),
    ({"changes": [{"tracking_id": "ABCD1234", "status": "Picked Up"}]}, "changes"),
    ({"changes": "ABCD1234"}, "changes"),
    ({"changes": [], "extra": 1}, "extra"),
])
def test_a_bad_bulk_call_is_a_400_problem_and_writes_nothing(app, client, key, body, field):
    tracking_id = book(app)
    response = client.post("/api/v1/events", headers=key, json=body)
    assert response.status_code == 400 and response.mimetype == PROBLEM, response.get_data(as_text=True)[:300]
    assert any(name.split(".")[0].split("[")[0] == field for name in response.get_json()["errors"])
    assert status_of(app, tracking_id) == "Booked" and count(app, TrackingEvent) == 1


def test_a_viewers_key_may_not_record_changes(app, client, issue_key):
    tracking_id = book(app)
    viewer = bearer(issue_key("watcher", role="viewer"))
    response = client.post("/api/v1/events", headers=viewer, json={"changes": [
        {"tracking_id": tracking_id, "status": "Picked Up", "location": "Hub"}]})
    assert response.status_code == 403 and status_of(app, tracking_id) == "Booked"


# --- one change through the API -----------------------------------------------------------------------------------

def test_a_delivery_through_the_api_needs_who_received_it(app, client, key):
    tracking_id = book(app, *TO_THE_DOOR)
    refused = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                          json={"status": "Delivered", "location": "Kochi"})
    assert refused.status_code == 400 and "received_by" in refused.get_json()["errors"]
    assert status_of(app, tracking_id) == "Out for Delivery" and proofs(app) == []
    bad_reason = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                             json={"status": "Delivery Attempted", "location": "Kochi", "attempt_reason": "asleep"})
    assert bad_reason.status_code == 400 and "attempt_reason" in bad_reason.get_json()["errors"]
    accepted = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                           json={"status": "Delivered", "location": "Kochi", "received_by": "Meera"})
    assert accepted.status_code == 201, accepted.get_json()
    assert proofs(app) == [(tracking_id, "Meera", None)]


# --- scan mode ----------------------------------------------------------------------------------------------------

def test_scan_mode_delivers_a_batch_only_with_who_received_it(app, client, auth):
    first, second = book(app, *TO_THE_DOOR), book(app, *TO_THE_DOOR)
    auth.login()
    refused = client.post("/admin/scans", headers=auth.headers(), json={
        "status": "Delivered", "location": "Kochi", "tracking_ids": [first, second]})
    assert refused.status_code == 400 and "received_by" in refused.get_json()["fields"]
    assert {status_of(app, first), status_of(app, second)} == {"Out for Delivery"}
    no_reason = client.post("/admin/scans", headers=auth.headers(), json={
        "status": "Delivery Attempted", "location": "Kochi", "tracking_ids": [first]})
    assert no_reason.status_code == 400 and "attempt_reason" in no_reason.get_json()["fields"]
    accepted = client.post("/admin/scans", headers=auth.headers(), json={
        "status": "Delivered", "location": "Kochi", "received_by": "Front desk", "tracking_ids": [first, second]})
    assert accepted.status_code == 200 and accepted.get_json()["accepted"] == 2
    assert sorted(proofs(app)) == sorted([(first, "Front desk", None), (second, "Front desk", None)])


# --- one way in, whatever the door --------------------------------------------------------------------------------

NO_RECEIVER = "Enter the name of the person who received the parcel."
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def written(app) -> tuple[int, ...]:
    return tuple(count(app, model) for model in (TrackingEvent, DeliveryProof, Notification, AuditEntry))


def _staff_page_form(client, auth, tracking_id):
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML, content_type="multipart/form-data",
                           data={"csrf_token": auth.csrf_token, "status": "Delivered", "location": "Kochi",
                                 "received_by": "", "attempt_reason": "", "signature": ""})
    return response.status_code, response.get_data(as_text=True)


def _staff_page_json(client, auth, tracking_id):
    response = client.post(f"/admin/shipments/{tracking_id}", headers=auth.headers(),
                           json={"status": "Delivered", "location": "Kochi"})
    return response.status_code, response.get_json()["fields"]["received_by"]


def _scan_page_form(client, auth, tracking_id):
    response = client.post("/admin/scan", headers=HTML, data={
        "csrf_token": auth.csrf_token, "status": "Delivered", "location": "Kochi", "tracking_id": tracking_id})
    return response.status_code, response.get_data(as_text=True)


def _scan_json(client, auth, tracking_id):
    response = client.post("/admin/scans", headers=auth.headers(), json={
        "status": "Delivered", "location": "Kochi", "tracking_ids": [tracking_id]})
    return response.status_code, response.get_json()["fields"]["received_by"]


def _api_one(client, key, tracking_id):
    response = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                           json={"status": "Delivered", "location": "Kochi"})
    return response.status_code, response.get_json()["errors"]["received_by"]


def _api_bulk(client, key, tracking_id):
    response = client.post("/api/v1/events", headers=key, json={"changes": [
        {"tracking_id": tracking_id, "status": "Delivered", "location": "Kochi"}]})
    [result] = response.get_json()["results"]  # each change of a bulk call is refused on its own
    assert (result["ok"], result["reason"]) == (False, "proof_missing")
    return 400, result["error"]


@pytest.mark.parametrize("door", [_staff_page_form, _staff_page_json, _scan_page_form, _scan_json, _api_one,
                                  _api_bulk])
def test_a_delivery_without_who_received_it_is_refused_alike_through_every_door(app, client, auth, key, door):
    """Every door passes the proof as sent to the status-change core, which checks it: the same refusal, naming
    received_by, and nothing written (no event, proof, message or audit row)."""
    tracking_id = book(app, *TO_THE_DOOR)
    auth.login()
    before = written(app)
    status, said = door(client, key if door in (_api_one, _api_bulk) else auth, tracking_id)
    assert status == 400 and NO_RECEIVER in said
    assert written(app) == before and status_of(app, tracking_id) == "Out for Delivery"


def test_the_status_change_service_refuses_it_too_and_the_paper_route_records_it_as_not_given(app, client, auth):
    from app.errors import ValidationError
    from app.services.shipments.status_changes import record_status_change

    tracking_id = book(app, *TO_THE_DOOR)
    with app.app_context():
        with pytest.raises(ValidationError) as refused:
            record_status_change(tracking_id, "Delivered", "Kochi", None, actor="op1", proof_required=True)
        assert refused.value.fields == {"received_by": NO_RECEIVER}
        db.session.rollback()
    auth.login()
    response = client.post(f"/update/{tracking_id}", json={"status": "Delivered", "location": "Kochi"},
                           headers=auth.headers())
    assert response.status_code == 200
    assert proofs(app) == [(tracking_id, None, None)]
