"""The `dispatch.plan` job: the schedule's runs made when their slot has passed, and queued runs planned.

Each pass makes the due slot's runs (app.services.planning.dispatch_runs), then claims runs one at a time and
plans each: its inputs read, the read transaction let go while the matrices are fetched and the solver works, then
the run sheets written and the run completed in one transaction (design rule 13). Every process may run it at
once (the runs' leases keep each to one runner), so solves of different zones go on side by side. A pass stops
claiming after PASS_SECONDS, so the runner's other jobs are not held up for long.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from app.domain.planning import parse_dispatch_times
from app.extensions import db
from app.services.planning.dispatch import (
    BaselineFunction,
    LeaseLost,
    PlanSettings,
    Replan,
    RunRefused,
    SolveFunction,
    gather_inputs,
    plan_dispatch,
    savings_baseline,
    vroom_solve,
    write_plan,
)
from app.services.planning.dispatch_runs import ClaimedRun, claim_run, create_due_runs, fail_run, release_run

log = logging.getLogger(__name__)

PASS_SECONDS = 120.0
MIN_LEASE_SECONDS = 120.0


def lease_seconds(solve_seconds: float) -> float:
    """Long enough for the matrices, the solver and the baseline, and the writing: a lease that runs out means the
    process died, so it must never run out under a live solve."""
    return max(MIN_LEASE_SECONDS, 3 * solve_seconds + 60)


def plan_dispatch_runs(now: datetime, *, solve: SolveFunction = vroom_solve,
                       baseline: BaselineFunction | None = savings_baseline) -> str | None:
    """Make the dispatch runs of the schedule's due slot (DISPATCH_TIMES) and plan the queued runs.

    Returns what it did in a few words, None when nothing was due."""
    config = current_app.config
    timezone = config["DISPLAY_TIMEZONE"]
    made = create_due_runs(now, parse_dispatch_times(config.get("DISPATCH_TIMES")), timezone)
    db.session.commit()
    settings = PlanSettings.from_config(config)
    lease = lease_seconds(settings.solve_seconds or 0)
    started = time.monotonic()
    outcomes: Counter[str] = Counter()
    while time.monotonic() - started < PASS_SECONDS:
        # The runner's clock, moved on by the time this pass has taken: the next lease starts now, not then.
        at = now + timedelta(seconds=time.monotonic() - started)
        claim = claim_run(at, lease)
        db.session.commit()
        if claim is None:
            break
        outcome = _plan_one(claim, at, settings, timezone, solve, baseline)
        outcomes[outcome] += 1
        if outcome == "given back":  # planned again at the next pass, against what changed
            break
    words = ([f"{made} scheduled run{'' if made == 1 else 's'} made"] if made else []) + \
        [f"{count} {outcome}" for outcome, count in sorted(outcomes.items())]
    return ", ".join(words) or None


def _plan_one(claim: ClaimedRun, now: datetime, settings: PlanSettings, timezone: str, solve: SolveFunction,
              baseline: BaselineFunction | None) -> str:
    """Plan one claimed run: "planned", "failed", "lost" (another runner holds it now) or "given back"."""
    try:
        inputs = gather_inputs(claim.run_id, now, timezone=timezone)
        db.session.rollback()  # nothing was written: no transaction is held while the solver works
        outcome = plan_dispatch(inputs, settings, solve=solve, baseline=baseline)
        write_plan(claim, inputs, outcome, now=now, timezone=timezone)
        db.session.commit()
        return "planned"
    except LeaseLost:
        db.session.rollback()
        log.warning("Dispatch run %s: its lease ran out and another runner took it over; nothing written here.",
                    claim.run_id)
        return "lost"
    except Replan as changed:
        db.session.rollback()
        log.info("Dispatch run %s planned again: %s.", claim.run_id, changed)
        release_run(claim)
        db.session.commit()
        return "given back"
    except RunRefused as refused:
        db.session.rollback()
        return _failed(claim, now, str(refused))
    except SQLAlchemyError as error:  # the database's words without its SQL or values
        db.session.rollback()
        reason = (str(error).splitlines() or [type(error).__name__])[0][:200]
        log.error("Dispatch run %s failed, database error: %s", claim.run_id, reason)
        return _failed(claim, now, f"The plan could not be written (database error: {type(error).__name__}).")
    except Exception as error:  # noqa: BLE001 - a run that cannot be planned fails; the runner goes on
        db.session.rollback()
        log.exception("Dispatch run %s failed.", claim.run_id)
        return _failed(claim, now, f"The plan could not be made ({type(error).__name__}); see the job runner's log.")


def _failed(claim: ClaimedRun, now: datetime, error: str) -> str:
    if not fail_run(claim, now, error):
        db.session.rollback()
        return "lost"
    db.session.commit()
    return "failed"
