"""Where couriers have been: the positions the courier app sends, a day's trail, and the purge of old positions.

Rules of a batch (record_positions):
- Refused values are the form's business (app.domain.field.position_problems): what arrives here is possible.
- Points are taken in time order, whatever order they came in. Dropped, not refused: a fix less precise than
  WORST_ACCURACY_M, one less than MIN_POINT_GAP after the previous point kept from this batch or less than
  MIN_POINT_GAP either side of the last one kept from earlier batches (CourierProfile.last_seen_at), and one
  taken outside the courier's shift (its own time, in DISPLAY_TIMEZONE). An older point that is none of these
  (a batch that waited for a signal) is kept: the trail is read in time order. The phone stops sending off
  shift; a point that says otherwise is the clock or the app's last breath, and a courier's whereabouts off
  shift are nobody's business.
- Kept points go into courier_positions in one INSERT (on PostgreSQL one array a column, each sent as the text
  of its array: see _INSERT_POSITIONS_POSTGRESQL), and the profile is updated once: the last
  position (only from points newer than the one it holds, so a late batch does not move the courier back) and
  the idle anchor (the courier moved when a new point is more than IDLE_DISTANCE_M from it; the first point
  sets it).
- A batch that kept a point NOTIFYs the live streams with the courier's id (app.services.operations.live).
- Per batch, three statements: the profile read (locked, so two batches of one courier are taken one after the
  other), one insert, one update; on PostgreSQL two, the update riding in the insert's statement, which is
  prepared once per connection. Nothing about a position is logged.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, bindparam, delete, func, insert, select, text, update

from app.db.prepared import PreparedStatement
from app.domain.field import (
    IDLE_DISTANCE_M,
    MIN_POINT_GAP,
    WORST_ACCURACY_M,
    StopState,
    haversine_m,
    on_shift,
    path_length_m,
)
from app.domain.roles import Role
from app.domain.timeutil import as_utc, isoformat_z, local_day_start
from app.errors import NotFound
from app.extensions import db
from app.models import CourierPosition, CourierProfile, RunSheet, RunSheetStop, Shipment, User
from app.services.operations.live import publish_courier_changed

_POSITIONS = CourierPosition.__table__
_PROFILES = CourierProfile.__table__
# A stop's place on the trail: the courier's kept position nearest in time to the stop's closing, this close.
STOP_POSITION_WITHIN = timedelta(minutes=10)
PURGE_CHUNK = 5_000  # positions deleted per statement: short locks, short transactions


@dataclass(frozen=True, slots=True)
class Position:
    """One fix as the phone measured it (aware UTC `at`; metres, metres a second, degrees, battery 0..1)."""

    at: datetime
    lat: float
    lon: float
    accuracy: float
    speed: float | None = None
    heading: float | None = None
    battery: float | None = None


@dataclass(frozen=True)
class BatchReceipt:
    accepted: int
    dropped: int

    def to_dict(self) -> dict:
        return {"accepted": self.accepted, "dropped": self.dropped}


@dataclass
class _Whereabouts:
    """The profile's last position and idle anchor, as read and as the batch moves them."""

    last_seen_at: datetime | None
    anchor_lat: float | None
    anchor_lon: float | None
    moved_at: datetime | None
    last: Position | None = None  # the newest kept point of this batch, when newer than last_seen_at

    def follow(self, point: Position) -> None:
        if self.last_seen_at is not None and point.at <= self.last_seen_at:
            return  # a late point: kept on the trail, but the courier is elsewhere by now
        self.last_seen_at, self.last = point.at, point
        if self.anchor_lat is None or self.anchor_lon is None or \
                haversine_m(self.anchor_lat, self.anchor_lon, point.lat, point.lon) > IDLE_DISTANCE_M:
            self.anchor_lat, self.anchor_lon, self.moved_at = point.lat, point.lon, point.at


_PROFILE_FOR_BATCH = (
    select(_PROFILES.c.shift_start, _PROFILES.c.shift_end, _PROFILES.c.last_seen_at, _PROFILES.c.anchor_lat,
           _PROFILES.c.anchor_lon, _PROFILES.c.moved_at)
    .where(_PROFILES.c.user_id == bindparam("courier"))
    .with_for_update()
)
# Built once with its values bound (a statement built per batch cost its construction and cache key each time).
_MOVED = ("last_lat", "last_lon", "last_accuracy", "last_seen_at", "anchor_lat", "anchor_lon", "moved_at")
_MOVE_PROFILE = (update(_PROFILES).where(_PROFILES.c.user_id == bindparam("courier"))
                 .values({name: bindparam(f"new_{name}") for name in _MOVED}))
_INSERT_POSITIONS = insert(_POSITIONS)
# PostgreSQL takes the batch as one array a column. Each array goes as one bound value, the text of an array
# literal cast in the statement: psycopg2 adapts a number in about a microsecond, so the 350 numbers and 50 times
# of a batch of 50 cost 0.8 ms of CPU bound one by one (as rows, or as lists), and 0.1 ms written as text here.
_INSERT_SQL = (
    "INSERT INTO courier_positions (courier_id, at, lat, lon, accuracy, speed, heading, battery)"
    " SELECT :courier, * FROM unnest(CAST(:at AS timestamptz[]), CAST(:lat AS float8[]), CAST(:lon AS float8[]),"
    " CAST(:accuracy AS float8[]), CAST(:speed AS float8[]), CAST(:heading AS float8[]),"
    " CAST(:battery AS float8[]))")
_COURIER = bindparam("courier", type_=Integer)
# ...and the profile's update rides in the same statement (a data-modifying WITH runs whether or not it is read):
# one statement less for the app to send and the database to parse, and one round trip less a batch. Both are
# prepared once per connection (app.db.prepared): parsed and planned as text they were about a fifth of the
# database's work a batch.
_INSERT_POSITIONS_POSTGRESQL = PreparedStatement("waybill_insert_positions",
                                                 text(_INSERT_SQL).bindparams(_COURIER))
_MOVE_AND_INSERT_POSTGRESQL = PreparedStatement("waybill_move_and_insert_positions", text(
    "WITH moved AS (UPDATE courier_profiles SET "
    + ", ".join(f"{name} = :new_{name}" for name in _MOVED)
    + f" WHERE user_id = :courier) {_INSERT_SQL}"
).bindparams(_COURIER, *(bindparam(f"new_{name}", type_=_PROFILES.c[name].type) for name in _MOVED)))


def record_positions(courier_id: int, points: Sequence[Position], timezone: str) -> BatchReceipt:
    """Keep a batch of one courier's positions (see the module's rules), in the caller's transaction."""
    profile = db.session.execute(_PROFILE_FOR_BATCH, {"courier": courier_id}).first()
    if profile is None:  # no shift known: never on shift
        return BatchReceipt(accepted=0, dropped=len(points))
    kept = _kept(sorted(points, key=lambda point: point.at), profile.shift_start, profile.shift_end,
                 profile.last_seen_at, ZoneInfo(timezone))
    if kept:
        _write(courier_id, kept, _moved_profile(kept, profile))
        publish_courier_changed(courier_id)  # the live map's streams: the courier's id, nothing of where
    return BatchReceipt(accepted=len(kept), dropped=len(points) - len(kept))


def _write(courier_id: int, kept: list[Position], moved: dict | None) -> None:
    """Insert the kept points and, when `moved` (the profile's new values), update the profile."""
    if db.session.get_bind().dialect.name == "postgresql":
        arrays = {
            "at": _times_text([p.at for p in kept]), "lat": _numbers_text([p.lat for p in kept]),
            "lon": _numbers_text([p.lon for p in kept]), "accuracy": _numbers_text([p.accuracy for p in kept]),
            "speed": _numbers_text([p.speed for p in kept]), "heading": _numbers_text([p.heading for p in kept]),
            "battery": _numbers_text([p.battery for p in kept])}
        connection = db.session.connection()
        if moved is None:
            _INSERT_POSITIONS_POSTGRESQL.execute(connection, {"courier": courier_id, **arrays})
        else:
            _MOVE_AND_INSERT_POSTGRESQL.execute(connection, {"courier": courier_id, **arrays, **moved})
        return
    db.session.execute(_INSERT_POSITIONS, [
        {"courier_id": courier_id, "at": p.at, "lat": p.lat, "lon": p.lon, "accuracy": p.accuracy,
         "speed": p.speed, "heading": p.heading, "battery": p.battery} for p in kept])
    if moved is not None:
        db.session.execute(_MOVE_PROFILE, {"courier": courier_id, **moved})


def _numbers_text(values: list[float | None]) -> str:
    """A PostgreSQL array literal of float8 values: `{12.97,NULL,1e-05}` (repr of a float reads back exactly)."""
    return "{" + ",".join("NULL" if value is None else repr(float(value)) for value in values) + "}"


def _times_text(values: list[datetime]) -> str:
    """A PostgreSQL array literal of timestamptz values, each an ISO 8601 time in UTC, quoted (such text holds no
    quote or backslash). A naive time is refused, as the UTCDateTime columns refuse it."""
    if any(value.tzinfo is None for value in values):
        raise ValueError("naive datetime given for a UTC column")
    return "{" + ",".join(f'"{value.astimezone(UTC).isoformat()}"' for value in values) + "}"


def _kept(points: list[Position], shift_start: time, shift_end: time, last_seen_at: datetime | None,
          zone: ZoneInfo) -> list[Position]:
    """The points (in time order) worth keeping: precise enough, on shift, and not too close after another."""
    kept: list[Position] = []
    previous: datetime | None = None
    for point in points:
        if point.accuracy > WORST_ACCURACY_M:
            continue
        if last_seen_at is not None and abs(point.at - last_seen_at) < MIN_POINT_GAP:
            continue
        if previous is not None and point.at - previous < MIN_POINT_GAP:
            continue
        if not on_shift(shift_start, shift_end, point.at.astimezone(zone).time()):
            continue
        kept.append(point)
        previous = point.at
    return kept


def _moved_profile(kept: list[Position], profile) -> dict | None:
    """The profile's new last position and idle anchor after the kept points (bound as `new_<column>`), or None
    when none of them is newer than the position it holds."""
    whereabouts = _Whereabouts(profile.last_seen_at, profile.anchor_lat, profile.anchor_lon, profile.moved_at)
    for point in kept:
        whereabouts.follow(point)
    last = whereabouts.last
    if last is None:
        return None
    return {"new_last_lat": last.lat, "new_last_lon": last.lon, "new_last_accuracy": last.accuracy,
            "new_last_seen_at": last.at, "new_anchor_lat": whereabouts.anchor_lat,
            "new_anchor_lon": whereabouts.anchor_lon, "new_moved_at": whereabouts.moved_at}


# --- a day's trail -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailStop:
    """A stop of the day's run sheet where the courier was when it closed."""

    tracking_id: str
    sequence: int
    outcome: str | None
    lat: float
    lon: float


@dataclass(frozen=True)
class Trail:
    """A courier's day (DISPLAY_TIMEZONE): their kept positions in time order, and the stops placed on it."""

    username: str
    day: date
    points: list[tuple[datetime, float, float]]  # (at, lat, lon)
    stops: list[TrailStop] = field(default_factory=list)

    @property
    def distance_km(self) -> str:
        """Distance travelled, "12.34" (kilometres, two places)."""
        return f"{path_length_m([(lat, lon) for _, lat, lon in self.points]) / 1000:.2f}"

    def to_geojson(self) -> dict:
        """A FeatureCollection: the path as a LineString (no geometry under two positions, which make no line),
        then a Point per placed stop. Coordinates are [lon, lat], as GeoJSON has them."""
        line = [[lon, lat] for _, lat, lon in self.points]
        path = {"type": "Feature",
                "geometry": {"type": "LineString", "coordinates": line} if len(line) >= 2 else None,
                "properties": {"username": self.username, "date": self.day.isoformat(), "points": len(line),
                               "distance_km": self.distance_km,
                               "started_at": isoformat_z(self.points[0][0]) if self.points else None,
                               "ended_at": isoformat_z(self.points[-1][0]) if self.points else None}}
        stops = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [stop.lon, stop.lat]},
                  "properties": {"tracking_id": stop.tracking_id, "sequence": stop.sequence,
                                 "outcome": stop.outcome}} for stop in self.stops]
        return {"type": "FeatureCollection", "features": [path, *stops]}


def find_courier(username: str) -> tuple[int, str]:
    """A courier's user id and username, whatever the case typed (active or not: their past stays theirs);
    NotFound for anyone else."""
    found = db.session.execute(
        select(User.id, User.username)
        .where(func.lower(User.username) == username.strip().lower(), User.role == Role.COURIER.value)).first()
    if found is None:
        raise NotFound(f"No courier is called {username}.")
    return found.id, found.username


def day_trail(username: str, day: date, timezone: str) -> Trail:
    """A courier's positions on `day` (local), and each of that day's closed stops at the kept position nearest
    in time to its closing, when one lies within STOP_POSITION_WITHIN (else the stop is left off the map).
    NotFound for an unknown courier. Three queries."""
    courier_id, name = find_courier(username)
    start, end = local_day_start(day, timezone), local_day_start(day + timedelta(days=1), timezone)
    # The day's positions, and those just around it that may place a stop closed near midnight.
    rows = db.session.execute(
        select(_POSITIONS.c.at, _POSITIONS.c.lat, _POSITIONS.c.lon)
        .where(_POSITIONS.c.courier_id == courier_id, _POSITIONS.c.at >= start - STOP_POSITION_WITHIN,
               _POSITIONS.c.at < end + STOP_POSITION_WITHIN)
        .order_by(_POSITIONS.c.at, _POSITIONS.c.id)).all()
    nearby = [(as_utc(row.at), row.lat, row.lon) for row in rows]
    points = [point for point in nearby if start <= point[0] < end]
    return Trail(name, day, points, _placed_stops(courier_id, day, nearby))


def _placed_stops(courier_id: int, day: date, nearby: list[tuple[datetime, float, float]]) -> list[TrailStop]:
    stops = db.session.execute(
        select(Shipment.tracking_id, RunSheetStop.sequence, RunSheetStop.outcome, RunSheetStop.closed_at)
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(RunSheet.courier_id == courier_id, RunSheet.date == day,
               RunSheetStop.state == StopState.DONE.value, RunSheetStop.closed_at.is_not(None))
        .order_by(RunSheetStop.sequence, RunSheetStop.id)).all()
    times = [at for at, _, _ in nearby]
    placed = []
    for stop in stops:
        nearest = _nearest(times, as_utc(stop.closed_at))
        if nearest is not None:
            _, lat, lon = nearby[nearest]
            placed.append(TrailStop(stop.tracking_id, stop.sequence, stop.outcome, lat, lon))
    return placed


def _nearest(times: list[datetime], when: datetime) -> int | None:
    """The index of the time in `times` (sorted) nearest to `when`, if within STOP_POSITION_WITHIN."""
    index = bisect_left(times, when)
    candidates = [i for i in (index - 1, index) if 0 <= i < len(times)]
    best = min(candidates, key=lambda i: abs(times[i] - when), default=None)
    if best is None or abs(times[best] - when) > STOP_POSITION_WITHIN:
        return None
    return best


# --- retention ---------------------------------------------------------------------------------------------------


def purge_positions(taken_before: datetime, limit: int = PURGE_CHUNK) -> int:
    """Delete at most `limit` positions taken before `taken_before`, in one statement (the job commits each
    chunk, so no lock or transaction grows with the backlog); returns how many went."""
    chunk = select(_POSITIONS.c.id).where(_POSITIONS.c.at < taken_before).limit(limit)
    return db.session.execute(delete(_POSITIONS).where(_POSITIONS.c.id.in_(chunk))).rowcount
