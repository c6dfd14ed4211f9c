"""Run sheets: made, extended, listed, printed and handed out (operator, admin), through
app.services.field.runsheets. HTML and JSON share the URLs:

- POST /admin/runsheets `{"courier", "tracking_ids": [...], "date"?}` → 201 the run sheet with `rejected` (the IDs
  refused, each with its reason); 400 with `fields` when none could go on (and `rejected`), or the body is bad.
- GET /admin/runsheets?date=&courier= → `{"date", "runsheets": [...]}` (the date defaults to today).
- GET /admin/runsheets/<id> → the run sheet with its stops in order; GET /admin/runsheets/<id>.pdf prints it.
- POST /admin/runsheets/<id>/dispatch → 200 the run sheet with `rejected` (stops the status change refused);
  409 when it has no open stop.
"""
from __future__ import annotations

from flask import Response, current_app, jsonify, render_template, request, url_for
from flask_login import current_user

from app.admin import bp
from app.admin.forms import VEHICLE_NAMES
from app.admin.runsheet_forms import RunSheetFilterForm, RunSheetForm
from app.auth.guard import staff_required
from app.domain.pricing import money_text
from app.domain.roles import Permission
from app.domain.timeutil import isoformat_z
from app.errors import DomainError, wants_html
from app.extensions import db
from app.services.field.couriers import active_couriers
from app.services.field.runsheet_pdf import print_runsheet
from app.services.field.runsheets import (
    RefusedStop,
    RunSheetResult,
    RunSheetSummary,
    RunSheetView,
    Stop,
    assign_stops,
    dispatch_runsheet,
    list_runsheets,
    local_today,
    runsheet_view,
)
from app.web.forms import answers_json, refused_on_page


def _timezone() -> str:
    return current_app.config["DISPLAY_TIMEZONE"]


@bp.get("/runsheets")
@staff_required(Permission.VIEW_FIELD)
def runsheets():
    filters = RunSheetFilterForm(formdata=request.args)
    filters.validate_or_raise()
    day = filters.date.data or local_today(_timezone())
    sheets = list_runsheets(day, filters.courier.data or None)
    if not wants_html():
        return jsonify({"date": day.isoformat(), "runsheets": [summary_to_dict(sheet) for sheet in sheets]})
    return _list_page(RunSheetForm(formdata=None), filters, sheets)


@bp.post("/runsheets")
@staff_required(Permission.MANAGE_FIELD)
def create_runsheet():
    form = RunSheetForm.from_request()
    try:
        form.validate_or_raise()
        result = assign_stops(form.courier.data, form.tracking_id_list(), day=form.date.data,
                              actor=current_user.username, timezone=_timezone())
    except DomainError as error:
        problem = refused_on_page(error, form)
        filters = RunSheetFilterForm(formdata=None)
        return _list_page(form, filters, list_runsheets(local_today(_timezone())), error.status_code, problem,
                          getattr(error, "rejected", []))
    db.session.commit()
    location = url_for("admin.runsheet_detail", runsheet_id=result.runsheet.id)
    if answers_json():
        return jsonify(result_to_dict(result)), 201, {"Location": location}
    return _detail_page(result.runsheet, result.rejected, 201)


@bp.get("/runsheets/<int:runsheet_id>")
@staff_required(Permission.VIEW_FIELD)
def runsheet_detail(runsheet_id: int):
    sheet = runsheet_view(runsheet_id)
    if not wants_html():
        return jsonify(runsheet_to_dict(sheet))
    return _detail_page(sheet)


@bp.get("/runsheets/<int:runsheet_id>.pdf")
@staff_required(Permission.VIEW_FIELD)
def runsheet_pdf(runsheet_id: int):
    sheet, pdf = print_runsheet(runsheet_id, actor=current_user.username, timezone=_timezone())
    db.session.commit()
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="runsheet-{sheet.id}-{sheet.date}.pdf"'
    response.headers["Cache-Control"] = "no-store"  # names, addresses and mobiles: not for shared caches
    return response


@bp.post("/runsheets/<int:runsheet_id>/dispatch")
@staff_required(Permission.MANAGE_FIELD)
def dispatch(runsheet_id: int):
    """Hand the run sheet out: its parcels go Out for Delivery with the courier as the actor."""
    try:
        result = dispatch_runsheet(runsheet_id, actor=current_user.username, timezone=_timezone())
    except DomainError as error:
        problem = refused_on_page(error)
        return _detail_page(runsheet_view(runsheet_id), status_code=error.status_code, problem=problem)
    db.session.commit()
    if answers_json():
        return jsonify(result_to_dict(result))
    return _detail_page(result.runsheet, result.rejected, dispatched=True)


def _list_page(form: RunSheetForm, filters: RunSheetFilterForm, sheets: list[RunSheetSummary],
               status_code: int = 200, problem: str | None = None, rejected: list[RefusedStop] = ()):
    form.offer_couriers([user.username for user in active_couriers()])
    page = render_template("admin/runsheets.html", form=form, filters=filters, sheets=sheets,
                           day=filters.date.data or local_today(_timezone()), problem=problem, rejected=rejected)
    return page, status_code


def _detail_page(sheet: RunSheetView, rejected: list[RefusedStop] = (), status_code: int = 200,
                 problem: str | None = None, dispatched: bool = False):
    page = render_template("admin/runsheet.html", sheet=sheet, rejected=rejected, problem=problem,
                           dispatched=dispatched, vehicle_names=VEHICLE_NAMES)
    return page, status_code


def result_to_dict(result: RunSheetResult) -> dict:
    return {**runsheet_to_dict(result.runsheet),
            "rejected": [{"tracking_id": r.tracking_id, "reason": r.reason, "error": r.error}
                         for r in result.rejected]}


def runsheet_to_dict(sheet: RunSheetView) -> dict:
    return {"id": sheet.id, "courier": sheet.courier, "date": sheet.date.isoformat(),
            "created_at": isoformat_z(sheet.created_at), "created_by": sheet.created_by,
            "dispatched_at": isoformat_z(sheet.dispatched_at), "dispatched_by": sheet.dispatched_by,
            "dispatch_run_id": sheet.dispatch_run_id, "stops": [stop_to_dict(stop) for stop in sheet.stops]}


def stop_to_dict(stop: Stop) -> dict:
    """A stop for staff: `state` open, done (`outcome`: the status that closed it) or moved (to another sheet);
    `eta` when dispatch planned it."""
    return {"tracking_id": stop.tracking_id, "sequence": stop.sequence, "status": stop.status,
            "state": stop.state, "outcome": stop.outcome, "kind": stop.kind, "receiver_name": stop.receiver_name,
            "destination": stop.destination, "destination_pincode": stop.destination_pincode,
            "pieces": stop.pieces, "payment": stop.payment,
            "cod_amount": money_text(stop.cod_amount) if stop.cod_amount is not None else None,
            "eta": isoformat_z(stop.eta)}


def summary_to_dict(sheet: RunSheetSummary) -> dict:
    return {"id": sheet.id, "courier": sheet.courier, "date": sheet.date.isoformat(),
            "stops_open": sheet.stops_open, "stops_done": sheet.stops_done, "stops_moved": sheet.stops_moved,
            "created_at": isoformat_z(sheet.created_at), "created_by": sheet.created_by,
            "dispatched_at": isoformat_z(sheet.dispatched_at), "dispatched_by": sheet.dispatched_by}
