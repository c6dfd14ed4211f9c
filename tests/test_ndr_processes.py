"""Failed deliveries' steps, exactly once across real processes (PostgreSQL: SQLite serves one process): two
`flask jobs runner` processes over many due steps apply each once; a runner killed with SIGKILL in the middle of a
step leaves it, untouched, to the other. The runners load tests/ndr_runner.py (the real app and job, plus a slow
timer kind of the tests' own)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Alert, AuditEntry, NonDeliveryReport, Notification, Shipment, Timer, TrackingEvent
from app.services.operations import timers
from app.services.shipments.status_changes import StatusChange, apply_status_changes
from tests import log_privacy
from tests.dispatch_support import make_parcels
from tests.ndr_runner import SLOW_KIND
from tests.notifications.conftest import wait_for
from tests.notifications.test_processes import app_env, default_sigint

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
PARCELS = 24


@pytest.fixture
def ctx(app, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process")
    with app.app_context():
        yield app
        db.session.remove()


class Runner:
    """`flask jobs runner` of tests/ndr_runner.py's app in a subprocess, its output in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "tests.ndr_runner:create_runner_app()",
                                         "jobs", "runner"],
                                        cwd=REPO, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
                                        preexec_fn=default_sigint)
        log_privacy.watch_file(log_path, "flask jobs runner (ndr)")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log_file.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def runners(database_url, tmp_path):
    started: list[Runner] = []

    def start(name: str, **settings) -> Runner:
        env = app_env(database_url, JOBS_IN_WEB=False, JOBS_TICK_SECONDS=0.05, TIMERS_POLL_SECONDS=0.05,
                      ESTIMATES_REFRESH_SECONDS=0, LOCATION_PURGE_SECONDS=0, GEOCODE_POLL_SECONDS=0,
                      DISPATCH_POLL_SECONDS=0, ALERTS_POLL_SECONDS=0, NDR_MAX_ATTEMPTS=1, NDR_RTO_AFTER="1s",
                      **settings)
        runner = Runner(env, tmp_path / f"{name}.log")
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop(signal.SIGKILL)


def count(model, *conditions) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions))


def test_two_runner_processes_escalate_and_return_each_parcel_exactly_once(ctx, runners):
    """Each parcel's last attempt failed (NDR_MAX_ATTEMPTS 1): two runners escalate it and, a second later,
    return it to its sender: one alert, one last-chance SMS, one RTO Initiated event each."""
    ctx.config["NDR_MAX_ATTEMPTS"] = 1
    parcels = make_parcels(PARCELS, None)
    apply_status_changes([StatusChange(t, "Out for Delivery", "Kochi Hub") for t in parcels], "setup",
                         audit_each=False)
    apply_status_changes([StatusChange(t, "Delivery Attempted", "Kochi", attempt_reason="nobody_home")
                          for t in parcels], "courier1", audit_each=False)
    db.session.commit()
    assert count(Timer, Timer.kind == "ndr.escalate", Timer.state == "pending") == PARCELS
    db.session.remove()
    first, second = runners("runner1"), runners("runner2")
    try:
        wait_for(lambda: count(Shipment, Shipment.status == "RTO Initiated") == PARCELS, timeout=90,
                 message="every parcel returned to origin")
        wait_for(lambda: count(Timer, Timer.state == "pending") == 0, timeout=10, message="no step left")
    finally:
        assert first.stop() == 0 and second.stop() == 0, first.output()[-3000:] + second.output()[-3000:]
    assert count(TrackingEvent, TrackingEvent.status == "RTO Initiated") == PARCELS
    assert count(Alert, Alert.kind == "ndr_escalated") == PARCELS
    assert count(Notification, Notification.channel == "ndr_sms") == PARCELS  # these bookings have no email
    assert count(AuditEntry, AuditEntry.action == "status_changed", AuditEntry.actor == "system") == PARCELS
    assert count(NonDeliveryReport, NonDeliveryReport.outcome == "rto") == PARCELS
    done = db.session.execute(select(Timer.kind, Timer.state, Timer.attempts, Timer.done_by)).all()
    assert sorted({(kind, state, attempts) for kind, state, attempts, _ in done}) == [
        ("ndr.escalate", "done", 0), ("ndr.rto", "done", 0)]
    assert len(done) == PARCELS * 2
    pids = {str(first.process.pid), str(second.process.pid)}
    assert {by.rsplit(":", 1)[1] for *_, by in done} <= pids


def test_a_runner_killed_in_the_middle_of_a_step_leaves_it_to_the_other_exactly_once(ctx, runners, tmp_path):
    timers.schedule(SLOW_KIND, "test:slow:1", utcnow() - timedelta(seconds=1))
    db.session.commit()
    [timer_id] = db.session.scalars(select(Timer.id).where(Timer.key == "test:slow:1")).all()
    db.session.remove()
    marker = tmp_path / "under-way"
    doomed = runners("doomed", NDR_TEST_MARKER=str(marker), NDR_TEST_SLOW_SECONDS=60)
    wait_for(marker.exists, timeout=30, message="the slow step under way")
    assert marker.read_text() == str(doomed.process.pid)
    # Its audit row is written and flushed, the step is not done: SIGKILL now.
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(10)
    assert count(AuditEntry, AuditEntry.target_type == "timer") == 0
    survivor = runners("survivor", NDR_TEST_SLOW_SECONDS=0)
    wait_for(lambda: count(Timer, Timer.id == timer_id, Timer.state == "done") == 1, timeout=30,
             message="the step done by the survivor")
    assert survivor.stop() == 0, survivor.output()[-3000:]
    [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.target_type == "timer")).all()
    assert entry.details["pid"] == survivor.process.pid
    timer = db.session.get(Timer, timer_id)
    assert (timer.attempts, timer.done_by.rsplit(":", 1)[1]) == (0, str(survivor.process.pid))
