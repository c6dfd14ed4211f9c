"""Courier accounts: the vehicle, capacity, shift and shown name that a staff account with the role `courier`
carries (CourierProfile), made with the account and changed with it (app.services.staff.users calls here, in its
transaction and under its audit row).

Rules: a courier needs a vehicle (two_wheeler, three_wheeler, van). The capacity, the parcels one courier may be
given for a day, is 1 to CAPACITY_MAX and defaults by vehicle (app.domain.field.DEFAULT_CAPACITY); when the
vehicle changes and no capacity is sent, a capacity that was the old vehicle's default becomes the new one's. The
shift is local time (DISPLAY_TIMEZONE), 09:00-18:00 unless given; it may run past midnight, but not start and end
at the same minute. The name (the first name recipients see) is optional. Other roles have none of these, and
sending one for them is refused. An account that stops being a courier keeps its profile: its run sheets still
name it, and it comes back as it was if made a courier again. Audit rows carry the vehicle, capacity and shift,
never the name.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import time

from sqlalchemy import func, select

from app.domain.field import CAPACITY_MAX, DEFAULT_CAPACITY, DEFAULT_SHIFT_END, DEFAULT_SHIFT_START, VEHICLES
from app.domain.roles import Role
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import CourierProfile, User
from app.models.courier import NAME_MAX

ONLY_COURIERS = "Only couriers have a vehicle, capacity, shift or shown name."
VEHICLE_RULE = f"Choose the courier's vehicle: one of {', '.join(VEHICLES)}."
CAPACITY_RULE = f"Capacity is a whole number of parcels from 1 to {CAPACITY_MAX}."
NAME_RULE = f"At most {NAME_MAX} characters."
SHIFT_RULE = "A shift cannot end at the minute it starts."
# The profile's fields in the order they are checked and reported.
_PROFILE_FIELDS = ("name", "vehicle", "capacity", "shift_start", "shift_end")


@dataclass(frozen=True)
class CourierFields:
    """A courier's details as an admin sent them. None: not sent (the default when the profile is made, left as it
    is when it is changed); a `name` of "" clears the name."""
    name: str | None = None
    vehicle: str | None = None
    capacity: int | None = None
    shift_start: time | None = None
    shift_end: time | None = None

    def sent(self) -> list[str]:
        """The fields sent with a value, in order."""
        return [item.name for item in fields(self) if getattr(self, item.name) not in (None, "")]


def profile_of(user_id: int) -> CourierProfile | None:
    return db.session.get(CourierProfile, user_id)


def profiles_of(users: Iterable[User]) -> dict[int, CourierProfile]:
    """The profiles of the couriers among these accounts, by user id, in one query (a former courier's profile,
    kept, is left out)."""
    ids = [user.id for user in users if user.role == Role.COURIER]
    if not ids:
        return {}
    return {p.user_id: p for p in db.session.scalars(select(CourierProfile).where(CourierProfile.user_id.in_(ids)))}


def active_couriers() -> list[User]:
    """The accounts that may be given a run sheet: active couriers, by username."""
    return list(db.session.scalars(select(User).where(User.role == Role.COURIER, User.active.is_(True))
                                   .order_by(func.lower(User.username))))


def courier_field_problems(details: CourierFields, *, role: str, profile: CourierProfile | None) -> dict[str, str]:
    """Why `details` cannot be saved for an account that is to have `role` and has `profile` (None: none yet), by
    field; empty when they can."""
    if role != Role.COURIER:
        return dict.fromkeys(details.sent(), ONLY_COURIERS)
    problems: dict[str, str] = {}
    if details.name and len(details.name) > NAME_MAX:
        problems["name"] = NAME_RULE
    if (details.vehicle is None and profile is None) or (details.vehicle is not None
                                                         and details.vehicle not in VEHICLES):
        problems["vehicle"] = VEHICLE_RULE
    if details.capacity is not None and not 1 <= details.capacity <= CAPACITY_MAX:
        problems["capacity"] = CAPACITY_RULE
    start = details.shift_start or (profile.shift_start if profile else DEFAULT_SHIFT_START)
    end = details.shift_end or (profile.shift_end if profile else DEFAULT_SHIFT_END)
    if start == end:
        problems["shift_end"] = SHIFT_RULE
    return problems


def create_profile(user_id: int, details: CourierFields) -> CourierProfile:
    """A new courier's profile, with the defaults for what was not sent (details already checked)."""
    profile = CourierProfile(user_id=user_id, name=details.name or None, vehicle=details.vehicle,
                             capacity=details.capacity or DEFAULT_CAPACITY[details.vehicle],
                             shift_start=details.shift_start or DEFAULT_SHIFT_START,
                             shift_end=details.shift_end or DEFAULT_SHIFT_END, updated_at=utcnow())
    db.session.add(profile)
    db.session.flush()
    return profile


def update_profile(profile: CourierProfile, details: CourierFields) -> tuple[list[str], dict]:
    """Apply the sent details (already checked); the names of the fields that changed, and each one's from/to
    for the audit row (the name's values left out)."""
    wanted = {name: getattr(details, name) for name in _PROFILE_FIELDS if getattr(details, name) is not None}
    if "name" in wanted:
        wanted["name"] = wanted["name"] or None
    vehicle = wanted.get("vehicle", profile.vehicle)
    if "capacity" not in wanted and profile.capacity == DEFAULT_CAPACITY.get(profile.vehicle):
        wanted["capacity"] = DEFAULT_CAPACITY[vehicle]
    changed, audit = [], {}
    for name, value in wanted.items():
        old = getattr(profile, name)
        if value == old:
            continue
        setattr(profile, name, value)
        changed.append(name)
        if name != "name":
            audit[name] = {"from": _audit_value(old), "to": _audit_value(value)}
    if changed:
        profile.updated_at = utcnow()
    return changed, audit


def profile_summary(profile: CourierProfile) -> dict:
    """What the audit trail keeps of a profile: no personal data (the shown name stays out)."""
    return {"vehicle": profile.vehicle, "capacity": profile.capacity,
            "shift": {"start": _audit_value(profile.shift_start), "end": _audit_value(profile.shift_end)}}


def _audit_value(value: object) -> object:
    return value.strftime("%H:%M") if isinstance(value, time) else value
