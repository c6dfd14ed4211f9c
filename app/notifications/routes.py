"""The outbox, for staff. The notifications issue fills this in."""
from flask import Blueprint, jsonify
from sqlalchemy import select

from app.auth.guard import staff_required
from app.extensions import db
from app.models import Notification

bp = Blueprint("notifications", __name__, url_prefix="/admin/notifications")


@bp.get("")
@staff_required
def outbox():
    rows = db.session.scalars(select(Notification).order_by(Notification.id.desc()).limit(50))
    return jsonify({"notifications": [{"id": n.id, "state": n.state, "attempts": n.attempts} for n in rows]})
