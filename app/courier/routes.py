"""The courier app: its page, manifest, service worker, the day's stops and the actions sent from the door."""
from __future__ import annotations

from flask import jsonify
from flask_login import current_user

from app.auth.guard import accepts_upload, staff_required
from app.courier import bp
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.extensions import db
from app.services.field.courier_app import courier_stops
from app.services.field.events import MAX_EVENTS, record_events
from app.web.forms import json_object_list

# A batch of actions may carry photos and signatures (each at most 5 MB before base64): the app sends those in
# small batches, and one action with the largest photo and signature still fits.
EVENTS_BODY_MAX = 16 * 1024 * 1024


@bp.get("/stops")
@staff_required(Permission.USE_COURIER_APP)
def stops():
    """`{"courier", "date", "stops": [...], "attempt_reasons": [...]}`: the courier's own open stops up to today,
    then today's done ones. Never stored by the browser's HTTP cache: the app keeps its own copy for offline use."""
    response = jsonify(courier_stops(current_user, utcnow()).to_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/events")
@staff_required(Permission.USE_COURIER_APP)
@accepts_upload(EVENTS_BODY_MAX)
def events():
    """`{"events": [{"id", "tracking_id", "status", "at", ...}]}` (at most 100) → 200 `{"results": [{"id",
    "outcome", "error"?, "message"?, "fields"?, "locked_until"?}]}`, one a sent action, in order."""
    results = record_events(json_object_list("events", MAX_EVENTS), current_user)
    db.session.commit()
    return jsonify({"results": [result.to_dict() for result in results]})
