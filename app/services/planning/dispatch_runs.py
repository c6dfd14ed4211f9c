"""Dispatch runs as timers (design rule 13): the schedule's slots made once per zone, and runs claimed under a
lease by whichever job runner gets there first.

Rules:
- The schedule: at each DISPATCH_TIMES slot (local time), one queued run per zone, made by the first job runner
  that looks after the slot has passed. The row's unique (zone, slot) is the arbiter: every process inserts with
  ON CONFLICT DO NOTHING (no savepoint, which pysqlite would turn into a commit), and only one row is made
  however many look at once. Only the latest slot passed is made, and only within SLOT_GRACE of its time: after
  an outage the parcels wait for the next slot rather than be planned hours late, or twice.
- A claim takes the oldest queued run, or a running one whose lease ran out (its process died mid-solve), moves
  it to `running`, counts the attempt and sets `lease_until`. PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED in a
  CTE feeding the UPDATE, so two runners never take the same run and never wait for each other; SQLite: one
  conditional UPDATE under its single write lock.
- The lease is the claim's fence: settling a run (done, failed, given back) only succeeds while the run still
  carries the lease and the attempt this claim wrote, so a runner that outlived its lease changes nothing.
- A run whose lease ran out on its MAX_ATTEMPTS-th attempt is not tried again: it fails, saying so.
These functions run statements in the caller's session; the job runner commits after each of them.
Reading: a run as staff see it (`run_view`), the latest runs (`recent_runs`), the zones to choose from.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from app.db.dialects import dialect_insert
from app.domain.planning import MAX_ATTEMPTS, RunState, due_slot
from app.domain.timeutil import as_utc, to_local
from app.errors import NotFound
from app.extensions import db
from app.models import DispatchRun, Zone
from app.services.staff.audit import SYSTEM

ERROR_MAX = 500
GAVE_UP = (f"The planner's process stopped during each of its {MAX_ATTEMPTS} attempts (the lease ran out); "
           "not tried again.")


@dataclass(frozen=True)
class ClaimedRun:
    """A run this runner holds: the attempt it is on and the lease that fences it."""

    run_id: int
    attempts: int
    lease_until: datetime


def create_due_runs(now: datetime, times: tuple[time, ...], timezone: str) -> int:
    """Queue the latest due slot's run for every zone that has none yet (see the module's rules); how many this
    call made (0 when another process made them first)."""
    slot = due_slot(to_local(now, timezone), times)
    if slot is None:
        return 0
    zone_ids = list(db.session.scalars(select(Zone.id).order_by(Zone.id)))
    if not zone_ids:
        return 0
    table = DispatchRun.__table__
    slot_utc = as_utc(slot)
    rows = [{"state": RunState.QUEUED.value, "zone_id": zone_id, "plan_date": slot.date(), "couriers": None,
             "requested_by": SYSTEM, "scheduled_for": slot_utc, "attempts": 0, "created_at": now}
            for zone_id in zone_ids]
    made = db.session.execute(dialect_insert(table).values(rows)
                              .on_conflict_do_nothing(index_elements=["zone_id", "scheduled_for"])
                              .returning(table.c.id)).all()
    return len(made)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(DispatchRun.state == RunState.QUEUED.value,
               and_(DispatchRun.state == RunState.RUNNING.value, DispatchRun.lease_until < now,
                    DispatchRun.attempts < MAX_ATTEMPTS))


def claim_run(now: datetime, lease_seconds: float) -> ClaimedRun | None:
    """Take the oldest run that is due (see the module's rules); None when there is none."""
    _give_up_exhausted(now)
    lease_until = now + timedelta(seconds=lease_seconds)
    candidates = select(DispatchRun.id).where(_due(now)).order_by(DispatchRun.created_at, DispatchRun.id).limit(1)
    claim = update(DispatchRun).values(state=RunState.RUNNING.value, lease_until=lease_until, started_at=now,
                                       attempts=DispatchRun.attempts + 1)
    if db.session.get_bind().dialect.name == "postgresql":
        locked = candidates.with_for_update(skip_locked=True).cte("due")
        claim = claim.where(DispatchRun.id == locked.c.id)
    else:
        claim = claim.where(DispatchRun.id.in_(candidates), _due(now))
    row = db.session.execute(claim.returning(DispatchRun.id, DispatchRun.attempts)
                             .execution_options(synchronize_session=False)).first()
    return None if row is None else ClaimedRun(run_id=row.id, attempts=row.attempts, lease_until=lease_until)


def _give_up_exhausted(now: datetime) -> None:
    db.session.execute(
        update(DispatchRun)
        .where(DispatchRun.state == RunState.RUNNING.value, DispatchRun.lease_until < now,
               DispatchRun.attempts >= MAX_ATTEMPTS)
        .values(state=RunState.FAILED.value, lease_until=None, finished_at=now, error=GAVE_UP)
        .execution_options(synchronize_session=False))


def _fenced(claim: ClaimedRun) -> ColumnElement[bool]:
    return and_(DispatchRun.id == claim.run_id, DispatchRun.state == RunState.RUNNING.value,
                DispatchRun.attempts == claim.attempts, DispatchRun.lease_until == claim.lease_until)


def _settle(claim: ClaimedRun, **values) -> bool:
    return db.session.execute(update(DispatchRun).where(_fenced(claim)).values(**values)
                              .execution_options(synchronize_session=False)).rowcount == 1


def hold_run(claim: ClaimedRun) -> bool:
    """Whether this claim still holds its run; on PostgreSQL the row stays locked until the transaction ends, so
    no runner can claim it again while the plan is written."""
    return _settle(claim, attempts=DispatchRun.attempts)


def complete_run(claim: ClaimedRun, now: datetime, *, solver: str | None, seconds: float | None,
                 result: dict) -> bool:
    """The run is done, with its result; False when the lease was lost."""
    return _settle(claim, state=RunState.DONE.value, lease_until=None, finished_at=now, solver=solver,
                   seconds=seconds, result=result, error=None)


def fail_run(claim: ClaimedRun, now: datetime, error: str) -> bool:
    """The run failed, saying why in a few words (no personal data); False when the lease was lost."""
    return _settle(claim, state=RunState.FAILED.value, lease_until=None, finished_at=now, error=error[:ERROR_MAX])


def release_run(claim: ClaimedRun) -> bool:
    """Give the run back to the queue, the attempt uncounted: it is planned again at the next claim."""
    return _settle(claim, state=RunState.QUEUED.value, lease_until=None, attempts=DispatchRun.attempts - 1)


# --- reading -----------------------------------------------------------------------------------------------------

RECENT_RUNS = 50


@dataclass(frozen=True)
class RunView:
    id: int
    state: str
    zone_id: int | None
    zone: str | None
    plan_date: date
    couriers: list[str] | None
    requested_by: str
    scheduled_for: datetime | None
    solver: str | None
    seconds: float | None
    result: dict | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in (RunState.DONE, RunState.FAILED)

    @property
    def planned(self) -> int:
        """How many parcels the run put on run sheets."""
        return sum(len(manifest["stops"]) for manifest in (self.result or {}).get("manifests", []))

    @property
    def left_out(self) -> int:
        return len((self.result or {}).get("unassigned", []))


def run_view(run_id: int) -> RunView:
    """One run as it is now; NotFound."""
    row = db.session.execute(_runs().where(DispatchRun.id == run_id)
                             .execution_options(populate_existing=True)).first()
    if row is None:
        raise NotFound("No dispatch run has this number.")
    return _view(row)


def recent_runs(limit: int = RECENT_RUNS) -> list[RunView]:
    """The latest runs, newest first."""
    return [_view(row) for row in db.session.execute(
        _runs().order_by(DispatchRun.created_at.desc(), DispatchRun.id.desc()).limit(limit))]


def zone_choices() -> list[tuple[int, str]]:
    """Every zone's id and name, by name."""
    return [(row.id, row.name) for row in db.session.execute(select(Zone.id, Zone.name)
                                                             .order_by(func.lower(Zone.name)))]


def _runs():
    return select(DispatchRun, Zone.name).outerjoin(Zone, Zone.id == DispatchRun.zone_id)


def _view(row) -> RunView:
    run: DispatchRun = row.DispatchRun
    return RunView(id=run.id, state=run.state, zone_id=run.zone_id, zone=row.name, plan_date=run.plan_date,
                   couriers=run.couriers, requested_by=run.requested_by, scheduled_for=run.scheduled_for,
                   solver=run.solver, seconds=run.seconds, result=run.result, error=run.error,
                   attempts=run.attempts, created_at=run.created_at, started_at=run.started_at,
                   finished_at=run.finished_at)
