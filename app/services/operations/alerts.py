"""Operational alerts: raised once per cause, listed and acknowledged by staff, emailed in digests.

Rules:
- `raise_alert` inserts in the caller's transaction, ignoring a (kind, cause) that exists: however many processes
  or looks find the same cause, there is one alert. It counts the alerts it raised in Prometheus
  (`waybill_alerts_raised_total{kind}`) once the insert is in.
- `details` is what the page and the digest show: tracking IDs, usernames, statuses, times, amounts; never an
  email, a full mobile or a street address (the audit's redaction is not relied on: callers pass only those).
- The `alert` events of the live stream are fed by the same insert (app.services.operations.live).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.db.dialects import dialect_insert
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Alert
from app.observability.metrics import ALERTS_RAISED
from app.services.operations.live import publish_alert_raised

ALERT_KINDS: tuple[str, ...] = ("ndr_escalated", "sla_at_risk", "sla_breached", "courier_silent",
                                "unconfirmed_out_for_delivery", "cod_shortfall")
_ALERTS = Alert.__table__


def raise_alert(kind: str, cause: str, *, shipment_id: int | None = None, courier_id: int | None = None,
                details: dict | None = None, now: datetime | None = None) -> int | None:
    """Raise the alert `kind` for `cause` unless it was raised already; its id when raised now, else None."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"unknown alert kind {kind!r}")
    statement = (dialect_insert(_ALERTS)
                 .values(kind=kind, cause=cause, shipment_id=shipment_id, courier_id=courier_id,
                         raised_at=now or utcnow(), details=details or {})
                 .on_conflict_do_nothing(index_elements=["kind", "cause"])
                 .returning(_ALERTS.c.id))
    alert_id = db.session.execute(statement).scalar()
    if alert_id is not None:
        ALERTS_RAISED.labels(kind=kind).inc()
        publish_alert_raised(alert_id)
    return alert_id


def alert_exists(kind: str, cause: str) -> bool:
    return db.session.scalar(select(Alert.id).where(Alert.kind == kind, Alert.cause == cause)) is not None
