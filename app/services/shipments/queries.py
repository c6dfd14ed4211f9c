"""Looking shipments up: by tracking ID, their timelines, what may come next, by mobile, counts by status.

One SQL form per rule: `events_in_order` is the only statement of "a shipment's events in order" (staff timelines,
the public tracking page and document, messages, the estimates all build on it), and `held_from_query` the only
one of "the status a shipment On Hold was held from" (the status-change core and next_statuses).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext
from sqlalchemy import ColumnElement, Select, func, select

from app.domain.status import Status, allowed_next_statuses
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import DeliveryProof, Shipment, TrackingEvent
from app.services.shipments.contacts import ContactError, normalise_mobile

SEARCH_LIMIT = 100
_EVENTS, _PROOFS = TrackingEvent.__table__, DeliveryProof.__table__
# A timeline's order: by the time each event records, then by id (two events of one instant keep the order in which
# they were written). Newest first is the same order reversed.
OLDEST_FIRST = (_EVENTS.c.occurred_at, _EVENTS.c.id)
NEWEST_FIRST = (_EVENTS.c.occurred_at.desc(), _EVENTS.c.id.desc())
# What a customer may see of an event (tracking pages and their JSON, messages): never the staff note or the
# actor; of its proof of delivery, who received it (shown by first name) and why a delivery attempt failed.
CUSTOMER_EVENT_COLUMNS = (_EVENTS.c.id, _EVENTS.c.shipment_id, _EVENTS.c.status, _EVENTS.c.location,
                          _EVENTS.c.customer_message, _EVENTS.c.occurred_at, _PROOFS.c.received_by,
                          _PROOFS.c.attempt_reason)


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
    typed = repr(typed_tracking_id.strip()[:32])
    return NotFound(gettext("No shipment has the tracking ID %(tracking_id)s.", tracking_id=typed))


def events_in_order(*columns: Any, with_proofs: bool = False, per_shipment: bool = False) -> Select:
    """Events' `columns`, oldest first (OLDEST_FIRST): the one statement of a timeline; callers say whose events
    (a WHERE on the shipment, or a join to it). `with_proofs` outer-joins each event's proof of delivery, for
    columns of DeliveryProof; `per_shipment` orders by shipment first, for reading many timelines as a stream."""
    statement = select(*columns).select_from(_EVENTS)
    if with_proofs:
        statement = statement.outerjoin(_PROOFS, _PROOFS.c.event_id == _EVENTS.c.id)
    return statement.order_by(*((_EVENTS.c.shipment_id,) if per_shipment else ()), *OLDEST_FIRST)


def timeline(shipment: Shipment) -> list[TrackingEvent]:
    """The shipment's events, oldest first, as staff see them (with notes and actors)."""
    return list(db.session.scalars(events_in_order(TrackingEvent).where(TrackingEvent.shipment_id == shipment.id)))


def customer_timelines(shipment_ids: Iterable[int]) -> dict[int, list[Any]]:
    """The timelines of these shipments as their customers may see them (CUSTOMER_EVENT_COLUMNS), each oldest
    first, by shipment id, in one query; a shipment with no events is left out."""
    timelines: dict[int, list[Any]] = {}
    for event in db.session.execute(events_in_order(*CUSTOMER_EVENT_COLUMNS, with_proofs=True)
                                    .where(_EVENTS.c.shipment_id.in_(list(shipment_ids)))):
        timelines.setdefault(event.shipment_id, []).append(event)
    return timelines


def held_from_query(shipment_id: int | ColumnElement[int]):
    """The status a shipment On Hold was held from, as a scalar subquery: status.held_from_timeline's rule (the
    latest event that is not On Hold) asked of the database, without loading the timeline. `shipment_id` is a
    value, or the id column of an outer query (the subquery then correlates to it: one look-up per row)."""
    return (select(_EVENTS.c.status)
            .where(_EVENTS.c.shipment_id == shipment_id, _EVENTS.c.status != Status.ON_HOLD.value)
            .order_by(*NEWEST_FIRST).limit(1).scalar_subquery())


def held_from(shipment: Shipment) -> str | None:
    """For a shipment On Hold, the status it was held from (held_from_query); None for any other status."""
    if shipment.status != Status.ON_HOLD:
        return None
    return db.session.scalar(select(held_from_query(shipment.id)))


def next_statuses(shipment: Shipment) -> list[str]:
    return allowed_next_statuses(shipment.status, held_from(shipment))


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
