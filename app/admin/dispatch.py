"""Dispatch runs and supervisors' overrides (operator, admin; reading: VIEW_FIELD), through
app.services.planning. HTML and JSON share the URLs:

- POST /admin/dispatch `{"zone"?, "date"?, "couriers"?: [usernames]}` → 202 `{"run_id"}` with its Location; the
  job runner plans it. 400 malformed, 404 no such zone, 422 a past day or not a courier.
- GET /admin/dispatch/<run_id> → the run: `status` (queued, running, done, failed), `solver`, `seconds`,
  `manifests`, `unassigned`, `savings_baseline_km`. Its page refreshes itself until the run is finished.
- GET /admin/dispatch → the latest runs, and (page) the form to ask for one.
- POST /admin/runsheets/<id>/stops `{"tracking_id", "sequence", "reason"}` → 200 the override and the run sheet.
- GET /admin/dispatch/overrides?week=2026-W49 → the week's overrides (default: this week).
"""
from __future__ import annotations

from datetime import timedelta

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.admin import bp
from app.admin.dispatch_forms import DispatchForm, OverrideForm, OverrideWeekForm
from app.admin.forms import VEHICLE_NAMES
from app.admin.runsheets import runsheet_to_dict
from app.auth.guard import staff_required
from app.domain.planning import iso_week, parse_iso_week
from app.domain.roles import Permission
from app.domain.timeutil import isoformat_z, parse_iso_z, utcnow
from app.errors import DomainError, wants_html
from app.extensions import db
from app.services.field.couriers import active_couriers
from app.services.field.runsheets import local_today, runsheet_view
from app.services.planning.dispatch import request_dispatch
from app.services.planning.dispatch_runs import RunView, recent_runs, run_view, zone_choices
from app.services.planning.overrides import OverrideView, list_overrides, override_stop
from app.web.forms import answers_json, refused_on_page

REFRESH_SECONDS = 5  # a queued or running run's page looks again this often
RUN_STATE_NAMES = {"queued": _l("queued"), "running": _l("planning"), "done": _l("done"), "failed": _l("failed")}
UNASSIGNED_NAMES = {
    "capacity": _l("No room left: the couriers' parcels, weight or hours ran out"),
    "window": _l("No courier can reach it inside its delivery window and their shift"),
    "no_courier": _l("No courier on shift"),
    "no_point": _l("No point on the map for its address"),
    "changed": _l("Changed while it was planned (delivered, held or put on a run sheet)"),
}
SKIPPED_NAMES = {
    "off_shift": _l("no time left in the shift"), "full": _l("no room left"),
    "no_start": _l("no start point and no hub"), "other_zone": _l("planned for another zone that day"),
    "not_courier": _l("no longer an active courier"),
}


def _timezone() -> str:
    return current_app.config["DISPLAY_TIMEZONE"]


@bp.get("/dispatch")
@staff_required(Permission.VIEW_FIELD)
def dispatch_page():
    runs = recent_runs()
    if not wants_html():
        return jsonify({"runs": [run_summary(run) for run in runs]})
    return _list_page(DispatchForm(formdata=None), runs)


@bp.post("/dispatch")
@staff_required(Permission.MANAGE_FIELD)
def dispatch_request():
    form = DispatchForm.from_request()
    try:
        form.validate_or_raise()
        run = request_dispatch(form.zone.data, form.date.data, form.courier_list(), actor=current_user.username,
                               timezone=_timezone(), now=utcnow())
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _list_page(form, recent_runs(), error.status_code, problem)
    db.session.commit()
    location = url_for("admin.dispatch_run", run_id=run.id)
    if answers_json():
        return jsonify({"run_id": run.id}), 202, {"Location": location}
    return redirect(location, 303)


@bp.get("/dispatch/<int:run_id>")
@staff_required(Permission.VIEW_FIELD)
def dispatch_run(run_id: int):
    run = run_view(run_id)
    if not wants_html():
        return jsonify(run_to_dict(run))
    return render_template("admin/dispatch_run.html", run=run, result=run.result or {}, manifests=_timed(run),
                           refresh_seconds=None if run.finished else REFRESH_SECONDS, run_states=RUN_STATE_NAMES,
                           reasons=UNASSIGNED_NAMES, skipped_reasons=SKIPPED_NAMES)


@bp.get("/dispatch/overrides")
@staff_required(Permission.VIEW_FIELD)
def dispatch_overrides():
    form = OverrideWeekForm(formdata=request.args)
    form.validate_or_raise()
    week = form.week.data or iso_week(local_today(_timezone()))
    monday = parse_iso_week(week)
    overrides = list_overrides(monday, _timezone())
    if not wants_html():
        return jsonify({"week": week, "from": monday.isoformat(),
                        "overrides": [override_to_dict(item) for item in overrides]})
    return render_template("admin/dispatch_overrides.html", week=week, monday=monday, overrides=overrides,
                           previous_week=iso_week(monday - timedelta(days=7)),
                           next_week=iso_week(monday + timedelta(days=7)))


@bp.post("/runsheets/<int:runsheet_id>/stops")
@staff_required(Permission.MANAGE_FIELD)
def runsheet_override(runsheet_id: int):
    """A supervisor moves a stop to this run sheet, at a position, saying why."""
    form = OverrideForm.from_request()
    try:
        form.validate_or_raise()
        result = override_stop(runsheet_id, form.tracking_id.data, form.sequence.data, form.reason.data,
                               actor=current_user.username, timezone=_timezone())
    except DomainError as error:
        problem = refused_on_page(error, form)
        page = render_template("admin/runsheet.html", sheet=runsheet_view(runsheet_id), rejected=(),
                               problem=problem, dispatched=False, vehicle_names=VEHICLE_NAMES, override_form=form)
        return page, error.status_code
    db.session.commit()
    if answers_json():
        return jsonify({"override": override_to_dict(result.override),
                        "runsheet": runsheet_to_dict(result.runsheet)})
    return redirect(url_for("admin.runsheet_detail", runsheet_id=runsheet_id), 303)


def _timed(run: RunView) -> list[dict]:
    """The manifests with each ETA as a time the page can show in the local zone."""
    return [{**manifest, "stops": [{**stop, "at": parse_iso_z(stop["eta"]) if stop.get("eta") else None}
                                   for stop in manifest["stops"]]}
            for manifest in (run.result or {}).get("manifests", [])]


def _list_page(form: DispatchForm, runs: list[RunView], status_code: int = 200, problem: str | None = None):
    page = render_template("admin/dispatch.html", form=form, runs=runs, zones=zone_choices(),
                           couriers=[user.username for user in active_couriers()], problem=problem,
                           today=local_today(_timezone()), run_states=RUN_STATE_NAMES)
    return page, status_code


def run_summary(run: RunView) -> dict:
    """A run in a list: what it is, how it went, without its manifests."""
    result = run.result or {}
    return {"run_id": run.id, "status": run.state, "zone": run.zone, "zone_id": run.zone_id,
            "date": run.plan_date.isoformat(), "requested_by": run.requested_by,
            "scheduled_for": isoformat_z(run.scheduled_for), "created_at": isoformat_z(run.created_at),
            "finished_at": isoformat_z(run.finished_at),
            "planned": run.planned, "unassigned": run.left_out, "distance_km": result.get("distance_km"),
            "savings_baseline_km": result.get("savings_baseline_km"), "error": run.error}


def run_to_dict(run: RunView) -> dict:
    """A run in full, as GET /admin/dispatch/<run_id> answers it."""
    result = run.result or {}
    return {"run_id": run.id, "status": run.state, "zone": run.zone, "zone_id": run.zone_id,
            "date": run.plan_date.isoformat(), "couriers": run.couriers, "requested_by": run.requested_by,
            "scheduled_for": isoformat_z(run.scheduled_for), "created_at": isoformat_z(run.created_at),
            "started_at": isoformat_z(run.started_at), "finished_at": isoformat_z(run.finished_at),
            "attempts": run.attempts, "solver": run.solver, "seconds": run.seconds, "error": run.error,
            "manifests": result.get("manifests", []), "unassigned": result.get("unassigned", []),
            "distance_km": result.get("distance_km"), "savings_baseline_km": result.get("savings_baseline_km"),
            "savings_baseline_unassigned": result.get("savings_baseline_unassigned"),
            "travel": result.get("travel"), "couriers_skipped": result.get("couriers_skipped", [])}


def override_to_dict(item: OverrideView) -> dict:
    return {"id": item.id, "tracking_id": item.tracking_id,
            "from": {"runsheet_id": item.from_runsheet_id, "courier": item.from_courier,
                     "sequence": item.from_sequence},
            "to": {"runsheet_id": item.to_runsheet_id, "courier": item.to_courier, "sequence": item.to_sequence},
            "reason": item.reason, "actor": item.actor, "at": isoformat_z(item.at)}
