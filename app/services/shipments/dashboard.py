"""What the staff pages show: counts per status, the searchable shipment list, one shipment's record (timeline,
allowed next statuses, audit entries) and recent locations."""
from __future__ import annotations

import math
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from app.domain.corrections import editable_fields
from app.domain.pagination import Pagination
from app.domain.status import ALL_STATUSES, held_from_timeline
from app.domain.tracking_ids import normalise_tracking_id_prefix
from app.extensions import db
from app.models import AuditEntry, Shipment, TrackingEvent
from app.services.planning.zones import zone_ref
from app.services.shipments.contacts import ContactError, normalise_mobile
from app.services.shipments.queries import find_shipment, next_statuses, status_counts, timeline
from app.services.staff.audit import audit_for_target

PAGE_SIZE = 25
RECENT_LOCATIONS = 15
# How many of the newest events are looked at for location suggestions: bounded, so the cost stays flat
# however large the event log grows (it walks the primary key backwards, no scan).
RECENT_LOCATION_SCAN = 500

_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]{6,}$")


@dataclass(frozen=True)
class ShipmentFilter:
    text: str = ""
    status: str | None = None
    newest_first: bool = True
    page: int = 1
    booked_since: datetime | None = None  # inclusive, UTC
    booked_before: datetime | None = None  # exclusive, UTC


@dataclass(frozen=True)
class ShipmentPage(Pagination):
    shipments: list[Shipment]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class ShipmentRecord:
    """Everything a staff member sees on one shipment's page."""
    shipment: Shipment
    events: list[TrackingEvent]  # oldest first
    allowed_next: list[str]
    audit: list[AuditEntry]  # newest first
    locations: list[str]  # suggestions for the update form; empty unless asked for
    editable: tuple[str, ...] = ()  # the fields staff may still correct (app.domain.corrections)
    zone: dict | None = None  # {"id", "name"} of the zone holding the destination's point


def shipment_record(tracking_id: str, suggest_locations: bool = False) -> ShipmentRecord:
    """One shipment for staff: its timeline, the statuses it may move to, its own audit entries and the fields
    staff may still correct.

    Rules: the tracking ID is matched like everywhere else (NotFound when unknown); audit entries are those whose
    target is this shipment, newest first; location suggestions only when the caller will offer the update form.
    """
    shipment = find_shipment(tracking_id)
    events = timeline(shipment)
    return ShipmentRecord(
        shipment=shipment, events=events, allowed_next=next_statuses(shipment),
        audit=audit_for_target("shipment", shipment.tracking_id),
        locations=recent_locations() if suggest_locations else [],
        editable=editable_fields(shipment.status, held_from_timeline(event.status for event in events)),
        zone=zone_ref(shipment.zone_id),
    )


@dataclass(frozen=True)
class StatusTally:
    by_status: list[tuple[str, int]]  # every status, in the state machine's order, zeros included
    total: int


def status_tally() -> StatusTally:
    """How many shipments are in each status (all statuses listed), and how many in all."""
    counts = status_counts()
    return StatusTally([(status, counts.get(status, 0)) for status in ALL_STATUSES], sum(counts.values()))


def list_shipments(filters: ShipmentFilter, default_region: str, per_page: int = PAGE_SIZE) -> ShipmentPage:
    """One page of shipments matching the filter, by last update.

    `text` matches a tracking ID (whole, or its first three or more characters, read as public tracking reads
    them: any case, spaces and hyphens ignored, O for 0), a mobile number in any common format, or part of the
    sender's or receiver's name or of the destination (a city or PIN code), in any case. A page past the end is
    clamped to the last page.
    """
    conditions = shipment_conditions(filters, default_region)
    total = db.session.scalar(select(func.count()).select_from(Shipment).where(*conditions)) or 0
    last_page = max(1, math.ceil(total / per_page))
    page = min(max(filters.page, 1), last_page)
    order = (Shipment.updated_at.desc(), Shipment.id.desc()) if filters.newest_first \
        else (Shipment.updated_at.asc(), Shipment.id.asc())
    shipments = list(db.session.scalars(
        select(Shipment).where(*conditions).order_by(*order).limit(per_page).offset((page - 1) * per_page)
    ))
    return ShipmentPage(shipments, total, page, per_page)


def shipment_conditions(filters: ShipmentFilter, default_region: str) -> list:
    """The WHERE conditions of a filter, shared by the dashboard list and the CSV export."""
    conditions = []
    text = filters.text.strip()
    if text:
        conditions.append(_text_condition(text, default_region))
    if filters.status:
        conditions.append(Shipment.status == filters.status)
    if filters.booked_since:
        conditions.append(Shipment.created_at >= filters.booked_since)
    if filters.booked_before:
        conditions.append(Shipment.created_at < filters.booked_before)
    return conditions


def _text_condition(text: str, default_region: str):
    matches = [Shipment.sender_name.icontains(text, autoescape=True),
               Shipment.receiver_name.icontains(text, autoescape=True),
               Shipment.destination.icontains(text, autoescape=True)]
    tracking_id_prefix = normalise_tracking_id_prefix(text)
    if tracking_id_prefix:
        matches.append(Shipment.tracking_id.startswith(tracking_id_prefix, autoescape=True))
    if _PHONE_LIKE.match(text):
        # Looks like a number but may not be one: then names and IDs can still match.
        with suppress(ContactError):
            matches.append(Shipment.mobile == normalise_mobile(text, default_region))
    return or_(*matches)


def recent_locations(limit: int = RECENT_LOCATIONS) -> list[str]:
    """Locations used in the newest events, most recent first, without repeats (for the update form)."""
    rows = db.session.scalars(
        select(TrackingEvent.location).order_by(TrackingEvent.id.desc()).limit(RECENT_LOCATION_SCAN)
    )
    seen: dict[str, None] = {}
    for location in rows:
        seen.setdefault(location, None)
        if len(seen) >= limit:
            break
    return list(seen)
