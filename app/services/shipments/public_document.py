"""The public tracking document (GET /track/<id> as JSON): one query, cached per process when it is safe.

The document carries the shipment's estimated delivery (one primary-key look-up when it is built), so the
estimate is cached and invalidated with the rest of it: on every status change, and for every document when the
estimates are rebuilt (app.services.shipments.estimates publishes EVERY_DOCUMENT).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from flask import current_app
from flask_babel import force_locale
from sqlalchemy import bindparam

from app.domain import links
from app.domain.privacy import destination_area, first_name_and_initial
from app.domain.status import Status, held_from_timeline, hold_releases
from app.domain.timeutil import isoformat_z, parse_iso_z, utcnow
from app.domain.tracking_ids import normalise_tracking_id
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.observability.metrics import count_cache_lookup
from app.services.field.public_courier import CourierOnTheWay, courier_on_the_way
from app.services.shipments.estimates import Estimate, estimate
from app.services.shipments.proofs import attempt_reason_label, public_delivery_from
from app.services.shipments.queries import (
    CUSTOMER_EVENT_COLUMNS,
    customer_timelines,
    events_in_order,
    shipment_not_found,
)
from app.services.shipments.tracking_cache import CachedDocument, DocumentCache

_shipments = Shipment.__table__
# Shipment and its timeline (queries.events_in_order, as customers see it) in one round trip: every shipment has
# at least its "Booked" event. Contacts and staff notes are not even read: this document is public (names and
# destination are shortened when serialised; of a proof of delivery only the receiver's name and the attempt reason
# are read, and of the name only its first word is shown).
_TRACKING_ROWS = (
    events_in_order(
        _shipments.c.tracking_id, _shipments.c.status.label("shipment_status"), _shipments.c.sender_name,
        _shipments.c.receiver_name, _shipments.c.destination, _shipments.c.pieces, _shipments.c.created_at,
        _shipments.c.updated_at, _shipments.c.promised_by,
        *CUSTOMER_EVENT_COLUMNS, with_proofs=True)
    .join(_shipments, _shipments.c.id == TrackingEvent.__table__.c.shipment_id)
    .where(_shipments.c.tracking_id == bindparam("tracking_id"))
)


@dataclass(frozen=True)
class PublicEvent:
    """One step of the public timeline. `received_by` is read only for the receiver's first name; an event
    that released a hold repeats the status held from, so it is shown as "Hold released"."""

    status: str
    location: str
    customer_message: str | None
    occurred_at: datetime
    received_by: str | None
    attempt_reason: str | None  # the code; pages and JSON show its label
    hold_released: bool = False

    @property
    def attempt_reason_label(self):
        return attempt_reason_label(self.attempt_reason)


def public_timeline(shipment_id: int) -> list[PublicEvent]:
    """A shipment's public timeline, oldest first: each event with its attempt reason and whether it released
    a hold (the tracking page and its live part; the JSON document reads the same events with its shipment)."""
    return _public_events(customer_timelines([shipment_id]).get(shipment_id, []))


def _public_events(rows) -> list[PublicEvent]:
    released = hold_releases(r.status for r in rows)
    return [PublicEvent(r.status, r.location, r.customer_message, r.occurred_at, r.received_by,
                        r.attempt_reason, hold_released) for r, hold_released in zip(rows, released, strict=True)]


def public_tracking_document(tracking_id: str) -> CachedDocument:
    """The public JSON of a shipment and its events (oldest first) with a strong ETag; NotFound if unknown.

    A Delivered shipment's document also has `delivery`: the receiver's first name and the time. The proof is
    written in the status change's transaction, whose commit evicts the cached document, so it is never stale.
    An Out for Delivery shipment's document may have `courier` (see _with_courier), added after the cache.
    """
    canonical = normalise_tracking_id(tracking_id)
    if canonical is None:
        raise shipment_not_found(tracking_id)
    return _with_courier(_cached_or_loaded(canonical, tracking_id), canonical)


def _cached_or_loaded(canonical: str, typed: str) -> CachedDocument:
    cache: DocumentCache | None = current_app.extensions.get("waybill_tracking_cache")
    if cache is not None:
        cached = cache.get(canonical)
        count_cache_lookup(hit=cached is not None)
        if cached is not None:
            return cached
        ticket = cache.ticket(canonical)
    document = _load(canonical, typed)
    if cache is not None:
        cache.put(canonical, document, ticket)
    return document


def _load(canonical: str, typed: str) -> CachedDocument:
    rows = db.session.execute(_TRACKING_ROWS, {"tracking_id": canonical}).all()
    if not rows:
        raise shipment_not_found(typed)
    first = rows[0]
    shipment = SimpleNamespace(
        tracking_id=first.tracking_id, status=first.shipment_status, sender_name=first.sender_name,
        receiver_name=first.receiver_name, destination=first.destination, pieces=first.pieces,
        created_at=first.created_at, updated_at=first.updated_at, promised_by=first.promised_by,
    )
    events = _public_events(rows)
    data = public_shipment_to_dict(shipment, events)
    delivery = public_delivery_from(shipment.status, events)
    if delivery is not None:
        data["delivery"] = delivery.to_dict()
    expected = estimate(first.destination, first.shipment_status, rows[-1].occurred_at,
                        held_from=held_from_timeline(e.status for e in events),
                        default_factor=float(current_app.config["ETA_DEFAULT_FACTOR"]))
    data["estimated_delivery"] = expected.to_dict() if expected is not None else None
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return CachedDocument(etag=hashlib.blake2b(body, digest_size=12).hexdigest(), body=body,
                          status=first.shipment_status)


def _with_courier(document: CachedDocument, canonical: str) -> CachedDocument:
    """The document with its `courier` block (app.services.field.public_courier) when the shipment is Out for
    Delivery on a run sheet.

    The block changes without a status change (a stop before this one closes, the courier moves), so it is
    never cached: the cached document stays the same and the block is added per request, at the cost of one
    small indexed query for Out for Delivery shipments only (other statuses cost nothing). Expiring the cache
    on every position instead would evict documents a thousand times a second at peak. The block is spliced
    into the JSON as its last member, and the ETag covers it; while a position is shown the ETag also turns
    over with each minute of the fix's age, since the pages (whose ETag is built on this one) say "N min ago".
    """
    if document.status != Status.OUT_FOR_DELIVERY:
        return document
    now = utcnow()
    courier = courier_on_the_way(canonical, now, int(current_app.config["COURIER_SHOW_WITHIN_STOPS"]))
    if courier is None:
        return document
    block = json.dumps(courier.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
    body = document.body[:-1] + b',"courier":' + block + b"}"
    tag = hashlib.blake2b(f"{document.etag}|{courier.minutes_ago}|".encode() + block, digest_size=12).hexdigest()
    return CachedDocument(etag=tag, body=body, status=document.status)


def document_courier(document: CachedDocument) -> CourierOnTheWay | None:
    """The courier block a tracking document carries, if any: pages show the same one as the JSON."""
    if document.status != Status.OUT_FOR_DELIVERY:
        return None
    found = json.loads(document.body).get("courier")
    return CourierOnTheWay.from_dict(found, utcnow()) if found else None



def tracking_url(tracking_id: str) -> str:
    """The absolute link to a shipment's public tracking page, under this app's PUBLIC_BASE_URL."""
    return links.tracking_url(current_app.config["PUBLIC_BASE_URL"], tracking_id)


def public_event_to_dict(event: TrackingEvent) -> dict:
    """An event as anyone may see it: its customer-facing message, why a delivery attempt failed (the reason's
    label, in English like the status names) and whether the event released a hold (it then repeats the status
    the shipment was held from). No staff note, no actor."""
    label = attempt_reason_label(getattr(event, "attempt_reason", None))
    with force_locale("en"):
        attempt_reason = str(label) if label is not None else None
    return {
        "status": event.status,
        "location": event.location,
        "customer_message": event.customer_message,
        "occurred_at": isoformat_z(event.occurred_at),
        "attempt_reason": attempt_reason,
        "hold_released": bool(getattr(event, "hold_released", False)),
    }


def public_shipment_to_dict(shipment: Shipment, events: list[TrackingEvent] | None = None) -> dict:
    """The public shape of a shipment (DESIGN.md rule 9): status, first names with initials, destination city,
    the day it was promised by, and its events when given. No full name, street address, contact or staff
    note."""
    data = {
        "tracking_id": shipment.tracking_id,
        "status": shipment.status,
        "sender": first_name_and_initial(shipment.sender_name),
        "receiver": first_name_and_initial(shipment.receiver_name),
        "destination_city": destination_area(shipment.destination),
        "pieces": shipment.pieces,  # of the parcel's details, the only one anyone may see
        "promised_by": isoformat_z(shipment.promised_by),  # a date, not personal data
        "created_at": isoformat_z(shipment.created_at),
        "updated_at": isoformat_z(shipment.updated_at),
        "tracking_url": tracking_url(shipment.tracking_id),
    }
    if events is not None:
        data["events"] = [public_event_to_dict(e) for e in events]
    return data


def estimated_delivery(document: CachedDocument) -> Estimate | None:
    """The estimate a tracking document carries (None for a final status): pages show the same one as the JSON."""
    found = json.loads(document.body).get("estimated_delivery")
    if not found:
        return None
    return Estimate(parse_iso_z(found["earliest"]), parse_iso_z(found["expected"]), parse_iso_z(found["latest"]),
                    found["basis"])
