"""Supervisors' overrides (POST /admin/runsheets/<id>/stops): a planned stop moved to another run sheet or
position with a reason, audited as `runsheet_overridden`, refused when it cannot be; and the weekly review
(GET /admin/dispatch/overrides). The moves are checked on both databases; HTTP details on SQLite only."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.domain.planning import iso_week
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, RunSheet, RunSheetOverride, RunSheetStop, Shipment
from app.services.field.runsheets import assign_stops
from app.services.shipments.status_changes import record_status_change
from tests.dispatch_support import TZ, at, local_today, make_courier, make_parcels, open_stops, runsheet_of

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def sheets(app):
    """ravi and meena's run sheets of today, three stops each (the second and third with ETAs); their ids and
    parcels."""
    with app.app_context():
        ravi, meena = make_courier("ravi", capacity=4), make_courier("meena")
        ravi_parcels, meena_parcels = make_parcels(3, None), make_parcels(3, None, first=3)
        assign_stops("ravi", ravi_parcels, day=None, actor="op1", timezone=TZ)
        assign_stops("meena", meena_parcels, day=None, actor="op1", timezone=TZ)
        db.session.execute(update(RunSheetStop).where(RunSheetStop.sequence > 1)
                           .values(eta=at(local_today(), 11)))
        db.session.commit()
        ids = (runsheet_of(ravi, local_today()).id, runsheet_of(meena, local_today()).id)
        db.session.remove()
    return {"ravi": ids[0], "meena": ids[1], "ravi_parcels": ravi_parcels, "meena_parcels": meena_parcels}


@pytest.fixture
def operator(client, auth):
    auth.login("operator1")
    return auth


def move(client, auth, runsheet_id, tracking_id, sequence, reason="Customer asked for the morning", **headers):
    body = {"tracking_id": tracking_id, "sequence": sequence, "reason": reason}
    return client.post(f"/admin/runsheets/{runsheet_id}/stops", json=body, headers={**auth.headers(), **headers})


def stops(app, runsheet_id):
    with app.app_context():
        return [(tracking_id, sequence) for tracking_id, sequence, _ in open_stops(runsheet_id)]


def rows(app, model, *conditions) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def audits(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "runsheet_overridden")))


def test_a_stop_moves_to_another_couriers_run_sheet_at_a_position(app, client, operator, sheets):
    moving = sheets["meena_parcels"][2]
    response = move(client, operator, sheets["ravi"], moving, 2)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["override"] == {
        "id": 1, "tracking_id": moving, "reason": "Customer asked for the morning", "actor": "operator1",
        "from": {"runsheet_id": sheets["meena"], "courier": "meena", "sequence": 3},
        "to": {"runsheet_id": sheets["ravi"], "courier": "ravi", "sequence": 2}, "at": body["override"]["at"]}
    first, second, third = sheets["ravi_parcels"]
    assert stops(app, sheets["ravi"]) == [(first, 1), (moving, 2), (second, 3), (third, 4)]
    assert [s["tracking_id"] for s in body["runsheet"]["stops"]] == [first, moving, second, third]
    assert stops(app, sheets["meena"]) == [(t, n) for n, t in enumerate(sheets["meena_parcels"][:2], start=1)]
    with app.app_context():
        moved = db.session.execute(select(RunSheetStop.state, RunSheetStop.runsheet_id, RunSheetStop.eta)
                                   .join(Shipment).where(Shipment.tracking_id == moving)
                                   .order_by(RunSheetStop.id)).all()
        assert [(state, sheet, eta is None) for state, sheet, eta in moved] == [
            ("moved", sheets["meena"], False), ("open", sheets["ravi"], True)]  # the plan's ETA no longer holds
        override = db.session.get(RunSheetOverride, 1)
        assert (override.from_runsheet_id, override.from_sequence, override.to_runsheet_id, override.to_sequence,
                override.actor) == (sheets["meena"], 3, sheets["ravi"], 2, "operator1")
    [row] = audits(app)
    assert (row.actor, row.target_type, row.target_id) == ("operator1", "shipment", moving)
    assert row.details == {"from_runsheet": sheets["meena"], "from_sequence": 3, "to_runsheet": sheets["ravi"],
                           "to_sequence": 2, "courier": "ravi", "reason": "Customer asked for the morning",
                           "override": 1}


def test_a_stop_moves_within_its_run_sheet_and_past_the_end_means_last(app, client, operator, sheets):
    first, second, third = sheets["ravi_parcels"]
    assert move(client, operator, sheets["ravi"], third.lower(), 1).status_code == 200
    assert stops(app, sheets["ravi"]) == [(third, 1), (first, 2), (second, 3)]
    assert move(client, operator, sheets["ravi"], third, 99).get_json()["override"]["to"]["sequence"] == 3
    assert stops(app, sheets["ravi"]) == [(first, 1), (second, 2), (third, 3)]
    [before, after] = audits(app)
    assert (before.details["from_runsheet"], before.details["from_sequence"], before.details["to_sequence"]) == (
        sheets["ravi"], 3, 1)
    assert (after.details["from_sequence"], after.details["to_sequence"]) == (1, 3)
    assert rows(app, RunSheetStop, RunSheetStop.state == "moved") == 0


def test_a_parcel_on_no_run_sheet_is_placed_from_nowhere(app, client, operator, sheets):
    with app.app_context():
        [loose] = make_parcels(1, None, first=7)
    body = move(client, operator, sheets["meena"], loose, 1).get_json()
    assert body["override"]["from"] == {"runsheet_id": None, "courier": None, "sequence": None}
    assert stops(app, sheets["meena"])[0] == (loose, 1)


@pytest.mark.parametrize(("body", "field"), [
    ({"sequence": 1, "reason": "Customer asked"}, "tracking_id"),
    ({"tracking_id": "X", "reason": "Customer asked"}, "sequence"),
    ({"tracking_id": "X", "sequence": 1}, "reason"),
    ({"tracking_id": "X", "sequence": 1, "reason": "  ok "}, "reason"),
    ({"tracking_id": "X", "sequence": 1, "reason": "x" * 201}, "reason"),
    ({"tracking_id": "X", "sequence": 0, "reason": "Customer asked"}, "sequence"),
    ({"tracking_id": "X", "sequence": "first", "reason": "Customer asked"}, "sequence"),
    ({"tracking_id": "X", "sequence": 1, "reason": ["Customer asked"]}, "reason"),
    ({"tracking_id": "X", "sequence": 1, "reason": "Customer asked", "courier": "ravi"}, "courier"),
])
@pytest.mark.one_database
def test_a_malformed_override_is_a_400_naming_the_field(app, client, operator, sheets, body, field):
    body = {**body, "tracking_id": sheets["meena_parcels"][0]} if "tracking_id" in body else body
    response = client.post(f"/admin/runsheets/{sheets['ravi']}/stops", json=body, headers=operator.headers())
    assert response.status_code == 400 and field in response.get_json()["fields"]
    assert rows(app, RunSheetOverride) == 0 and audits(app) == []


def test_overrides_that_cannot_be_are_refused_and_change_nothing(app, client, operator, sheets):
    ravi, meena = sheets["ravi"], sheets["meena"]
    with app.app_context():
        delivered = sheets["meena_parcels"][0]
        for status in ("Out for Delivery", "Delivered"):
            record_status_change(delivered, status, "Kochi", None, "op1", received_by="Vikram")
        past = RunSheet(courier_id=db.session.scalar(select(RunSheet.courier_id).where(RunSheet.id == ravi)),
                        date=local_today() - timedelta(days=1), created_by="op1")
        db.session.add(past)
        [extra] = make_parcels(1, None, first=8)
        assign_stops("ravi", [extra], day=None, actor="op1", timezone=TZ)  # ravi: 4 of 4
        db.session.commit()
        past_id = past.id
    before = (stops(app, ravi), stops(app, meena))
    for runsheet_id, tracking_id, status, field in [
        (9999, sheets["meena_parcels"][1], 404, None),
        (ravi, "0000ABCD", 404, "tracking_id"),
        (ravi, "not an id", 404, "tracking_id"),
        (meena, delivered, 422, "tracking_id"),
        (past_id, sheets["meena_parcels"][1], 422, "runsheet"),
        (ravi, sheets["meena_parcels"][1], 422, "runsheet"),  # over ravi's capacity of 4
    ]:
        response = move(client, operator, runsheet_id, tracking_id, 1)
        assert response.status_code == status, (runsheet_id, tracking_id, response.get_json())
        if field:
            assert field in response.get_json()["fields"]
    assert move(client, operator, ravi, extra, 1).status_code == 200  # a move within: no more stops
    assert [tracking_id for tracking_id, _ in stops(app, ravi)] == [extra] + [t for t, _ in before[0][:-1]]
    assert stops(app, meena) == before[1]
    assert rows(app, RunSheetOverride) == len(audits(app)) == 1


@pytest.mark.one_database
def test_a_courier_who_left_cannot_be_given_stops(app, client, operator, sheets):
    from app.services.staff.users import UserChanges, update_user

    with app.app_context():
        update_user("meena", UserChanges(active=False), actor="admin1")
        db.session.commit()
    response = move(client, operator, sheets["meena"], sheets["ravi_parcels"][0], 1)
    assert response.status_code == 422 and "no longer an active courier" in response.get_json()["fields"]["runsheet"]


@pytest.mark.one_database
def test_who_may_override(app, client, auth, make_user, sheets):
    assert move(client, auth, sheets["ravi"], sheets["meena_parcels"][0], 1).status_code == 401
    from tests.conftest import AuthActions

    for role in ("viewer", "courier"):
        other = AuthActions(app.test_client(), make_user)
        other.login(f"{role}1", role=role)
        assert move(other.client, other, sheets["ravi"], sheets["meena_parcels"][0], 1).status_code == 403
    operator = AuthActions(app.test_client(), make_user)
    operator.login("operator1")
    response = operator.client.post(f"/admin/runsheets/{sheets['ravi']}/stops", json={
        "tracking_id": sheets["meena_parcels"][0], "sequence": 1, "reason": "Customer asked"})  # no CSRF token
    assert response.status_code == 400
    assert rows(app, RunSheetOverride) == 0


@pytest.mark.one_database
def test_the_run_sheet_page_moves_a_stop_and_shows_a_refusal(app, client, operator, sheets):
    moving = sheets["meena_parcels"][0]
    page = client.get(f"/admin/runsheets/{sheets['ravi']}", headers=HTML).get_data(as_text=True)
    assert "Move a stop here" in page and 'name="reason"' in page
    response = client.post(f"/admin/runsheets/{sheets['ravi']}/stops", headers=HTML, data={
        "tracking_id": moving, "sequence": "1", "reason": "Closer to the first stop",
        "csrf_token": operator.csrf_token})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/admin/runsheets/{sheets['ravi']}")
    assert stops(app, sheets["ravi"])[0] == (moving, 1)
    refused = client.post(f"/admin/runsheets/{sheets['ravi']}/stops", headers=HTML, data={
        "tracking_id": sheets["meena_parcels"][1], "sequence": "1", "reason": "",
        "csrf_token": operator.csrf_token})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "The stop was not moved" in text and "Say why the plan is changed." in text
    assert sheets["meena_parcels"][1] in text  # what was typed is kept


# --- the weekly review ---------------------------------------------------------------------------------------------

def test_the_weeks_overrides_are_listed_for_review(app, client, operator, sheets):
    move(client, operator, sheets["ravi"], sheets["meena_parcels"][0], 1)
    move(client, operator, sheets["meena"], sheets["ravi_parcels"][2], 1, reason="Meena knows the street")
    with app.app_context():  # one from a fortnight ago
        db.session.execute(update(RunSheetOverride).where(RunSheetOverride.id == 1)
                           .values(at=utcnow() - timedelta(days=14)))
        db.session.commit()
    body = client.get("/admin/dispatch/overrides").get_json()
    assert body["week"] == iso_week(local_today())
    assert [(o["tracking_id"], o["reason"], o["to"]["courier"]) for o in body["overrides"]] == [
        (sheets["ravi_parcels"][2], "Meena knows the street", "meena")]
    earlier = client.get(f"/admin/dispatch/overrides?week={iso_week(local_today() - timedelta(days=14))}")
    assert [o["id"] for o in earlier.get_json()["overrides"]] == [1]
    assert client.get("/admin/dispatch/overrides?week=2020-W01").get_json()["overrides"] == []


@pytest.mark.one_database
@pytest.mark.parametrize("week", ["2026-49", "2026-W54", "W49", "2026-W4x"])
def test_a_bad_week_is_a_400(app, client, operator, week):
    response = client.get(f"/admin/dispatch/overrides?week={week}")
    assert response.status_code == 400 and "week" in response.get_json()["fields"]


@pytest.mark.one_database
def test_the_review_page_lists_the_overrides_with_their_reasons(app, client, operator, sheets):
    move(client, operator, sheets["ravi"], sheets["meena_parcels"][0], 1)
    page = client.get("/admin/dispatch/overrides", headers=HTML).get_data(as_text=True)
    for text in (sheets["meena_parcels"][0], "Customer asked for the morning", "operator1", "meena", "ravi",
                 "Week before"):
        assert text in page, text
    empty = client.get("/admin/dispatch/overrides?week=2020-W01", headers=HTML).get_data(as_text=True)
    assert "No overrides this week." in empty
