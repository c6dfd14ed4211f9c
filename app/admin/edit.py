"""Corrections to a booking: POST /admin/shipments/<tracking_id>/edit (operators and admins), JSON with the fields
to change or the shipment page's "Edit" form (app.services.shipments.corrections decides what may change)."""
from __future__ import annotations

from flask import flash, jsonify, redirect, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.forms import ShipmentEditForm, StaffUpdateForm
from app.admin.routes import detail_page
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import DomainError
from app.extensions import db
from app.services.shipments import corrections
from app.web.forms import answers_json, refused_on_page
from app.web.serializers import shipment_to_dict


@bp.post("/shipments/<tracking_id>/edit")
@staff_required(Permission.CHANGE_SHIPMENTS)
def edit_shipment(tracking_id: str):
    """Answers the shipment's staff record with `changed` (the fields that changed), or back to its page (PRG);
    a refusal (400 fields, 409 fixed by now, 422 not served) is JSON, or the page again with the values kept."""
    form = ShipmentEditForm.from_request()
    try:
        form.validate_or_raise()
        shipment, changed = corrections.edit_shipment(tracking_id, form.changes(), actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return detail_page(tracking_id, StaffUpdateForm(formdata=None), error.status_code, edit_form=form,
                           edit_problem=problem)
    db.session.commit()
    if answers_json():
        return jsonify({**shipment_to_dict(shipment, staff=True), "changed": list(changed)})
    if changed:
        flash(gettext("Booking corrected: %(fields)s.",
                      fields=", ".join(str(form[name].label.text) for name in changed)), "success")
    else:
        flash(gettext("Nothing to correct: every value is as it was."), "info")
    return redirect(url_for("admin.shipment_detail", tracking_id=shipment.tracking_id))
