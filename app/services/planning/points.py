"""Where each parcel goes on the map: its destination point, how precise it is, and its zone.

Rules:
- A booking's point (app.domain.points): the booker's own (`exact`); else where a courier delivered to the same
  address (normalised text and PIN code) within DELIVERED_FOR (`delivered`, found in the geocoder cache under
  the provider "delivered"); else its PIN code's centroid from the offline directory (`pincode`); else none (no
  PIN code, or one without a centroid). Its zone is the zone holding the point (app.services.planning.zones),
  none without a point. All of it goes into the booking's own INSERT; one query per batch of bookings reads the
  zones' version and the cache together.
- A correction (app.services.shipments.corrections): a new point given by staff is `exact`; one cleared is found
  again as for a booking. A new PIN code, or a new address for a point that came from the address (anything but
  `exact`), places the parcel again; an `exact` point stays while the PIN code does.
- A courier's Delivered (app.services.field.events) moves the parcel's point to the courier's kept position
  nearest in time to the delivery, when one lies within POSITION_WITHIN of it, was measured within
  POSITION_ACCURACY_M, and is within PLAUSIBLE_WITHIN_M of the PIN code's centroid (a delivery recorded at the
  hub says nothing about the door). The point is kept for the address (`delivered`, in the cache), so the next
  parcel there starts from it.
- The `points.geocode` job (refine_points) refines open parcels booked within REFINE_LOOKBACK whose point is
  still `pincode`, newest first (at most REFINE_CANDIDATES a run): from the cache when it knows the address, else
  from the geocoder (at most `lookups` addresses a run). A geocoder's point further than PLAUSIBLE_WITHIN_M from
  the PIN code's centroid is a miss (a street of the same name in another city). Answers, misses included, are
  cached; a geocoder never replaces a fresh `delivered` entry. Never in a request; never over an `exact` or
  `delivered` point.
- A parcel's `updated_at` does not move for any of this: where it is on the map is planning's business.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, func, or_, select, update

from app.db.dialects import dialect_insert
from app.domain.field import haversine_m
from app.domain.points import Point, Precision, address_key
from app.domain.timeutil import as_utc
from app.extensions import db
from app.models import CourierPosition, GeocodeCacheEntry, Shipment, Zone
from app.services.planning.geocoders import Geocoder, GeocoderUnavailable
from app.services.planning.zones import OPEN_STATUSES, ZoneIndex, version_from, zone_index
from app.services.shipments.pincodes import pincode_centroid

log = logging.getLogger(__name__)

DELIVERED_FOR = timedelta(days=180)
POSITION_WITHIN = timedelta(minutes=2)
POSITION_ACCURACY_M = 50.0
PLAUSIBLE_WITHIN_M = 30_000.0
REFINE_LOOKBACK = timedelta(days=7)
REFINE_CANDIDATES = 5_000  # parcels looked at per run
LOOKUPS_PER_RUN = 20  # addresses sent to the geocoder per run (Nominatim's public server allows 1 a second)
KEYS_PER_QUERY = 1_000
DELIVERED = "delivered"  # the cache's provider for couriers' delivery positions
_CACHE = GeocodeCacheEntry.__table__
_SHIPMENTS = Shipment.__table__
_ZONES = Zone.__table__


@dataclass(frozen=True)
class Destination:
    """What a booking says about where it goes: the address, its PIN code, and the booker's point if any."""
    address: str
    pincode: str | None
    point: Point | None = None


@dataclass(frozen=True)
class Placement:
    lat: float | None = None
    lon: float | None = None
    precision: str | None = None
    zone_id: int | None = None

    def values(self) -> dict[str, object]:
        """The shipment columns it sets."""
        return {"destination_lat": self.lat, "destination_lon": self.lon, "destination_precision": self.precision,
                "zone_id": self.zone_id}


PLACEMENT_COLUMNS = tuple(Placement().values())


# --- bookings ----------------------------------------------------------------------------------------------------

def place_destinations(destinations: Sequence[Destination], now: datetime) -> list[Placement]:
    """Each destination's point, precision and zone (see the module's rules), in order."""
    if not destinations:
        return []
    keys = [address_key(d.address, d.pincode) for d in destinations]
    looked_up = sorted({key for key, d in zip(keys, destinations, strict=True) if d.point is None})
    version, delivered = _version_and_delivered(looked_up, now)
    index = zone_index(version)
    points: list[tuple[float, float, str] | None] = []
    for key, destination in zip(keys, destinations, strict=True):
        if destination.point is not None:
            points.append((destination.point.lat, destination.point.lon, Precision.EXACT.value))
        elif key in delivered:
            points.append((*delivered[key], Precision.DELIVERED.value))
        elif (centroid := pincode_centroid(destination.pincode)) is not None:
            points.append((*centroid, Precision.PINCODE.value))
        else:
            points.append(None)
    return _with_zones(points, index)


def _with_zones(points: Sequence[tuple[float, float, str] | None], index: ZoneIndex) -> list[Placement]:
    placed = [point for point in points if point is not None]
    zones = iter(index.zones_at([(lat, lon) for lat, lon, _precision in placed]))
    return [Placement() if point is None else Placement(point[0], point[1], point[2], next(zones))
            for point in points]


def _version_and_delivered(keys: Sequence[str], now: datetime) -> tuple[tuple, dict[str, tuple[float, float]]]:
    """The zones' version and the delivered points known for `keys`: one query for a booking (the version's
    one-row aggregate, outer-joined to the cache rows), one more per KEYS_PER_QUERY keys beyond the first."""
    chunks = [keys[start:start + KEYS_PER_QUERY] for start in range(0, len(keys), KEYS_PER_QUERY)] or [[]]
    since = now - DELIVERED_FOR
    rows = db.session.execute(_VERSION_AND_DELIVERED, {"keys": list(chunks[0]), "since": since}).all()
    version = version_from(rows[0].zones, rows[0].highest, rows[0].latest)
    for chunk in chunks[1:]:
        rows += db.session.execute(_DELIVERED_ONLY, {"keys": list(chunk), "since": since}).all()
    return version, {row.key: (row.lat, row.lon) for row in rows if row.key is not None}


# Built once, values bound per call: building and compiling them per booking cost more than running them.
_VERSION_ROW = select(func.count(_ZONES.c.id).label("zones"), func.max(_ZONES.c.id).label("highest"),
                      func.max(_ZONES.c.updated_at).label("latest")).subquery("version")
_DELIVERED_WITHIN = and_(_CACHE.c.key.in_(bindparam("keys", expanding=True)), _CACHE.c.provider == DELIVERED,
                         _CACHE.c.created_at >= bindparam("since", type_=_CACHE.c.created_at.type),
                         _CACHE.c.lat.is_not(None), _CACHE.c.lon.is_not(None))
_VERSION_AND_DELIVERED = (select(_VERSION_ROW, _CACHE.c.key, _CACHE.c.lat, _CACHE.c.lon)
                          .select_from(_VERSION_ROW.outerjoin(_CACHE, _DELIVERED_WITHIN)))
_DELIVERED_ONLY = select(_CACHE.c.key, _CACHE.c.lat, _CACHE.c.lon).where(_DELIVERED_WITHIN)


# --- corrections -------------------------------------------------------------------------------------------------

def placement_after_correction(shipment: Shipment, proposed: Mapping[str, object], now: datetime) -> Placement | None:
    """The parcel's placement after a correction proposing `proposed` (checked values by field name), or None
    when it stays as it is. A point staff give (both destination_lat and destination_lon, not the stored ones)
    is `exact`; None for both clears it (placed again from the address)."""
    given = "destination_lat" in proposed
    lat, lon = (proposed.get("destination_lat"), proposed.get("destination_lon")) if given else (None, None)
    new_point = given and lat is not None and not _same_point(lat, lon, shipment)
    cleared = given and lat is None and shipment.destination_lat is not None
    pincode = proposed.get("destination_pincode", shipment.destination_pincode)
    address = proposed.get("destination", shipment.destination)
    pin_changed = pincode != shipment.destination_pincode
    address_changed = address != shipment.destination
    if new_point:
        return place_destinations([Destination(address, pincode, Point(lat, lon))], now)[0]
    exact = shipment.destination_precision == Precision.EXACT
    if cleared or pin_changed or (address_changed and not exact) or (shipment.destination_lat is None and given):
        return place_destinations([Destination(address, pincode)], now)[0]
    return None


def _same_point(lat: float, lon: float, shipment: Shipment) -> bool:
    """Exactly the stored point: the staff page's form sends it back as it was written (repr round-trips)."""
    return (lat, lon) == (shipment.destination_lat, shipment.destination_lon)


# --- couriers' deliveries ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    """A parcel a courier marked Delivered, and when (the courier's time)."""
    shipment_id: int
    courier_id: int
    at: datetime


def record_delivered_points(deliveries: Sequence[Delivery], now: datetime) -> int:
    """Move each delivered parcel's point to where its courier was (see the module's rules) and keep it for the
    address; how many were moved. In the caller's transaction."""
    if not deliveries:
        return 0
    shipments = {row.id: row for row in db.session.execute(
        select(_SHIPMENTS.c.id, _SHIPMENTS.c.destination, _SHIPMENTS.c.destination_pincode)
        .where(_SHIPMENTS.c.id.in_([d.shipment_id for d in deliveries])))}
    found: list[tuple[int, float, float]] = []
    for delivery in deliveries:
        shipment = shipments.get(delivery.shipment_id)
        position = _position_at(delivery.courier_id, as_utc(delivery.at))
        if shipment is None or position is None or not _plausible(position, shipment.destination_pincode):
            continue
        found.append((shipment.id, *position))
    if not found:
        return 0
    zones = zone_index().zones_at([(lat, lon) for _id, lat, lon in found])
    db.session.execute(
        update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("shipment_id"))
        .values(destination_lat=bindparam("lat"), destination_lon=bindparam("lon"),
                destination_precision=Precision.DELIVERED.value, zone_id=bindparam("zone")),
        [{"shipment_id": shipment_id, "lat": lat, "lon": lon, "zone": zone}
         for (shipment_id, lat, lon), zone in zip(found, zones, strict=True)])
    entries = {address_key(shipments[shipment_id].destination, shipments[shipment_id].destination_pincode):
               (lat, lon) for shipment_id, lat, lon in found}
    _store(entries, DELIVERED, now, replace="always")
    return len(found)


def _position_at(courier_id: int, at: datetime) -> tuple[float, float] | None:
    """The courier's kept position nearest in time to `at`, within POSITION_WITHIN and POSITION_ACCURACY_M."""
    rows = db.session.execute(
        select(CourierPosition.at, CourierPosition.lat, CourierPosition.lon)
        .where(CourierPosition.courier_id == courier_id,
               CourierPosition.at.between(at - POSITION_WITHIN, at + POSITION_WITHIN),
               CourierPosition.accuracy <= POSITION_ACCURACY_M)).all()
    if not rows:
        return None
    nearest = min(rows, key=lambda row: abs((as_utc(row.at) - at).total_seconds()))
    return nearest.lat, nearest.lon


def _plausible(point: tuple[float, float], pincode: str | None) -> bool:
    centroid = pincode_centroid(pincode)
    return centroid is None or haversine_m(*point, *centroid) <= PLAUSIBLE_WITHIN_M


# --- the geocoder job --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refinement:
    refined: int = 0  # parcels given a better point
    looked_up: int = 0  # addresses sent to the geocoder
    unavailable: str | None = None  # why the geocoder stopped this run


def refine_points(geocoder: Geocoder | None, now: datetime, lookups: int = LOOKUPS_PER_RUN) -> Refinement:
    """Better points for open parcels still placed at their PIN code's centroid (see the module's rules): from
    the cache, else from `geocoder` (None: the cache only). In the caller's transaction."""
    candidates = db.session.execute(
        select(_SHIPMENTS.c.id, _SHIPMENTS.c.destination, _SHIPMENTS.c.destination_pincode)
        .where(_SHIPMENTS.c.destination_precision == Precision.PINCODE.value,
               _SHIPMENTS.c.status.in_(OPEN_STATUSES), _SHIPMENTS.c.created_at >= now - REFINE_LOOKBACK)
        .order_by(_SHIPMENTS.c.id.desc()).limit(REFINE_CANDIDATES)).all()  # newest first: dispatch plans them next
    if not candidates:
        return Refinement()
    keyed = [(address_key(row.destination, row.destination_pincode), row) for row in candidates]
    known = _cached({key for key, _row in keyed}, now)
    looked_up, unavailable = 0, None
    if geocoder is not None:
        answers: dict[str, tuple[float, float] | None] = {}
        for key, row in keyed:
            if key in known or key in answers:
                continue
            if looked_up >= lookups:
                break
            looked_up += 1
            try:
                point = geocoder.locate(row.destination, row.destination_pincode)
            except GeocoderUnavailable as error:
                unavailable = str(error)
                log.warning("Geocoder %s unavailable, stopping this run: %s", geocoder.name, error)
                break
            answers[key] = point if point is None or _plausible(point, row.destination_pincode) else None
        _store(answers, geocoder.name, now, replace="stale_delivered")
        known.update({key: (point, geocoder.name) for key, point in answers.items()})
    refined = []
    for key, row in keyed:
        point, provider = known.get(key, (None, None))
        if point is not None:
            refined.append((row.id, point, provider))
    if refined:
        zones = zone_index().zones_at([point for _id, point, _provider in refined])
        db.session.execute(
            update(_SHIPMENTS).where(_SHIPMENTS.c.id == bindparam("shipment_id"),
                                     _SHIPMENTS.c.destination_precision == Precision.PINCODE.value)
            .values(destination_lat=bindparam("lat"), destination_lon=bindparam("lon"),
                    destination_precision=bindparam("precision"), zone_id=bindparam("zone")),
            [{"shipment_id": shipment_id, "lat": point[0], "lon": point[1], "zone": zone,
              "precision": (Precision.DELIVERED if provider == DELIVERED else Precision.GEOCODED).value}
             for (shipment_id, point, provider), zone in zip(refined, zones, strict=True)])
    return Refinement(len(refined), looked_up, unavailable)


def _cached(keys: set[str], now: datetime) -> dict[str, tuple[tuple[float, float] | None, str]]:
    """What the cache knows of `keys`: (point or None for a miss, provider); a delivered point older than
    DELIVERED_FOR is not known (the address is looked up again)."""
    known: dict[str, tuple[tuple[float, float] | None, str]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), KEYS_PER_QUERY):
        for row in db.session.execute(
                select(_CACHE.c.key, _CACHE.c.provider, _CACHE.c.lat, _CACHE.c.lon)
                .where(_CACHE.c.key.in_(ordered[start:start + KEYS_PER_QUERY]),
                       or_(_CACHE.c.provider != DELIVERED, _CACHE.c.created_at >= now - DELIVERED_FOR))):
            point = (row.lat, row.lon) if row.lat is not None and row.lon is not None else None
            known[row.key] = (point, row.provider)
    return known


def _store(entries: Mapping[str, tuple[float, float] | None], provider: str, now: datetime, *, replace: str) -> None:
    """Write cache entries. `replace`: "always" (a courier's delivery beats anything known), or "stale_delivered"
    (a geocoder's answer replaces only a delivered point older than DELIVERED_FOR)."""
    if not entries:
        return
    insert = dialect_insert(_CACHE)
    rows = [{"key": key, "provider": provider, "lat": point[0] if point else None,
             "lon": point[1] if point else None, "created_at": now} for key, point in sorted(entries.items())]
    where = None if replace == "always" else and_(_CACHE.c.provider == DELIVERED,
                                                  _CACHE.c.created_at < now - DELIVERED_FOR)
    db.session.execute(insert.on_conflict_do_update(
        index_elements=[_CACHE.c.key], where=where,
        set_={"provider": insert.excluded.provider, "lat": insert.excluded.lat, "lon": insert.excluded.lon,
              "created_at": insert.excluded.created_at}), rows)
