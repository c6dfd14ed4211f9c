"""Promised delivery dates: how many days a booking is promised in, and the instant that promise ends.

Rules (README, "Promised dates and the SLA"):
- A promise is a number of days by service level (`standard`, `express`) and zone pair (`local`, `state`,
  `national`: app.domain.pricing.zone_between, the zone the booking was priced in). The defaults: standard
  local 1, state 3, national 5 days; express one day less, never below 0 (0: the same day). Admins may change
  each pair (0 to MAX_PROMISE_DAYS days); a pair they never set keeps its default.
- Days are calendar days: Sundays and holidays count like any other day (a courier that does not deliver on
  Sundays promises fewer days or sets more in the table).
- The promise ends at the end of the promised day in DISPLAY_TIMEZONE: booked on 7 Dec (local) with 3 days, it is
  promised by 10 Dec 23:59:59 local time, stored in UTC. The booking's local date counts, not its UTC date.
- An integrator may name the day itself (POST /api/v1/shipments `promised_by`, "YYYY-MM-DD"): not before today
  (local) and at most GIVEN_DAYS_AHEAD days ahead.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domain.pricing import SERVICES, ZONES

MAX_PROMISE_DAYS = 30
GIVEN_DAYS_AHEAD = 60
END_OF_DAY = time(23, 59, 59)  # whole seconds: the instant reads back the same from ISO 8601 JSON


def _default_days() -> dict[tuple[str, str], int]:
    standard = {"local": 1, "state": 3, "national": 5}
    days = {("standard", zone): value for zone, value in standard.items()}
    days.update({("express", zone): max(value - 1, 0) for zone, value in standard.items()})
    return days


DEFAULT_PROMISE_DAYS: dict[tuple[str, str], int] = _default_days()
PAIRS: tuple[tuple[str, str], ...] = tuple((service, zone) for service in SERVICES for zone in ZONES)


def end_of_local_day(day: date, tz_name: str) -> datetime:
    """The last second of `day` in the time zone `tz_name`, as an aware UTC datetime."""
    return datetime.combine(day, END_OF_DAY, tzinfo=ZoneInfo(tz_name)).astimezone(UTC)


def local_date(moment: datetime, tz_name: str) -> date:
    """The day `moment` (aware) falls on in `tz_name`."""
    return moment.astimezone(ZoneInfo(tz_name)).date()


def promised_by(booked_at: datetime, days: int, tz_name: str) -> datetime:
    """The end of the day `days` after the booking's local date (see the module's rules)."""
    return end_of_local_day(local_date(booked_at, tz_name) + timedelta(days=days), tz_name)


def promise_days(rules: Mapping[tuple[str, str], int], service: str, zone: str) -> int:
    """The days for (service, zone): the table's row, else the default; an unknown pair takes national standard's
    (the longest default, never a promise shorter than the network keeps)."""
    return rules.get((service, zone), DEFAULT_PROMISE_DAYS.get((service, zone),
                                                               DEFAULT_PROMISE_DAYS[("standard", "national")]))


def promise_days_problem(value: object) -> str | None:
    """Why `value` cannot be a number of promised days (None: it can): a whole number from 0 to MAX_PROMISE_DAYS."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"A whole number of days from 0 to {MAX_PROMISE_DAYS}."
    if not 0 <= value <= MAX_PROMISE_DAYS:
        return f"From 0 to {MAX_PROMISE_DAYS} days."
    return None


def given_day_problem(day: date, today: date) -> str | None:
    """Why an integrator's promised day cannot be taken (None: it can): not before `today`, at most
    GIVEN_DAYS_AHEAD days after it."""
    if day < today:
        return "Must not be before today."
    if day > today + timedelta(days=GIVEN_DAYS_AHEAD):
        return f"At most {GIVEN_DAYS_AHEAD} days ahead."
    return None
