"""Scan mode on the admin blueprint: /admin/scan (the page a hub worker keeps open) and POST /admin/scans (JSON),
both through the one bulk service (app.services.shipments.scans)."""
from __future__ import annotations

from flask import jsonify, render_template
from flask_login import current_user

from app.admin import bp
from app.admin.scan_forms import ScanBatchForm, ScanForm
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import ValidationError
from app.extensions import db
from app.services.shipments.scans import ScanReport, record_scans
from app.services.shipments.status_changes import ChangeOutcome
from app.web.forms import read_form, refused_on_page

RESULTS_SHOWN = 50


@bp.get("/scan")
@staff_required(Permission.CHANGE_SHIPMENTS)
def scan():
    return render_template("admin/scan.html", form=ScanForm(formdata=None), report=None, results=[])


@bp.post("/scan")
@staff_required(Permission.CHANGE_SHIPMENTS)
def scan_form():
    """The page's form without JavaScript: one scanned ID (Enter) or a textarea of many; the page comes back
    with the results, the same status and location, and the running count."""
    form = ScanForm.from_request()
    try:
        form.validate_or_raise()
        report = record_scans(form.to_batch(), actor=current_user.username)
    except ValidationError as error:  # each message beside its field (the service names the form's fields)
        refused_on_page(error, form)
        return render_template("admin/scan.html", form=form, report=None, results=[]), 400
    db.session.commit()
    form.start_next(report.accepted, report.refused)
    results = [outcome_to_dict(outcome) for outcome in reversed(report.outcomes[-RESULTS_SHOWN:])]
    return render_template("admin/scan.html", form=form, report=report, results=results)


@bp.post("/scans")
@staff_required(Permission.CHANGE_SHIPMENTS)
def scans():
    """`{"status", "location", "note"?, "received_by"?, "attempt_reason"?, "tracking_ids": [...]}` (up to 1,000)
    → 200 `{"results": [{"tracking_id", "ok", "status"?, "error"?, "reason"?}], "accepted", "refused"}`."""
    report = record_scans(read_form(ScanBatchForm, json_only=True).to_batch(), actor=current_user.username)
    db.session.commit()
    return jsonify(report_to_dict(report))


def report_to_dict(report: ScanReport) -> dict:
    return {"results": [outcome_to_dict(outcome) for outcome in report.outcomes],
            "accepted": report.accepted, "refused": report.refused}


def outcome_to_dict(outcome: ChangeOutcome) -> dict:
    body: dict = {"tracking_id": outcome.tracking_id, "ok": outcome.ok}
    if outcome.status is not None:
        body["status"] = outcome.status
    if not outcome.ok:
        body["error"] = outcome.error
        body["reason"] = str(outcome.refusal)
    return body
