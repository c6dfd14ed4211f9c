"""The operations report's figures as rules: what each one counts, read from a parcel's timeline (its events,
oldest first). The one statement of each figure; app.services.operations.reports reads the events and asks here.

Rules:
- Each fact counts on the local day (DISPLAY_TIMEZONE) of its own event's time.
- A hold's release repeats the status held from ("Delivery Attempted, On Hold, Delivery Attempted"): such an
  event is not a new fact and counts for nothing.
- booked: Booked events. delivered: Delivered events. attempts: Delivery Attempted events (a failed attempt).
- rto: parcels that started back to their sender: RTO Initiated events, and Returned to Sender straight after a
  Delivery Attempted (the short way back, which has no RTO Initiated).
- on_time_rate: of the deliveries of parcels with a promise (`promised_by`), the share delivered at or before
  it; deliveries of parcels without one count in neither part.
- first_attempt_rate: of the deliveries, the share with no Delivery Attempted before them on the parcel's
  timeline (from its booking, not just within the report's days).
- A rate is a fraction rounded half up to 4 places; None (null) when there is nothing to divide by.
- A courier's deliveries and attempts are those whose event has the courier as its actor (the courier app
  records them so). per_hour: the courier's deliveries over their hours on shift, which are their shift's length
  (the courier profile's, a shift ending before it starts runs past midnight, one ending when it starts is 24 h)
  times the days they worked: local days with a delivery or an attempt of theirs. Rounded half up to 2 places.
- Hub dwell: a stay at a hub begins with an In Transit or RTO In Transit event at a location (the parcel
  scanned in there) and ends with the parcel's first later event, other than On Hold, that is at another
  location or whose status is neither In Transit, RTO Initiated nor RTO In Transit (Out for Delivery, Returned to
  Sender, ...). Locations are the same when they match ignoring case and surrounding spaces. Scans at the same
  hub, holds and the decision to return keep the stay open. There is no departure scan, so a stay ended by the
  arrival at the next hub includes the road there. A stay counts on the day it ended; stays not ended yet are not
  counted. p50 and p90 are nearest-rank percentiles of the stays' hours (the smallest stay at least that share of
  stays do not exceed), in hours rounded half up to 2 places; None when no stay ended.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from app.domain.status import Status

MAX_SPAN_DAYS = 92  # local days in one report, both ends included
DEFAULT_SPAN_DAYS = 7  # the last week, today included
RATE_PLACES = Decimal("0.0001")
HOURS_PLACES = Decimal("0.01")
HUB_STATUSES = frozenset({Status.IN_TRANSIT.value, Status.RTO_IN_TRANSIT.value})  # an arrival at a hub
STAYING_STATUSES = frozenset({Status.IN_TRANSIT.value, Status.RTO_INITIATED.value, Status.RTO_IN_TRANSIT.value})
# The statuses as plain strings: read_timeline runs once per event of a report (hundreds of thousands).
_ON_HOLD, _BOOKED, _DELIVERED, _ATTEMPTED, _RTO, _RETURNED = (
    Status.ON_HOLD.value, Status.BOOKED.value, Status.DELIVERED.value, Status.DELIVERY_ATTEMPTED.value,
    Status.RTO_INITIATED.value, Status.RETURNED_TO_SENDER.value)


class TimelineEvent(Protocol):
    """An event as read_timeline needs it (a TrackingEvent, a row of its columns, an Event)."""
    status: str
    location: str
    actor: str
    occurred_at: datetime


@dataclass(frozen=True)
class Event:
    status: str
    location: str
    actor: str
    occurred_at: datetime


@dataclass(frozen=True)
class Delivery:
    at: datetime
    actor: str
    on_time: bool | None  # None: the parcel had no promise
    first_attempt: bool


@dataclass(frozen=True)
class Attempt:
    at: datetime
    actor: str


@dataclass(frozen=True)
class HubStay:
    location: str
    began: datetime
    ended: datetime

    @property
    def seconds(self) -> float:
        return (self.ended - self.began).total_seconds()


@dataclass
class TimelineFacts:
    """What one parcel's timeline contributes to the report (before it is cut to the report's days)."""
    booked: list[datetime] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    returns: list[datetime] = field(default_factory=list)
    hub_stays: list[HubStay] = field(default_factory=list)


def read_timeline(events: Iterable[TimelineEvent], promised_by: datetime | None) -> TimelineFacts:
    """The facts of a parcel's timeline (its events oldest first, ties in the order they were recorded)."""
    facts = TimelineFacts()
    attempted = False
    previous: str | None = None  # the status of the event before
    held_from: str | None = None  # the latest status that is not On Hold
    stay: tuple[str, str, datetime] | None = None  # the hub (its key, its location) and when the parcel came in
    for event in events:
        status, at = event.status, event.occurred_at
        if status == _ON_HOLD:
            previous = status
            continue  # a hold is no fact, and a parcel held at a hub is still there
        if stay is not None and (status not in STAYING_STATUSES or _place(event.location) != stay[0]):
            facts.hub_stays.append(HubStay(stay[1], stay[2], at))
            stay = None
        if stay is None and status in HUB_STATUSES:
            stay = (_place(event.location), event.location, at)
        if not (previous == _ON_HOLD and status == held_from):  # else a release: nothing new
            if status == _BOOKED:
                facts.booked.append(at)
            elif status == _DELIVERED:
                on_time = None if promised_by is None else at <= promised_by
                facts.deliveries.append(Delivery(at, event.actor, on_time, not attempted))
            elif status == _ATTEMPTED:
                attempted = True
                facts.attempts.append(Attempt(at, event.actor))
            elif status == _RTO or (status == _RETURNED and previous == _ATTEMPTED):
                facts.returns.append(at)
        held_from = previous = status
    return facts


def _place(location: str) -> str:
    return " ".join(location.split()).casefold()


def rate(part: int, whole: int) -> float | None:
    """part / whole as a fraction rounded half up to 4 places; None when whole is 0."""
    if whole == 0:
        return None
    return float((Decimal(part) / Decimal(whole)).quantize(RATE_PLACES, rounding=ROUND_HALF_UP))


def per_hour(count: int, hours: float) -> float | None:
    """count / hours rounded half up to 2 places; None without hours."""
    if hours <= 0:
        return None
    return float((Decimal(count) / Decimal(str(hours))).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP))


def shift_hours(start: time, end: time) -> float:
    """The length of a shift in hours: one that ends before it starts runs past midnight, one that ends when it
    starts runs round the clock."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    if minutes <= 0:
        minutes += 24 * 60
    return minutes / 60


def percentile_hours(seconds: Sequence[float], share: int) -> float | None:
    """The nearest-rank percentile (`share` of 100) of durations in seconds, in hours rounded half up to 2
    places; None for no durations."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    value = ordered[max(math.ceil(share / 100 * len(ordered)), 1) - 1]
    return float((Decimal(str(value)) / 3600).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP))


def report_days(first: date, last: date) -> list[date]:
    """Every local day from `first` to `last`, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]

