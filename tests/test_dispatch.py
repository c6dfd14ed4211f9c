"""Dispatch runs: asking for one (POST /admin/dispatch), the job runner planning it on a small fixed zone (capacity,
windows, shift ends, the parcels left out and why, the savings baseline), the run sheets it writes, a run that
fails, and the pages. The service and plan tests run on both databases; HTTP, roles and pages on SQLite only."""
from __future__ import annotations

from collections import Counter
from datetime import time, timedelta

import pytest
from sqlalchemy import func, select

from app.domain.timeutil import parse_iso_z, utcnow
from app.extensions import db
from app.models import AuditEntry, DispatchRun, RunSheet, RunSheetStop, Shipment
from app.services.field.runsheets import assign_stops
from app.services.planning.dispatch import request_dispatch
from app.services.planning.dispatch_runs import run_view
from tests.conftest import AuthActions
from tests.dispatch_support import (
    HUB,
    SERVICE,
    TZ,
    at,
    local_today,
    make_courier,
    make_parcels,
    make_zone,
    open_stops,
    point,
    run_jobs,
    runsheet_of,
    tomorrow,
    travel_seconds,
)

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.fixture
def dispatch_app(app):
    # The job on, the schedule off (the wall clock may be near a slot): runs are asked for.
    app.config.update(DISPATCH_POLL_SECONDS=60, DISPATCH_TIMES="")  # put back by the app fixture
    return app


@pytest.fixture
def ctx(dispatch_app):
    with dispatch_app.app_context():
        yield dispatch_app
        db.session.remove()


def ask(zone="Ernakulam", day=None, couriers=None, actor="operator1") -> int:
    run = request_dispatch(zone, day, couriers, actor=actor, timezone=TZ, now=utcnow())
    db.session.commit()
    return run.id


def plan(app, run_id: int, now=None, **job) -> dict:
    """Let a job runner plan the queued runs; the run's result."""
    runs = run_jobs(app, now, **job)
    assert [run.outcome for run in runs] == ["done"], runs
    db.session.expire_all()
    view = run_view(run_id)
    assert view.state == "done", view.error
    return view.result


def reasons(result: dict) -> dict[str, str]:
    return {item["tracking_id"]: item["reason"] for item in result["unassigned"]}


def audit(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


# --- the plan on a small fixed zone --------------------------------------------------------------------------------

def test_a_run_plans_the_zone_within_capacity_windows_and_shifts(ctx):
    """A hub and 12 parcels within 2.5 km; two couriers of capacity 5 on 09:00-18:00 shifts. One parcel's window
    (06:00-07:00) closes before any shift opens; two have windows the plan must keep; the eleven others that can
    be served are one too many for the couriers."""
    day = tomorrow()
    zone_id = make_zone()
    ravi, meena = make_courier("ravi"), make_courier("meena")
    windows = {0: (at(day, 6), at(day, 7)), 1: (at(day, 10), at(day, 10, 30)), 2: (at(day, 9, 30), at(day, 11))}
    parcels = make_parcels(12, zone_id, windows=windows)
    run_id = ask(day=day)

    result = plan(ctx, run_id)

    left_out = reasons(result)
    planned = [stop["tracking_id"] for manifest in result["manifests"] for stop in manifest["stops"]]
    assert sorted(planned + list(left_out)) == sorted(parcels) and len(set(planned)) == len(planned)
    assert left_out[parcels[0]] == "window"
    assert Counter(left_out.values()) == {"window": 1, "capacity": 1}
    assert {manifest["courier"] for manifest in result["manifests"]} == {"ravi", "meena"}
    place = {tracking_id: point(n) for n, tracking_id in enumerate(parcels)}
    for manifest in result["manifests"]:
        stops = manifest["stops"]
        assert len(stops) <= 5  # capacity
        etas = [parse_iso_z(stop["eta"]) for stop in stops]
        assert etas[0] >= at(day, 9) + timedelta(seconds=travel_seconds(HUB, place[stops[0]["tracking_id"]]))
        for before, after, eta_before, eta_after in zip(stops, stops[1:], etas, etas[1:], strict=False):
            leg = travel_seconds(place[before["tracking_id"]], place[after["tracking_id"]])
            assert eta_after >= eta_before + timedelta(seconds=SERVICE + leg)
        back = etas[-1] + timedelta(seconds=SERVICE + travel_seconds(place[stops[-1]["tracking_id"]], HUB))
        assert back <= at(day, 18)  # shift end
        assert manifest["distance_km"] > 0 and manifest["duration_min"] > 0
        # Written: the courier's run sheet holds the stops in the planned order, each with its ETA.
        sheet = db.session.get(RunSheet, manifest["runsheet_id"])
        courier = ravi if manifest["courier"] == "ravi" else meena
        assert (sheet.date, sheet.dispatch_run_id, sheet.courier_id) == (day, run_id, courier)
        assert open_stops(sheet.id) == [(stop["tracking_id"], stop["sequence"], eta)
                                        for stop, eta in zip(stops, etas, strict=True)]
        assert [stop["sequence"] for stop in stops] == list(range(1, len(stops) + 1))
    eta_of = {stop["tracking_id"]: parse_iso_z(stop["eta"]) for m in result["manifests"] for stop in m["stops"]}
    for index in (1, 2):  # the windows that can be kept are kept
        if parcels[index] in eta_of:
            assert windows[index][0] <= eta_of[parcels[index]] <= windows[index][1]
    assert parcels[1] in eta_of and parcels[2] in eta_of
    assert result["savings_baseline_km"] > 0 and result["savings_baseline_unassigned"] >= len(left_out)
    assert result["travel"] == "haversine" and result["couriers_skipped"] == []
    run = db.session.get(DispatchRun, run_id)
    assert run.solver and run.seconds >= 0 and run.attempts == 1 and run.lease_until is None
    # Audited: the request, and each run sheet as the run sheet service audits it, by whoever asked.
    [asked] = audit("dispatch_requested")
    assert (asked.actor, asked.target_type, asked.target_id) == ("operator1", "dispatch_run", str(run_id))
    assert asked.details == {"zone": "Ernakulam", "zone_id": zone_id, "date": day.isoformat(), "couriers": None}
    assert {(row.actor, row.details["courier"]) for row in audit("runsheet_assigned")} == {
        ("operator1", "ravi"), ("operator1", "meena")}


def test_the_savings_baseline_plans_the_same_parcels_and_the_solver_drives_no_further(ctx):
    """Room for every parcel (no windows, 8 parcels for two couriers of 5): both plans serve them all, so their
    distances compare, and the solver's is not longer."""
    zone_id = make_zone()
    make_courier("ravi"), make_courier("meena")
    make_parcels(8, zone_id)
    result = plan(ctx, ask(day=tomorrow()))
    assert result["unassigned"] == [] and result["savings_baseline_unassigned"] == 0
    assert result["savings_baseline_km"] >= result["distance_km"] > 0


def test_a_shift_end_leaves_out_what_does_not_fit_in_it(ctx):
    day = tomorrow()
    zone_id = make_zone()
    make_courier("ravi", capacity=10, start=time(9), end=time(9, 25))
    parcels = make_parcels(6, zone_id)
    result = plan(ctx, ask(day=day))
    [manifest] = result["manifests"]
    assert 0 < len(manifest["stops"]) < 6
    assert set(reasons(result).values()) == {"capacity"}  # each fits alone: the hours ran out
    last = manifest["stops"][-1]
    back = parse_iso_z(last["eta"]) + timedelta(
        seconds=SERVICE + travel_seconds(point(parcels.index(last["tracking_id"])), HUB))
    assert back <= at(day, 9, 25)


def test_weights_are_planned_when_parcels_have_them(ctx):
    """A two-wheeler carries 20 kg: a 25 kg parcel fits nobody's; the others go on within the weight."""
    zone_id = make_zone()
    make_courier("ravi", capacity=10)
    parcels = make_parcels(5, zone_id, weights={0: "25.000", 1: "8.5", 2: "8.5", 3: "8.5"})
    result = plan(ctx, ask(day=tomorrow()))
    left_out = reasons(result)
    assert left_out[parcels[0]] == "capacity"
    assert len([key for key in left_out if key in parcels[1:4]]) == 1  # 3 × 8.5 kg is more than 20
    assert parcels[4] not in left_out  # no weight: counts as nothing


def test_a_courier_starts_from_their_own_point_and_one_without_a_start_is_not_planned(ctx):
    zone_id = make_zone(hub=None)
    make_courier("ravi", start_point=point(3))
    make_courier("meena")
    parcels = make_parcels(2, zone_id, first=3)
    result = plan(ctx, ask(day=tomorrow()))
    [manifest] = result["manifests"]
    assert manifest["courier"] == "ravi" and len(manifest["stops"]) == 2
    first = manifest["stops"][0]
    leg = travel_seconds(point(3), point(3 + parcels.index(first["tracking_id"])))
    assert parse_iso_z(first["eta"]) == at(tomorrow(), 9) + timedelta(seconds=leg)
    assert result["couriers_skipped"] == [{"courier": "meena", "reason": "no_start"}]


def test_only_the_couriers_asked_for_are_planned(ctx):
    zone_id = make_zone()
    make_courier("ravi"), make_courier("meena")
    make_parcels(3, zone_id)
    run_id = ask(day=tomorrow(), couriers=["MEENA"])
    result = plan(ctx, run_id)
    assert [manifest["courier"] for manifest in result["manifests"]] == ["meena"]
    assert db.session.get(DispatchRun, run_id).couriers == ["meena"]


def test_nobody_on_shift_leaves_every_parcel_to_no_courier(ctx):
    """Today at noon: a courier whose shift ended at 08:00 has no time left; another zone's parcels wait."""
    zone_id = make_zone()
    make_courier("ravi", start=time(6), end=time(8))
    parcels = make_parcels(2, zone_id)
    result = plan(ctx, ask(day=local_today()), now=at(local_today(), 12))
    assert reasons(result) == {tracking_id: "no_courier" for tracking_id in parcels}
    assert result["manifests"] == [] and result["couriers_skipped"] == [{"courier": "ravi", "reason": "off_shift"}]
    assert count(RunSheet) == 0


def test_what_a_run_takes_and_what_it_leaves_to_others(ctx):
    """Only parcels of the zone, In Transit or Delivery Attempted, not open on a run sheet; those of the zone
    without a point are left out as no_point; parcels on a run sheet stay where they are."""
    zone_id, other_zone = make_zone(), make_zone("Fort Kochi")
    make_courier("ravi", capacity=20)
    make_courier("anil")
    ready = make_parcels(2, zone_id)
    no_point = make_parcels(1, zone_id, with_point=False)
    elsewhere = make_parcels(1, other_zone)
    booked = make_parcels(1, zone_id, status="Booked")
    placed = make_parcels(1, zone_id)
    assign_stops("anil", placed, day=tomorrow(), actor="op1", timezone=TZ)
    db.session.commit()
    result = plan(ctx, ask(day=tomorrow(), couriers=["ravi"]))
    planned = {stop["tracking_id"] for manifest in result["manifests"] for stop in manifest["stops"]}
    assert planned == set(ready)
    assert reasons(result) == {no_point[0]: "no_point"}
    assert not planned & set(elsewhere + booked + placed)
    assert [row[0] for row in open_stops(runsheet_of(db.session.scalar(
        select(RunSheet.courier_id).join(RunSheetStop).join(Shipment).where(
            Shipment.tracking_id == placed[0])), tomorrow()).id)] == placed


def test_a_second_run_extends_the_run_sheets_after_the_first_runs_stops(ctx):
    day = tomorrow()
    zone_id = make_zone()
    ravi = make_courier("ravi", capacity=8)
    first = make_parcels(3, zone_id)
    plan(ctx, ask(day=day))
    later = make_parcels(2, zone_id, first=5)
    second = plan(ctx, ask(day=day))
    [manifest] = second["manifests"]
    assert [stop["sequence"] for stop in manifest["stops"]] == [4, 5]
    stops = open_stops(runsheet_of(ravi, day).id)
    assert [row[0] for row in stops][:3] == [row[0] for row in stops if row[0] in first]
    assert {row[0] for row in stops[3:]} == set(later)
    assert min(row[2] for row in stops[3:]) > max(row[2] for row in stops[:3])  # after the first wave is back


# --- runs that fail ------------------------------------------------------------------------------------------------

def broken_solver(problem, **options):
    raise ValueError(f"Stop {problem.stops[0].key}: the solver gave up")


def test_a_solve_that_raises_fails_the_run_with_a_short_error_and_writes_nothing(ctx, caplog):
    zone_id = make_zone()
    make_courier("ravi")
    make_parcels(2, zone_id)
    run_id = ask(day=tomorrow())
    runs = run_jobs(ctx, solver=broken_solver)
    assert [(run.outcome, run.detail) for run in runs] == [("done", "1 failed")]
    db.session.expire_all()
    run = db.session.get(DispatchRun, run_id)
    assert run.state == "failed" and run.lease_until is None and run.finished_at is not None
    assert run.error == "The plan could not be made (ValueError); see the job runner's log."
    assert count(RunSheet) == 0 and count(RunSheetStop) == 0 and audit("runsheet_assigned") == []
    assert [run.outcome for run in run_jobs(ctx)] == ["idle"]  # not tried again


def test_a_run_whose_day_passed_before_it_was_planned_fails_saying_so(ctx):
    zone_id = make_zone()
    make_courier("ravi")
    make_parcels(1, zone_id)
    run_id = ask(day=local_today())
    run_jobs(ctx, now=utcnow() + timedelta(days=1))
    db.session.expire_all()
    run = db.session.get(DispatchRun, run_id)
    assert run.state == "failed" and f"({local_today().isoformat()}) had passed" in run.error
    assert count(RunSheet) == 0


def test_a_baseline_that_fails_leaves_the_plan_without_the_comparison(ctx):
    zone_id = make_zone()
    make_courier("ravi")
    make_parcels(2, zone_id)
    result = plan(ctx, ask(day=tomorrow()), baseline=broken_solver)
    assert result["savings_baseline_km"] is None and len(result["manifests"][0]["stops"]) == 2


# --- POST /admin/dispatch and GET /admin/dispatch/<run_id> (HTTP: SQLite only) -------------------------------------

@pytest.fixture
def operator(client, auth):
    auth.login("operator1")
    return auth


@pytest.fixture
def zone(dispatch_app):
    with dispatch_app.app_context():
        make_zone()
        make_courier("ravi")
        db.session.remove()
    return "Ernakulam"


def post(client, auth, body, **headers):
    return client.post("/admin/dispatch", json=body, headers={**auth.headers(), **headers})


@pytest.mark.one_database
def test_asking_for_a_run_answers_202_and_the_job_runner_plans_it(ctx, client, operator, zone):
    parcels = make_parcels(3, 1)
    response = post(client, operator, {"zone": zone, "date": tomorrow().isoformat()})
    assert response.status_code == 202
    run_id = response.get_json()["run_id"]
    assert response.get_json() == {"run_id": run_id}
    assert response.headers["Location"].endswith(f"/admin/dispatch/{run_id}")
    queued = client.get(f"/admin/dispatch/{run_id}").get_json()
    assert (queued["status"], queued["manifests"], queued["unassigned"], queued["solver"]) == (
        "queued", [], [], None)
    assert count(RunSheet) == 0  # nothing is planned in the request

    runs = run_jobs(ctx)  # the job runner, as in any process
    assert [(run.job, run.outcome, run.detail) for run in runs] == [("dispatch.plan", "done", "1 planned")]
    body = client.get(f"/admin/dispatch/{run_id}").get_json()
    assert body["status"] == "done" and body["solver"] and body["seconds"] >= 0
    assert {"status", "solver", "seconds", "manifests", "unassigned", "savings_baseline_km"} <= set(body)
    [manifest] = body["manifests"]
    assert set(manifest) == {"courier", "runsheet_id", "stops", "distance_km", "duration_min"}
    assert set(manifest["stops"][0]) == {"tracking_id", "sequence", "eta"}
    assert sorted(stop["tracking_id"] for stop in manifest["stops"]) == sorted(parcels)
    assert body["unassigned"] == [] and body["savings_baseline_km"] >= body["distance_km"]
    sheet = client.get(f"/admin/runsheets/{manifest['runsheet_id']}").get_json()
    assert sheet["dispatch_run_id"] == run_id
    assert [(s["tracking_id"], s["eta"]) for s in sheet["stops"]] == [
        (s["tracking_id"], s["eta"]) for s in manifest["stops"]]
    assert [run.outcome for run in run_jobs(ctx)] == ["idle"]  # planned once


@pytest.mark.one_database
@pytest.mark.parametrize("reference", ["Ernakulam", "ernakulam", " 1 ", 1, None])
def test_the_zone_is_named_by_id_or_name_or_left_out_when_there_is_one(ctx, client, operator, zone, reference):
    body = {"zone": reference} if reference is not None else {}
    response = post(client, operator, body)
    assert response.status_code == 202, response.get_json()
    run = db.session.get(DispatchRun, response.get_json()["run_id"])
    assert (run.zone_id, run.plan_date, run.couriers, run.requested_by) == (1, local_today(), None, "operator1")


BAD_REQUESTS = [
    ({"zone": "Ernakulam", "date": "tomorrow"}, 400, "date"),
    ({"zone": "Ernakulam", "date": "2026-02-30"}, 400, "date"),
    ({"zone": ["Ernakulam"]}, 400, "zone"),
    ({"zone": "x" * 81}, 400, "zone"),
    ({"zone": "Ernakulam", "couriers": "ravi"}, 400, "couriers"),
    ({"zone": "Ernakulam", "couriers": [1, 2]}, 400, "couriers"),
    ({"zone": "Ernakulam", "couriers": []}, 400, "couriers"),
    ({"zone": "Ernakulam", "couriers": ["  "]}, 400, "couriers"),
    ({"zone": "Ernakulam", "solver": "vroom"}, 400, "solver"),
    ({"zone": "Ernakulam\u0000"}, 400, "zone"),
    ({"zone": "Marine Drive"}, 404, "zone"),
    ({"zone": 99}, 404, "zone"),
    ({"zone": "Ernakulam", "date": "2020-01-01"}, 422, "date"),
    ({"zone": "Ernakulam", "couriers": ["ravi", "nobody"]}, 422, "couriers"),
    ({"zone": "Ernakulam", "couriers": ["operator1"]}, 422, "couriers"),
]


@pytest.mark.one_database
@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
def test_a_bad_request_is_a_clear_4xx_naming_the_field_and_queues_nothing(ctx, client, operator, zone, body, status,
                                                                          field):
    response = post(client, operator, body)
    assert response.status_code == status, response.get_json()
    assert field in response.get_json()["fields"] and response.get_json()["error"]
    assert count(DispatchRun) == 0 and audit("dispatch_requested") == []


@pytest.mark.one_database
def test_a_body_that_is_not_a_json_object_is_a_400(ctx, client, operator, zone):
    for data in ("[]", "{", '"zone"'):
        response = client.post("/admin/dispatch", data=data, content_type="application/json",
                               headers=operator.headers())
        assert response.status_code == 400
    assert count(DispatchRun) == 0


@pytest.mark.one_database
def test_without_a_zone_named_several_zones_are_a_400_and_none_a_422(ctx, client, operator):
    assert post(client, operator, {}).status_code == 422  # no zone drawn yet
    make_zone("Ernakulam"), make_zone("Fort Kochi")
    response = post(client, operator, {})
    assert response.status_code == 400 and "zone" in response.get_json()["fields"]
    assert post(client, operator, {"zone": "fort kochi"}).status_code == 202


@pytest.mark.one_database
def test_who_may_ask_for_a_run_and_read_one(dispatch_app, client, make_user, zone):
    """Each signed in on a client of their own (outside an app context: each request gets its own `g`)."""
    assert client.post("/admin/dispatch", json={}).status_code == 401
    assert client.get("/admin/dispatch/1").status_code == 401
    assert client.get("/admin/dispatch", headers=HTML).status_code == 302  # to the sign-in page
    for role in ("viewer", "courier"):
        other = AuthActions(dispatch_app.test_client(), make_user)
        other.login(f"{role}1", role=role)
        assert post(other.client, other, {"zone": zone}).status_code == 403
        assert other.client.get("/admin/dispatch").status_code == 403
        assert other.client.get("/admin/dispatch/overrides").status_code == 403
    with dispatch_app.app_context():
        assert count(DispatchRun) == 0
    admin = AuthActions(dispatch_app.test_client(), make_user)
    admin.login("admin1", role="admin")
    assert post(admin.client, admin, {"zone": zone}).status_code == 202
    assert admin.client.get("/admin/dispatch").status_code == 200


@pytest.mark.one_database
def test_a_signed_in_request_without_the_csrf_token_is_refused(ctx, client, operator, zone):
    response = client.post("/admin/dispatch", json={"zone": zone})
    assert response.status_code == 400 and count(DispatchRun) == 0
    form = client.post("/admin/dispatch", data={"zone": "1"}, headers=HTML)
    assert form.status_code == 400 and count(DispatchRun) == 0


@pytest.mark.one_database
def test_an_unknown_run_is_a_404(ctx, client, operator):
    assert client.get("/admin/dispatch/999").status_code == 404
    assert client.get("/admin/dispatch/999", headers=HTML).status_code == 404


# --- the pages -----------------------------------------------------------------------------------------------------

@pytest.mark.one_database
def test_the_page_asks_for_a_run_and_shows_it_refreshing_until_it_is_planned(ctx, client, operator, zone):
    make_courier("meena")
    parcels = make_parcels(2, 1)
    page = client.get("/admin/dispatch", headers=HTML).get_data(as_text=True)
    assert 'name="zone"' in page and "Ernakulam" in page and 'value="meena"' in page and "No dispatch runs" in page
    response = client.post("/admin/dispatch", data={"zone": "1", "date": tomorrow().isoformat(),
                                                    "couriers": ["meena"], "csrf_token": operator.csrf_token},
                           headers=HTML)
    assert response.status_code == 303
    run_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert db.session.get(DispatchRun, run_id).couriers == ["meena"]
    waiting = client.get(f"/admin/dispatch/{run_id}", headers=HTML).get_data(as_text=True)
    assert 'http-equiv="refresh"' in waiting and "queued" in waiting
    run_jobs(ctx)
    done = client.get(f"/admin/dispatch/{run_id}", headers=HTML).get_data(as_text=True)
    assert 'http-equiv="refresh"' not in done
    for text in (*parcels, "meena", "Savings heuristic", "/admin/runsheets/"):
        assert text in done, text
    listing = client.get("/admin/dispatch", headers=HTML).get_data(as_text=True)
    assert f"/admin/dispatch/{run_id}" in listing and "done" in listing
    runs = client.get("/admin/dispatch").get_json()["runs"]
    assert [(r["run_id"], r["status"], r["planned"], r["unassigned"]) for r in runs] == [(run_id, "done", 2, 0)]
    [manifest] = client.get(f"/admin/dispatch/{run_id}").get_json()["manifests"]
    sheet_page = client.get(f"/admin/runsheets/{manifest['runsheet_id']}", headers=HTML).get_data(as_text=True)
    assert f"Planned by dispatch run {run_id}" in sheet_page and "Move a stop here" in sheet_page


@pytest.mark.one_database
def test_a_refused_form_shows_the_page_again_with_the_problem(ctx, client, operator, zone):
    response = client.post("/admin/dispatch", data={"zone": "1", "date": "2020-01-01",
                                                    "csrf_token": operator.csrf_token}, headers=HTML)
    assert response.status_code == 422
    assert "Plan today" in response.get_data(as_text=True) and count(DispatchRun) == 0


@pytest.mark.one_database
def test_a_failed_run_shows_why(ctx, client, operator, zone):
    make_parcels(1, 1)
    run_id = post(client, operator, {"zone": zone, "date": tomorrow().isoformat()}).get_json()["run_id"]
    run_jobs(ctx, solver=broken_solver)
    body = client.get(f"/admin/dispatch/{run_id}").get_json()
    assert body["status"] == "failed" and "ValueError" in body["error"] and body["manifests"] == []
    page = client.get(f"/admin/dispatch/{run_id}", headers=HTML).get_data(as_text=True)
    assert "The run failed" in page and 'http-equiv="refresh"' not in page
