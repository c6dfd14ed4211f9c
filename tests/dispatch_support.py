"""Helpers for the dispatch tests: a small fixed zone (a hub in Ernakulam and parcels a few kilometres around it),
couriers with capacities and shifts, parcels with points and windows, and the job that plans runs.

The solver and the baseline are the real ones: VROOM and the Clarke-Wright savings heuristic."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from app.domain.parcels import Parcel
from app.domain.timeutil import to_local, utcnow
from app.extensions import db
from app.jobs.dispatch import plan_dispatch_runs
from app.jobs.registry import Every, Job
from app.jobs.runner import JobRunner
from app.models import CourierProfile, RunSheet, RunSheetStop, Shipment, Zone
from app.services.field.couriers import CourierFields
from app.services.planning.savings import savings
from app.services.planning.solver import solve  # the one import that switches at the merge
from app.services.planning.travel import haversine_matrices
from app.services.shipments.booking import NewShipment, create_shipments
from app.services.shipments.status_changes import StatusChange, apply_status_changes
from app.services.staff.users import create_user

TZ = "Asia/Kolkata"
PASSWORD = "correct-horse-1"
HUB = (9.9816, 76.2999)  # Ernakulam
SQUARE = {"type": "Polygon", "coordinates": [[[76.25, 9.95], [76.35, 9.95], [76.35, 10.02], [76.25, 10.02],
                                               [76.25, 9.95]]]}
NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", None, "12 MG Road, Ernakulam, Kochi",
                  parcel=Parcel(destination_pincode="682016"))
# Twelve places 0.6 to 2.5 km from the hub, in no particular order.
OFFSETS = [(0.006, 0.004), (-0.008, 0.010), (0.012, -0.006), (-0.004, -0.012), (0.015, 0.012), (-0.014, 0.003),
           (0.003, 0.018), (0.009, -0.015), (-0.011, -0.007), (0.018, -0.002), (-0.002, 0.009), (0.007, 0.013)]
SERVICE = 180  # DISPATCH_SERVICE_MINUTES (3) in seconds


def local_today() -> date:
    return to_local(utcnow(), TZ).date()


def tomorrow() -> date:
    return local_today() + timedelta(days=1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time of `day`, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def point(index: int) -> tuple[float, float]:
    dlat, dlon = OFFSETS[index % len(OFFSETS)]
    return round(HUB[0] + dlat, 6), round(HUB[1] + dlon, 6)


def make_zone(name: str = "Ernakulam", hub: tuple[float, float] | None = HUB) -> int:
    zone = Zone(name=name, geometry=SQUARE, hub_lat=hub[0] if hub else None, hub_lon=hub[1] if hub else None,
                updated_by="admin1")
    db.session.add(zone)
    db.session.commit()
    return zone.id


def make_courier(username: str, capacity: int = 5, start: time = time(9), end: time = time(18),
                 vehicle: str = "two_wheeler", start_point: tuple[float, float] | None = None) -> int:
    user = create_user(username, PASSWORD, "courier", courier=CourierFields(
        vehicle=vehicle, capacity=capacity, shift_start=start, shift_end=end))
    if start_point is not None:
        db.session.execute(update(CourierProfile).where(CourierProfile.user_id == user.id)
                           .values(start_lat=start_point[0], start_lon=start_point[1]))
    db.session.commit()
    return user.id


def make_parcels(count: int, zone_id: int | None, *, first: int = 0, status: str = "In Transit",
                 with_point: bool = True, windows: dict[int, tuple[datetime | None, datetime | None]] | None = None,
                 weights: dict[int, str] | None = None) -> list[str]:
    """`count` parcels In Transit (or Booked) at the hub, in the zone, at point(first), point(first + 1), …; the
    i-th one with windows[i] and weights[i] (kg) when given."""
    tracking_ids = create_shipments([replace(NEW, receiver_name=f"Receiver {first + n}") for n in range(count)],
                                    actor="setup")
    if status != "Booked":
        for step in ("Picked Up", "In Transit"):
            apply_status_changes([StatusChange(t, step, "Kochi Hub") for t in tracking_ids], "setup",
                                 audit_each=False)
    for n, tracking_id in enumerate(tracking_ids):
        lat, lon = point(first + n) if with_point else (None, None)
        opens, closes = (windows or {}).get(n, (None, None))
        weight = (weights or {}).get(n)
        db.session.execute(update(Shipment).where(Shipment.tracking_id == tracking_id).values(
            destination_lat=lat, destination_lon=lon, destination_precision="exact" if with_point else None,
            zone_id=zone_id, window_from=opens, window_to=closes,
            weight_kg=Decimal(weight) if weight is not None else None))
    db.session.commit()
    return tracking_ids


def plan_job(solver=solve, baseline=savings) -> Job:
    """The `dispatch.plan` job as registered, planning with `solver` and `baseline`."""
    return Job("dispatch.plan", Every("DISPATCH_POLL_SECONDS"),
               partial(plan_dispatch_runs, solve=solver, baseline=baseline), exclusive=False)


def run_jobs(app, now: datetime | None = None, **job) -> list:
    """One look of a fresh job runner (as a process of its own) at the dispatch job."""
    return JobRunner(app, jobs=[plan_job(**job)]).run_due(now or utcnow())


def travel_seconds(a: tuple[float, float], b: tuple[float, float]) -> int:
    """What the default travel estimate says it takes from a to b (ROAD_FACTOR 1.3 at 18 km/h)."""
    return haversine_matrices([a, b], road_factor=1.3, speed_kmh=18.0).durations[0][1]


def open_stops(runsheet_id: int) -> list[tuple[str, int, datetime | None]]:
    """(tracking ID, sequence, ETA) of a run sheet's open stops in order."""
    return [tuple(row) for row in db.session.execute(
        select(Shipment.tracking_id, RunSheetStop.sequence, RunSheetStop.eta)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(RunSheetStop.runsheet_id == runsheet_id, RunSheetStop.state == "open")
        .order_by(RunSheetStop.sequence)
        .execution_options(populate_existing=True))]


def runsheet_of(courier_id: int, day: date) -> RunSheet | None:
    return db.session.scalars(select(RunSheet).where(RunSheet.courier_id == courier_id, RunSheet.date == day)
                              .execution_options(populate_existing=True)).first()
