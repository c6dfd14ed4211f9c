"""The operations report: for each local day of a range, parcels booked and delivered, the on-time and
first-attempt rates, failed attempts, returns to origin and cash collected; each courier's deliveries, pace and
first-attempt rate over the range; how long parcels stay at hubs. JSON, CSV, and the page's charts read it.

Rules (what each figure counts is app.domain.reports's; here is where the events come from):
- The range is `first`..`last`, local days in DISPLAY_TIMEZONE, both included, at most MAX_SPAN_DAYS days and
  `first` not after `last` (a ValidationError naming `to` otherwise). Without `last`, today; without `first`, the
  DEFAULT_SPAN_DAYS days up to `last`. Every day of the range is listed, those without events too.
- The events read are the whole timelines (from booking) of the parcels with an event in the range, up to the
  range's end (a rule about a parcel's past, such as "no earlier attempt", needs its events before the range):
  a statement for the parcels, then one per TIMELINES_AT_ONCE parcels, never one per parcel. Facts outside the
  range are dropped; so are stays at hubs that ended outside it.
- cod_collected: the cash and UPI the couriers recorded collecting with their deliveries (CodCollection), on the
  day of its `collected_at`; exact (Decimal), sent as "1250.00".
- The couriers listed are those (role `courier`, deactivated too) who delivered or attempted a parcel in the
  range, by username (any case). A courier without a profile (no shift) has `per_hour` null.
- Reading the report changes nothing and is not audited: it names no person but couriers' usernames.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import groupby
from operator import attrgetter
from zoneinfo import ZoneInfo

from flask_babel import gettext
from sqlalchemy import select

from app.domain.pricing import money_text
from app.domain.reports import (
    DEFAULT_SPAN_DAYS,
    MAX_SPAN_DAYS,
    TimelineFacts,
    per_hour,
    percentile_hours,
    rate,
    read_timeline,
    report_days,
    shift_hours,
)
from app.domain.roles import Role
from app.domain.timeutil import local_day_start, to_local, utcnow
from app.errors import ValidationError
from app.extensions import db
from app.models import CodCollection, CourierProfile, Shipment, TrackingEvent, User
from app.services.shipments.exports import neutralise_formula
from app.services.shipments.queries import events_in_order

TABLES = ("days", "couriers", "hub_dwell")
DAY_COLUMNS = ("date", "booked", "delivered", "on_time_rate", "first_attempt_rate", "attempts", "rto",
               "cod_collected")
COURIER_COLUMNS = ("username", "delivered", "per_hour", "first_attempt_rate")
HUB_DWELL_COLUMNS = ("stays", "p50_hours", "p90_hours")
TIMELINES_AT_ONCE = 10_000  # parcels whose events one statement reads (SQLite takes 32,766 parameters)
ZERO = Decimal("0.00")
_EVENTS = TrackingEvent.__table__
_SHIPMENTS = Shipment.__table__


@dataclass(frozen=True)
class ReportRange:
    """Local days `first`..`last` (both included) as the UTC instants they span, [start, end)."""
    first: date
    last: date
    start: datetime
    end: datetime
    timezone: str

    @property
    def days(self) -> list[date]:
        return report_days(self.first, self.last)


def report_range(first: date | None, last: date | None, tz_name: str, *, now: datetime | None = None) -> ReportRange:
    """The range asked for (see the module's rules); ValidationError naming `to` when it is not one."""
    last = last or to_local(now or utcnow(), tz_name).date()
    first = first or last - timedelta(days=DEFAULT_SPAN_DAYS - 1)
    if last < first:
        raise ValidationError(gettext("The report's days are not valid."),
                              fields={"to": gettext("Must not be before the first day.")})
    if (last - first).days + 1 > MAX_SPAN_DAYS:
        raise ValidationError(gettext("The report's days are not valid."), fields={
            "to": gettext("At most %(days)s days from the first day, both included.", days=MAX_SPAN_DAYS)})
    return ReportRange(first, last, local_day_start(first, tz_name),
                       local_day_start(last + timedelta(days=1), tz_name), tz_name)


@dataclass
class DayFigures:
    date: date
    booked: int = 0
    delivered: int = 0
    promised: int = 0  # deliveries of parcels with a promise
    on_time: int = 0
    first_attempt: int = 0
    attempts: int = 0
    rto: int = 0
    cod_collected: Decimal = ZERO

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.on_time, self.promised)

    @property
    def first_attempt_rate(self) -> float | None:
        return rate(self.first_attempt, self.delivered)

    def as_dict(self) -> dict:
        return {"date": self.date.isoformat(), "booked": self.booked, "delivered": self.delivered,
                "on_time_rate": self.on_time_rate, "first_attempt_rate": self.first_attempt_rate,
                "attempts": self.attempts, "rto": self.rto, "cod_collected": money_text(self.cod_collected)}


@dataclass
class CourierFigures:
    username: str
    shift: tuple[time, time] | None
    delivered: int = 0
    first_attempt: int = 0
    days_worked: set[date] = field(default_factory=set)

    @property
    def hours(self) -> float:
        """Hours on shift: the shift's length times the days worked (0 without a shift)."""
        return shift_hours(*self.shift) * len(self.days_worked) if self.shift else 0.0

    @property
    def per_hour(self) -> float | None:
        return per_hour(self.delivered, self.hours)

    @property
    def first_attempt_rate(self) -> float | None:
        return rate(self.first_attempt, self.delivered)

    def as_dict(self) -> dict:
        return {"username": self.username, "delivered": self.delivered, "per_hour": self.per_hour,
                "first_attempt_rate": self.first_attempt_rate}


@dataclass(frozen=True)
class HubDwell:
    stays: int
    p50_hours: float | None
    p90_hours: float | None

    def as_dict(self) -> dict:
        return {"p50_hours": self.p50_hours, "p90_hours": self.p90_hours, "stays": self.stays}


@dataclass(frozen=True)
class Report:
    range: ReportRange
    days: list[DayFigures]
    couriers: list[CourierFigures]
    hub_dwell: HubDwell

    def as_dict(self) -> dict:
        return {"from": self.range.first.isoformat(), "to": self.range.last.isoformat(),
                "timezone": self.range.timezone, "days": [day.as_dict() for day in self.days],
                "couriers": [courier.as_dict() for courier in self.couriers], "hub_dwell": self.hub_dwell.as_dict()}


def operations_report(days: ReportRange) -> Report:
    """The report of the range `days` (see the module's rules)."""
    zone = ZoneInfo(days.timezone)
    figures = {day: DayFigures(day) for day in days.days}
    shifts = _courier_shifts()
    couriers: dict[str, CourierFigures] = {}
    stays: list[float] = []

    def courier(actor: str) -> CourierFigures | None:
        if actor not in shifts:
            return None
        if actor not in couriers:
            couriers[actor] = CourierFigures(actor, shifts[actor])
        return couriers[actor]

    def day_of(moment: datetime) -> DayFigures | None:
        return figures.get(moment.astimezone(zone).date()) if days.start <= moment < days.end else None

    for facts in _timelines(days):
        for moment in facts.booked:
            if (day := day_of(moment)) is not None:
                day.booked += 1
        for delivery in facts.deliveries:
            if (day := day_of(delivery.at)) is None:
                continue
            day.delivered += 1
            day.first_attempt += delivery.first_attempt
            if delivery.on_time is not None:
                day.promised += 1
                day.on_time += delivery.on_time
            if (who := courier(delivery.actor)) is not None:
                who.delivered += 1
                who.first_attempt += delivery.first_attempt
                who.days_worked.add(day.date)
        for attempt in facts.attempts:
            if (day := day_of(attempt.at)) is None:
                continue
            day.attempts += 1
            if (who := courier(attempt.actor)) is not None:
                who.days_worked.add(day.date)
        for moment in facts.returns:
            if (day := day_of(moment)) is not None:
                day.rto += 1
        stays += [stay.seconds for stay in facts.hub_stays if days.start <= stay.ended < days.end]
    for day, amount in _cod_collected(days, zone).items():
        figures[day].cod_collected = amount
    return Report(days, list(figures.values()), sorted(couriers.values(), key=lambda c: c.username.casefold()),
                  HubDwell(len(stays), percentile_hours(stays, 50), percentile_hours(stays, 90)))


def _timelines(days: ReportRange) -> Iterator[TimelineFacts]:
    """The facts of each parcel with an event in the range, read from its events up to the range's end: the
    parcels (and their promises) in one statement, then their events TIMELINES_AT_ONCE parcels a statement, so
    memory stays bounded and no server-side cursor is needed (one streamed join with the range's semi-join took
    20 s for 2,000 parcels on a PostgreSQL database not analysed yet: a cursor is planned for its first rows).
    50,000 parcels are 6 statements of events (PostgreSQL scans the table for each: 0.07 s for 580,000 events)."""
    in_range = (select(_EVENTS.c.shipment_id)
                .where(_EVENTS.c.occurred_at >= days.start, _EVENTS.c.occurred_at < days.end))
    parcels = db.session.execute(select(_SHIPMENTS.c.id, _SHIPMENTS.c.promised_by)
                                 .where(_SHIPMENTS.c.id.in_(in_range)).order_by(_SHIPMENTS.c.id)).all()
    for at in range(0, len(parcels), TIMELINES_AT_ONCE):
        promises = dict(parcels[at:at + TIMELINES_AT_ONCE])
        rows = db.session.execute(
            events_in_order(_EVENTS.c.shipment_id, _EVENTS.c.status, _EVENTS.c.location, _EVENTS.c.actor,
                            _EVENTS.c.occurred_at, per_shipment=True)
            .where(_EVENTS.c.shipment_id.in_(list(promises)), _EVENTS.c.occurred_at < days.end))
        for shipment_id, timeline in groupby(rows, key=attrgetter("shipment_id")):
            yield read_timeline(timeline, promises[shipment_id])


def _courier_shifts() -> dict[str, tuple[time, time] | None]:
    """Every courier account's username and shift (None without a profile)."""
    rows = db.session.execute(
        select(User.username, CourierProfile.shift_start, CourierProfile.shift_end)
        .outerjoin(CourierProfile, CourierProfile.user_id == User.id).where(User.role == Role.COURIER))
    return {row.username: (row.shift_start, row.shift_end) if row.shift_start is not None else None for row in rows}


def _cod_collected(days: ReportRange, zone: ZoneInfo) -> dict[date, Decimal]:
    """The amounts collected on each day of the range (days without any left out)."""
    totals: dict[date, Decimal] = defaultdict(lambda: ZERO)
    rows = db.session.execute(select(CodCollection.collected, CodCollection.collected_at)
                              .where(CodCollection.collected_at >= days.start, CodCollection.collected_at < days.end))
    for amount, collected_at in rows:
        totals[collected_at.astimezone(zone).date()] += Decimal(amount)
    return dict(totals)


# --- CSV ---------------------------------------------------------------------------------------------------------


def report_csv(report: Report, table: str) -> str:
    """One of the report's tables (TABLES) as CSV, a header first; a rate with nothing to divide by is an empty
    cell. Usernames a spreadsheet would read as a formula are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(_csv_rows(report, table))
    return buffer.getvalue()


def _csv_rows(report: Report, table: str) -> Iterable[Iterable[object]]:
    blank = _blank
    if table == "days":
        yield DAY_COLUMNS
        for day in report.days:
            figures = day.as_dict()
            yield [blank(figures[name]) for name in DAY_COLUMNS]
    elif table == "couriers":
        yield COURIER_COLUMNS
        for courier in report.couriers:
            figures = courier.as_dict()
            yield [neutralise_formula(courier.username), *(blank(figures[name]) for name in COURIER_COLUMNS[1:])]
    elif table == "hub_dwell":
        yield HUB_DWELL_COLUMNS
        figures = report.hub_dwell.as_dict()
        yield [blank(figures[name]) for name in HUB_DWELL_COLUMNS]
    else:
        raise ValueError(table)


def _blank(value: object) -> object:
    return "" if value is None else value

