"""The operator dashboard: counts, the shipment list, and one shipment's page with its update form."""
from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from app.admin.forms import ShipmentFilterForm
from app.auth.guard import staff_required
from app.errors import Conflict, InvalidTransition, ValidationError, wants_html
from app.extensions import db
from app.serializers import shipment_to_dict
from app.services.dashboard import list_shipments, recent_locations, status_tally
from app.services.roles import Permission
from app.services.shipments import find_shipment, next_statuses, record_status_change, status_counts, timeline
from app.shipments.forms import StatusUpdateForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
@staff_required(Permission.VIEW_SHIPMENTS)
def dashboard():
    if not wants_html():
        return jsonify({"counts": status_counts()})
    form = ShipmentFilterForm(formdata=request.args)
    if not form.validate():
        raise ValidationError("The search options are not valid.", fields=form.field_errors())
    results = list_shipments(form.to_filter(current_app.config["DISPLAY_TIMEZONE"]),
                             current_app.config["DEFAULT_PHONE_REGION"])
    return render_template("admin/dashboard.html", form=form, tally=status_tally(), results=results)


@bp.get("/shipments/<tracking_id>")
@staff_required(Permission.VIEW_SHIPMENTS)
def shipment_detail(tracking_id: str):
    shipment = find_shipment(tracking_id)
    if not wants_html():
        events = timeline(shipment)
        return jsonify({**shipment_to_dict(shipment, events, staff=True),
                        "allowed_next_statuses": next_statuses(shipment)})
    return _detail_page(shipment, StatusUpdateForm(formdata=None))


@bp.post("/shipments/<tracking_id>")
@staff_required(Permission.CHANGE_SHIPMENTS)
def record_update(tracking_id: str):
    """The update form on a shipment's page. Errors re-render the page with the values kept (PRG on success)."""
    form = StatusUpdateForm.from_request()
    if not form.validate():
        return _detail_page(find_shipment(tracking_id), form, 400)
    try:
        shipment, event = record_status_change(tracking_id, form.status.data, form.location.data,
                                               form.note.data, actor=current_user.username)
    except (InvalidTransition, Conflict) as error:
        db.session.rollback()
        return _detail_page(find_shipment(tracking_id), form, error.status_code, error.message)
    db.session.commit()
    flash(f"Status updated: {event.status} at {event.location}.", "success")
    return redirect(url_for("admin.shipment_detail", tracking_id=shipment.tracking_id))


def _detail_page(shipment, form: StatusUpdateForm, status_code: int = 200, problem: str | None = None):
    allowed = next_statuses(shipment)
    form.status.choices = [SelectChoice("", "Choose a status"), *map(SelectChoice, allowed)]
    page = render_template("admin/shipment.html", shipment=shipment, events=timeline(shipment), form=form,
                           allowed=allowed, locations=recent_locations(), problem=problem)
    return page, status_code
