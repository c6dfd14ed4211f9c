"""Booking, status changes and look-ups of shipments."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value

from app.errors import Conflict, InvalidTransition, NotFound, ValidationError
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services import outbox, tracking_cache
from app.services.audit import record_audit
from app.services.contacts import ContactError, normalise_mobile
from app.services.status import Status, allowed_next_statuses, canonical_status
from app.services.tracking_ids import new_tracking_id, normalise_tracking_id
from app.services.webhooks import queue_webhook_deliveries
from app.timeutil import utcnow

ORIGIN_LOCATION = "Origin Facility"
SEARCH_LIMIT = 100
_ID_ATTEMPTS = 5
_CAS_ATTEMPTS = 5
_SHIPMENTS, _EVENTS = Shipment.__table__, TrackingEvent.__table__


@dataclass(frozen=True)
class NewShipment:
    sender_name: str
    receiver_name: str
    mobile: str  # already E.164
    email: str  # already validated
    destination: str


def create_shipment(data: NewShipment, actor: str = "customer") -> Shipment:
    """Book a shipment: a unique tracking ID, the first "Booked" event and the recipient's email, one unit.

    A tracking-ID collision is resolved by drawing again, race-free (INSERT … ON CONFLICT DO NOTHING).
    Rows are written with Core inserts (this is the busiest write path); the objects returned are
    transient copies of what was stored.
    """
    now = utcnow()
    values = {
        "sender_name": data.sender_name, "receiver_name": data.receiver_name, "mobile": data.mobile,
        "email": data.email, "destination": data.destination, "status": Status.BOOKED.value,
        "created_at": now, "updated_at": now,
    }
    if db.session.connection().dialect.name == "postgresql":
        shipment = _book_in_one_statement(values, actor)
    else:
        shipment_id, tracking_id = _insert_with_unique_tracking_id(values)
        shipment = Shipment(id=shipment_id, tracking_id=tracking_id, **values)
        event = _insert_event(shipment_id, Status.BOOKED.value, ORIGIN_LOCATION, None, actor, now)
        outbox.enqueue_status_email(shipment, event)
    queue_webhook_deliveries(shipment_ids=[shipment.id])
    return shipment


def _insert_with_unique_tracking_id(values: dict) -> tuple[int, str]:
    connection = db.session.connection()
    for _ in range(_ID_ATTEMPTS):
        tracking_id = new_tracking_id()
        shipment_id = connection.execute(_INSERT_SHIPMENT, {"tracking_id": tracking_id, **values}).scalar()
        if shipment_id is not None:
            return shipment_id, tracking_id
    raise Conflict("Could not allocate a tracking ID; please try again.")


def _book_in_one_statement(values: dict, actor: str) -> Shipment:
    """PostgreSQL: shipment, Booked event and email row in one INSERT … RETURNING chain, one round trip. A
    tracking-ID collision inserts nothing at all (ON CONFLICT DO NOTHING feeds the rest) and draws again."""
    connection = db.session.connection()
    for _ in range(_ID_ATTEMPTS):
        tracking_id = new_tracking_id()
        row = connection.execute(_BOOKING, {
            "tracking_id": tracking_id, **values, "location": ORIGIN_LOCATION, "actor": actor,
            "subject": f"Shipment {tracking_id}: {Status.BOOKED.value}",
        }).first()
        if row is not None:
            outbox.mark_outbox_changed(db.session)
            return Shipment(id=row.shipment_id, tracking_id=tracking_id, **values)
    raise Conflict("Could not allocate a tracking ID; please try again.")


# Statements built once, values bound per call: building them per booking (and their cache keys) cost more
# than running them.
_INSERT_SHIPMENT = (sqlite_insert(_SHIPMENTS).on_conflict_do_nothing(index_elements=["tracking_id"])
                    .returning(_SHIPMENTS.c.id))
_INSERT_EVENT = _EVENTS.insert().returning(_EVENTS.c.id)


def _booking_statement():
    columns = ("tracking_id", "sender_name", "receiver_name", "mobile", "email", "destination", "status",
               "created_at", "updated_at")
    booked = (pg_insert(_SHIPMENTS).values({name: bindparam(name) for name in columns})
              .on_conflict_do_nothing(index_elements=["tracking_id"])
              .returning(_SHIPMENTS.c.id, _SHIPMENTS.c.status, _SHIPMENTS.c.email, _SHIPMENTS.c.created_at)
              .cte("booked"))
    first_event = (_EVENTS.insert().from_select(
        ["shipment_id", "status", "location", "note", "actor", "occurred_at"],
        select(booked.c.id, booked.c.status, bindparam("location"), null(), bindparam("actor"), booked.c.created_at),
    ).returning(_EVENTS.c.id, _EVENTS.c.shipment_id, _EVENTS.c.occurred_at).cte("first_event"))
    email = select(first_event.c.shipment_id, first_event.c.id.label("event_id"),
                   booked.c.email.label("recipient"), bindparam("subject").label("subject"),
                   first_event.c.occurred_at.label("due_at")).join_from(
        first_event, booked, booked.c.id == first_event.c.shipment_id).subquery("email")
    queued = outbox.status_email_insert_from(email).cte("queued")
    return select(first_event.c.shipment_id, first_event.c.id.label("event_id")).add_cte(queued)


_BOOKING = _booking_statement()


def _insert_event(shipment_id: int, status: str, location: str, note: str | None, actor: str,
                  occurred_at, customer_message: str | None = None) -> TrackingEvent:
    """Append one tracking event (never updated afterwards) and return a transient copy of it."""
    values = {"shipment_id": shipment_id, "status": status, "location": location, "note": note or None,
              "customer_message": customer_message or None, "actor": actor, "occurred_at": occurred_at}
    event_id = db.session.connection().execute(_INSERT_EVENT, values).scalar_one()
    return TrackingEvent(id=event_id, **values)


def find_shipment(tracking_id: str) -> Shipment:
    """The shipment with this tracking ID (any case, spaces ignored); NotFound otherwise."""
    canonical = normalise_tracking_id(tracking_id)
    shipment = None
    if canonical is not None:
        shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == canonical)).first()
    if shipment is None:
        raise shipment_not_found(tracking_id)
    return shipment


def shipment_not_found(typed_tracking_id: str) -> NotFound:
    return NotFound(f"No shipment has the tracking ID {typed_tracking_id.strip()[:32]!r}.")


def timeline(shipment: Shipment) -> list[TrackingEvent]:
    """The shipment's events, oldest first."""
    return list(db.session.scalars(
        select(TrackingEvent)
        .where(TrackingEvent.shipment_id == shipment.id)
        .order_by(TrackingEvent.occurred_at, TrackingEvent.id)
    ))


def held_from(shipment: Shipment) -> str | None:
    """For a shipment On Hold, the status it was held from: status.held_from_timeline's rule, asked of the
    database (the latest event that is not On Hold) without loading the whole timeline."""
    if shipment.status != Status.ON_HOLD:
        return None
    return db.session.scalars(
        select(TrackingEvent.status)
        .where(TrackingEvent.shipment_id == shipment.id, TrackingEvent.status != Status.ON_HOLD.value)
        .order_by(TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc())
        .limit(1)
    ).first()


def next_statuses(shipment: Shipment) -> list[str]:
    return allowed_next_statuses(shipment.status, held_from(shipment))


def record_status_change(tracking_id: str, status: str, location: str, note: str | None,
                         actor: str, *, customer_message: str | None = None) -> tuple[Shipment, TrackingEvent]:
    """Move a shipment to `status`: new status, one appended event, the recipient's email and the audit row,
    one unit.

    `note` is for staff only; `customer_message` is what the customer sees (tracking page and email).

    Concurrent changes to one shipment are serialised by a compare-and-set on its status (works the same on
    PostgreSQL and SQLite): a change that lost the race is checked again against the new status, and either
    applies on top of it or fails with InvalidTransition (409).
    """
    requested = canonical_status(status)
    if requested is None:
        raise ValidationError(fields={"status": f"Unknown status {status[:40]!r}."})
    shipment = find_shipment(tracking_id)
    for _ in range(_CAS_ATTEMPTS):
        current = shipment.status
        allowed = allowed_next_statuses(current, held_from(shipment))
        if requested not in allowed:
            raise InvalidTransition(current, requested, allowed)
        won = db.session.execute(
            update(Shipment)
            .where(Shipment.id == shipment.id, Shipment.status == current)
            .values(status=requested)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if won:
            break
        shipment = db.session.scalars(
            select(Shipment).where(Shipment.id == shipment.id).execution_options(populate_existing=True)
        ).one()
    else:
        raise Conflict("The shipment is being updated by someone else; please try again.")

    # The time is taken after the row is ours, so event order and commit order agree.
    now = utcnow()
    set_committed_value(shipment, "status", requested)
    shipment.updated_at = now
    db.session.flush()  # the shipment's new updated_at
    event = _insert_event(shipment.id, requested, location, note, actor, now, customer_message)
    outbox.enqueue_status_email(shipment, event)
    queue_webhook_deliveries([event.id])
    record_audit("status_changed", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details={"from": current, "to": requested, "location": location})
    tracking_cache.publish_change(shipment.tracking_id)
    return shipment, event


def search_by_mobile(raw_mobile: str, default_region: str) -> tuple[str, list[Shipment]]:
    """The normalised number and its shipments, newest first (at most SEARCH_LIMIT)."""
    try:
        mobile = normalise_mobile(raw_mobile, default_region)
    except ContactError as exc:
        raise ValidationError(str(exc), fields={"mobile": str(exc)}) from exc
    shipments = list(db.session.scalars(
        select(Shipment).where(Shipment.mobile == mobile)
        .order_by(Shipment.created_at.desc(), Shipment.id.desc()).limit(SEARCH_LIMIT)
    ))
    return mobile, shipments


def status_counts() -> dict[str, int]:
    """How many shipments are in each status (statuses with none are left out)."""
    rows = db.session.execute(select(Shipment.status, func.count()).group_by(Shipment.status)).all()
    return {status: count for status, count in rows}
