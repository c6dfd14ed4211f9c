"""Run sheets: one courier's stops for one day (DISPLAY_TIMEZONE), made or extended by staff, listed, and handed
out (the PDF for couriers without a phone is app.services.field.runsheet_pdf).

Rules:
- Assigning: the courier is an active account with the role courier; the day is today or later (a past day is
  refused). The IDs are taken in the order given and appended after the stops already there; each one that cannot
  go on is refused alone, with its reason: `unknown_id`, `final` (Delivered, Returned to Sender, Cancelled),
  `not_ready` (a status that cannot go on a run sheet: app.domain.field.stop_kind), `repeated` (twice in one
  request), `already_on_runsheet` (open on this run sheet), `over_capacity` (beyond the courier's capacity, which
  counts the run sheet's open stops), `busy` (another change took the parcel at the same moment). When none is
  accepted: ValidationError (400), and the caller rolls back whatever was begun.
- A parcel is open on at most one run sheet: one open elsewhere is moved here, its old stop becoming `moved`, and
  an audit row (`runsheet_stop_moved`) says from which run sheet and courier. The partial unique index on open
  stops is the arbiter of races: each stop is inserted with ON CONFLICT DO NOTHING on that index (no savepoint,
  which pysqlite would turn into a commit), and one that finds another open stop is refused as busy (a move it
  made is undone; the old stop's row stays locked by this transaction meanwhile). Two requests making the same
  run sheet meet on its unique (courier, day) the same way, and the loser plans again against the winner's.
  Extending one run sheet is serialised by a lock on its row (PostgreSQL; SQLite has one writer at a time).
  Dispatch (app.services.planning.dispatch) assigns with `move=False`: a parcel open on another run sheet stays
  there (`on_another_runsheet`), since a plan never takes a parcel someone placed; it then records each stop's ETA
  and the run that planned the sheet (`record_plan`).
- Placing one stop (a supervisor's override, app.services.planning.overrides): the parcel's open stop goes to a
  position on a run sheet, from wherever it was open (the old stop becoming `moved`, or renumbered when it is the
  same run sheet); the run sheet's stops are numbered 1, 2, … again, the others keeping their order.
- Handing out (dispatch): the run sheet's open delivery stops not yet Out for Delivery move to Out for Delivery
  in one call of the status-change core, with the courier as the events' actor and the place of each parcel's
  latest event as their location; the staff member who handed it out is in the audit row
  (`runsheet_dispatched`, naming the parcels). Again is harmless: only stops not yet out move. A run sheet with
  no open stop, of a future day, or of an account that is no longer an active courier is a Conflict (409).
Every action writes its audit row in the caller's transaction; callers commit.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import case, func, select, text, update

from app.db.dialects import dialect_insert
from app.domain.field import CAPACITY_MAX, StopState, stop_kind
from app.domain.roles import Role
from app.domain.status import Status, is_final
from app.domain.timeutil import as_utc, to_local, utcnow
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import CourierProfile, RunSheet, RunSheetStop, Shipment, TrackingEvent, User
from app.services.operations.live import publish_courier_changed
from app.services.shipments.queries import NEWEST_FIRST
from app.services.shipments.status_changes import StatusChange, apply_status_changes
from app.services.staff.audit import record_audit, record_audits
from app.services.staff.users import find_user

MAX_IDS = CAPACITY_MAX  # more IDs in one request than any courier may carry is a mistake
DISPATCH_LOCATION = "Out for delivery"  # a parcel with no event location yet (never happens after booking)
_STOPS, _SHEETS = RunSheetStop.__table__, RunSheet.__table__
_SHIPMENTS, _EVENTS = Shipment.__table__, TrackingEvent.__table__
# The predicate of the partial unique index uq_runsheet_stops_open_shipment, as written there: a conflict target
# must repeat it literally for both databases to find the index.
_OPEN_INDEX_WHERE = text("state = 'open'")


class StopRefusal(StrEnum):
    UNKNOWN_ID = "unknown_id"
    FINAL = "final"
    NOT_READY = "not_ready"
    REPEATED = "repeated"
    ALREADY_ON_RUNSHEET = "already_on_runsheet"
    OVER_CAPACITY = "over_capacity"
    BUSY = "busy"
    ON_ANOTHER_RUNSHEET = "on_another_runsheet"


REFUSAL_MESSAGES: dict[str, str] = {
    StopRefusal.UNKNOWN_ID: "No shipment has this tracking ID.",
    StopRefusal.FINAL: "{status} is final: it cannot go on a run sheet.",
    StopRefusal.NOT_READY: "A parcel that is {status} cannot go on a run sheet (only In Transit, Out for Delivery, "
                           "Delivery Attempted, or a pickup still Booked).",
    StopRefusal.REPEATED: "Given twice in this request.",
    StopRefusal.ALREADY_ON_RUNSHEET: "Already on this run sheet.",
    StopRefusal.OVER_CAPACITY: "Beyond the courier's capacity of {capacity} parcels.",
    StopRefusal.BUSY: "Another change took this parcel at the same moment: try again.",
    StopRefusal.ON_ANOTHER_RUNSHEET: "Already on another run sheet: left there.",
}


@dataclass(frozen=True)
class RefusedStop:
    """One tracking ID that was not put on the run sheet (or not handed out), and why."""
    tracking_id: str
    reason: str
    error: str


class NothingAssigned(ValidationError):
    """Not one of the IDs could go on the run sheet: a 400 naming `tracking_ids`, with each refusal."""

    def __init__(self, rejected: list[RefusedStop]) -> None:
        message = "None of the tracking IDs could go on the run sheet."
        super().__init__(message, fields={"tracking_ids": message})
        self.rejected = rejected
        self.extra["rejected"] = [{"tracking_id": r.tracking_id, "reason": r.reason, "error": r.error}
                                  for r in rejected]


@dataclass(frozen=True)
class Stop:
    """A stop as staff see it, with its parcel as it is now. `kind`: a delivery, or a pickup at the sender's."""
    tracking_id: str
    sequence: int
    state: str
    outcome: str | None
    status: str
    kind: str
    receiver_name: str
    destination: str
    destination_pincode: str | None
    mobile: str
    pieces: int
    payment: str
    cod_amount: Decimal | None
    sender_name: str
    sender_address: str | None
    sender_pincode: str | None
    sender_mobile: str | None
    eta: datetime | None = None  # when dispatch planned to arrive (None: not planned, or moved by hand since)


@dataclass(frozen=True)
class RunSheetView:
    id: int
    courier: str
    courier_name: str | None
    vehicle: str | None
    date: date
    created_at: datetime
    created_by: str
    dispatched_at: datetime | None
    dispatched_by: str | None
    stops: list[Stop]
    dispatch_run_id: int | None = None

    def open_stops(self) -> list[Stop]:
        return [stop for stop in self.stops if stop.state == StopState.OPEN]


@dataclass(frozen=True)
class RunSheetResult:
    """A run sheet after a change, with the IDs that were refused."""
    runsheet: RunSheetView
    rejected: list[RefusedStop] = field(default_factory=list)


@dataclass(frozen=True)
class RunSheetSummary:
    id: int
    courier: str
    date: date
    stops_open: int
    stops_done: int
    stops_moved: int
    created_at: datetime
    created_by: str
    dispatched_at: datetime | None
    dispatched_by: str | None


@dataclass
class _Plan:
    """What an assignment will do: the parcels to add in order (with the open stop each one leaves, if any) and the
    refusals so far, by the ID's position in the request."""
    accepted: list[tuple[int, Shipment, _OpenStop | None]] = field(default_factory=list)
    refused: list[tuple[int, RefusedStop]] = field(default_factory=list)

    def refuse(self, position: int, tracking_id: str, reason: StopRefusal, **words: object) -> None:
        self.refused.append((position, RefusedStop(tracking_id, reason.value,
                                                   REFUSAL_MESSAGES[reason].format(**words))))

    def rejected(self) -> list[RefusedStop]:
        return [refusal for _, refusal in sorted(self.refused, key=lambda item: item[0])]


@dataclass(frozen=True)
class _OpenStop:
    id: int
    runsheet_id: int
    courier: str
    courier_id: int


def local_today(timezone: str) -> date:
    return to_local(utcnow(), timezone).date()


# --- assigning -------------------------------------------------------------------------------------------------

def assign_stops(courier: str, tracking_ids: Sequence[str], *, day: date | None, actor: str,
                 timezone: str, move: bool = True) -> RunSheetResult:
    """Make or extend `courier`'s run sheet for `day` (None: today in `timezone`) with these parcels, in order
    (see the module's rules). `move=False`: a parcel open on another run sheet is refused, not moved."""
    user, profile = _courier(courier)
    today = local_today(timezone)
    day = day or today
    if day < today:
        raise ValidationError(fields={"date": f"A run sheet is for today ({today.isoformat()}) or a later day."})
    for _ in range(2):  # a second round only when another request made the same run sheet meanwhile
        sheet = _locked_runsheet_of(user.id, day)
        plan = _plan(tracking_ids, sheet, profile.capacity, move)
        if not plan.accepted:
            raise NothingAssigned(plan.rejected())
        sheet = sheet or _new_runsheet(user.id, day, actor)
        if sheet is None:
            continue
        added, moved = _write_stops(sheet, plan)
        if not added:
            raise NothingAssigned(plan.rejected())
        _audit_assignment(sheet, user.username, added, moved, plan.rejected(), actor)
        for courier_id in {user.id, *(stop.courier_id for _, stop in moved)}:
            publish_courier_changed(courier_id)
        return RunSheetResult(runsheet_view(sheet.id), plan.rejected())
    raise Conflict("The run sheet is being changed by someone else: try again.")


def _courier(username: str) -> tuple[User, CourierProfile]:
    user = find_user(username) if username else None
    profile = db.session.get(CourierProfile, user.id) if user is not None else None
    if user is None or user.role != Role.COURIER or not user.active or profile is None:
        raise ValidationError(fields={"courier": "No active courier has this username."})
    return user, profile


def _locked_runsheet_of(courier_id: int, day: date) -> RunSheet | None:
    return db.session.scalars(select(RunSheet).where(RunSheet.courier_id == courier_id, RunSheet.date == day)
                              .with_for_update()).first()


def _new_runsheet(courier_id: int, day: date, actor: str) -> RunSheet | None:
    """The courier's new run sheet for the day; None when another request made it first (its unique index)."""
    values = {"courier_id": courier_id, "date": day, "created_by": actor, "created_at": utcnow()}
    made = db.session.execute(dialect_insert(_SHEETS).values(values)
                              .on_conflict_do_nothing(index_elements=["courier_id", "date"])
                              .returning(_SHEETS.c.id)).scalar()
    return None if made is None else db.session.get(RunSheet, made)


def _plan(tracking_ids: Sequence[str], sheet: RunSheet | None, capacity: int, move: bool = True) -> _Plan:
    plan = _Plan()
    wanted: dict[str, int] = {}
    for position, raw in enumerate(tracking_ids):
        canonical = normalise_tracking_id(raw)
        if canonical is None:
            plan.refuse(position, raw.strip()[:32], StopRefusal.UNKNOWN_ID)
        elif canonical in wanted:
            plan.refuse(position, canonical, StopRefusal.REPEATED)
        else:
            wanted[canonical] = position
    shipments = {s.tracking_id: s for s in db.session.scalars(
        select(Shipment).where(Shipment.tracking_id.in_(list(wanted)))
        .execution_options(populate_existing=True))} if wanted else {}  # as it is now, whatever the session saw
    open_stops = _open_stops([s.id for s in shipments.values()])
    room = capacity - (_open_count(sheet.id) if sheet is not None else 0)
    for tracking_id, position in wanted.items():
        shipment = shipments.get(tracking_id)
        previous = open_stops.get(shipment.id) if shipment is not None else None
        if shipment is None:
            plan.refuse(position, tracking_id, StopRefusal.UNKNOWN_ID)
        elif is_final(shipment.status):
            plan.refuse(position, tracking_id, StopRefusal.FINAL, status=shipment.status)
        elif stop_kind(shipment.status, shipment.pickup) is None:
            plan.refuse(position, tracking_id, StopRefusal.NOT_READY, status=shipment.status)
        elif previous is not None and sheet is not None and previous.runsheet_id == sheet.id:
            plan.refuse(position, tracking_id, StopRefusal.ALREADY_ON_RUNSHEET)
        elif previous is not None and not move:
            plan.refuse(position, tracking_id, StopRefusal.ON_ANOTHER_RUNSHEET)
        elif room <= 0:
            plan.refuse(position, tracking_id, StopRefusal.OVER_CAPACITY, capacity=capacity)
        else:
            plan.accepted.append((position, shipment, previous))
            room -= 1
    return plan


def _open_stops(shipment_ids: list[int]) -> dict[int, _OpenStop]:
    """The open stop of each of these shipments that has one, with its run sheet and courier."""
    if not shipment_ids:
        return {}
    rows = db.session.execute(
        select(_STOPS.c.id, _STOPS.c.shipment_id, _STOPS.c.runsheet_id, User.username, User.id.label("courier_id"))
        .join(_SHEETS, _SHEETS.c.id == _STOPS.c.runsheet_id).join(User, User.id == _SHEETS.c.courier_id)
        .where(_STOPS.c.shipment_id.in_(shipment_ids), _STOPS.c.state == StopState.OPEN.value)).all()
    return {row.shipment_id: _OpenStop(row.id, row.runsheet_id, row.username, row.courier_id) for row in rows}


def _open_count(runsheet_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(_STOPS).where(
        _STOPS.c.runsheet_id == runsheet_id, _STOPS.c.state == StopState.OPEN.value)) or 0


def _write_stops(sheet: RunSheet, plan: _Plan) -> tuple[list[str], list[tuple[str, _OpenStop]]]:
    """Each accepted parcel's stop, after the sheet's last one; a parcel that another change took meanwhile is
    refused as busy (in `plan`). The tracking IDs added, and those moved here with the stop each one left."""
    sequence = db.session.scalar(select(func.max(_STOPS.c.sequence)).where(_STOPS.c.runsheet_id == sheet.id)) or 0
    now = utcnow()
    insert_stop = dialect_insert(_STOPS).on_conflict_do_nothing(
        index_elements=["shipment_id"], index_where=_OPEN_INDEX_WHERE)
    added: list[str] = []
    moved: list[tuple[str, _OpenStop]] = []
    for position, shipment, previous in plan.accepted:
        if previous is not None and not _set_state(previous.id, StopState.OPEN, StopState.MOVED, now):
            plan.refuse(position, shipment.tracking_id, StopRefusal.BUSY)
            continue
        if db.session.execute(insert_stop.values(runsheet_id=sheet.id, shipment_id=shipment.id,
                                                 sequence=sequence + 1, state=StopState.OPEN.value,
                                                 added_at=now)).rowcount != 1:
            if previous is not None:  # put back the stop this parcel was to leave: it is still locked by us
                _set_state(previous.id, StopState.MOVED, StopState.OPEN, None)
            plan.refuse(position, shipment.tracking_id, StopRefusal.BUSY)
            continue
        sequence += 1
        added.append(shipment.tracking_id)
        if previous is not None:
            moved.append((shipment.tracking_id, previous))
    return added, moved


def _set_state(stop_id: int, old: StopState, new: StopState, closed_at: datetime | None) -> bool:
    """Compare and set a stop's state; whether it was `old` (and is now `new`)."""
    return db.session.execute(update(_STOPS).where(_STOPS.c.id == stop_id, _STOPS.c.state == old.value)
                              .values(state=new.value, closed_at=closed_at)).rowcount == 1


def _audit_assignment(sheet: RunSheet, courier: str, added: list[str], moved: list[tuple[str, _OpenStop]],
                      rejected: list[RefusedStop], actor: str) -> None:
    record_audit("runsheet_assigned", actor=actor, target_type="runsheet", target_id=sheet.id, details={
        "courier": courier, "date": sheet.date.isoformat(), "added": added,
        "moved": [{"tracking_id": tracking_id, "from_runsheet": stop.runsheet_id, "from_courier": stop.courier}
                  for tracking_id, stop in moved],
        "rejected": dict(Counter(refusal.reason for refusal in rejected))})
    record_audits("runsheet_stop_moved", actor=actor, entries=[
        ("shipment", tracking_id, {"from_runsheet": stop.runsheet_id, "from_courier": stop.courier,
                                   "to_runsheet": sheet.id, "to_courier": courier})
        for tracking_id, stop in moved])


def record_plan(runsheet_id: int, dispatch_run_id: int, etas: Mapping[str, datetime]) -> None:
    """Dispatch's mark on a run sheet it extended: the run that planned it (the latest, when several did) and the
    ETA of each of its open stops named in `etas` (by tracking ID)."""
    db.session.execute(update(_SHEETS).where(_SHEETS.c.id == runsheet_id).values(dispatch_run_id=dispatch_run_id))
    if not etas:
        return
    ids = dict(db.session.execute(select(_SHIPMENTS.c.tracking_id, _SHIPMENTS.c.id)
                                  .where(_SHIPMENTS.c.tracking_id.in_(list(etas)))).all())
    for tracking_id, eta in etas.items():
        if tracking_id in ids:
            db.session.execute(update(_STOPS).where(
                _STOPS.c.runsheet_id == runsheet_id, _STOPS.c.shipment_id == ids[tracking_id],
                _STOPS.c.state == StopState.OPEN.value).values(eta=eta))


@dataclass(frozen=True)
class PlacedStop:
    """Where a placed stop was open before (None: nowhere) and the sequence it has now."""
    from_runsheet_id: int | None
    from_sequence: int | None
    to_sequence: int


def open_stop_count(runsheet_id: int) -> int:
    return _open_count(runsheet_id)


def place_stop(sheet: RunSheet, shipment: Shipment, position: int) -> PlacedStop:
    """Put `shipment`'s open stop at `position` (1-based, in the run sheet's order; past the end: last) on `sheet`,
    whose row the caller holds locked (see the module's rules). The placed stop has no ETA: the plan's no longer
    holds. Conflict when another change took the parcel at the same moment (nothing is changed then)."""
    previous = _open_stops([shipment.id]).get(shipment.id)
    order = [row.id for row in db.session.execute(
        select(_STOPS.c.id).where(_STOPS.c.runsheet_id == sheet.id).order_by(_STOPS.c.sequence, _STOPS.c.id))]
    from_sequence = None
    if previous is not None:
        from_sequence = db.session.scalar(select(_STOPS.c.sequence).where(_STOPS.c.id == previous.id))
    if previous is not None and previous.runsheet_id == sheet.id:
        placed = previous.id
        order.remove(placed)
        db.session.execute(update(_STOPS).where(_STOPS.c.id == placed).values(eta=None))
    else:
        now = utcnow()
        if previous is not None and not _set_state(previous.id, StopState.OPEN, StopState.MOVED, now):
            raise Conflict(REFUSAL_MESSAGES[StopRefusal.BUSY])
        placed = db.session.execute(
            dialect_insert(_STOPS).on_conflict_do_nothing(index_elements=["shipment_id"],
                                                           index_where=_OPEN_INDEX_WHERE)
            .values(runsheet_id=sheet.id, shipment_id=shipment.id, sequence=len(order) + 1,
                    state=StopState.OPEN.value, added_at=now).returning(_STOPS.c.id)).scalar()
        if placed is None:
            if previous is not None:  # put back the stop it was to leave: still locked by this transaction
                _set_state(previous.id, StopState.MOVED, StopState.OPEN, None)
            raise Conflict(REFUSAL_MESSAGES[StopRefusal.BUSY])
    index = min(max(position, 1), len(order) + 1) - 1
    order.insert(index, placed)
    current = dict(db.session.execute(select(_STOPS.c.id, _STOPS.c.sequence).where(_STOPS.c.id.in_(order))).all())
    for sequence, stop_id in enumerate(order, start=1):
        if current.get(stop_id) != sequence:
            db.session.execute(update(_STOPS).where(_STOPS.c.id == stop_id).values(sequence=sequence))
    for courier_id in {sheet.courier_id, *([previous.courier_id] if previous is not None else [])}:
        publish_courier_changed(courier_id)
    return PlacedStop(previous.runsheet_id if previous is not None else None, from_sequence, index + 1)


# --- reading ---------------------------------------------------------------------------------------------------

def runsheet_view(runsheet_id: int) -> RunSheetView:
    """A run sheet with all its stops in order (moved ones too), each with its parcel as it is now; NotFound."""
    row = db.session.execute(
        select(RunSheet, User.username, CourierProfile.name, CourierProfile.vehicle)
        .join(User, User.id == RunSheet.courier_id)
        .outerjoin(CourierProfile, CourierProfile.user_id == RunSheet.courier_id)
        .where(RunSheet.id == runsheet_id).execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound("No run sheet has this number.")
    sheet = row.RunSheet
    stops = db.session.execute(
        select(_STOPS.c.sequence, _STOPS.c.state, _STOPS.c.outcome, _STOPS.c.eta, Shipment)
        .join(Shipment, Shipment.id == _STOPS.c.shipment_id)
        .where(_STOPS.c.runsheet_id == sheet.id).order_by(_STOPS.c.sequence, _STOPS.c.id)
        .execution_options(populate_existing=True)).all()  # the status-change core writes without the ORM
    return RunSheetView(id=sheet.id, courier=row.username, courier_name=row.name, vehicle=row.vehicle,
                        date=sheet.date, created_at=sheet.created_at, created_by=sheet.created_by,
                        dispatched_at=sheet.dispatched_at, dispatched_by=sheet.dispatched_by,
                        dispatch_run_id=sheet.dispatch_run_id,
                        stops=[_stop(stop.sequence, stop.state, stop.outcome, stop.Shipment,
                                     as_utc(stop.eta) if stop.eta is not None else None) for stop in stops])


def _stop(sequence: int, state: str, outcome: str | None, shipment: Shipment, eta: datetime | None = None) -> Stop:
    return Stop(tracking_id=shipment.tracking_id, sequence=sequence, state=state, outcome=outcome,
                status=shipment.status, kind=stop_kind(shipment.status, shipment.pickup) or "delivery",
                receiver_name=shipment.receiver_name, destination=shipment.destination,
                destination_pincode=shipment.destination_pincode, mobile=shipment.mobile, pieces=shipment.pieces,
                payment=shipment.payment, cod_amount=shipment.cod_amount if shipment.payment == "cod" else None,
                sender_name=shipment.sender_name, sender_address=shipment.sender_address,
                sender_pincode=shipment.sender_pincode, sender_mobile=shipment.sender_mobile, eta=eta)


def list_runsheets(day: date, courier: str | None = None) -> list[RunSheetSummary]:
    """The run sheets of one day (of one courier, when given), by courier, with their stops counted by state."""
    def count(state: StopState):
        return func.coalesce(func.sum(case((_STOPS.c.state == state.value, 1), else_=0)), 0)

    statement = (select(RunSheet, User.username, count(StopState.OPEN).label("open"),
                        count(StopState.DONE).label("done"), count(StopState.MOVED).label("moved"))
                 .join(User, User.id == RunSheet.courier_id)
                 .outerjoin(_STOPS, _STOPS.c.runsheet_id == RunSheet.id)
                 .where(RunSheet.date == day)
                 .group_by(RunSheet.id, User.username)
                 .order_by(func.lower(User.username)))
    if courier:
        statement = statement.where(func.lower(User.username) == courier.strip().lower())
    return [RunSheetSummary(id=row.RunSheet.id, courier=row.username, date=row.RunSheet.date,
                            stops_open=row.open, stops_done=row.done, stops_moved=row.moved,
                            created_at=row.RunSheet.created_at, created_by=row.RunSheet.created_by,
                            dispatched_at=row.RunSheet.dispatched_at, dispatched_by=row.RunSheet.dispatched_by)
            for row in db.session.execute(statement)]


# --- handing out -----------------------------------------------------------------------------------------------

def dispatch_runsheet(runsheet_id: int, *, actor: str, timezone: str) -> RunSheetResult:
    """Hand a run sheet out (see the module's rules); the run sheet after it, with the stops the status-change
    core refused."""
    sheet = db.session.scalars(select(RunSheet).where(RunSheet.id == runsheet_id).with_for_update()).first()
    if sheet is None:
        raise NotFound("No run sheet has this number.")
    courier = db.session.get(User, sheet.courier_id)
    if courier.role != Role.COURIER or not courier.active:
        raise Conflict(f"{courier.username} is no longer an active courier: put the stops on another courier's "
                       "run sheet.")
    if sheet.date > local_today(timezone):
        raise Conflict(f"This run sheet is for {sheet.date.isoformat()}: hand it out on that day.")
    stops = _open_stops_to_hand_out(sheet.id)
    if not stops:
        raise Conflict("This run sheet has no open stops to hand out.")
    changes = [StatusChange(row.tracking_id, Status.OUT_FOR_DELIVERY, row.location or DISPATCH_LOCATION)
               for row in stops if stop_kind(row.status, row.pickup) == "delivery"
               and row.status != Status.OUT_FOR_DELIVERY]
    # One call of the core for the whole sheet, the courier as the events' actor; this row audits it once.
    outcomes = apply_status_changes(changes, actor=courier.username, audit_each=False) if changes else []
    if sheet.dispatched_at is None:
        sheet.dispatched_at, sheet.dispatched_by = utcnow(), actor
    rejected = [RefusedStop(o.tracking_id, str(o.refusal), o.error or "") for o in outcomes if not o.ok]
    record_audit("runsheet_dispatched", actor=actor, target_type="runsheet", target_id=sheet.id, details={
        "courier": courier.username, "date": sheet.date.isoformat(),
        "out_for_delivery": [o.tracking_id for o in outcomes if o.ok],
        "refused": [{"tracking_id": r.tracking_id, "reason": r.reason} for r in rejected]})
    db.session.flush()
    return RunSheetResult(runsheet_view(sheet.id), rejected)


def _open_stops_to_hand_out(runsheet_id: int) -> list:
    """The run sheet's open stops in order: each parcel's tracking ID, status, whether it is a pickup, and the
    place of its latest event (where it leaves from)."""
    latest_location = (select(_EVENTS.c.location).where(_EVENTS.c.shipment_id == _SHIPMENTS.c.id)
                       .order_by(*NEWEST_FIRST).limit(1).scalar_subquery())
    return db.session.execute(
        select(_SHIPMENTS.c.tracking_id, _SHIPMENTS.c.status, _SHIPMENTS.c.pickup,
               latest_location.label("location"))
        .select_from(_STOPS).join(_SHIPMENTS, _SHIPMENTS.c.id == _STOPS.c.shipment_id)
        .where(_STOPS.c.runsheet_id == runsheet_id, _STOPS.c.state == StopState.OPEN.value)
        .order_by(_STOPS.c.sequence, _STOPS.c.id)).all()
