"""Couriers as staff see them: GET /admin/couriers (each active courier's state, last position, stops and the
day's cash: JSON or a page) and GET /admin/couriers/<username>/trail?date= (a day as GeoJSON). Operators and
admins (VIEW_FIELD); read only, so nothing here is audited."""
from __future__ import annotations

import json

from flask import current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l

from app.admin import bp
from app.admin.courier_forms import TrailDayForm
from app.auth.guard import staff_required
from app.domain.field import CourierState, Vehicle
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import wants_html
from app.services.field.locations import day_trail
from app.services.field.roster import courier_roster

GEOJSON = "application/geo+json"
STATE_LABELS = {CourierState.ACTIVE: _l("Active"), CourierState.IDLE: _l("Idle"),
                CourierState.OFFLINE: _l("Offline"), CourierState.OFF_SHIFT: _l("Off shift")}
STATE_MEANINGS = {CourierState.ACTIVE: _l("sent a position in the last 2 minutes and is moving"),
                  CourierState.IDLE: _l("has not moved more than 25 m for over 8 minutes, or has been silent for "
                                        "2 to 15 minutes"),
                  CourierState.OFFLINE: _l("no position for 15 minutes"),
                  CourierState.OFF_SHIFT: _l("outside their shift")}
VEHICLE_LABELS = {Vehicle.TWO_WHEELER: _l("Two-wheeler"), Vehicle.THREE_WHEELER: _l("Three-wheeler"),
                  Vehicle.VAN: _l("Van")}


@bp.get("/couriers")
@staff_required(Permission.VIEW_FIELD)
def couriers():
    now = utcnow()
    roster = courier_roster(now, current_app.config["DISPLAY_TIMEZONE"])
    if not wants_html():
        return jsonify({"couriers": [entry.to_dict() for entry in roster]})
    return render_template("admin/couriers.html", couriers=roster, now=now, states=STATE_LABELS,
                           meanings=STATE_MEANINGS, vehicles=VEHICLE_LABELS)


@bp.get("/couriers/<username>/trail")
@staff_required(Permission.VIEW_FIELD)
def courier_trail(username: str):
    """The day's positions as a LineString and its closed stops as Points (GeoJSON, for any map tool)."""
    form = TrailDayForm(formdata=request.args)
    form.validate_or_raise()
    timezone = current_app.config["DISPLAY_TIMEZONE"]
    trail = day_trail(username, form.day(utcnow(), timezone), timezone)
    return current_app.response_class(json.dumps(trail.to_geojson(), separators=(",", ":")), mimetype=GEOJSON)
