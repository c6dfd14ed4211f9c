"""Looking shipments up: by tracking ID, their timelines, what may come next, by mobile, counts by status."""
from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import func, select

from app.domain.status import Status, allowed_next_statuses
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services.shipments.contacts import ContactError, normalise_mobile

SEARCH_LIMIT = 100


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
