"""Booking (public) and status changes (staff): the paper's POST /create and POST /update/<id>."""
from flask import current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.guard import json_without_csrf, staff_required
from app.domain.roles import Permission
from app.domain.timeutil import isoformat_z
from app.errors import ValidationError
from app.extensions import db, limiter
from app.i18n.locales import current_language
from app.services.shipments.booking import create_shipment
from app.services.shipments.public_document import tracking_url
from app.services.shipments.queries import timeline
from app.services.shipments.status_changes import record_status_change
from app.shipments import bp
from app.shipments.forms import BookingForm, StatusUpdateForm
from app.web.forms import read_form, refused_on_page
from app.web.serializers import shipment_to_dict

BOOKED_CHARGES = "booked_charges"  # the session's last booking and its charges, for its confirmation


@bp.post("/create")
@limiter.limit(lambda: current_app.config["RATELIMIT_CREATE"],
               error_message=lambda: gettext("Too many bookings from your address; try again shortly."))
@json_without_csrf
def create():
    form = BookingForm.from_request()
    try:
        form.validate_or_raise()
        # The booking keeps the language it was made in (page or Accept-Language): its emails are written in it.
        shipment = create_shipment(form.to_new_shipment(language=current_language()))
    except ValidationError as error:  # the form's rules (400), or the network's (422: not served as asked)
        problem = refused_on_page(error, form)
        return render_template("tracking/landing.html", booking_form=form, booking_problem=problem), \
            error.status_code
    db.session.commit()
    if not request.is_json:
        # What it costs, for the booker's confirmation only (this browser's session): tracking pages never say.
        session[BOOKED_CHARGES] = {"tracking_id": shipment.tracking_id, "charges": shipment.charges}
        return redirect(url_for("tracking.track", tracking_id=shipment.tracking_id, booked=1))
    body = {"tracking_id": shipment.tracking_id, "status": shipment.status,
            "tracking_url": tracking_url(shipment.tracking_id), "charges": shipment.charges,
            "promised_by": isoformat_z(shipment.promised_by)}
    return jsonify(body), 201, {"Location": url_for("tracking.track", tracking_id=shipment.tracking_id)}


@bp.post("/update/<tracking_id>")
@staff_required(Permission.CHANGE_SHIPMENTS)
def update(tracking_id: str):
    """The paper's status change. Proof of delivery is optional here (clients written for the paper do not
    send it): `received_by` and `attempt_reason` are recorded when sent, and as not given when not."""
    form = read_form(StatusUpdateForm)
    shipment, _event = record_status_change(tracking_id, form.status.data, form.location.data,
                                            form.note.data, actor=current_user.username,
                                            customer_message=form.customer_message.data,
                                            received_by=form.received_by.data, attempt_reason=form.attempt_reason.data)
    db.session.commit()
    if not request.is_json:
        return redirect(url_for("admin.shipment_detail", tracking_id=shipment.tracking_id))
    return jsonify(shipment_to_dict(shipment, timeline(shipment), staff=True))
