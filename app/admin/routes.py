"""The operator dashboard."""
from flask import Blueprint, jsonify, render_template
from app.auth.guard import staff_required
from app.errors import wants_html
from app.serializers import shipment_to_dict
from app.services.shipments import find_shipment, next_statuses, status_counts, timeline
from app.shipments.forms import StatusUpdateForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("")
@staff_required
def dashboard():
    counts = status_counts()
    if wants_html():
        return render_template("admin/dashboard.html", counts=counts)
    return jsonify({"counts": counts})


@bp.get("/shipments/<tracking_id>")
@staff_required
def shipment_detail(tracking_id: str):
    shipment = find_shipment(tracking_id)
    events = timeline(shipment)
    allowed = next_statuses(shipment)
    if wants_html():
        form = StatusUpdateForm()
        form.status.choices = [(s, s) for s in allowed]
        return render_template("admin/shipment.html", shipment=shipment, events=events, form=form)
    return jsonify({**shipment_to_dict(shipment, events, staff=True), "allowed_next_statuses": allowed})
