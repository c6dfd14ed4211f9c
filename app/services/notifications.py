"""Recipient emails: queueing them in the outbox (rendered now, sent by app.notifier after the commit), and the
staff view of the outbox (listing, retrying dead rows)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app, render_template
from sqlalchemy import func, select, update

from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.models.notification import STATES
from app.notifier.worker import flag_outbox_changed
from app.services.audit import record_audit
from app.services.pagination import Pagination
from app.timeutil import as_utc, to_local, utcnow

TIMELINE_LENGTH = 5  # events shown in an email, newest first
_NOTIFICATIONS = Notification.__table__
MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys
OUTBOX_PAGE_SIZE = 50
OUTBOX_MAX_PAGE = 100_000


def enqueue_status_email(shipment: Shipment, event: TrackingEvent,
                         timeline: list[TrackingEvent] | None = None) -> None:
    """Insert the email for one tracking event into the outbox, in the caller's transaction.

    Rules: rendered now (the email says what was true at this event, whenever it leaves); due at once;
    one row per event and recipient (a unique constraint). Sending happens after the commit, never here.
    `timeline` (newest first) saves the look-up when the caller knows it, as at booking.
    """
    context = status_email_context(shipment, event, timeline)
    db.session.connection().execute(_NOTIFICATIONS.insert(), {
        "shipment_id": shipment.id,
        "event_id": event.id,
        "channel": "email",
        "recipient": shipment.email,
        "subject": status_email_subject(shipment, event),
        "body_text": render_template(_status_templates(event.status, "txt"), **context),
        "body_html": render_template(_status_templates(event.status, "html"), **context),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": event.occurred_at,
        "created_at": event.occurred_at,
    })
    flag_outbox_changed(db.session)  # a Core insert: the flush hook would not see it


def status_email_subject(shipment: Shipment, event: TrackingEvent) -> str:
    return f"Shipment {shipment.tracking_id}: {event.status}"


def status_email_context(shipment: Shipment, event: TrackingEvent,
                         timeline: list[TrackingEvent] | None = None) -> dict:
    """What the status templates show: the event, its time in UTC and local time, and the recent timeline."""
    tz_name = current_app.config["DISPLAY_TIMEZONE"]
    recent = timeline if timeline is not None else db.session.scalars(
        select(TrackingEvent)
        .where(TrackingEvent.shipment_id == shipment.id)
        .order_by(TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc())
        .limit(TIMELINE_LENGTH)
    ).all()
    return {
        "shipment": shipment,
        "event": event,
        "time_local": _format_time(event.occurred_at, tz_name),
        "time_utc": _format_time(event.occurred_at, "UTC"),
        "timeline": [
            {"status": e.status, "location": e.location, "time_local": _format_time(e.occurred_at, tz_name),
             "current": e.id == event.id}
            for e in recent
        ],
        "tracking_url": f"{current_app.config['PUBLIC_BASE_URL']}/track/{shipment.tracking_id}",
    }


def _format_time(value: datetime, tz_name: str) -> str:
    local = to_local(value, tz_name) if tz_name != "UTC" else as_utc(value)
    return f"{local.strftime('%d %b %Y, %H:%M')} {local.tzname()}"


def _status_templates(status: str, extension: str) -> list[str]:
    slug = "_".join(status.lower().split())
    return [f"email/status/{slug}.{extension}", f"email/status/default.{extension}"]


# --- the outbox, for staff ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutboxEntry:
    notification: Notification
    tracking_id: str


@dataclass(frozen=True)
class OutboxPage(Pagination):
    entries: list[OutboxEntry]
    state: str | None
    page: int
    per_page: int
    total: int
    counts: dict[str, int]


def list_outbox(state: str | None = None, page: int = 1, per_page: int = OUTBOX_PAGE_SIZE) -> OutboxPage:
    """One page of the outbox, newest first, optionally only rows in one state.

    Rules: `state` is one of pending, sending, sent, dead (or None for all); pages count from 1.
    """
    if state is not None and state not in STATES:
        raise ValidationError(fields={"state": f"Must be one of: {', '.join(STATES)}."})
    if not 1 <= page <= OUTBOX_MAX_PAGE:
        raise ValidationError(fields={"page": f"Must be a whole number from 1 to {OUTBOX_MAX_PAGE}."})
    query = select(Notification, Shipment.tracking_id).join(Shipment, Shipment.id == Notification.shipment_id)
    total_query = select(func.count()).select_from(Notification)
    if state is not None:
        query = query.where(Notification.state == state)
        total_query = total_query.where(Notification.state == state)
    rows = db.session.execute(
        query.order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    return OutboxPage(
        entries=[OutboxEntry(notification, tracking_id) for notification, tracking_id in rows],
        state=state, page=page, per_page=per_page, total=db.session.scalar(total_query) or 0,
        counts=outbox_counts(),
    )


def outbox_counts() -> dict[str, int]:
    """How many notifications are in each state (every state listed, zero included)."""
    rows = db.session.execute(select(Notification.state, func.count()).group_by(Notification.state)).all()
    counts = {state: count for state, count in rows}
    return {state: counts.get(state, 0) for state in STATES}


def retry_dead(notification_id: int, actor: str) -> Notification:
    """Give a dead notification a fresh start: pending, no attempts counted, due now.

    Rules: only `dead` rows (Conflict otherwise: a pending or sent row must not be sent again by hand);
    NotFound for an unknown id. Race-free: the state is checked by the UPDATE itself.
    """
    if not 0 < notification_id <= MAX_ROW_ID:  # beyond the column's range: cannot exist, and overflows drivers
        raise NotFound(f"No notification #{notification_id}.")
    changed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.state == "dead")
        .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    notification = db.session.scalars(
        select(Notification).where(Notification.id == notification_id)
        .execution_options(populate_existing=True)
    ).first()
    if notification is None:
        raise NotFound(f"No notification #{notification_id}.")
    if not changed:
        raise Conflict(f"Notification #{notification_id} is {notification.state}; only dead ones can be retried.",
                       state=notification.state)
    record_audit("notification_retried", actor=actor, target_type="notification", target_id=notification_id,
                 details={"channel": notification.channel, "shipment_id": notification.shipment_id})
    flag_outbox_changed(db.session)
    return notification
