"""The `timers.run` job: runs the due timer rows (rule 13), each exactly once (app.services.operations.timers)."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.services.ndr import steps as ndr_steps
from app.services.ndr.reports import ESCALATE, REATTEMPT_DUE, RTO
from app.services.operations.timers import Handler, run_next

# Timer kind → the service function that applies its step. Each kind's owner adds its line.
HANDLERS: dict[str, Handler] = {
    # A failed delivery's report (app.services.ndr): due for a reattempt, escalated, returned to origin.
    REATTEMPT_DUE: ndr_steps.reattempt_due,
    ESCALATE: ndr_steps.escalate,
    RTO: ndr_steps.return_to_origin,
}
BATCH = 200  # steps in one look; the rest wait for the next


def run_due_timers(now: datetime) -> str | None:
    """Run the timer steps that are due (failing ones are put off and retried)."""
    done = failed = 0
    for _ in range(BATCH):
        timer = run_next(now, HANDLERS, max_attempts=int(current_app.config["TIMER_MAX_ATTEMPTS"]))
        if timer is None:
            break
        if timer.state == "done":
            done += 1
        else:
            failed += 1
    if not done and not failed:
        return None
    return f"{done} step{'s' if done != 1 else ''} done" + (f", {failed} failed" if failed else "")
