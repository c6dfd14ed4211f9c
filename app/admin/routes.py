"""The staff pages: the dashboard, one shipment's page with its update form, and the audit trail."""
from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import SelectChoice

from app.admin import bp
from app.admin.forms import AuditFilterForm, ShipmentEditForm, ShipmentFilterForm, StaffUpdateForm
from app.auth.guard import accepts_upload, staff_required
from app.domain.points import Precision
from app.domain.roles import Permission, may
from app.domain.timeutil import utcnow
from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db
from app.notifications.serializers import preferences_to_dict
from app.services.ndr.queries import answer_page, reason_label, report_to_dict, reports_of
from app.services.outbox.preferences import shipment_preferences
from app.services.shipments.dashboard import list_shipments, shipment_record, status_tally
from app.services.shipments.evidence_images import MAX_UPLOAD_BYTES
from app.services.shipments.proofs import ATTEMPT_REASONS, proofs_for_shipment
from app.services.shipments.queries import status_counts
from app.services.shipments.status_changes import record_status_change
from app.services.staff.audit import list_audit
from app.tracking.forms import ANSWER_LABELS, NdrAnswerForm
from app.web.forms import field_errors, refused_on_page
from app.web.serializers import audit_entry_to_dict, audit_page_to_dict, proof_to_dict, shipment_to_dict

# The update form may carry a photo (up to MAX_UPLOAD_BYTES) and a drawn signature besides its text fields.
UPDATE_UPLOAD_LIMIT = MAX_UPLOAD_BYTES + 1024 * 1024


@bp.get("")
@staff_required(Permission.VIEW_SHIPMENTS)
def dashboard():
    if not wants_html():
        return jsonify({"counts": status_counts()})
    form = ShipmentFilterForm(formdata=request.args)
    if not form.validate():
        raise ValidationError("The search options are not valid.", fields=field_errors(form))
    results = list_shipments(form.to_filter(current_app.config["DISPLAY_TIMEZONE"]),
                             current_app.config["DEFAULT_PHONE_REGION"])
    return render_template("admin/dashboard.html", form=form, tally=status_tally(), results=results)


@bp.get("/shipments/<tracking_id>")
@staff_required(Permission.VIEW_SHIPMENTS)
def shipment_detail(tracking_id: str):
    if not wants_html():
        record = shipment_record(tracking_id)
        return jsonify({**shipment_to_dict(record.shipment, record.events, staff=True),
                        "allowed_next_statuses": record.allowed_next, "editable": list(record.editable),
                        "proofs": [proof_to_dict(record.shipment, event, proof)
                                   for event, proof in proofs_for_shipment(record.shipment)],
                        "audit": [audit_entry_to_dict(e) for e in record.audit],
                        "ndrs": [report_to_dict(r, record.shipment.tracking_id, staff=True)
                                 for r in reports_of(record.shipment.id)],
                        **preferences_to_dict(shipment_preferences(record.shipment.id))})
    return detail_page(tracking_id, StaffUpdateForm(formdata=None))


@bp.post("/shipments/<tracking_id>")
@staff_required(Permission.CHANGE_SHIPMENTS)
@accepts_upload(UPDATE_UPLOAD_LIMIT)
def record_update(tracking_id: str):
    """The update form on a shipment's page, with its proof of delivery (required here: the receiver's name for
    Delivered, a reason for Delivery Attempted). Errors re-render the page with the values kept (PRG on
    success); JSON clients get the refusal as JSON. Nothing is written, and no file stored, unless everything is
    right."""
    form = StaffUpdateForm.from_request()
    try:
        form.validate_or_raise()
        shipment, event = record_status_change(
            tracking_id, form.status.data, form.location.data, form.note.data, actor=current_user.username,
            customer_message=form.customer_message.data, received_by=form.received_by.data,
            attempt_reason=form.attempt_reason.data, signature=form.signature.data or None,
            photo=form.photo_bytes(), proof_required=True)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return detail_page(tracking_id, form, error.status_code, problem)
    db.session.commit()
    flash(gettext("Status updated: %(status)s at %(location)s.", status=event.status, location=event.location),
          "success")
    return redirect(url_for("admin.shipment_detail", tracking_id=shipment.tracking_id))


# How precise a parcel's point is, in words (app.domain.points).
PRECISION_LABELS = {Precision.EXACT: _l("exact"), Precision.PINCODE: _l("PIN code centroid"),
                    Precision.GEOCODED: _l("geocoded"), Precision.DELIVERED: _l("where last delivered")}


def detail_page(tracking_id: str, form: StaffUpdateForm, status_code: int = 200, problem: str | None = None, *,
                edit_form: ShipmentEditForm | None = None, edit_problem: str | None = None,
                ndr_form: NdrAnswerForm | None = None, ndr_problem: str | None = None):
    """A shipment's staff page: `form` is the update form, `edit_form` the corrections form (prefilled with the
    current values unless given back with its errors), `ndr_form` the answer to its failed delivery; `problem`,
    `edit_problem` and `ndr_problem` go above them."""
    record = shipment_record(tracking_id, suggest_locations=may(current_user.role, Permission.CHANGE_SHIPMENTS))
    if edit_form is None:
        edit_form = ShipmentEditForm(formdata=None, obj=record.shipment)
    form.status.choices = [SelectChoice("", _l("Choose a status")), *map(SelectChoice, record.allowed_next)]
    return render_template("admin/shipment.html", record=record, shipment=record.shipment, form=form,
                           precision_labels=PRECISION_LABELS,
                           proofs=proofs_for_shipment(record.shipment), attempt_reasons=ATTEMPT_REASONS,
                           problem=problem, preferences=shipment_preferences(record.shipment.id),
                           edit_form=edit_form, edit_problem=edit_problem,
                           ndr=ndr_section(record.shipment, ndr_form, ndr_problem)), status_code


def ndr_section(shipment, form: NdrAnswerForm | None, problem: str | None) -> dict:
    """The shipment page's failed deliveries: its reports, latest first, and the answer form for an open one."""
    page = answer_page(shipment, utcnow())
    form = form or NdrAnswerForm(formdata=None)
    form.date.choices = [("", gettext("As soon as possible"))] + [(day.isoformat(), day.isoformat())
                                                                   for day in page.days]
    form.action.choices = [(action, ANSWER_LABELS[action]) for action in page.actions]
    return {"reports": reports_of(shipment.id), "open": page.actions != (), "form": form, "problem": problem,
            "reason_label": reason_label, "answer_labels": ANSWER_LABELS}


@bp.get("/audit")
@staff_required(Permission.VIEW_AUDIT)
def audit():
    """The audit trail, newest first, filtered by who, action, target and days (DISPLAY_TIMEZONE)."""
    form = AuditFilterForm(formdata=request.args)
    if not form.validate():
        if wants_html():  # the filters again, with the problems beside them
            return render_template("admin/audit.html", form=form, results=None), 400
        raise ValidationError("The audit filters are not valid.", fields=field_errors(form))
    results = list_audit(form.to_filter(current_app.config["DISPLAY_TIMEZONE"]), page=form.page.data or 1)
    if not wants_html():
        return jsonify(audit_page_to_dict(results))
    return render_template("admin/audit.html", form=form, results=results)
