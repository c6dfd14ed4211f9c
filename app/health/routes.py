"""Load-balancer probes."""
from flask import Blueprint, current_app, jsonify

from app.services.schema import schema_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving (no database work)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The database answers and its schema is at the migrations' head: the ALB sends traffic only to tasks that
    pass this (a task started before the migration task ran waits, instead of failing bookings)."""
    state = schema_state(current_app.extensions["migrate"].directory)
    if state == "unreachable":
        return jsonify({"status": "unavailable", "database": "unreachable"}), 503
    if state == "outdated":
        return jsonify({"status": "unavailable", "database": "ok", "schema": "not at the migrations' head"}), 503
    return jsonify({"status": "ok", "database": "ok", "schema": "current"})
