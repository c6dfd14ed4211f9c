"""The outbox, from the business side: queueing a message for a tracking event in the change's transaction (to the
recipient, and the sender's notices of the return leg), and the staff view of it (listing, reviving dead rows).
What a message says is rendered by the outbox worker when it sends it (app.services.outbox.messages); a row holds
only who gets what about which event.

Layers: this module never imports the worker. It marks the session (`mark_outbox_changed`); the worker, when it
runs in this process, listens for commits of marked sessions and wakes up.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Insert, func, literal, select, union_all, update
from sqlalchemy.orm import Session

from app.domain.pagination import Pagination
from app.domain.timeutil import utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Notification, Shipment
from app.models.notification import STATES
from app.services.outbox import preferences
from app.services.staff.audit import record_audit

# Set in `Session.info` when a transaction adds or revives outbox rows; read by the worker's after_commit hook.
OUTBOX_CHANGED = "waybill.outbox_changed"
_NOTIFICATIONS = Notification.__table__
MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys
# What a queued row is given, in the order of the SELECTs that feed it.
_QUEUED_COLUMNS = ["shipment_id", "event_id", "channel", "recipient", "subject", "state", "attempts",
                   "next_attempt_at", "created_at"]
OUTBOX_PAGE_SIZE = 50
OUTBOX_MAX_PAGE = 100_000


def mark_outbox_changed(session: Session) -> None:
    """Note that this transaction gives the outbox work: whoever drains it may be woken once it commits."""
    session.info[OUTBOX_CHANGED] = True


def status_subject(tracking_id, status):
    """The subject an email or SMS row about a status is stored with, "Shipment <tracking ID>: <status>", as an SQL
    expression of the two columns. It is what the outbox page and the logs show; the email itself is sent with
    the subject said in the booking's language (app.services.outbox.messages)."""
    return literal("Shipment ") + tracking_id + literal(": ") + status


def status_email_insert_from(source, *, new_shipments: bool = False) -> Insert:
    """The outbox insert for the messages about each row of `source` (a selectable with shipment_id, event_id,
    tracking_id, status, recipient and due_at; optionally mobile), for a statement that writes events and their
    messages in one round trip: the email (when the shipment has an address), and the SMS, each only when the
    recipient's choices and the defaults let the status through (`new_shipments`: the shipments are booked by the
    same statement, so they have no choices yet). Each row's subject is status_subject of the source's
    tracking_id and status. The caller marks the session (`mark_outbox_changed`).

    Without a `mobile` column it is read from shipments, so a shipment written by the same statement gets no SMS:
    such a caller adds `mobile` to its source.
    """
    status = source.c.status
    subject = status_subject(source.c.tracking_id, status)
    mobile = (source.c.mobile if "mobile" in source.c else
              select(Shipment.mobile).where(Shipment.id == source.c.shipment_id).correlate(source).scalar_subquery())
    email_rows = select(
        source.c.shipment_id, source.c.event_id, literal("email"), source.c.recipient, subject,
        literal("pending"), literal(0), source.c.due_at, source.c.due_at,
    ).where(source.c.recipient.is_not(None),  # a recipient with only a mobile gets SMS only
            preferences.notifies("email", source.c.shipment_id, status, new_shipments=new_shipments))
    sms_rows = select(
        source.c.shipment_id, source.c.event_id, literal("sms"), mobile, subject,
        literal("pending"), literal(0), source.c.due_at, source.c.due_at,
    ).where(mobile.is_not(None), preferences.notifies("sms", source.c.shipment_id, status,
                                                      new_shipments=new_shipments))
    return _NOTIFICATIONS.insert().from_select(_QUEUED_COLUMNS, union_all(email_rows, sms_rows))


def sender_notice_insert_from(source) -> Insert:
    """The outbox insert for the sender's notices about each row of `source` (a selectable with shipment_id,
    event_id, tracking_id, status, sender_email, sender_mobile and due_at): an email (channel `sender_email`) and
    an SMS (`sender_sms`) to the sender's contacts, each only when the shipment has that contact and the sender
    hears of the status (preferences.notifies_sender: RTO Initiated and Returned to Sender, unless the sender
    turned the channel off). The worker writes them in the booking's language, like the recipient's. Subjects as
    status_subject. The caller marks the session (`mark_outbox_changed`).
    """
    status = source.c.status
    subject = status_subject(source.c.tracking_id, status)
    notices = [
        select(source.c.shipment_id, source.c.event_id, literal(channel), contact, subject,
               literal("pending"), literal(0), source.c.due_at, source.c.due_at,
               ).where(contact.is_not(None), preferences.notifies_sender(channel, source.c.shipment_id, status))
        for channel, contact in (("sender_email", source.c.sender_email), ("sender_sms", source.c.sender_mobile))
    ]
    return _NOTIFICATIONS.insert().from_select(_QUEUED_COLUMNS, union_all(*notices))


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


def revive_dead(notification_id: int) -> bool:
    """Give a dead outbox row a fresh start: pending, no attempts counted, due now, no lease (its last error
    stays, for staff to see until the next attempt). True if the row was dead and is pending now; False if it
    is not dead or does not exist. Race-free: the state is checked by the UPDATE itself, so of two staff
    reviving one row only one does. Marks the session when it revived the row.

    Every way a dead row is sent again goes through here (retry_dead, webhooks.replay_delivery); each keeps its
    own checks and audit row. The row's loaded object, if any, is stale afterwards: read it again.
    """
    changed = db.session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.state == "dead")
        .values(state="pending", attempts=0, next_attempt_at=utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed:
        mark_outbox_changed(db.session)
    return bool(changed)


def retry_dead(notification_id: int, actor: str) -> Notification:
    """Give a dead notification a fresh start (revive_dead), for staff on the outbox page.

    Rules: only `dead` rows (Conflict otherwise: a pending or sent row must not be sent again by hand);
    NotFound for an unknown id.
    """
    if not 0 < notification_id <= MAX_ROW_ID:  # beyond the column's range: cannot exist, and overflows drivers
        raise NotFound(f"No notification #{notification_id}.")
    revived = revive_dead(notification_id)
    notification = db.session.scalars(
        select(Notification).where(Notification.id == notification_id)
        .execution_options(populate_existing=True)
    ).first()
    if notification is None:
        raise NotFound(f"No notification #{notification_id}.")
    if not revived:
        raise Conflict(f"Notification #{notification_id} is {notification.state}; only dead ones can be retried.",
                       state=notification.state)
    record_audit("notification_retried", actor=actor, target_type="notification", target_id=notification_id,
                 details={"channel": notification.channel, "shipment_id": notification.shipment_id})
    return notification
