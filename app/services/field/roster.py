"""The couriers as staff see them now (GET /admin/couriers): each active courier's vehicle, state, last position,
stops and the day's cash, in three queries whatever the number of couriers.

- `state`: app.domain.field.courier_state, on shift by the courier's shift in DISPLAY_TIMEZONE now; a courier
  with no profile has no shift, so is off shift.
- `stops_open`: open stops on any of their run sheets; `stops_done`: stops closed today (local day);
  `cod_collected`: what they recorded collecting today, a Decimal rounded half up to the paisa.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, or_, select

from app.domain.field import CourierState, StopState, courier_state, on_shift
from app.domain.pricing import money, money_text
from app.domain.roles import Role
from app.domain.timeutil import as_utc, isoformat_z, local_day_start, to_local
from app.extensions import db
from app.models import CodCollection, CourierProfile, RunSheet, RunSheetStop, User


@dataclass(frozen=True)
class RosterEntry:
    username: str
    name: str | None
    vehicle: str | None
    capacity: int | None
    state: CourierState
    last_seen_at: datetime | None
    lat: float | None
    lon: float | None
    accuracy: float | None
    stops_open: int
    stops_done: int
    cod_collected: Decimal

    def to_dict(self) -> dict:
        position = None if self.lat is None or self.lon is None else \
            {"lat": self.lat, "lon": self.lon, "accuracy": self.accuracy}
        return {"username": self.username, "name": self.name, "vehicle": self.vehicle, "capacity": self.capacity,
                "state": self.state.value, "last_seen_at": isoformat_z(self.last_seen_at), "position": position,
                "stops_open": self.stops_open, "stops_done": self.stops_done,
                "cod_collected": money_text(self.cod_collected)}


def courier_roster(now: datetime, timezone: str) -> list[RosterEntry]:
    """Every active courier by username, as of `now` (see the module's rules)."""
    local_now = to_local(now, timezone)
    start = local_day_start(local_now.date(), timezone)
    end = local_day_start(local_now.date() + timedelta(days=1), timezone)
    couriers = db.session.execute(
        select(User.id, User.username, CourierProfile.name, CourierProfile.vehicle, CourierProfile.capacity,
               CourierProfile.shift_start, CourierProfile.shift_end, CourierProfile.last_lat,
               CourierProfile.last_lon, CourierProfile.last_accuracy, CourierProfile.last_seen_at,
               CourierProfile.moved_at)
        .outerjoin(CourierProfile, CourierProfile.user_id == User.id)
        .where(User.role == Role.COURIER.value, User.active.is_(True))
        .order_by(func.lower(User.username))).all()
    stops = _stop_counts(start, end)
    cash = _cod_collected(start, end)
    entries = []
    for row in couriers:
        shift_now = row.shift_start is not None and on_shift(row.shift_start, row.shift_end, local_now.time())
        last_seen = as_utc(row.last_seen_at) if row.last_seen_at is not None else None
        moved = as_utc(row.moved_at) if row.moved_at is not None else None
        opened, done = stops.get(row.id, (0, 0))
        entries.append(RosterEntry(
            row.username, row.name, row.vehicle, row.capacity,
            courier_state(now, on_shift_now=shift_now, last_seen_at=last_seen, moved_at=moved), last_seen,
            row.last_lat, row.last_lon, row.last_accuracy, opened, done, money(cash.get(row.id, Decimal(0)))))
    return entries


def _stop_counts(start: datetime, end: datetime) -> dict[int, tuple[int, int]]:
    """Courier id → (open stops, stops closed in [start, end))."""
    is_open = RunSheetStop.state == StopState.OPEN.value
    done_today = and_(RunSheetStop.state == StopState.DONE.value, RunSheetStop.closed_at >= start,
                      RunSheetStop.closed_at < end)
    rows = db.session.execute(
        select(RunSheet.courier_id, func.sum(case((is_open, 1), else_=0)).label("opened"),
               func.sum(case((done_today, 1), else_=0)).label("done"))
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .where(or_(is_open, done_today))
        .group_by(RunSheet.courier_id)).all()
    return {row.courier_id: (int(row.opened), int(row.done)) for row in rows}


def _cod_collected(start: datetime, end: datetime) -> dict[int, Decimal]:
    """Courier id → cash on delivery recorded as collected in [start, end)."""
    rows = db.session.execute(
        select(CodCollection.courier_id, func.sum(CodCollection.collected).label("collected"))
        .where(CodCollection.collected_at >= start, CodCollection.collected_at < end)
        .group_by(CodCollection.courier_id)).all()
    return {row.courier_id: Decimal(str(row.collected)) for row in rows}
