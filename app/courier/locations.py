"""Positions the courier app sends while it is open and the courier is on shift: POST /courier/locations
`{"points": [...]}` → 202 `{"accepted", "dropped"}` (rules: app.services.field.locations; values:
app.courier.location_forms). JSON only, with the session's CSRF token in X-CSRFToken like every staff JSON post."""
from __future__ import annotations

from flask import current_app, jsonify
from flask_login import current_user

from app.auth.guard import accepts_upload, staff_required
from app.courier import bp
from app.courier.location_forms import MAX_BATCH_BYTES, read_position_batch
from app.domain.roles import Permission
from app.extensions import db
from app.services.field.locations import record_positions


@bp.post("/locations")
@staff_required(Permission.USE_COURIER_APP)
@accepts_upload(MAX_BATCH_BYTES)
def record_locations():
    positions = read_position_batch()
    receipt = record_positions(current_user.id, positions, current_app.config["DISPLAY_TIMEZONE"])
    db.session.commit()
    return jsonify(receipt.to_dict()), 202
