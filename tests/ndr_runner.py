"""The app for the job-runner processes of tests/test_ndr_processes.py
(`flask --app "tests.ndr_runner:create_runner_app()" jobs runner`):
the real app and the real `timers.run` job, plus a timer kind of the tests' own, `test.slow`, registered here and
nowhere in the app. Its step writes an audit row (so a step applied twice would show), writes this process's id to
the file NDR_TEST_MARKER (so the test knows the step is under way) and sleeps NDR_TEST_SLOW_SECONDS before its
transaction commits: the window in which the test kills the process."""
from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from flask import Flask

from app import create_app
from app.extensions import db
from app.jobs.timers import HANDLERS
from app.models import Timer
from app.services.staff.audit import record_audit

SLOW_KIND = "test.slow"


def slow_step(timer: Timer, now: datetime) -> None:
    record_audit("ndr_answered", actor="system", target_type="timer", target_id=timer.id,
                 details={"pid": os.getpid()})
    db.session.flush()
    marker = os.environ.get("NDR_TEST_MARKER")
    if marker:
        Path(marker).write_text(str(os.getpid()))
    time.sleep(float(os.environ.get("NDR_TEST_SLOW_SECONDS", "0")))


def create_runner_app() -> Flask:
    """The app from the environment, with the slow kind's handler (nothing happens at import)."""
    HANDLERS[SLOW_KIND] = slow_step
    return create_app()
