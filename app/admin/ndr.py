"""Failed deliveries for staff: GET /admin/ndr?state=open|closed (the list, a page or JSON by Accept) and
POST /admin/shipments/<tracking_id>/ndr (an answer on the recipient's behalf: the same body as /r/<token>, as
JSON or the shipment page's form). The rules are app.services.ndr's."""
from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.forms import StaffUpdateForm
from app.admin.routes import detail_page
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db
from app.services.ndr.answers import answer_report
from app.services.ndr.queries import STATES, list_reports, reason_label, report_to_dict
from app.services.shipments.queries import find_shipment
from app.tracking.forms import ANSWER_LABELS, NdrAnswerForm
from app.web.forms import answers_json, refused_on_page


@bp.get("/ndr")
@staff_required(Permission.VIEW_SHIPMENTS)
def ndr_list():
    """Open reports, soonest deadline first (or closed ones, latest first): parcel, reason, attempts, deadline
    and the recipient's answer."""
    state = request.args.get("state", "open")
    if state not in STATES:
        raise ValidationError(fields={"state": f"Must be one of: {', '.join(STATES)}."})
    rows = list_reports(state)
    if not wants_html():
        return jsonify({"state": state, "ndrs": [{**report_to_dict(row.report, row.tracking_id, staff=True),
                                                  "status": row.status} for row in rows]})
    return render_template("admin/ndr.html", state=state, rows=rows, reason_label=reason_label,
                           answer_labels=ANSWER_LABELS, max_attempts=current_app.config["NDR_MAX_ATTEMPTS"])


@bp.post("/shipments/<tracking_id>/ndr")
@staff_required(Permission.CHANGE_SHIPMENTS)
def answer_ndr(tracking_id: str):
    """Record an answer to the parcel's open report as this staff member: the report as JSON, or back to the
    shipment's page (PRG); a refusal (400 fields, 409 closed or no attempts left) as JSON or on the page."""
    form = NdrAnswerForm.from_request()
    try:
        shipment = find_shipment(tracking_id)
        report = answer_report(shipment, form.answer(), actor=current_user.username,
                               answered_by=current_user.username, via="staff", now=utcnow())
    except DomainError as error:
        problem = refused_on_page(error, form)
        return detail_page(tracking_id, StaffUpdateForm(formdata=None), error.status_code, ndr_form=form,
                           ndr_problem=problem)
    db.session.commit()
    if answers_json():
        return jsonify(report_to_dict(report, shipment.tracking_id, staff=True))
    flash(gettext("Answer recorded: %(action)s.", action=ANSWER_LABELS[report.action]), "success")
    return redirect(url_for("admin.shipment_detail", tracking_id=shipment.tracking_id))
