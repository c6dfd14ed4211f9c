"""Delivery zones: their outlines (GeoJSON, checked with shapely), which zone holds a point, and keeping every open
parcel in the right zone as zones change.

Rules:
- A zone is a name (unique regardless of case, at most 80 characters), a GeoJSON Polygon or MultiPolygon, and an
  optional hub `{"lat", "lon"}`. An outline that is not one is a ValidationError naming `geometry` and what is
  wrong: not GeoJSON, another geometry type, a position that is not [longitude, latitude], coordinates out of
  range, a ring with fewer than 4 positions or not closed, an outline that crosses itself (or polygons of a
  MultiPolygon that overlap), an outline without area; at most MAX_POSITIONS positions. A taken name is
  ZoneNameTaken (409). Stored as given, without altitudes.
- A point belongs to the zone whose outline covers it (its border included); a point on the border of several,
  or where they overlap, to the one with the lowest id, every time.
- Look-ups go through a ZoneIndex (a shapely STRtree of every zone), kept per process and built again when the
  zones' version (their count, highest id and latest `updated_at`, one cheap query) is not the one it was built
  for: several processes stay right without telling each other. `updated_at` only moves forward (_stamp), so a
  process whose clock lags cannot hide a change.
- Creating, changing the outline of, or deleting a zone places every open parcel (status not final) with a
  point that it may concern again (those in the zone, and those inside the old and new outlines' bounds): one
  read, then one UPDATE per destination zone and chunk. Delivered, returned and cancelled parcels keep the zone
  they had (deleting a zone clears it: the foreign key sets it NULL). Parcels' `updated_at` does not move: the
  zone is planning's business, not a change of the shipment.
- Each change writes one audit row (zone_created, zone_updated, zone_deleted) with the name, the outline's
  polygon and point counts, whether it has a hub, and how many parcels changed zone; not the outline itself.
- `parcels_open`: a zone's parcels whose status is not final.
"""
from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from flask_babel import gettext
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.domain.points import LAT_RANGE, LON_RANGE, check_point
from app.domain.status import ALL_STATUSES, FINAL_STATUSES
from app.domain.timeutil import as_utc, isoformat_z, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Shipment, Zone
from app.models.planning import ZONE_NAME_MAX
from app.services.staff.audit import record_audit

if TYPE_CHECKING:
    import shapely

MAX_POSITIONS = 20_000
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
OTHER_GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "GeometryCollection", "Feature",
                       "FeatureCollection")
OPEN_STATUSES: tuple[str, ...] = tuple(status for status in ALL_STATUSES if status not in FINAL_STATUSES)
UPDATE_CHUNK = 1000  # parcel ids per UPDATE … WHERE id IN (…)
ZONE_FIELDS = ("name", "geometry", "hub")
_SHIPMENTS = Shipment.__table__
_REASON_AT = re.compile(r"^(?P<reason>[^\[]+)\[(?P<x>[-0-9.e+]+) (?P<y>[-0-9.e+]+)\]")


class ZoneNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        message = gettext("There is already a zone called %(name)s.", name=name)
        super().__init__(message, fields={"name": message})


def _geometry_error(message: str) -> ValidationError:
    return ValidationError(gettext("The zone's outline is not valid."), fields={"geometry": message})


# --- checking what was sent ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outline:
    """A checked zone outline: the GeoJSON to store and its shapely geometry."""
    geojson: dict
    shape: shapely.Geometry

    @property
    def polygons(self) -> int:
        return 1 if self.geojson["type"] == "Polygon" else len(self.geojson["coordinates"])

    @property
    def positions(self) -> int:
        import shapely

        return int(shapely.get_num_coordinates(self.shape))


def to_shape(geojson: dict) -> shapely.Geometry:
    """shapely's geometry of a GeoJSON outline. shapely, and numpy under it, load at first use: a process that
    never meets a zone (a courier's phone, the tracking pages) does not pay 0.2 s and 20 MB for them at start."""
    from shapely.geometry import shape

    return shape(geojson)


def check_outline(value: object) -> Outline:
    """A GeoJSON Polygon or MultiPolygon (a JSON object, or its text) checked: see the module's rules."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _geometry_error(gettext("Not GeoJSON: the text is not valid JSON.")) from None
    if not isinstance(value, dict):
        raise _geometry_error(gettext('Not GeoJSON: expected an object with "type" and "coordinates".'))
    kind = value.get("type")
    if not isinstance(kind, str):
        raise _geometry_error(gettext('Not GeoJSON: the object has no "type".'))
    if kind in ("Feature", "FeatureCollection"):
        raise _geometry_error(gettext("This is a GeoJSON %(type)s: send the geometry itself, a Polygon or a "
                                      "MultiPolygon.", type=kind))
    if kind in OTHER_GEOJSON_TYPES:
        raise _geometry_error(gettext("A %(type)s has no area: a zone is a Polygon or a MultiPolygon.", type=kind))
    if kind not in GEOMETRY_TYPES:
        raise _geometry_error(gettext('Not GeoJSON: "%(type)s" is not a geometry type; a zone is a Polygon or a '
                                      "MultiPolygon.", type=kind[:40]))
    coordinates = value.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons or not all(isinstance(p, list) and p for p in polygons):
        raise _geometry_error(gettext('Not GeoJSON: a %(type)s needs "coordinates", a list of rings of '
                                      "[longitude, latitude] positions.", type=kind))
    clean = [[_checked_ring(ring, _ring_label(kind, p, r)) for r, ring in enumerate(polygon, 1)]
             for p, polygon in enumerate(polygons, 1)]
    if sum(len(ring) for polygon in clean for ring in polygon) > MAX_POSITIONS:
        raise _geometry_error(gettext("At most %(max)d points in all.", max=MAX_POSITIONS))
    geojson = {"type": kind, "coordinates": clean[0] if kind == "Polygon" else clean}
    import shapely

    shape = to_shape(geojson)
    if shape.convex_hull.area <= 0:  # every point on one line: GEOS would call it a self-intersection
        raise _geometry_error(gettext("The outline encloses no area: its points lie on one line."))
    reason = shapely.is_valid_reason(shape)
    if reason != "Valid Geometry":
        raise _geometry_error(_invalid_message(kind, reason))
    return Outline(geojson, shape)


def _ring_label(kind: str, polygon: int, ring: int) -> str:
    if kind == "Polygon":
        return gettext("ring %(ring)d", ring=ring)
    return gettext("polygon %(polygon)d, ring %(ring)d", polygon=polygon, ring=ring)


def _checked_ring(ring: object, label: str) -> list[list[float]]:
    if not isinstance(ring, list):
        raise _geometry_error(gettext("Not GeoJSON: %(ring)s is not a list of positions.", ring=label))
    positions: list[list[float]] = []
    for number, position in enumerate(ring, 1):
        if (not isinstance(position, list) or len(position) not in (2, 3)
                or not all(isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
                           for c in position)):
            raise _geometry_error(gettext("Not GeoJSON: point %(point)d of %(ring)s is not [longitude, latitude].",
                                          point=number, ring=label))
        lon, lat = float(position[0]), float(position[1])
        if not (LON_RANGE[0] <= lon <= LON_RANGE[1] and LAT_RANGE[0] <= lat <= LAT_RANGE[1]):
            message = gettext("Coordinates out of range: point %(point)d of %(ring)s is [%(lon)s, %(lat)s]; a "
                              "longitude is from -180 to 180 and a latitude from -90 to 90.",
                              point=number, ring=label, lon=f"{lon:g}", lat=f"{lat:g}")
            if LON_RANGE[0] <= lat <= LON_RANGE[1] and LAT_RANGE[0] <= lon <= LAT_RANGE[1]:
                message += " " + gettext("GeoJSON puts the longitude first.")
            raise _geometry_error(message)
        positions.append([lon, lat])
    if len(positions) < 4:
        raise _geometry_error(gettext("%(ring)s has %(count)d points: a ring needs at least 4, the last repeating "
                                      "the first.", ring=label.capitalize(), count=len(positions)))
    if positions[0] != positions[-1]:
        raise _geometry_error(gettext("%(ring)s is not closed: its last point must repeat its first.",
                                      ring=label.capitalize()))
    return positions


def _invalid_message(kind: str, reason: str) -> str:
    """shapely's (GEOS's) reason, in words, with where it is: "Self-intersection[76.3 9.9]"."""
    match = _REASON_AT.match(reason)
    what = match.group("reason").strip() if match else reason
    where = {"lon": match.group("x"), "lat": match.group("y")} if match else {}
    if what in ("Self-intersection", "Ring Self-intersection"):
        if kind == "MultiPolygon":
            return gettext("The outline crosses itself, or its polygons overlap or touch along an edge, near "
                           "[%(lon)s, %(lat)s]: a MultiPolygon's polygons must not overlap.", **where)
        return gettext("The outline crosses itself near [%(lon)s, %(lat)s].", **where)
    if what == "Hole lies outside shell":
        return gettext("A hole (ring 2 or later) lies outside the outer ring.")
    if what == "Nested shells":
        return gettext("A polygon of the MultiPolygon lies inside another.")
    if what == "Too few points":
        return gettext("A ring has fewer than 4 distinct points.")
    return gettext("The outline is not a valid polygon: %(reason)s.", reason=reason)


@dataclass(frozen=True)
class ZoneChanges:
    """What a create or an update asks for; a field left None (and hub_given False) is left as it is."""
    name: str | None = None
    outline: Outline | None = None
    hub_given: bool = False
    hub: tuple[float, float] | None = None


def check_zone(raw: Mapping[str, object], *, partial: bool) -> ZoneChanges:
    """The fields `name`, `geometry` and `hub` ({"lat", "lon"} or null) checked; `partial`: an update, where a
    field left out is left as it is. ValidationError naming every problem."""
    problems: dict[str, str] = {str(name)[:40]: gettext("Unknown field.") for name in raw if name not in ZONE_FIELDS}
    name = None
    if "name" in raw or not partial:
        value = raw.get("name")
        if value is not None and not isinstance(value, str):
            problems["name"] = gettext("Must be text.")
        elif not (value or "").strip():
            problems["name"] = gettext("Enter the zone's name.")
        elif len(value.strip()) > ZONE_NAME_MAX:
            problems["name"] = gettext("At most %(max)d characters.", max=ZONE_NAME_MAX)
        else:
            name = " ".join(value.split())
    outline = None
    if "geometry" in raw or not partial:
        if raw.get("geometry") in (None, ""):
            problems["geometry"] = gettext("Paste the zone's outline: a GeoJSON Polygon or MultiPolygon.")
        else:
            try:
                outline = check_outline(raw["geometry"])
            except ValidationError as error:
                problems.update(error.fields)
    hub = None
    if raw.get("hub") is not None:
        value = raw["hub"]
        if not isinstance(value, dict) or set(value) - {"lat", "lon"}:
            problems["hub"] = gettext('Must be {"lat": …, "lon": …}, or null for none.')
        else:
            point, point_problems = check_point(value.get("lat"), value.get("lon"), names=("lat", "lon"))
            if point_problems:
                said = point_problems.said_in(gettext)
                problems["hub"] = " ".join(f"{key}: {message}" for key, message in said.items())
            elif point is not None:
                hub = (point.lat, point.lon)
    if problems:
        raise ValidationError(fields=problems)
    return ZoneChanges(name=name, outline=outline, hub_given="hub" in raw, hub=hub)


# --- the index -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZoneIndex:
    """Every zone at one version, for point look-ups: geometries sorted by id, so the first match is the lowest."""
    version: tuple
    ids: tuple[int, ...]
    names: dict[int, str]
    tree: shapely.STRtree | None

    def zone_at(self, lat: float, lon: float) -> int | None:
        return self.zones_at([(lat, lon)])[0]

    def zones_at(self, points: Sequence[tuple[float, float]]) -> list[int | None]:
        """The zone of each (lat, lon), lowest id first where several cover it; None outside every zone."""
        found: list[int | None] = [None] * len(points)
        if self.tree is None or not points:
            return found
        import numpy as np
        import shapely

        coordinates = np.array([(lon, lat) for lat, lon in points], dtype=float)
        inputs, hits = self.tree.query(shapely.points(coordinates), predicate="covered_by")
        # Pairs sorted by input, then by tree position (= by id): each input's first pair is its lowest id.
        order = np.lexsort((hits, inputs))
        inputs, hits = inputs[order], hits[order]
        firsts = np.unique(inputs, return_index=True)[1]
        for position in firsts:
            found[int(inputs[position])] = self.ids[int(hits[position])]
        return found


_indexes: dict[str, ZoneIndex] = {}  # by database URL: one process may serve several (the tests do)
_indexes_lock = threading.Lock()


def zones_version() -> tuple:
    """What changes whenever a zone is created, changed or deleted: one aggregate query."""
    row = db.session.execute(select(func.count(Zone.id), func.max(Zone.id), func.max(Zone.updated_at))).one()
    return version_from(*row)


def version_from(count, highest, latest) -> tuple:
    """The version tuple from the aggregate's three values (zones_version reads them; so may a caller's own query)."""
    latest = as_utc(latest) if isinstance(latest, datetime) else latest
    return (int(count or 0), highest, latest)


def zone_index(version: tuple | None = None) -> ZoneIndex:
    """This process's index of the zones, built again when their version moved (`version`: the caller read it
    already, see app.services.planning.points)."""
    version = zones_version() if version is None else version
    key = db.engine.url.render_as_string(hide_password=True)
    index = _indexes.get(key)
    if index is None or index.version != version:
        import shapely

        rows = db.session.execute(select(Zone.id, Zone.name, Zone.geometry).order_by(Zone.id)).all()
        geometries = [to_shape(geometry) for _id, _name, geometry in rows]
        index = ZoneIndex(version=version, ids=tuple(row.id for row in rows),
                          names={row.id: row.name for row in rows},
                          tree=shapely.STRtree(geometries) if geometries else None)
        with _indexes_lock:
            _indexes[key] = index
    return index


def zone_at(lat: float | None, lon: float | None) -> int | None:
    """The zone holding a point (None for no point, or outside every zone)."""
    if lat is None or lon is None:
        return None
    return zone_index().zone_at(lat, lon)


# --- changes -------------------------------------------------------------------------------------------------

def create_zone(raw: Mapping[str, object], actor: str) -> tuple[Zone, int]:
    """A new zone from `name`, `geometry` and `hub`, and its open parcels placed in it: (the zone, how many
    parcels changed zone). In the caller's transaction."""
    changes = check_zone(raw, partial=False)
    _refuse_taken(changes.name)
    now = _stamp()
    zone = Zone(name=changes.name, geometry=changes.outline.geojson, created_at=now, updated_at=now,
                updated_by=actor, hub_lat=changes.hub[0] if changes.hub else None,
                hub_lon=changes.hub[1] if changes.hub else None)
    _flush_refusing_taken(zone)
    moved = _place_again(_candidates([zone.id], [changes.outline.shape]))
    record_audit("zone_created", actor=actor, target_type="zone", target_id=zone.id,
                 details={"name": zone.name, **_outline_counts(changes.outline), "hub": changes.hub is not None,
                          "parcels_moved": moved})
    return zone, moved


def update_zone(zone_id: int, raw: Mapping[str, object], actor: str) -> tuple[Zone, int]:
    """Change a zone's name, outline or hub (only what `raw` names); a new outline places the open parcels it
    concerns again. (the zone, how many parcels changed zone). Nothing changed: nothing written or audited."""
    zone = get_zone(zone_id)
    changes = check_zone(raw, partial=True)
    details: dict[str, object] = {}
    if changes.name is not None and changes.name != zone.name:
        _refuse_taken(changes.name, other_than=zone.id)
        details["name"] = {"from": zone.name, "to": changes.name}
        zone.name = changes.name
    old_shape = None
    if changes.outline is not None and changes.outline.geojson != zone.geometry:
        old_shape = to_shape(zone.geometry)
        details["geometry"] = _outline_counts(changes.outline)
        zone.geometry = changes.outline.geojson
    hub = (zone.hub_lat, zone.hub_lon) if zone.hub_lat is not None else None
    if changes.hub_given and changes.hub != hub:
        details["hub"] = {"from": hub is not None, "to": changes.hub is not None}
        zone.hub_lat, zone.hub_lon = changes.hub if changes.hub else (None, None)
    if not details:
        return zone, 0
    zone.updated_at, zone.updated_by = _stamp(), actor
    _flush_refusing_taken(zone)
    moved = 0
    if old_shape is not None:
        moved = _place_again(_candidates([zone.id], [old_shape, changes.outline.shape]))
    record_audit("zone_updated", actor=actor, target_type="zone", target_id=zone.id,
                 details={"name": zone.name, "changed": details, "parcels_moved": moved})
    return zone, moved


def delete_zone(zone_id: int, actor: str) -> tuple[str, int]:
    """Delete a zone; its open parcels go to the zone that now covers them, or none. (its name, how many parcels
    changed zone)."""
    zone = get_zone(zone_id)
    name, shape = zone.name, to_shape(zone.geometry)
    candidates = _candidates([zone.id], [shape])  # read before the foreign key clears their zone
    db.session.delete(zone)
    db.session.flush()
    moved = _place_again(candidates)
    record_audit("zone_deleted", actor=actor, target_type="zone", target_id=zone_id,
                 details={"name": name, "parcels_moved": moved})
    return name, moved


def get_zone(zone_id: int) -> Zone:
    zone = db.session.get(Zone, zone_id)
    if zone is None:
        raise NotFound(gettext("No zone %(id)s.", id=zone_id))
    return zone


def _refuse_taken(name: str, other_than: int | None = None) -> None:
    query = select(Zone.id).where(func.lower(Zone.name) == name.lower())
    if other_than is not None:
        query = query.where(Zone.id != other_than)
    if db.session.scalar(query.limit(1)) is not None:
        raise ZoneNameTaken(name)


def _flush_refusing_taken(zone: Zone) -> None:
    try:
        with db.session.begin_nested():  # the unique constraint decides a race between two admins
            db.session.add(zone)
    except IntegrityError as error:
        raise ZoneNameTaken(zone.name) from error


def _stamp() -> datetime:
    """Now, or just after the latest zone change when this process's clock is behind it (see the rules)."""
    now = utcnow()
    latest = db.session.scalar(select(func.max(Zone.updated_at)))
    if latest is not None and as_utc(latest) >= now:
        return as_utc(latest) + timedelta(microseconds=1)
    return now


def _outline_counts(outline: Outline) -> dict[str, int]:
    return {"polygons": outline.polygons, "points": outline.positions}


def _candidates(zone_ids: Iterable[int], shapes: Iterable[shapely.Geometry]) -> list:
    """Open parcels with a point that a change to these zones may move: in them now, or inside the bounds of one
    of `shapes`. Rows (id, lat, lon, zone_id)."""
    near = []
    for shape in shapes:
        west, south, east, north = shape.bounds
        near.append(and_(_SHIPMENTS.c.destination_lat.between(south, north),
                         _SHIPMENTS.c.destination_lon.between(west, east)))
    return db.session.execute(
        select(_SHIPMENTS.c.id, _SHIPMENTS.c.destination_lat, _SHIPMENTS.c.destination_lon, _SHIPMENTS.c.zone_id)
        .where(_SHIPMENTS.c.status.in_(OPEN_STATUSES), _SHIPMENTS.c.destination_lat.is_not(None),
               _SHIPMENTS.c.destination_lon.is_not(None),
               or_(_SHIPMENTS.c.zone_id.in_(list(zone_ids)), *near))).all()


def _place_again(rows: Sequence) -> int:
    """Each row's zone by the index as it now is; the ones that changed written, one UPDATE per zone and chunk.
    Returns how many changed."""
    if not rows:
        return 0
    zones = zone_index().zones_at([(row.destination_lat, row.destination_lon) for row in rows])
    moves: dict[int | None, list[int]] = {}
    for row, zone_id in zip(rows, zones, strict=True):
        if zone_id != row.zone_id:
            moves.setdefault(zone_id, []).append(row.id)
    for zone_id, ids in moves.items():
        for start in range(0, len(ids), UPDATE_CHUNK):
            db.session.execute(update(_SHIPMENTS).where(_SHIPMENTS.c.id.in_(ids[start:start + UPDATE_CHUNK]))
                               .values(zone_id=zone_id))
    return sum(len(ids) for ids in moves.values())


# --- reading -------------------------------------------------------------------------------------------------

def list_zones() -> list[Zone]:
    return list(db.session.scalars(select(Zone).order_by(Zone.id)))


def open_parcel_counts() -> dict[int, int]:
    """Per zone, its parcels whose status is not final (from the zone-and-status index)."""
    rows = db.session.execute(select(_SHIPMENTS.c.zone_id, func.count()).where(
        _SHIPMENTS.c.zone_id.is_not(None), _SHIPMENTS.c.status.in_(OPEN_STATUSES)).group_by(_SHIPMENTS.c.zone_id))
    return {zone_id: count for zone_id, count in rows}


def zone_document(zone: Zone, parcels_open: int) -> dict:
    """A zone as the admin JSON answers it."""
    return {"id": zone.id, "name": zone.name, "geometry": zone.geometry, "hub": hub_of(zone),
            "parcels_open": parcels_open, "created_at": isoformat_z(zone.created_at),
            "updated_at": isoformat_z(zone.updated_at), "updated_by": zone.updated_by}


def hub_of(zone: Zone) -> dict | None:
    return None if zone.hub_lat is None else {"lat": zone.hub_lat, "lon": zone.hub_lon}


def feature_collection(zones: Sequence[Zone], counts: Mapping[int, int]) -> dict:
    """Every zone as a GeoJSON FeatureCollection (RFC 7946), properties `id`, `name`, `hub`, `parcels_open`."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": zone.id, "geometry": zone.geometry,
         "properties": {"id": zone.id, "name": zone.name, "hub": hub_of(zone),
                        "parcels_open": counts.get(zone.id, 0)}}
        for zone in zones]}


def zone_ref(zone_id: int | None) -> dict | None:
    """`{"id", "name"}` of a parcel's zone, for staff answers (one look-up per zone and session)."""
    if zone_id is None:
        return None
    zone = db.session.get(Zone, zone_id)
    return None if zone is None else {"id": zone.id, "name": zone.name}
