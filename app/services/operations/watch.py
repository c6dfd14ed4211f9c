"""What the `alerts.watch` job looks for, and the cash shortfall raised where it is recorded.

Rules (each alert raised once per cause by app.services.operations.alerts.raise_alert, in the caller's
transaction; `details` carry times, statuses and amounts only: the tracking ID and the courier's username come
from the alert's own shipment and courier):
- `sla_at_risk` / `sla_breached`: the parcels app.services.operations.sla.sla_lists says so at `now`; cause
  `shipment:<id>`, so once per parcel ever (a parcel that recovers and slips again raises nothing new).
- `courier_silent`: an active courier on shift now (their shift, DISPLAY_TIMEZONE) with open stops on run sheets
  of a day up to today (what the courier app shows them), whose last kept position is COURIER_SILENT_AFTER old or
  more, or who has sent none since the shift began that long ago. The silence starts at the last position, or
  at the shift's start when there is none since; the cause is `courier:<id>:<that instant, ISO 8601 Z>`, one
  alert per silence: a courier who is heard from again and then falls silent again raises a new one.
- `unconfirmed_out_for_delivery`: a parcel still Out for Delivery whose Out for Delivery event happened
  UNCONFIRMED_OUT_FOR_DELIVERY_AFTER ago or more (no Delivered or Delivery Attempted since); cause
  `event:<that event's id>`, so a parcel sent out again raises again.
- `cod_shortfall`: raised by the courier app's Delivered (app.services.field.events) in the transaction that
  records the collection, when less was collected than the parcel's cod_amount; cause `cod:<the Delivered
  event's id>` (one collection per event: the collection's own unique key, known without reading it back). A
  surplus, or a COD parcel staff marked Delivered with nothing recorded, is the cash ledger's flag, not an alert.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.domain.field import CodFlag, StopState, cod_difference, on_shift
from app.domain.pricing import money_text
from app.domain.roles import Role
from app.domain.status import Status
from app.domain.timeutil import as_utc, isoformat_z
from app.extensions import db
from app.models import Alert, CourierProfile, RunSheet, RunSheetStop, Shipment, TrackingEvent, User
from app.services.operations.alerts import raise_alert
from app.services.operations.sla import SlaParcel, sla_lists

_CHUNK = 1000  # causes looked up per query


def watch_alerts(now: datetime, *, silent_after: timedelta, unconfirmed_after: timedelta,
                 timezone: str) -> Counter[str]:
    """Raise every alert the state of the network calls for at `now`; how many were raised, by kind."""
    raised: Counter[str] = Counter()
    raised.update(raise_sla_alerts(now))
    raised.update(raise_silent_couriers(now, silent_after, timezone))
    raised.update(raise_unconfirmed_deliveries(now, unconfirmed_after))
    return raised


def raise_sla_alerts(now: datetime) -> Counter[str]:
    """`sla_at_risk` and `sla_breached` for the parcels sla_lists names that have not had theirs."""
    lists = sla_lists(now)
    raised: Counter[str] = Counter()
    for kind, parcels in (("sla_at_risk", lists.at_risk), ("sla_breached", lists.breached)):
        for parcel in _without_alert(kind, parcels):
            details = {"status": parcel.status, "promised_by": isoformat_z(parcel.promised_by)}
            if parcel.estimated_latest is not None:
                details["estimated_latest"] = isoformat_z(parcel.estimated_latest)
            if raise_alert(kind, f"shipment:{parcel.shipment_id}", shipment_id=parcel.shipment_id, details=details,
                           now=now) is not None:
                raised[kind] += 1
    return raised


def _without_alert(kind: str, parcels: list[SlaParcel]) -> list[SlaParcel]:
    """The parcels whose `kind` alert was never raised: each run looks up the causes (by the unique index) rather
    than inserting thousands of rows that are there already."""
    seen: set[str] = set()
    for start in range(0, len(parcels), _CHUNK):
        causes = [f"shipment:{parcel.shipment_id}" for parcel in parcels[start:start + _CHUNK]]
        seen.update(db.session.scalars(select(Alert.cause).where(Alert.kind == kind, Alert.cause.in_(causes))))
    return [parcel for parcel in parcels if f"shipment:{parcel.shipment_id}" not in seen]


def raise_silent_couriers(now: datetime, silent_after: timedelta, timezone: str) -> Counter[str]:
    """`courier_silent` for each courier silent on shift with open stops (see the module's rules)."""
    zone = ZoneInfo(timezone)
    local_now = now.astimezone(zone)
    open_stops = func.count(RunSheetStop.id).label("open_stops")
    rows = db.session.execute(
        select(User.id, CourierProfile.shift_start, CourierProfile.shift_end, CourierProfile.last_seen_at,
               open_stops)
        .join(CourierProfile, CourierProfile.user_id == User.id)
        .join(RunSheet, RunSheet.courier_id == User.id)
        .join(RunSheetStop, RunSheetStop.runsheet_id == RunSheet.id)
        .where(User.role == Role.COURIER.value, User.active.is_(True), RunSheet.date <= local_now.date(),
               RunSheetStop.state == StopState.OPEN.value)
        .group_by(User.id, CourierProfile.shift_start, CourierProfile.shift_end, CourierProfile.last_seen_at)
    ).all()
    raised: Counter[str] = Counter()
    for row in rows:
        if not on_shift(row.shift_start, row.shift_end, local_now.time()):
            continue
        began = shift_began(local_now, row.shift_start)
        last_seen = as_utc(row.last_seen_at) if row.last_seen_at is not None else None
        silent_since = last_seen if last_seen is not None and last_seen >= began else began
        if now - silent_since < silent_after:
            continue
        details = {"last_seen_at": isoformat_z(last_seen), "silent_since": isoformat_z(silent_since),
                   "open_stops": int(row.open_stops)}
        if raise_alert("courier_silent", f"courier:{row.id}:{isoformat_z(silent_since)}", courier_id=row.id,
                       details=details, now=now) is not None:
            raised["courier_silent"] += 1
    return raised


def shift_began(local_now: datetime, shift_start) -> datetime:
    """The UTC instant the shift the courier is on at `local_now` (aware, local) began: today's start, or
    yesterday's for a shift that runs past midnight and started before it."""
    began = local_now.replace(hour=shift_start.hour, minute=shift_start.minute, second=shift_start.second,
                              microsecond=0)
    if began > local_now:
        began -= timedelta(days=1)
    return as_utc(began)


def raise_unconfirmed_deliveries(now: datetime, unconfirmed_after: timedelta) -> Counter[str]:
    """`unconfirmed_out_for_delivery` for each parcel Out for Delivery for `unconfirmed_after` or more."""
    latest_out = (select(func.max(TrackingEvent.id))
                  .where(TrackingEvent.shipment_id == Shipment.id,
                         TrackingEvent.status == Status.OUT_FOR_DELIVERY.value)
                  .correlate(Shipment).scalar_subquery())
    out = (select(Shipment.id.label("shipment_id"), latest_out.label("event_id"))
           .where(Shipment.status == Status.OUT_FOR_DELIVERY.value).subquery())
    rows = db.session.execute(
        select(out.c.shipment_id, TrackingEvent.id, TrackingEvent.occurred_at)
        .join(TrackingEvent, TrackingEvent.id == out.c.event_id)
        .where(TrackingEvent.occurred_at <= now - unconfirmed_after)).all()
    raised: Counter[str] = Counter()
    for shipment_id, event_id, occurred_at in rows:
        details = {"out_for_delivery_at": isoformat_z(occurred_at)}
        if raise_alert("unconfirmed_out_for_delivery", f"event:{event_id}", shipment_id=shipment_id,
                       details=details, now=now) is not None:
            raised["unconfirmed_out_for_delivery"] += 1
    return raised


def raise_cod_shortfalls(collections: Iterable[Mapping], now: datetime) -> int:
    """`cod_shortfall` for each collection (the rows of cod_collections just written: shipment_id, event_id,
    courier_id, expected, collected) that is short of what was due; how many were raised."""
    raised = 0
    for row in collections:
        expected, collected = row["expected"], row["collected"]
        if cod_difference(expected, collected) != CodFlag.SHORTFALL:
            continue
        details = {"expected": money_text(expected), "collected": money_text(collected),
                   "short_by": money_text(expected - collected)}
        if raise_alert("cod_shortfall", f"cod:{row['event_id']}", shipment_id=row["shipment_id"],
                       courier_id=row["courier_id"], details=details, now=now) is not None:
            raised += 1
    return raised
