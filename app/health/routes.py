"""Load-balancer probes, and the Prometheus scrape (token-protected)."""
import hmac

from flask import Response, abort, current_app, jsonify, request

from app.db.schema import schema_state
from app.extensions import db
from app.health import bp
from app.observability import metrics
from app.services.outbox.stats import outbox_summary


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


@bp.get("/metrics")
def prometheus_metrics():
    """Every worker's metrics plus the outbox as it is now. Not public: no METRICS_TOKEN, no route (404);
    otherwise only `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time) gets an answer."""
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        abort(404)
    if not _bearer_matches(request.headers.get("Authorization", ""), token):
        return jsonify({"error": "A valid metrics token is needed."}), 401, {"WWW-Authenticate": "Bearer"}
    summary = outbox_summary()
    db.session.rollback()  # a read: end the transaction before building the text
    body, content_type = metrics.exposition(
        current_app.config.get("PROMETHEUS_MULTIPROC_DIR"),
        [metrics.OutboxCollector(summary.rows, summary.oldest_pending_age)],
    )
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})


def _bearer_matches(header: str, token: str) -> bool:
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
