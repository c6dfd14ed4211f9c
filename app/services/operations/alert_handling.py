"""Alerts as staff handle them: the list (open, acknowledged or all) and the acknowledgement with a note.

Rules:
- The list is newest first, at most LIST_LIMIT alerts; each names its parcel by tracking ID and its courier by
  username (null when it has none), as the JSON of GET /admin/alerts shows it.
- An alert is acknowledged once, with a note (1 to ALERT_NOTE_MAX characters after trimming) saying what was
  done: the acknowledgement is a conditional update, so two staff members acknowledging at once get one success
  and one Conflict (409), as does acknowledging again later. Audited (`alert_acknowledged`, with the kind and the
  note) in the caller's transaction. Unknown id: NotFound.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from app.domain.timeutil import isoformat_z, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Alert, Shipment, User
from app.models.alert import ALERT_NOTE_MAX
from app.services.staff.audit import record_audit

LIST_LIMIT = 200
STATES: tuple[str, ...] = ("open", "acknowledged", "all")
MAX_ALERT_ID = 2**31 - 1


@dataclass(frozen=True)
class AlertView:
    """One alert with its parcel's tracking ID and its courier's username."""

    id: int
    kind: str
    tracking_id: str | None
    courier: str | None
    raised_at: datetime
    details: dict
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    note: str | None

    def to_dict(self) -> dict:
        """The JSON of one alert (GET /admin/alerts); the note is on the page and in the audit trail."""
        return {"id": self.id, "kind": self.kind, "tracking_id": self.tracking_id, "courier": self.courier,
                "raised_at": isoformat_z(self.raised_at), "details": self.details,
                "acknowledged_by": self.acknowledged_by, "acknowledged_at": isoformat_z(self.acknowledged_at)}


def _views(conditions: list, limit: int) -> list[AlertView]:
    rows = db.session.execute(
        select(Alert, Shipment.tracking_id, User.username)
        .outerjoin(Shipment, Shipment.id == Alert.shipment_id)
        .outerjoin(User, User.id == Alert.courier_id)
        .where(*conditions).order_by(Alert.raised_at.desc(), Alert.id.desc()).limit(limit)).all()
    return [AlertView(alert.id, alert.kind, tracking_id, username, alert.raised_at, alert.details or {},
                      alert.acknowledged_by, alert.acknowledged_at, alert.note)
            for alert, tracking_id, username in rows]


def list_alerts(state: str = "open", limit: int = LIST_LIMIT) -> list[AlertView]:
    """The alerts in `state` (open, acknowledged or all), newest first; ValidationError for another state."""
    if state not in STATES:
        raise ValidationError(fields={"state": f"Must be one of: {', '.join(STATES)}."})
    conditions = {"open": [Alert.acknowledged_at.is_(None)], "acknowledged": [Alert.acknowledged_at.is_not(None)],
                  "all": []}[state]
    return _views(conditions, limit)


def alerts_by_id(ids: list[int]) -> list[AlertView]:
    """These alerts, oldest first (the digest's list)."""
    return list(reversed(_views([Alert.id.in_(ids)], len(ids)))) if ids else []


def acknowledge_alert(alert_id: int, note: str, *, actor: str, now: datetime | None = None) -> AlertView:
    """Acknowledge the alert `alert_id` with `note` (see the module's rules)."""
    note = (note or "").strip()
    if not note:
        raise ValidationError(fields={"note": "Say what was done about it."})
    if len(note) > ALERT_NOTE_MAX:
        raise ValidationError(fields={"note": f"At most {ALERT_NOTE_MAX} characters."})
    alert = db.session.get(Alert, alert_id) if 0 < alert_id <= MAX_ALERT_ID else None
    if alert is None:
        raise NotFound(f"There is no alert {alert_id}.")
    now = now or utcnow()
    done = db.session.execute(update(Alert).where(Alert.id == alert_id, Alert.acknowledged_at.is_(None))
                              .values(acknowledged_by=actor, acknowledged_at=now, note=note)
                              .execution_options(synchronize_session=False)).rowcount
    if not done:
        db.session.refresh(alert)
        raise Conflict(f"Alert {alert_id} was already acknowledged by {alert.acknowledged_by}.")
    record_audit("alert_acknowledged", actor=actor, target_type="alert", target_id=alert_id,
                 details={"kind": alert.kind, "note": note})
    db.session.refresh(alert)
    [view] = _views([Alert.id == alert_id], 1)
    return view
