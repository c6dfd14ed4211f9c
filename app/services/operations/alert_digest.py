"""The alert digest: ADMIN_ALERT_EMAILS hear of new alerts in one email per ALERT_DIGEST_EVERY at most.

Rules:
- A digest is due when some alert was never emailed and the last digest (the latest `emailed_at` in the alerts
  table: durable, whichever process sent it) was ALERT_DIGEST_EVERY ago or more, or there was none.
- It is one outbox row per ADMIN_ALERT_EMAILS address (channel `alert_digest`, DESIGN rule 7: it leaves through
  the outbox worker, retried like every email), queued in the same transaction that sets `emailed_at` on every
  alert it covers: both happen or neither does. The rows are stamped `created_at` = that `emailed_at`; the worker
  renders the list from the alerts carrying it (render_digest), so every retry sends the same list.
- An outbox row names a parcel and one of its events (the table requires it), and (event, channel, recipient) is
  unique: a digest names the newest event of one of its parcels that no digest named before, else the newest such
  event of any parcel. It is only the row's anchor; the email does not mention it.
- No ADMIN_ALERT_EMAILS: nothing is queued and the alerts stay un-emailed (the page lists them all the same), so
  setting the addresses later sends one digest of what was missed.
- The email lists kinds, tracking IDs, couriers' usernames, times and the alerts' details (statuses, times,
  amounts): never an email address, a mobile or a street address. At most DIGEST_LIST_MAX alerts are listed,
  then how many more.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import escape
from sqlalchemy import func, select, update

from app.db.dialects import dialect_insert
from app.domain.timeutil import as_utc, isoformat_z
from app.extensions import db
from app.models import Alert, Notification, TrackingEvent
from app.services.operations.alert_handling import AlertView, alerts_by_id
from app.services.outbox.queueing import mark_outbox_changed

log = logging.getLogger(__name__)

DIGEST_CHANNEL = "alert_digest"
DIGEST_LIST_MAX = 100
KIND_LABELS = {
    "ndr_escalated": "Failed delivery escalated",
    "sla_at_risk": "SLA at risk",
    "sla_breached": "SLA breached",
    "courier_silent": "Courier silent",
    "unconfirmed_out_for_delivery": "Out for Delivery, no outcome",
    "cod_shortfall": "Cash on delivery short",
}
_NOTIFICATIONS = Notification.__table__


def last_digest_at() -> datetime | None:
    """When the last digest was queued (None: never)."""
    latest = db.session.scalar(select(func.max(Alert.emailed_at)))
    return None if latest is None else as_utc(latest)


def queue_alert_digest(now: datetime, every: timedelta, addresses: Sequence[str]) -> int | None:
    """Queue the digest when one is due (see the module's rules); how many alerts it covers, None when none was
    queued."""
    if not addresses:
        return None
    pending = db.session.execute(select(Alert.id, Alert.shipment_id).where(Alert.emailed_at.is_(None))
                                 .order_by(Alert.id)).all()
    if not pending:
        return None
    last = last_digest_at()
    if last is not None and now - last < every:
        return None
    anchor = _anchor([shipment_id for _id, shipment_id in pending if shipment_id is not None])
    if anchor is None:
        log.warning("Alert digest not queued: no tracking event to name in its outbox rows")
        return None
    shipment_id, event_id = anchor
    subject = f"Waybill: {len(pending)} new alert{'' if len(pending) == 1 else 's'}"
    db.session.execute(dialect_insert(_NOTIFICATIONS).values([
        {"shipment_id": shipment_id, "event_id": event_id, "channel": DIGEST_CHANNEL, "recipient": address,
         "subject": subject, "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        for address in dict.fromkeys(addresses)]).on_conflict_do_nothing())
    db.session.execute(update(Alert).where(Alert.id.in_([alert_id for alert_id, _ in pending]))
                       .values(emailed_at=now).execution_options(synchronize_session=False))
    mark_outbox_changed(db.session)
    return len(pending)


def _anchor(shipment_ids: list[int]) -> tuple[int, int] | None:
    """(shipment id, event id) for the digest's rows: an event no digest named yet (see the module's rules)."""
    named = (select(Notification.id).where(Notification.event_id == TrackingEvent.id,
                                           Notification.channel == DIGEST_CHANNEL).exists())
    newest = select(TrackingEvent.shipment_id, TrackingEvent.id).where(~named).order_by(TrackingEvent.id.desc())
    if shipment_ids:
        found = db.session.execute(newest.where(TrackingEvent.shipment_id.in_(shipment_ids[-500:])).limit(1)).first()
        if found is not None:
            return found.shipment_id, found.id
    found = db.session.execute(newest.limit(1)).first()
    return None if found is None else (found.shipment_id, found.id)


@dataclass(frozen=True)
class Digest:
    subject: str
    body_text: str
    body_html: str


def render_digest(subject: str, emailed_at: datetime, link: str) -> Digest:
    """The digest queued at `emailed_at`: the alerts it covers, oldest first, as text and HTML."""
    ids = list(db.session.scalars(select(Alert.id).where(Alert.emailed_at == emailed_at).order_by(Alert.id)))
    alerts = alerts_by_id(ids[:DIGEST_LIST_MAX])
    more = len(ids) - len(alerts)
    lines = [_line(alert) for alert in alerts]
    text = "\n".join([f"{subject}.", "", *(f"- {line}" for line in lines)]
                     + ([f"- and {more} more"] if more else []) + ["", f"See and acknowledge them at:\n{link}", ""])
    items = "".join(f"<li>{escape(line)}</li>" for line in lines) + (f"<li>and {more} more</li>" if more else "")
    html = (f"<p>{escape(subject)}.</p><ul>{items}</ul>"
            f"<p>See and acknowledge them at <a href=\"{escape(link)}\">{escape(link)}</a>.</p>")
    return Digest(subject, text, html)


def _line(alert: AlertView) -> str:
    """"SLA breached · 2026-12-07T10:05:00Z · AB12CD34 · promised_by 2026-12-06T18:29:59Z"."""
    parts = [KIND_LABELS.get(alert.kind, alert.kind), isoformat_z(alert.raised_at)]
    if alert.tracking_id:
        parts.append(alert.tracking_id)
    if alert.courier:
        parts.append(f"courier {alert.courier}")
    parts.extend(f"{key} {value}" for key, value in sorted(alert.details.items()) if value is not None)
    return " · ".join(str(part) for part in parts)
