"""Dispatch, as rules: what a vehicle carries, when the schedule plans, why a parcel was left out, how a supervisor's
override and a week of them are written. Standard library only."""
from __future__ import annotations

import math
import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from app.domain.field import Vehicle

# --- what a courier carries ----------------------------------------------------------------------------------------

# The weight a vehicle carries in a day, in kg (a courier profile only counts parcels): a two-wheeler's top box and
# panniers, an autorickshaw cargo carrier, a small van. Planned only when a parcel of the run has a weight.
VEHICLE_KG: dict[str, int] = {Vehicle.TWO_WHEELER: 20, Vehicle.THREE_WHEELER: 300, Vehicle.VAN: 800}
UNKNOWN_VEHICLE_KG = VEHICLE_KG[Vehicle.TWO_WHEELER]  # a vehicle added later and not listed: the least


def vehicle_grams(vehicle: str) -> int:
    return VEHICLE_KG.get(vehicle, UNKNOWN_VEHICLE_KG) * 1000


# --- a run's state and its parcels left out ------------------------------------------------------------------------


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


RUN_STATES: tuple[str, ...] = tuple(state.value for state in RunState)
MAX_ATTEMPTS = 3  # a solve whose process died is tried again, this many times in all


class Unassigned(StrEnum):
    """Why a parcel of the run is on no run sheet."""

    CAPACITY = "capacity"  # it could be served alone, but the couriers' parcels, weight or hours ran out
    WINDOW = "window"  # no courier can reach it inside its delivery window and their shift, even going straight
    NO_COURIER = "no_courier"  # nobody is on shift (with hours left) to plan it for
    NO_POINT = "no_point"  # the parcel has no point on the map to route to
    CHANGED = "changed"  # while the plan was made it was delivered, held or put on a run sheet by someone


UNASSIGNED_REASONS: tuple[str, ...] = tuple(reason.value for reason in Unassigned)


# --- the schedule --------------------------------------------------------------------------------------------------

# A slot whose time passed longer ago than this is not planned any more (the processes were down): the parcels
# wait for the next slot rather than be planned hours late. Of several slots passed, only the latest is planned.
SLOT_GRACE = timedelta(hours=2)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_dispatch_times(text: str | None) -> tuple[time, ...]:
    """DISPATCH_TIMES ("06:00,09:00,12:00", local times; "" or "none": no schedule) in order, repeats dropped.
    ValueError naming the entry that is not a time of day."""
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return ()
    times = set()
    for entry in text.split(","):
        match = _CLOCK.match(entry.strip())
        if match is None:
            raise ValueError(f"DISPATCH_TIMES: {entry.strip()!r} is not a time of day such as 06:00")
        times.add(time(int(match.group(1)), int(match.group(2))))
    return tuple(sorted(times))


def due_slot(local_now: datetime, times: tuple[time, ...]) -> datetime | None:
    """The latest slot at or before `local_now` (aware, in the display time zone), today's or yesterday's, if it
    passed at most SLOT_GRACE ago; None when there is none."""
    tz = local_now.tzinfo
    candidates = [datetime.combine(day, at, tzinfo=tz) for day in (local_now.date() - timedelta(days=1),
                                                                   local_now.date()) for at in times]
    passed = [slot for slot in candidates if slot <= local_now]
    if not passed:
        return None
    latest = max(passed)
    return latest if local_now - latest <= SLOT_GRACE else None


# --- a shift and a window on the plan's clock ----------------------------------------------------------------------

DAY_SECONDS = 24 * 3600
HORIZON = 2 * DAY_SECONDS  # the plan's clock runs past midnight for a shift that does


def shift_seconds(start: time, end: time) -> tuple[int, int]:
    """A shift on the plan's clock (seconds from the day's local midnight): one that ends before it starts runs past
    midnight, one that ends when it starts runs round the clock."""
    opens, closes = _seconds(start), _seconds(end)
    if closes == opens:
        return 0, DAY_SECONDS
    return opens, closes if closes > opens else closes + DAY_SECONDS


def _seconds(at: time) -> int:
    return at.hour * 3600 + at.minute * 60 + at.second


def window_seconds(day_start: datetime, opens: datetime | None, closes: datetime | None) -> tuple[int, int] | None:
    """A delivery window as seconds on the plan's clock (from `day_start`, the plan day's local midnight in UTC),
    bounded by the plan's horizon; None when it holds no moment of the plan (closed before the day or opening
    after it)."""
    # Rounded inwards: a plan that keeps the whole seconds keeps the exact window.
    first = 0 if opens is None else max(0, math.ceil((opens - day_start).total_seconds()))
    last = HORIZON if closes is None else min(HORIZON, math.floor((closes - day_start).total_seconds()))
    return (first, last) if first <= last else None


# --- overrides -----------------------------------------------------------------------------------------------------

REASON_MIN, REASON_MAX = 3, 200
_ISO_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def override_reason_problem(reason: str) -> str | None:
    """Why a supervisor's reason for an override cannot be recorded (None: it can)."""
    if len(reason) < REASON_MIN:
        return f"Say why, in {REASON_MIN} to {REASON_MAX} characters."
    if len(reason) > REASON_MAX:
        return f"At most {REASON_MAX} characters."
    return None


def parse_iso_week(text: str) -> date:
    """The Monday of an ISO week written "2026-W49"; ValueError for any other text or a week the year lacks."""
    match = _ISO_WEEK.match(text.strip())
    if match is None:
        raise ValueError("Write the week as 2026-W49 (ISO year, W, week number).")
    try:
        return date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise ValueError(f"{match.group(1)} has no week {match.group(2)}.") from None


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
