"""Estimated delivery, learned from the courier's own history.

For every past delivery, each earlier event says "from this status, delivery came this long after". Grouped by
destination area and status over a recent window, those durations give the 5th, 50th and 90th percentile of the
time left; a shipment's estimate is its latest event's time plus those: "expected" at p50, in the window p5–p90
("by" the p90 time: the window is meant to hold at least 80 % of deliveries, and the backtest checks it).

Rules:
- The area is the destination's postal code prefix (first 3 digits of an Indian PIN: the sorting district), else
  its city (the last part of the address with letters in it).
- An area with fewer than `min_samples` deliveries for a status falls back to the whole network, and that to a
  configured default (DEFAULT_REMAINING_HOURS, stretched by ETA_DEFAULT_FACTOR).
- The table is rebuilt periodically (`flask estimates refresh`, and the job runner's `estimates.refresh` job
  through `refresh_if_stale`, one process at a time), never per request; reading an estimate is one primary-key
  look-up. A rebuild tells every process to drop its cached tracking documents, which carry the estimate.
- Final statuses have no estimate. On Hold is estimated from the status it was held from.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from sqlalchemy import delete, false, func, select, update

from app.domain.status import FINAL_STATUSES, Status
from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.models import DeliveryEstimate, Shipment, TrackingEvent
from app.models.delivery_estimate import NETWORK_AREA
from app.services.shipments.queries import events_in_order
from app.services.shipments.tracking_cache import EVERY_DOCUMENT, publish_change

_PIN = re.compile(r"(?<!\d)([1-9]\d{2})\s?\d{3}(?!\d)")
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
AREA_MAX = 64

# Time left to delivery when there is too little history (hours: p5, p50, p90), by current status.
DEFAULT_REMAINING_HOURS: dict[str, tuple[float, float, float]] = {
    Status.BOOKED: (24, 60, 120),
    Status.PICKED_UP: (20, 48, 108),
    Status.IN_TRANSIT: (8, 30, 84),
    Status.OUT_FOR_DELIVERY: (0.5, 4, 10),
    Status.DELIVERY_ATTEMPTED: (18, 26, 60),
}


@dataclass(frozen=True)
class Estimate:
    earliest: datetime
    expected: datetime
    latest: datetime
    basis: str  # "area" (this destination's history), "network" (the whole network's) or "default"

    def to_dict(self) -> dict:
        from app.domain.timeutil import isoformat_z

        return {"earliest": isoformat_z(self.earliest), "expected": isoformat_z(self.expected),
                "latest": isoformat_z(self.latest), "basis": self.basis}


@dataclass(frozen=True)
class Remaining:
    samples: int
    p05: float
    p50: float
    p90: float


def destination_area(destination: str) -> str:
    """"12 MG Road, Ernakulam, Kochi 682016" → "pin:682"; "Banjara Hills, Hyderabad" → "city:hyderabad"."""
    pin = _PIN.search(destination)
    if pin:
        return f"pin:{pin.group(1)}"
    parts = [p.strip() for p in re.split(r"[,\n]", destination) if _LETTERS.search(p)]
    city = re.sub(r"[\d\s-]+$", "", " ".join(parts[-1].split()).casefold()) if parts else ""
    return f"city:{city}"[:AREA_MAX] if city else NETWORK_AREA


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..1)."""
    if not sorted_values:
        raise ValueError("no values")
    position = (len(sorted_values) - 1) * q
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def learn(samples: Iterable[tuple[str, str, float]], min_samples: int) -> dict[tuple[str, str], Remaining]:
    """Percentiles of time left per (area, status) and per (network, status), from (area, status, seconds) samples.
    Areas with fewer than `min_samples` samples for a status are left out (the network covers them)."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for area, status, seconds in samples:
        grouped[(area, status)].append(seconds)
        if area != NETWORK_AREA:
            grouped[(NETWORK_AREA, status)].append(seconds)
    learned = {}
    for key, values in grouped.items():
        if len(values) < min_samples:
            continue
        values.sort()
        learned[key] = Remaining(len(values), percentile(values, 0.05), percentile(values, 0.5),
                                 percentile(values, 0.9))
    return learned


@dataclass(frozen=True)
class Delivery:
    area: str
    delivered_at: datetime
    steps: list[tuple[str, datetime]]  # the events before delivery, oldest first


def recent_deliveries(since: datetime, until: datetime | None = None) -> Iterator[Delivery]:
    """Shipments delivered in [since, until), with the events that came before their delivery, streamed."""
    conditions = [Shipment.status == Status.DELIVERED.value, Shipment.updated_at >= since]
    if until is not None:
        conditions.append(Shipment.updated_at < until)
    rows = db.session.execute(
        events_in_order(TrackingEvent.shipment_id, Shipment.destination, TrackingEvent.status,
                        TrackingEvent.occurred_at, per_shipment=True)
        .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
        .where(*conditions)
        .execution_options(yield_per=5000)
    )
    current_id, destination, steps = None, "", []
    for shipment_id, dest, status, occurred_at in rows:
        if shipment_id != current_id:
            if current_id is not None:
                yield from _delivery(destination, steps)
            current_id, destination, steps = shipment_id, dest, []
        steps.append((status, as_utc(occurred_at)))
    if current_id is not None:
        yield from _delivery(destination, steps)


def _delivery(destination: str, steps: list[tuple[str, datetime]]) -> Iterator[Delivery]:
    delivered = [at for status, at in steps if status == Status.DELIVERED]
    if delivered:
        yield Delivery(destination_area(destination), delivered[-1],
                       [(status, at) for status, at in steps if status != Status.DELIVERED])


def samples_of(deliveries: Iterable[Delivery]) -> Iterator[tuple[str, str, float]]:
    for delivery in deliveries:
        for status, at in delivery.steps:
            if status in DEFAULT_REMAINING_HOURS:
                yield delivery.area, status, max((delivery.delivered_at - at).total_seconds(), 0.0)


def refresh_estimates(window_days: int, min_samples: int, now: datetime | None = None) -> int:
    """Rebuild the estimates table from the deliveries of the last `window_days` days (one transaction, in the
    caller's session). Returns the number of (area, status) rows written."""
    now = now or utcnow()
    learned = learn(samples_of(recent_deliveries(now - timedelta(days=window_days))), min_samples)
    removed = db.session.execute(delete(DeliveryEstimate)).rowcount
    db.session.add_all(DeliveryEstimate(area=area, status=status, samples=r.samples, p05_seconds=r.p05,
                                        p50_seconds=r.p50, p90_seconds=r.p90, refreshed_at=now)
                       for (area, status), r in learned.items())
    if removed or learned:  # cached tracking documents carry the old estimates
        publish_change(EVERY_DOCUMENT)
    return len(learned)


# PostgreSQL advisory lock key of the periodic rebuild ("WAYB" "ETA0"), held by the job runner while the
# `estimates.refresh` job runs (app/jobs/registry.py): one process rebuilds, the others skip.
REFRESH_LOCK_KEY = 0x57415942_45544130


def estimates_refreshed_at() -> datetime | None:
    """When the estimates table was last rebuilt (None: never, or nothing was learned)."""
    latest = db.session.scalar(select(func.max(DeliveryEstimate.refreshed_at)))
    return as_utc(latest) if latest is not None else None


def refresh_if_stale(max_age_seconds: float, window_days: int, min_samples: int,
                     now: datetime | None = None) -> int | None:
    """Rebuild the estimates if they are older than `max_age_seconds`.

    Rules: the age is read first (the common case: fresh, nothing to do). One process at a time rebuilds: on
    PostgreSQL the caller holds REFRESH_LOCK_KEY (the job runner does, for the `estimates.refresh` job), and a
    process that fails to get it skips rather than waits; on SQLite the database's single write lock, taken here
    at once, for which a second process waits, then reads the age again and finds the table fresh. Returns the
    rows written, or None when nothing was rebuilt; the caller commits (or rolls back).
    """
    now = now or utcnow()

    def stale() -> bool:
        refreshed = estimates_refreshed_at()
        return refreshed is None or (now - refreshed).total_seconds() >= max_age_seconds

    if not stale():
        return None
    if db.session.get_bind().dialect.name != "postgresql":
        # A write that changes nothing still takes SQLite's write lock, until this transaction ends.
        db.session.execute(update(DeliveryEstimate).where(false()).values(samples=0))
        if not stale():
            return None
    return refresh_estimates(window_days, min_samples, now=now)


EstimateTable = Mapping[tuple[str, str], DeliveryEstimate]  # (area, status) → the learned row


def estimate_table(destinations: Iterable[str]) -> EstimateTable:
    """The learned rows `estimate` may use for shipments to `destinations` (their areas and the network), in
    one query: for the outbox worker, which estimates once per message of a batch."""
    areas = {destination_area(destination) for destination in destinations} | {NETWORK_AREA}
    return {(row.area, row.status): row
            for row in db.session.scalars(select(DeliveryEstimate).where(DeliveryEstimate.area.in_(areas)))}


def estimate(destination: str, status: str, since: datetime, held_from: str | None = None,
             default_factor: float = 1.0, table: EstimateTable | None = None,
             now: datetime | None = None) -> Estimate | None:
    """The estimated delivery of a shipment in `status` since `since` (None when the status is final), from
    `table` (estimate_table of this destination) or else read from the database; as seen at `now` (default: the
    clock), which moves an overdue window to start then (window_from)."""
    effective = held_from if status == Status.ON_HOLD and held_from else status
    if effective in FINAL_STATUSES or effective not in DEFAULT_REMAINING_HOURS:
        return None
    area = destination_area(destination)
    if table is None:
        table = {(row.area, row.status): row for row in db.session.scalars(
            select(DeliveryEstimate).where(DeliveryEstimate.status == effective,
                                           DeliveryEstimate.area.in_({area, NETWORK_AREA})))}
    row = table.get((area, effective)) or table.get((NETWORK_AREA, effective))
    if row is not None:
        basis = "area" if row.area == area and area != NETWORK_AREA else "network"
        remaining = Remaining(row.samples, row.p05_seconds, row.p50_seconds, row.p90_seconds)
    else:
        basis = "default"
        p05, p50, p90 = (hours * 3600 * default_factor for hours in DEFAULT_REMAINING_HOURS[effective])
        remaining = Remaining(0, p05, p50, p90)
    return window_from(as_utc(since), remaining, basis, now=now)


def window_from(since: datetime, remaining: Remaining, basis: str, now: datetime | None = None) -> Estimate:
    """The window p5–p90 after `since`; a window already past moves to start now (late parcels stay honest)."""
    earliest, expected, latest = (since + timedelta(seconds=s) for s in (remaining.p05, remaining.p50,
                                                                        remaining.p90))
    now = now or utcnow()
    if latest < now:  # overdue: the same spread again, from now
        earliest, expected, latest = now, now + (expected - earliest), now + (latest - earliest)
    return Estimate(earliest, expected, latest, basis)


@dataclass(frozen=True)
class Backtest:
    deliveries: int
    estimates: int
    median_abs_error_hours: float
    inside_window: float  # share of estimates whose window held the real delivery time
    by_basis: dict[str, int]


def backtest(window_days: int, min_samples: int, holdout: float = 0.3, now: datetime | None = None) -> Backtest:
    """Learn from the older deliveries of the window and test on the newest `holdout` share: at each event of a
    test delivery, what would the estimate have said, and when did the parcel really arrive?"""
    now = now or utcnow()
    deliveries = sorted(recent_deliveries(now - timedelta(days=window_days)), key=lambda d: d.delivered_at)
    split = int(len(deliveries) * (1 - holdout))
    train, test = deliveries[:split], deliveries[split:]
    learned = learn(samples_of(train), min_samples)
    errors, inside, by_basis = [], 0, defaultdict(int)
    for delivery in test:
        for status, at in delivery.steps:
            if status not in DEFAULT_REMAINING_HOURS:
                continue
            row = learned.get((delivery.area, status))
            basis = "area"
            if row is None:
                row, basis = learned.get((NETWORK_AREA, status)), "network"
            if row is None:
                p05, p50, p90 = (h * 3600 for h in DEFAULT_REMAINING_HOURS[status])
                row, basis = Remaining(0, p05, p50, p90), "default"
            guess = window_from(at, row, basis, now=at)
            errors.append(abs((delivery.delivered_at - guess.expected).total_seconds()) / 3600)
            inside += guess.earliest <= delivery.delivered_at <= guess.latest
            by_basis[basis] += 1
    return Backtest(len(test), len(errors), median(errors) if errors else 0.0,
                    inside / len(errors) if errors else 0.0, dict(by_basis))
