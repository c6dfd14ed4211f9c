"""Dispatch: a zone's parcels planned onto its couriers' run sheets for a day, by the solver, in the job runner
(never in a request: design rule 13). Staff ask for a run (`request_dispatch`); the schedule makes them too
(app.services.planning.dispatch_runs); the job runner claims each one and calls `gather_inputs`, `plan_dispatch`
and `write_plan` (app.jobs.dispatch).

Rules:
- Asking: the zone by its id or its name (any case); none named is fine while there is exactly one zone. The day
  is today or later (DISPLAY_TIMEZONE; default today). `couriers`, when given, are usernames of active couriers
  (each checked; left out: every courier on shift). An unknown zone is a 404, a past day or a name that is not
  an active courier a 422, a malformed request a 400. The run is queued and audited (`dispatch_requested`).
- Parcels planned: in the zone, In Transit or Delivery Attempted (once its non-delivery report says a reattempt
  is due: app.services.ndr.queries.due_for_dispatch_clause), not open on any run sheet, with a point on the
  map. Those in the zone without a point are left out as `no_point`; a delivery window that holds no moment of
  the day as `window`. At most MAX_PARCELS a run (oldest first); the rest wait
  for the next run.
- Couriers: active accounts with the role courier and a profile (those named, or all of them). A courier not
  named whose run sheet that day was planned for another zone stays with that zone. Each starts and ends at their
  own start point, else the zone's hub (neither: not planned, `no_start`). Their day on the plan's clock (seconds
  from the day's local midnight) is their shift, from now at the earliest when the day is today, and after the
  stops already open on their run sheet with an ETA (the last one's ETA, its service and the way back). No time
  left: `off_shift`; no room left: `full`.
- Capacity: parcels (the profile's capacity less the open stops on that day's run sheet), and, when a parcel of
  the run has a weight, grams (app.domain.planning.VEHICLE_KG by vehicle, less the open stops' weights; a parcel
  without a weight counts as nothing). Every stop takes DISPATCH_SERVICE_MINUTES. Travel: app.services.planning.
  travel. The solver (VROOM) plans within DISPATCH_SOLVE_SECONDS; the Clarke-Wright savings heuristic plans the
  same problem for the comparison (`savings_baseline_km`; its failure only leaves the figure out).
- Left out by the solver: `capacity` when the parcel alone fits some courier's load, window and shift (going
  straight there and back), else `window` (or `capacity` when its weight alone is more than any vehicle's).
  Nobody on shift: every parcel `no_courier`.
- Writing (`write_plan`), in the transaction that completes the run: each route through the run sheet service
  (app.services.field.runsheets.assign_stops, `move=False`: a parcel someone put on a run sheet meanwhile stays
  there, `changed`), its stops after those already there in the planned order, each with its ETA (when service
  starts), and the run sheet marked with the run. Actor: whoever asked for the run, `system` for the schedule.
  A courier another zone's run took meanwhile: the run is planned again (`Replan`), never written half.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import exists, func, or_, select, text

from app.domain.field import StopState
from app.domain.planning import Unassigned, shift_seconds, vehicle_grams, window_seconds
from app.domain.roles import Role
from app.domain.status import Status
from app.domain.timeutil import as_utc, isoformat_z, local_day_start, to_local
from app.errors import Conflict, NotFound, Unprocessable, ValidationError
from app.extensions import db
from app.models import CourierProfile, DispatchRun, RunSheet, RunSheetStop, Shipment, User, Zone
from app.services.field.runsheets import NothingAssigned, StopRefusal, assign_stops, record_plan
from app.services.ndr.queries import due_for_dispatch_clause
from app.services.planning.dispatch_runs import ClaimedRun, complete_run, hold_run
from app.services.planning.problem import Plan, Problem, Stop, Vehicle
from app.services.planning.travel import Point, travel_matrices
from app.services.staff.audit import SYSTEM, record_audit

log = logging.getLogger(__name__)

PLANNABLE_STATUSES = (Status.IN_TRANSIT.value, Status.DELIVERY_ATTEMPTED.value)
MAX_PARCELS = 1500  # a matrix of 1500 places is 2.25 million pairs: about what a job runner should hold at once
MAX_COURIERS = 200
# Two-key PostgreSQL advisory locks held while a plan is written, one per courier ("DSPT", user id): two zones'
# runs never both take the same courier (the one-key locks of app.jobs.registry are another key space).
COURIER_LOCK_SPACE = 0x44535054
SolveFunction = Callable[..., Plan]  # solve(problem, seconds=...) → Plan
BaselineFunction = Callable[[Problem], Plan]


class RunRefused(Exception):
    """The run cannot be planned at all (its day passed, its zone was deleted): it fails with this message."""


class LeaseLost(Exception):
    """Another runner took the run over (this one outlived its lease): nothing is written."""


class Replan(Exception):
    """What the plan stood on changed while it was made (a courier taken by another zone's run): plan again."""


# --- asking -------------------------------------------------------------------------------------------------------

def request_dispatch(zone: str | None, day: date | None, couriers: Sequence[str] | None, *, actor: str,
                     timezone: str, now: datetime) -> DispatchRun:
    """Queue a run (see the module's rules); the run, flushed, with its audit row."""
    found = find_zone(zone)
    today = to_local(now, timezone).date()
    day = day or today
    if day < today:
        raise Unprocessable(fields={"date": f"Plan today ({today.isoformat()}) or a later day."})
    usernames = _checked_couriers(couriers) if couriers is not None else None
    run = DispatchRun(state="queued", zone_id=found.id, plan_date=day, couriers=usernames, requested_by=actor,
                      created_at=now)
    db.session.add(run)
    db.session.flush()
    record_audit("dispatch_requested", actor=actor, target_type="dispatch_run", target_id=run.id, details={
        "zone": found.name, "zone_id": found.id, "date": day.isoformat(), "couriers": usernames})
    return run


def find_zone(reference: str | None) -> Zone:
    """A zone by its id (digits) or name (any case); none named: the only zone there is."""
    reference = (reference or "").strip()
    if not reference:
        zones = list(db.session.scalars(select(Zone).order_by(Zone.id).limit(2)))
        if not zones:
            raise Unprocessable("No zone is drawn yet.", fields={"zone": "Draw a zone first (Zones)."})
        if len(zones) > 1:
            raise ValidationError(fields={"zone": "Required: name the zone (its id or its name)."})
        return zones[0]
    zone = None
    if reference.isdigit() and len(reference) <= 9:
        zone = db.session.get(Zone, int(reference))
    if zone is None:
        zone = db.session.scalars(select(Zone).where(func.lower(Zone.name) == reference.lower())).first()
    if zone is None:
        raise NotFound("No zone has this id or name.", fields={"zone": "No zone has this id or name."})
    return zone


def _checked_couriers(couriers: Sequence[str]) -> list[str]:
    """The usernames as stored, in the order given, repeats dropped; each must be an active courier."""
    wanted: dict[str, str] = {}
    for name in couriers:
        name = name.strip()
        if name and name.lower() not in wanted:
            wanted[name.lower()] = name
    if not wanted:
        raise ValidationError(fields={"couriers": "Name at least one courier, or leave it out for every courier "
                                                  "on shift."})
    if len(wanted) > MAX_COURIERS:
        raise ValidationError(fields={"couriers": f"At most {MAX_COURIERS} couriers."})
    found = {row.username.lower(): row.username for row in db.session.execute(
        select(User.username).join(CourierProfile, CourierProfile.user_id == User.id)
        .where(func.lower(User.username).in_(list(wanted)), User.role == Role.COURIER.value,
               User.active.is_(True)))}
    missing = [name for key, name in wanted.items() if key not in found]
    if missing:
        raise Unprocessable(fields={"couriers": "Not an active courier: " + ", ".join(missing[:10])
                                                + ("…" if len(missing) > 10 else "") + "."})
    return [found[key] for key in wanted]


# --- reading what to plan --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Parcel:
    tracking_id: str
    point: Point
    grams: int | None
    window: tuple[int, int] | None  # on the plan's clock; None: any time


@dataclass(frozen=True)
class Courier:
    user_id: int
    username: str
    start: Point
    opens: int  # earliest departure on the plan's clock (the shift's start, now, ...)
    closes: int  # the shift's end
    parcels_left: int
    grams_left: int
    busy_until: tuple[int, Point] | None = None  # the last open stop's ETA and place: leave after serving it


@dataclass(frozen=True)
class DispatchInputs:
    """What a run plans with, read from the database and then let go of (the solve holds no transaction)."""
    run_id: int
    zone_id: int
    zone: str
    day: date
    day_start: datetime  # the day's local midnight, in UTC: the plan's clock starts there
    actor: str
    picked_couriers: bool  # True: every courier on shift (so a courier taken by another zone is left to it)
    parcels: list[Parcel]
    left_out: list[tuple[str, str]]  # (tracking ID, reason) known before solving
    couriers: list[Courier]
    skipped: list[tuple[str, str]]  # (username, reason) of couriers not planned


def gather_inputs(run_id: int, now: datetime, *, timezone: str) -> DispatchInputs:
    """The run's parcels and couriers as they are `now` (see the module's rules). RunRefused when the run cannot
    be planned at all."""
    run = db.session.get(DispatchRun, run_id, populate_existing=True)
    zone = db.session.get(Zone, run.zone_id) if run is not None and run.zone_id is not None else None
    if run is None or zone is None:
        raise RunRefused("The zone was deleted before the run was planned.")
    today = to_local(now, timezone).date()
    if run.plan_date < today:
        raise RunRefused(f"The day ({run.plan_date.isoformat()}) had passed before the run was planned.")
    day_start = local_day_start(run.plan_date, timezone)
    now_seconds = math.ceil((now - day_start).total_seconds()) if run.plan_date == today else None
    parcels, left_out = _parcels(zone.id, day_start, now)
    couriers, skipped = _couriers(run, zone, day_start, now_seconds)
    return DispatchInputs(run_id=run.id, zone_id=zone.id, zone=zone.name, day=run.plan_date, day_start=day_start,
                          actor=run.requested_by or SYSTEM, picked_couriers=run.couriers is None, parcels=parcels,
                          left_out=left_out, couriers=couriers, skipped=skipped)


def _open_stop_of(shipment_id_column) -> exists:
    return exists().where(RunSheetStop.shipment_id == shipment_id_column,
                          RunSheetStop.state == StopState.OPEN.value)


def _parcels(zone_id: int, day_start: datetime, now: datetime) -> tuple[list[Parcel], list[tuple[str, str]]]:
    # A Delivery Attempted parcel waits for its report's reattempt to be due (app.services.ndr).
    reattempt_due = or_(Shipment.status != Status.DELIVERY_ATTEMPTED.value, due_for_dispatch_clause(now))
    rows = db.session.execute(
        select(Shipment.tracking_id, Shipment.destination_lat, Shipment.destination_lon, Shipment.weight_kg,
               Shipment.window_from, Shipment.window_to)
        .where(Shipment.zone_id == zone_id, Shipment.status.in_(PLANNABLE_STATUSES), reattempt_due,
               ~_open_stop_of(Shipment.id))
        .order_by(Shipment.id)).all()
    parcels: list[Parcel] = []
    left_out: list[tuple[str, str]] = []
    for row in rows:
        if row.destination_lat is None or row.destination_lon is None:
            left_out.append((row.tracking_id, Unassigned.NO_POINT.value))
            continue
        window = None
        if row.window_from is not None or row.window_to is not None:
            window = window_seconds(day_start, _utc(row.window_from), _utc(row.window_to))
            if window is None:
                left_out.append((row.tracking_id, Unassigned.WINDOW.value))
                continue
        if len(parcels) >= MAX_PARCELS:
            left_out.append((row.tracking_id, Unassigned.CAPACITY.value))
            continue
        parcels.append(Parcel(row.tracking_id, (row.destination_lat, row.destination_lon), _grams(row.weight_kg),
                              window))
    return parcels, left_out


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def _grams(weight_kg: Decimal | None) -> int | None:
    return None if weight_kg is None else math.ceil(Decimal(weight_kg) * 1000)


def _couriers(run: DispatchRun, zone: Zone, day_start: datetime,
              now_seconds: int | None) -> tuple[list[Courier], list[tuple[str, str]]]:
    statement = (select(User.id, User.username, CourierProfile)
                 .join(CourierProfile, CourierProfile.user_id == User.id)
                 .where(User.role == Role.COURIER.value, User.active.is_(True))
                 .order_by(func.lower(User.username)))
    skipped: list[tuple[str, str]] = []
    if run.couriers is not None:
        statement = statement.where(func.lower(User.username).in_([name.lower() for name in run.couriers]))
    rows = db.session.execute(statement).all()
    if run.couriers is not None:
        present = {row.username.lower() for row in rows}
        skipped += [(name, "not_courier") for name in run.couriers if name.lower() not in present]
    sheets = _day_sheets([row.id for row in rows], run.plan_date)
    hub = (zone.hub_lat, zone.hub_lon) if zone.hub_lat is not None and zone.hub_lon is not None else None
    couriers: list[Courier] = []
    for row in rows:
        profile: CourierProfile = row.CourierProfile
        sheet = sheets.get(row.id)
        if run.couriers is None and sheet is not None and sheet.zone_id not in (None, zone.id):
            skipped.append((row.username, "other_zone"))
            continue
        own = (profile.start_lat, profile.start_lon)
        start = own if None not in own else hub
        if start is None:
            skipped.append((row.username, "no_start"))
            continue
        opens, closes = shift_seconds(profile.shift_start, profile.shift_end)
        if now_seconds is not None:
            opens = max(opens, now_seconds)
        if opens >= closes:
            skipped.append((row.username, "off_shift"))
            continue
        open_stops, open_grams = (sheet.open_stops, sheet.open_grams) if sheet is not None else (0, 0)
        parcels_left = profile.capacity - open_stops
        if parcels_left <= 0:
            skipped.append((row.username, "full"))
            continue
        busy_until = None
        if sheet is not None and sheet.last_eta is not None:
            busy_until = (math.ceil((sheet.last_eta - day_start).total_seconds()), sheet.last_point or start)
        couriers.append(Courier(user_id=row.id, username=row.username, start=start, opens=opens, closes=closes,
                                parcels_left=parcels_left,
                                grams_left=max(0, vehicle_grams(profile.vehicle) - open_grams),
                                busy_until=busy_until))
    return couriers, skipped


@dataclass
class _DaySheet:
    zone_id: int | None = None  # the zone of the run that planned it last (None: made by hand)
    open_stops: int = 0
    open_grams: int = 0
    last_eta: datetime | None = None
    last_point: Point | None = None


def _day_sheets(courier_ids: list[int], day: date) -> dict[int, _DaySheet]:
    """Each courier's run sheet of the day: the zone it was planned for, its open stops, their weight, and the
    latest ETA among them with its place."""
    if not courier_ids:
        return {}
    rows = db.session.execute(
        select(RunSheet.id, RunSheet.courier_id, DispatchRun.zone_id)
        .outerjoin(DispatchRun, DispatchRun.id == RunSheet.dispatch_run_id)
        .where(RunSheet.courier_id.in_(courier_ids), RunSheet.date == day)).all()
    sheets = {row.id: (row.courier_id, _DaySheet(zone_id=row.zone_id)) for row in rows}
    if not sheets:
        return {}
    stops = db.session.execute(
        select(RunSheetStop.runsheet_id, RunSheetStop.eta, Shipment.weight_kg, Shipment.destination_lat,
               Shipment.destination_lon)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(RunSheetStop.runsheet_id.in_(list(sheets)), RunSheetStop.state == StopState.OPEN.value)).all()
    for stop in stops:
        sheet = sheets[stop.runsheet_id][1]
        sheet.open_stops += 1
        sheet.open_grams += _grams(stop.weight_kg) or 0
        eta = _utc(stop.eta)
        if eta is not None and (sheet.last_eta is None or eta > sheet.last_eta):
            sheet.last_eta = eta
            has_point = stop.destination_lat is not None and stop.destination_lon is not None
            sheet.last_point = (stop.destination_lat, stop.destination_lon) if has_point else None
    return dict(sheets.values())


# --- planning (no database) ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanSettings:
    road_factor: float
    speed_kmh: float
    osrm_url: str | None
    service_seconds: int
    solve_seconds: float | None

    @classmethod
    def from_config(cls, config) -> PlanSettings:
        return cls(road_factor=float(config["ROAD_FACTOR"]), speed_kmh=float(config["AVERAGE_SPEED_KMH"]),
                   osrm_url=config.get("OSRM_URL") or None,
                   service_seconds=round(float(config["DISPATCH_SERVICE_MINUTES"]) * 60),
                   solve_seconds=float(config["DISPATCH_SOLVE_SECONDS"]) or None)


@dataclass
class DispatchOutcome:
    """A plan before it is written: the problem, the solver's plan and the baseline's, the parcels left out."""
    problem: Problem | None = None
    plan: Plan | None = None
    baseline: Plan | None = None
    left_out: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    travel: str | None = None


def vroom_solve(problem: Problem, *, seconds: float | None = None) -> Plan:
    """The solver: VROOM (imported here: numpy and the solver load only in processes that plan)."""
    from app.services.planning.solver import solve
    return solve(problem, seconds=seconds)


def savings_baseline(problem: Problem) -> Plan:
    """The baseline: the Clarke-Wright savings heuristic."""
    from app.services.planning.savings import savings
    return savings(problem)


def plan_dispatch(inputs: DispatchInputs, settings: PlanSettings, *, solve: SolveFunction = vroom_solve,
                  baseline: BaselineFunction | None = savings_baseline) -> DispatchOutcome:
    """The plan for `inputs` (see the module's rules). Raises what the solver raises."""
    outcome = DispatchOutcome(left_out=list(inputs.left_out), skipped=list(inputs.skipped))
    if not inputs.parcels:
        return outcome
    if not inputs.couriers:
        outcome.left_out += [(parcel.tracking_id, Unassigned.NO_COURIER.value) for parcel in inputs.parcels]
        return outcome
    places: dict[Point, int] = {}

    def place(point: Point) -> int:
        return places.setdefault(point, len(places))

    starts = [place(courier.start) for courier in inputs.couriers]
    locations = [place(parcel.point) for parcel in inputs.parcels]
    busy = [place(courier.busy_until[1]) if courier.busy_until else None for courier in inputs.couriers]
    matrices = travel_matrices(list(places), road_factor=settings.road_factor, speed_kmh=settings.speed_kmh,
                               osrm_url=settings.osrm_url)
    outcome.travel = matrices.source
    weighed = any(parcel.grams is not None for parcel in inputs.parcels)
    vehicles = []
    for courier, start, last in zip(inputs.couriers, starts, busy, strict=True):
        opens = courier.opens
        if courier.busy_until is not None and last is not None:
            back = courier.busy_until[0] + settings.service_seconds + matrices.durations[last][start]
            opens = max(opens, back)
        if opens >= courier.closes:
            outcome.skipped.append((courier.username, "off_shift"))
            continue
        capacity = (courier.parcels_left, courier.grams_left) if weighed else (courier.parcels_left,)
        vehicles.append(Vehicle(key=courier.username, start=start, end=start, capacity=capacity,
                                shift=(opens, courier.closes)))
    if not vehicles:
        outcome.left_out += [(parcel.tracking_id, Unassigned.NO_COURIER.value) for parcel in inputs.parcels]
        return outcome
    stops = tuple(Stop(key=parcel.tracking_id, location=location, service=settings.service_seconds,
                       demand=(1, parcel.grams or 0) if weighed else (1,),
                       windows=(parcel.window,) if parcel.window is not None else ())
                  for parcel, location in zip(inputs.parcels, locations, strict=True))
    problem = Problem(durations=matrices.durations, distances=matrices.distances, stops=stops,
                      vehicles=tuple(vehicles))
    outcome.problem = problem
    outcome.plan = solve(problem, seconds=settings.solve_seconds)
    by_key = {stop.key: stop for stop in stops}
    outcome.left_out += [(key, left_out_reason(problem, by_key[key])) for key in outcome.plan.unassigned]
    if baseline is not None:
        try:
            outcome.baseline = baseline(problem)
        except Exception:  # noqa: BLE001 - the baseline is a comparison: without it the plan still stands
            log.exception("Dispatch run %s: the savings baseline failed; the plan is kept without it.",
                          inputs.run_id)
    return outcome


def left_out_reason(problem: Problem, stop: Stop) -> str:
    """Why the solver left `stop` out: `window` when no vehicle could serve it even alone (going straight there
    and back, within its window and the vehicle's shift), `capacity` otherwise (or when its load alone is more
    than any vehicle's)."""
    carried = [vehicle for vehicle in problem.vehicles
               if all(amount <= room for amount, room in zip(stop.demand, vehicle.capacity, strict=False))]
    if not carried:
        return Unassigned.CAPACITY.value
    for vehicle in carried:
        leaves, back_by = vehicle.shift or (0, math.inf)
        arrival = leaves + problem.durations[vehicle.start][stop.location]
        starts = [max(arrival, opens) for opens, closes in stop.windows if closes >= arrival] \
            if stop.windows else [arrival]
        if starts and min(starts) + stop.service + problem.durations[stop.location][vehicle.end] <= back_by:
            return Unassigned.CAPACITY.value
    return Unassigned.WINDOW.value


# --- writing ---------------------------------------------------------------------------------------------------------

# What a refusal of the run sheet service means for a planned parcel.
_REFUSED_AS = {StopRefusal.OVER_CAPACITY.value: Unassigned.CAPACITY.value}


def write_plan(claim: ClaimedRun, inputs: DispatchInputs, outcome: DispatchOutcome, *, now: datetime,
               timezone: str) -> dict:
    """Write the run sheets of `outcome` and complete the run, in the caller's transaction (see the module's
    rules); the run's result. LeaseLost when another runner holds the run now; Replan when a courier was taken by
    another zone's run meanwhile."""
    if not hold_run(claim):
        raise LeaseLost()
    plan = outcome.plan
    routes = [route for route in plan.routes if route.visits] if plan is not None else []
    _hold_couriers(sorted(courier.user_id for courier in inputs.couriers
                          if any(route.vehicle == courier.username for route in routes)))
    if inputs.picked_couriers and routes:
        taken = _taken_by_other_zones([route.vehicle for route in routes], inputs)
        if taken:
            raise Replan(f"{len(taken)} courier(s) planned by another zone's run meanwhile")
    left_out = list(outcome.left_out)
    manifests = []
    for route in routes:
        keys = [visit.key for visit in route.visits]
        try:
            assigned = assign_stops(route.vehicle, keys, day=inputs.day, actor=inputs.actor, timezone=timezone,
                                    move=False)
        except NothingAssigned as refused:
            left_out += [(r.tracking_id, _REFUSED_AS.get(r.reason, Unassigned.CHANGED.value))
                         for r in refused.rejected]
            continue
        except ValidationError:  # the courier is no longer an active courier
            left_out += [(key, Unassigned.NO_COURIER.value) for key in keys]
            continue
        except Conflict as busy:  # another change was making the same run sheet: plan again against it
            raise Replan(str(busy)) from None
        refused = {r.tracking_id: r.reason for r in assigned.rejected}
        left_out += [(key, _REFUSED_AS.get(refused[key], Unassigned.CHANGED.value)) for key in keys if key in refused]
        etas = {visit.key: inputs.day_start + timedelta(seconds=visit.start)
                for visit in route.visits if visit.key not in refused}
        sheet_id = assigned.runsheet.id
        record_plan(sheet_id, inputs.run_id, etas)
        sequences = {stop.tracking_id: stop.sequence for stop in assigned.runsheet.stops
                     if stop.state == StopState.OPEN.value}
        manifests.append({
            "courier": route.vehicle, "runsheet_id": sheet_id,
            "stops": [{"tracking_id": key, "sequence": sequences.get(key), "eta": isoformat_z(eta)}
                      for key, eta in etas.items()],
            "distance_km": _km(route.distance), "duration_min": round(route.duration / 60, 1)})
    result = _result(inputs, outcome, manifests, left_out)
    if not complete_run(claim, now, solver=plan.solver if plan else None, seconds=plan.seconds if plan else None,
                        result=result):
        raise LeaseLost()
    log.info("Dispatch run %s (zone %s, %s): %d parcels on %d run sheets, %d left out%s.", inputs.run_id,
             inputs.zone_id, inputs.day.isoformat(), sum(len(m["stops"]) for m in manifests), len(manifests),
             len(result["unassigned"]), f", {plan.solver} in {plan.seconds:.1f}s" if plan else "")
    return result


def _hold_couriers(user_ids: list[int]) -> None:
    """PostgreSQL: one transaction lock per courier, in id order (no deadlock between two runs). SQLite needs
    none: the run's fenced UPDATE already took its single write lock."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    for user_id in user_ids:
        db.session.execute(text("SELECT pg_advisory_xact_lock(:space, :courier)"),
                           {"space": COURIER_LOCK_SPACE, "courier": user_id})


def _taken_by_other_zones(usernames: list[str], inputs: DispatchInputs) -> list[str]:
    ids = {courier.username: courier.user_id for courier in inputs.couriers}
    sheets = _day_sheets([ids[name] for name in usernames if name in ids], inputs.day)
    taken = {user_id for user_id, sheet in sheets.items() if sheet.zone_id not in (None, inputs.zone_id)}
    return [name for name in usernames if ids.get(name) in taken]


def _km(metres: int) -> float:
    return round(metres / 1000, 2)


def _result(inputs: DispatchInputs, outcome: DispatchOutcome, manifests: list[dict],
            left_out: list[tuple[str, str]]) -> dict:
    baseline = outcome.baseline
    return {
        "zone": inputs.zone, "date": inputs.day.isoformat(),
        "manifests": manifests,
        "unassigned": [{"tracking_id": key, "reason": reason} for key, reason in left_out],
        "distance_km": _km(sum(route.distance for route in outcome.plan.routes)) if outcome.plan else 0.0,
        "savings_baseline_km": _km(baseline.distance) if baseline is not None else None,
        "savings_baseline_unassigned": len(baseline.unassigned) if baseline is not None else None,
        "travel": outcome.travel,
        "couriers_skipped": [{"courier": name, "reason": reason} for name, reason in outcome.skipped],
    }
