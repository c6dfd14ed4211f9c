"""Public look-ups: the landing page, GET /track/<id> and GET /search/<mobile> (JSON or HTML)."""
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from app.errors import ValidationError, wants_html
from app.serializers import shipment_to_dict
from app.services.contacts import mask_mobile
from app.services.shipments import find_shipment, search_by_mobile, timeline
from app.shipments.forms import BookingForm
from app.tracking.forms import MobileSearchForm, TrackForm

bp = Blueprint("tracking", __name__)


@bp.get("/")
def landing():
    return render_template("tracking/landing.html", booking_form=BookingForm())


@bp.get("/track")
def track_form():
    """The landing page's track-by-ID form (GET, so the result is bookmarkable)."""
    tracking_id = request.args.get("tracking_id", "").strip()
    if not tracking_id:
        raise ValidationError(fields={"tracking_id": "Enter a tracking ID."})
    return redirect(url_for("tracking.track", tracking_id=tracking_id[:32]))


@bp.get("/track/<tracking_id>")
def track(tracking_id: str):
    shipment = find_shipment(tracking_id)
    events = timeline(shipment)
    if wants_html():
        return render_template("tracking/track.html", shipment=shipment, events=events)
    return jsonify(shipment_to_dict(shipment, events))


@bp.post("/search")
def search_form():
    """The landing page's find-by-mobile form: POST, so the number stays out of URLs, history and logs."""
    form = MobileSearchForm.from_request()
    form.validate_or_raise()
    return _search_response(form.mobile.data)


@bp.get("/search/<mobile>")
def search(mobile: str):
    return _search_response(mobile)


def _search_response(raw_mobile: str):
    mobile, shipments = search_by_mobile(raw_mobile, current_app.config["DEFAULT_PHONE_REGION"])
    if wants_html() or not request.is_json and request.method == "POST":
        return render_template("tracking/search.html", masked_mobile=mask_mobile(mobile), shipments=shipments)
    return jsonify({"mobile": mask_mobile(mobile), "shipments": [shipment_to_dict(s) for s in shipments]})
