"""Couriers in the field, as rules: vehicles, shifts, what state a courier is in, which positions are kept, when
an offline action's time is believed, what proof a delivery needs. Standard library only."""
from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from app.domain.status import Status


class Vehicle(StrEnum):
    TWO_WHEELER = "two_wheeler"
    THREE_WHEELER = "three_wheeler"
    VAN = "van"


VEHICLES: tuple[str, ...] = tuple(v.value for v in Vehicle)
CAPACITY_MAX = 1000  # parcels one courier may be given for a day; more is a typing mistake

# --- run sheets ------------------------------------------------------------------------------------------------


class StopState(StrEnum):
    OPEN = "open"
    DONE = "done"
    MOVED = "moved"


# A stop stays open while its parcel waits for the courier (In Transit, not yet handed out) or is with them
# (Out for Delivery); any other status the parcel reaches (Delivered, Delivery Attempted, Picked Up for a pickup,
# On Hold, a return, a cancellation) closes it, whoever recorded it.
STOP_OPEN_STATUSES: frozenset[str] = frozenset({Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY})

# What may be put on a run sheet: parcels ready to go out or out already (a delivery), and pickups still with
# their sender (Booked, booked with a pickup).
DELIVERABLE_STATUSES: frozenset[str] = frozenset({Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY,
                                                  Status.DELIVERY_ATTEMPTED})


def stop_kind(status: str, pickup: bool) -> str | None:
    """`delivery` or `pickup` for a parcel that may go on a run sheet, None for one that may not."""
    if status in DELIVERABLE_STATUSES:
        return "delivery"
    if status == Status.BOOKED and pickup:
        return "pickup"
    return None


def closes_stop(new_status: str) -> bool:
    return new_status not in STOP_OPEN_STATUSES


# --- where a courier is ----------------------------------------------------------------------------------------


class CourierState(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    OFFLINE = "offline"
    OFF_SHIFT = "off_shift"


ACTIVE_WITHIN = timedelta(minutes=2)  # a position this recent: active (unless idle)
IDLE_AFTER = timedelta(minutes=8)  # no movement over IDLE_DISTANCE_M for longer than this: idle
IDLE_DISTANCE_M = 25.0
OFFLINE_AFTER = timedelta(minutes=15)  # no position for this long: offline

EARTH_RADIUS_M = 6_371_008.8


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def path_length_m(points: list[tuple[float, float]]) -> float:
    """The length of a path of (lat, lon) points in order, in metres (a day's trail: distance travelled)."""
    return sum(haversine_m(a[0], a[1], b[0], b[1]) for a, b in zip(points, points[1:], strict=False))


def on_shift(shift_start: time, shift_end: time, local_now: time) -> bool:
    """Whether a local time lies in a shift; a shift that ends before it starts runs past midnight, one that ends
    when it starts runs round the clock."""
    if shift_start == shift_end:
        return True
    if shift_start < shift_end:
        return shift_start <= local_now < shift_end
    return local_now >= shift_start or local_now < shift_end


def courier_state(now: datetime, *, on_shift_now: bool, last_seen_at: datetime | None,
                  moved_at: datetime | None) -> CourierState:
    """active: a position in the last 2 minutes and moving; idle: not moved more than 25 m for over 8 minutes, or
    silent for 2 to 15 minutes; offline: no position for 15 minutes; off_shift: outside the shift."""
    if not on_shift_now:
        return CourierState.OFF_SHIFT
    if last_seen_at is None or now - last_seen_at >= OFFLINE_AFTER:
        return CourierState.OFFLINE
    if moved_at is not None and now - moved_at > IDLE_AFTER:
        return CourierState.IDLE
    if now - last_seen_at <= ACTIVE_WITHIN:
        return CourierState.ACTIVE
    return CourierState.IDLE


class LiveState(StrEnum):
    """A courier's colour on the live map (/admin/live)."""

    ACTIVE = "active"  # green
    IDLE = "idle"  # amber
    AT_RISK = "at_risk"  # red
    OFFLINE = "offline"  # grey


def live_state(now: datetime, *, on_shift_now: bool, last_seen_at: datetime | None, moved_at: datetime | None,
               open_stops: int, stops_at_risk: int, silent_after: timedelta) -> LiveState:
    """The live map's state, in this order:
    offline: off shift, or no position for `silent_after` (COURIER_SILENT_AFTER);
    at_risk: any open stop's parcel is at risk of missing its promise (app.services.operations.sla says which);
    idle: not moved more than IDLE_DISTANCE_M for over IDLE_AFTER, no open stops, or no position within
    ACTIVE_WITHIN; active: on shift with open stops, a position within ACTIVE_WITHIN and moving."""
    if not on_shift_now or last_seen_at is None or now - last_seen_at >= silent_after:
        return LiveState.OFFLINE
    if stops_at_risk > 0:
        return LiveState.AT_RISK
    if open_stops <= 0 or (moved_at is not None and now - moved_at > IDLE_AFTER) or now - last_seen_at > ACTIVE_WITHIN:
        return LiveState.IDLE
    return LiveState.ACTIVE


# --- positions -------------------------------------------------------------------------------------------------

MAX_POINTS_PER_BATCH = 500
WORST_ACCURACY_M = 50.0  # a fix less precise than this is dropped
MIN_POINT_GAP = timedelta(seconds=5)  # a fix this close after the previous kept one is dropped
POINT_MAX_AGE = timedelta(days=7)  # older positions are refused (400), like offline actions
POINT_MAX_AHEAD = timedelta(minutes=5)

# --- offline actions -------------------------------------------------------------------------------------------

EVENT_MAX_AGE = timedelta(days=7)  # an action's own time is believed back this far...
EVENT_MAX_AHEAD = timedelta(minutes=5)  # ...and this far ahead of the server's clock (a phone's clock drifts)


def event_time_problem(at: datetime, now: datetime) -> str | None:
    """Why the time an offline action says it happened at is not believed (None: it is)."""
    if at < now - EVENT_MAX_AGE:
        return "More than 7 days ago."
    if at > now + EVENT_MAX_AHEAD:
        return "More than 5 minutes in the future: check the phone's clock."
    return None


# --- what proof a delivery needs (an admin setting per kind) ---------------------------------------------------


class ProofLevel(StrEnum):
    OFF = "off"  # not asked for
    WARN = "warn"  # asked for; the courier may go on without it
    REQUIRED = "required"  # Delivered is refused without it


PROOF_KINDS: tuple[str, ...] = ("received_by", "signature", "photo")
PROOF_LEVELS: tuple[str, ...] = tuple(level.value for level in ProofLevel)
DELIVERY_OTP = "delivery_otp"  # "on" | "off"
SETTING_DEFAULTS: dict[str, str] = {
    "received_by": ProofLevel.REQUIRED, "signature": ProofLevel.WARN, "photo": ProofLevel.WARN,
    DELIVERY_OTP: "off",
}

# The delivery code: 4 digits; this many wrong codes lock the stop for LOCK_FOR.
OTP_DIGITS = 4
OTP_MAX_FAILURES = 5
OTP_LOCK_FOR = timedelta(minutes=15)

# COD: how a courier took the money.
COD_METHODS: tuple[str, ...] = ("cash", "upi")

# --- cash on delivery settled ----------------------------------------------------------------------------------

REMITTANCE_MAX = Decimal("1000000.00")  # ₹10,00,000 handed in at once: more is a typing mistake
REMITTANCE_REFERENCE_MAX = 64


class CodFlag(StrEnum):
    SHORTFALL = "shortfall"  # a stop's courier collected less than its cod_amount
    SURPLUS = "surplus"  # ...or more
    NOT_RECORDED = "not_recorded"  # a COD parcel the courier delivered with no collection recorded
    SURPLUS_REMITTED = "surplus_remitted"  # the hub has received more cash than the courier collected


def cod_difference(expected: Decimal, collected: Decimal) -> CodFlag | None:
    """What a stop's collection says against the amount due: a shortfall, a surplus, or nothing (None)."""
    if collected < expected:
        return CodFlag.SHORTFALL
    if collected > expected:
        return CodFlag.SURPLUS
    return None


def remittance_amount_problem(amount: Decimal | None) -> str | None:
    """Why an amount of cash handed in at the hub cannot be recorded (None: it can). `amount` is the number as
    read; None when what was sent is not a number."""
    if amount is None:
        return "Enter the amount in rupees as a number, such as 1250.00."
    if amount <= 0:
        return "Must be more than 0."
    if amount > REMITTANCE_MAX:
        return "At most 1000000.00 (₹10,00,000) at once."
    if amount != amount.quantize(Decimal("0.01")):
        return "At most 2 decimal places (to the paisa)."
    return None


def remittance_reference_problem(reference: str) -> str | None:
    """Why a remittance's reference (the hub's receipt number) cannot be recorded (None: it can)."""
    if not reference:
        return "Required: the receipt number or another reference for this cash."
    if len(reference) > REMITTANCE_REFERENCE_MAX:
        return f"At most {REMITTANCE_REFERENCE_MAX} characters."
    if not reference.isprintable():
        return "Only printable characters."
    return None


# --- a position's values (POST /courier/locations) -------------------------------------------------------------

# `battery` is the Battery Status API's level as the phone reports it: a fraction from 0 to 1 (not a percentage,
# so 0.5 can only mean half).
BATTERY_MAX = 1.0
HEADING_MAX = 360.0  # degrees clockwise from true north; 360 is north again


def position_problems(*, lat: float, lon: float, accuracy: float, at: datetime, now: datetime,
                      speed: float | None = None, heading: float | None = None,
                      battery: float | None = None) -> dict[str, str]:
    """Why a position's values cannot be true, by value name (empty: they can). A fix less precise than
    WORST_ACCURACY_M is possible (and dropped, not refused); a latitude of 91 or a time a week old is not."""
    problems: dict[str, str] = {}
    if not -90.0 <= lat <= 90.0:
        problems["lat"] = "Must be from -90 to 90."
    if not -180.0 <= lon <= 180.0:
        problems["lon"] = "Must be from -180 to 180."
    if not accuracy > 0:
        problems["accuracy"] = "Must be more than 0 (metres)."
    if at < now - POINT_MAX_AGE:
        problems["at"] = "More than 7 days ago."
    elif at > now + POINT_MAX_AHEAD:
        problems["at"] = "More than 5 minutes in the future: check the phone's clock."
    if speed is not None and not speed >= 0:
        problems["speed"] = "Must be 0 or more (metres a second)."
    if heading is not None and not 0.0 <= heading <= HEADING_MAX:
        problems["heading"] = "Must be from 0 to 360 (degrees)."
    if battery is not None and not 0.0 <= battery <= BATTERY_MAX:
        problems["battery"] = "Must be from 0 to 1 (the charge as a fraction)."
    return problems


# --- courier accounts ------------------------------------------------------------------------------------------

# What a new courier may carry in a day when the admin does not say: what fits on the vehicle.
DEFAULT_CAPACITY: dict[str, int] = {Vehicle.TWO_WHEELER: 30, Vehicle.THREE_WHEELER: 60, Vehicle.VAN: 150}
DEFAULT_SHIFT_START, DEFAULT_SHIFT_END = time(9, 0), time(18, 0)  # local time (DISPLAY_TIMEZONE)
