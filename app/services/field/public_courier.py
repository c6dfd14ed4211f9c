"""The courier on the way, as a recipient may see them on the public tracking answer (DESIGN.md rule 9).

For a parcel Out for Delivery with an open stop on a run sheet: the courier's first name, how many of their open
stops come before this one, and, only when the courier is close (at most COURIER_SHOW_WITHIN_STOPS stops before
this one) and their last fix is under POSITION_FRESH_FOR old, where they were, rounded to 3 decimals (about
100 m). Never their username, mobile, vehicle or trail, and nothing for any other status.

It changes without the parcel's status changing (a stop before this one closes, the courier moves), so it is not
part of the cached tracking document: app.services.shipments.public_document adds it per request, with the one
query below, for Out for Delivery parcels only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, select

from app.domain.field import StopState
from app.domain.timeutil import as_utc, isoformat_z, parse_iso_z
from app.extensions import db
from app.models import CourierProfile, RunSheet, RunSheetStop, Shipment, User

POSITION_FRESH_FOR = timedelta(minutes=15)
POSITION_DECIMALS = 3
_LETTERS = re.compile(r"[^\W\d_]+")  # a username's words: "ravi.k" → "ravi", "k"

_stop, _before = RunSheetStop.__table__.alias("stop"), RunSheetStop.__table__.alias("before")
_STOPS_BEFORE = (select(func.count()).select_from(_before)
                 .where(_before.c.runsheet_id == _stop.c.runsheet_id, _before.c.state == StopState.OPEN.value,
                        _before.c.sequence < _stop.c.sequence)
                 .scalar_subquery())
_COURIER_ON_THE_WAY = (
    select(_STOPS_BEFORE.label("stops_before"), User.username, CourierProfile.name, CourierProfile.last_lat,
           CourierProfile.last_lon, CourierProfile.last_seen_at)
    .select_from(_stop)
    .join(Shipment, Shipment.id == _stop.c.shipment_id)
    .join(RunSheet, RunSheet.id == _stop.c.runsheet_id)
    .join(User, User.id == RunSheet.courier_id)
    .outerjoin(CourierProfile, CourierProfile.user_id == RunSheet.courier_id)
    .where(and_(Shipment.tracking_id == bindparam("tracking_id"), _stop.c.state == StopState.OPEN.value))
)


@dataclass(frozen=True)
class CourierOnTheWay:
    """The public courier block. `lat`, `lon` and `updated_at` are all set or all None; `minutes_ago` is the
    fix's age when the block was read, for pages ("last seen 3 min ago"), not part of the JSON."""

    name: str | None
    stops_before_you: int
    lat: float | None = None
    lon: float | None = None
    updated_at: datetime | None = None
    minutes_ago: int | None = None

    def to_dict(self) -> dict:
        data: dict = {"name": self.name, "stops_before_you": self.stops_before_you}
        if self.updated_at is not None:
            data["position"] = {"lat": self.lat, "lon": self.lon}
            data["updated_at"] = isoformat_z(self.updated_at)
        return data

    @classmethod
    def from_dict(cls, data: dict, now: datetime) -> CourierOnTheWay:
        position = data.get("position") or {}
        updated_at = parse_iso_z(data["updated_at"]) if data.get("updated_at") else None
        return cls(data.get("name"), int(data["stops_before_you"]), position.get("lat"), position.get("lon"),
                   updated_at, _minutes_since(updated_at, now))


def _minutes_since(then: datetime | None, now: datetime) -> int | None:
    """Whole minutes (0 for under a minute, or for a phone clock a little ahead)."""
    return None if then is None else max(0, int((now - then).total_seconds() // 60))


def public_first_name(name: str | None, username: str) -> str | None:
    """"ravi kumar" → "Ravi"; with no name, the username's first run of letters ("ravi.k" → "Ravi"); None if
    neither has one. Only the first letter is raised: "DeShawn" stays as written."""
    words = (name or "").split()
    found = words[0] if words else next(iter(_LETTERS.findall(username)), None)
    return found[:1].upper() + found[1:] if found else None


def courier_on_the_way(tracking_id: str, now: datetime, show_within_stops: int) -> CourierOnTheWay | None:
    """The courier block of a parcel (canonical tracking ID) that is Out for Delivery: None when it has no open
    stop on a run sheet. The caller asks only for Out for Delivery parcels: the status decides, not the stop."""
    row = db.session.execute(_COURIER_ON_THE_WAY, {"tracking_id": tracking_id}).first()
    if row is None:
        return None
    courier = CourierOnTheWay(public_first_name(row.name, row.username), int(row.stops_before))
    seen_at = as_utc(row.last_seen_at) if row.last_seen_at is not None else None
    if (row.stops_before <= show_within_stops and seen_at is not None and row.last_lat is not None
            and row.last_lon is not None and now - seen_at < POSITION_FRESH_FOR):
        courier = CourierOnTheWay(courier.name, courier.stops_before_you, round(row.last_lat, POSITION_DECIMALS),
                                  round(row.last_lon, POSITION_DECIMALS), seen_at, _minutes_since(seen_at, now))
    return courier
