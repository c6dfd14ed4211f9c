"""The job runner (app/jobs): when a job is due, what a failure does, one process at a time per job on
PostgreSQL, the thread's start and stop, the estimates refresh as a job (no longer the outbox worker's) and the
`flask jobs` commands. The clock is the test's: `run_due(now)`, no sleeps."""
from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app import create_app
from app.domain.timeutil import utcnow
from app.extensions import db
from app.jobs.registry import Every, Job, check_jobs, lock_key
from app.jobs.runner import JobRunner, runner_for, start_runner_thread, stop_runner_thread
from app.models import DeliveryEstimate
from app.notifier.worker import OutboxWorker
from app.services.shipments.demo import seed_demo
from app.services.shipments.estimates import REFRESH_LOCK_KEY, estimates_refreshed_at

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Recorder:
    """A job's function that records the times it ran at, and fails while `failing` is set."""

    def __init__(self, failing: Exception | None = None) -> None:
        self.ran: list[datetime] = []
        self.failing = failing

    def __call__(self, now: datetime) -> str | None:
        self.ran.append(now)
        if self.failing is not None:
            raise self.failing
        return f"run {len(self.ran)}"


def job(name: str, run, setting: str = "TEST_JOB_SECONDS") -> Job:
    return Job(name, Every(setting), run)


@pytest.fixture
def every_minute(app):
    app.config["TEST_JOB_SECONDS"] = 60  # put back by the app fixture
    return app


def test_a_job_runs_at_its_first_look_then_only_once_its_interval_has_passed(every_minute):
    tick = Recorder()
    runner = JobRunner(every_minute, jobs=[job("test.tick", tick)])
    assert [(run.job, run.outcome, run.detail) for run in runner.run_due(T0)] == [("test.tick", "done", "run 1")]
    assert runner.run_due(T0 + MINUTE - timedelta(seconds=1)) == []
    assert tick.ran == [T0]
    assert [run.outcome for run in runner.run_due(T0 + MINUTE)] == ["done"]
    assert tick.ran == [T0, T0 + MINUTE]


def test_the_runners_own_clock_is_used_when_no_time_is_given(every_minute):
    tick, now = Recorder(), [T0]
    runner = JobRunner(every_minute, jobs=[job("test.tick", tick)], clock=lambda: now[0])
    runner.run_due()
    now[0] = T0 + 2 * MINUTE
    runner.run_due()
    assert tick.ran == [T0, T0 + 2 * MINUTE]


def test_a_job_whose_interval_is_zero_is_off_and_a_cap_shortens_the_setting(every_minute):
    every_minute.config["TEST_JOB_SECONDS"] = 0
    off = Recorder()
    assert JobRunner(every_minute, jobs=[job("test.off", off)]).run_due(T0) == []
    assert off.ran == []
    every_minute.config["TEST_JOB_SECONDS"] = 3600
    assert Every("TEST_JOB_SECONDS", at_most=60).seconds(every_minute.config) == 60
    assert Every("TEST_JOB_SECONDS").seconds(every_minute.config) == 3600


def test_a_job_that_says_nothing_was_due_is_idle(every_minute):
    runner = JobRunner(every_minute, jobs=[job("test.idle", lambda now: None)])
    assert [run.outcome for run in runner.run_due(T0)] == ["idle"]


def test_the_wall_clock_going_back_does_not_stall_a_job(every_minute):
    tick = Recorder()
    runner = JobRunner(every_minute, jobs=[job("test.tick", tick)])
    runner.run_due(T0)
    runner.run_due(T0 - timedelta(hours=1))  # the clock was set back an hour: not an hour's wait
    assert tick.ran == [T0, T0 - timedelta(hours=1)]


def test_a_failing_job_is_logged_and_does_not_stop_the_next(every_minute, caplog):
    broken, tick = Recorder(failing=RuntimeError("no route to the planner")), Recorder()
    runner = JobRunner(every_minute, jobs=[job("test.broken", broken), job("test.tick", tick)])
    with caplog.at_level(logging.INFO, logger="app.jobs.runner"):
        first = runner.run_due(T0)
        assert [(run.job, run.outcome) for run in first] == [("test.broken", "failed"), ("test.tick", "done")]
        assert first[0].detail == "RuntimeError: no route to the planner"
        assert runner.run_due(T0 + MINUTE / 2) == []  # not tried again before its next interval
        assert [run.outcome for run in runner.run_due(T0 + MINUTE)] == ["failed", "done"]
        broken.failing = None
        assert [run.outcome for run in runner.run_due(T0 + 2 * MINUTE)] == ["done", "done"]
    assert broken.ran == tick.ran == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    messages = [record.getMessage() for record in caplog.records]
    assert "Job test.broken failed (1 in a row; next try in 60s)." in messages
    assert "Job test.broken failed (2 in a row; next try in 60s)." in messages
    assert "Job test.broken ran again after 2 failures in a row." in messages
    failures = [record for record in caplog.records if "failed" in record.getMessage()]
    assert all(record.levelno == logging.ERROR and record.exc_info for record in failures)


def estimate_row(area: str, now: datetime) -> DeliveryEstimate:
    return DeliveryEstimate(area=area, status="In Transit", samples=1, p05_seconds=1.0, p50_seconds=2.0,
                            p90_seconds=3.0, refreshed_at=now)


def test_a_job_runs_in_one_transaction_committed_when_it_returns_and_rolled_back_when_it_raises(every_minute):
    def writes(now):
        db.session.add(estimate_row("city:kept", now))
        return "wrote one row"

    def writes_then_fails(now):
        db.session.add(estimate_row("city:lost", now))
        db.session.flush()
        raise ValueError("half way")

    runs = JobRunner(every_minute, jobs=[job("test.writes", writes), job("test.fails", writes_then_fails)]).run_due(T0)
    assert [run.outcome for run in runs] == ["done", "failed"]
    with every_minute.app_context():
        assert [row.area for row in db.session.query(DeliveryEstimate)] == ["city:kept"]


def test_jobs_may_not_share_a_name_or_a_lock_key():
    assert lock_key("estimates.refresh") == lock_key("estimates.refresh") != lock_key("dispatch.windows")
    assert lock_key("dispatch.windows") >> 32 == 0x57415942 and 0 < lock_key("x") < 2 ** 63
    with pytest.raises(ValueError, match="name"):
        check_jobs([job("test.same", Recorder()), job("test.same", Recorder())])
    with pytest.raises(ValueError, match="lock_key"):
        check_jobs([Job("test.a", Every("X"), Recorder(), lock_key=7),
                    Job("test.b", Every("X"), Recorder(), lock_key=7)])


# --- one process at a time per job (PostgreSQL) -----------------------------------------------------------------

def postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serves one process: the runner takes no lock there")


def test_two_runners_never_run_the_same_job_at_once(every_minute, make_config, made_apps, database_url):
    """Two runners, as in two processes: each its own app, engine and connections, the first in a thread of its
    own. While the first is in the job, the second skips it; once the first is done, the second may run it."""
    postgresql_only(database_url)
    other_app = create_app(make_config(TEST_JOB_SECONDS=60))
    made_apps.append(other_app)
    inside, release, overlaps = threading.Event(), threading.Event(), []
    running = threading.Semaphore(1)

    def slow(now):
        if not running.acquire(blocking=False):
            overlaps.append(now)
            return "overlapped"
        try:
            inside.set()
            assert release.wait(10), "the test never let the first run finish"
            return "done"
        finally:
            running.release()

    first, second = (JobRunner(application, jobs=[job("test.slow", slow)]) for application in (every_minute, other_app))
    first_runs = []
    thread = threading.Thread(target=lambda: first_runs.extend(first.run_due(T0)))
    thread.start()
    try:
        assert inside.wait(10), "the first runner never started the job"
        assert [(run.job, run.outcome) for run in second.run_due(T0)] == [("test.slow", "busy")]
        assert [run.outcome for run in second.run_due(T0 + MINUTE / 2)] == []  # it waits for its next interval
    finally:
        release.set()
        thread.join(10)
    assert [run.outcome for run in first_runs] == ["done"]
    assert [run.outcome for run in second.run_due(T0 + MINUTE)] == ["done"]  # the lock went with the first run
    assert overlaps == []


def test_a_job_held_elsewhere_is_skipped_and_its_lock_is_freed_after_a_failure(every_minute, database_url):
    postgresql_only(database_url)
    broken = Recorder(failing=RuntimeError("boom"))
    held = job("test.held", broken)
    with every_minute.app_context():
        other = db.engine.connect()  # another process, in the middle of this job
        other.execute(text("SELECT pg_advisory_lock(:key)"), {"key": held.lock_key})
    try:
        assert [run.outcome for run in JobRunner(every_minute, jobs=[held]).run_due(T0)] == ["busy"]
        assert broken.ran == []
    finally:
        other.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": held.lock_key})
        other.close()
    assert [run.outcome for run in JobRunner(every_minute, jobs=[held]).run_due(T0)] == ["failed"]
    with every_minute.app_context(), db.engine.connect() as probe:  # the failed run let go of its lock
        assert probe.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": held.lock_key}) is True
        probe.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": held.lock_key})


# --- the thread ---------------------------------------------------------------------------------------------------

def test_no_runner_thread_in_tests_unless_one_asks(app):
    assert app.config["JOBS_IN_WEB"] is False
    assert runner_for(app) is None


def test_the_runner_thread_starts_once_runs_due_jobs_and_stops_cleanly(make_config, made_apps):
    application = create_app(make_config(JOBS_IN_WEB=True, JOBS_TICK_SECONDS=0.05, TEST_JOB_SECONDS=60))
    made_apps.append(application)
    try:
        runner = runner_for(application)  # started by create_app
        assert runner is not None and runner.thread.daemon and runner.thread.is_alive()
        assert runner.thread.name == "waybill-jobs"
        assert start_runner_thread(application) is runner
        assert stop_runner_thread(application, timeout=5) is True
        assert not runner.thread.is_alive() and runner_for(application) is None

        ran = threading.Event()
        runner = start_runner_thread(application, jobs=[job("test.signal", lambda now: ran.set())])
        assert ran.wait(5), "the thread never ran the due job"
        assert stop_runner_thread(application, timeout=5) is True
        assert not runner.thread.is_alive()
        assert stop_runner_thread(application, timeout=1) is True  # again: nothing left to stop
    finally:
        stop_runner_thread(application, timeout=5)


# --- estimates.refresh ------------------------------------------------------------------------------------------
# The estimates' SQL differs by dialect: these run on both databases, as tests/test_estimates.py does.

def estimate_rows(application) -> int:
    with application.app_context():
        return db.session.query(DeliveryEstimate).count()


def outcomes(runs) -> list[tuple[str, str]]:
    return [(run.job, run.outcome) for run in runs]


def test_the_runner_refreshes_stale_estimates_once(app):
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    with app.app_context():
        seed_demo(400, 5, seed=5)
    now = utcnow()
    first, second = JobRunner(app), JobRunner(app)  # as in two processes
    (run,) = first.run_due(now)
    rows = estimate_rows(app)
    assert (run.job, run.outcome, run.detail) == ("estimates.refresh", "done", f"rebuilt {rows} area/status rows")
    with app.app_context():
        assert rows > 10 and estimates_refreshed_at() == now
        network = db.session.get(DeliveryEstimate, ("*", "In Transit"))
        assert network.samples > 50 and network.p05_seconds <= network.p50_seconds <= network.p90_seconds
    assert outcomes(second.run_due(now)) == [("estimates.refresh", "idle")]  # fresh: nothing to do elsewhere
    assert first.run_due(now + MINUTE - timedelta(seconds=1)) == []  # a process looks once a minute at most
    assert outcomes(first.run_due(now + MINUTE)) == [("estimates.refresh", "idle")]  # still fresh
    later = now + timedelta(hours=1)
    assert outcomes(first.run_due(later)) == [("estimates.refresh", "done")]  # stale again: rebuilt
    with app.app_context():
        assert estimates_refreshed_at() == later
    app.config["ESTIMATES_REFRESH_SECONDS"] = 0
    assert JobRunner(app).run_due(later + timedelta(hours=2)) == []  # 0: off, only the CLI refreshes


@pytest.mark.parametrize("held_by", ["pg_advisory_lock", "pg_advisory_xact_lock"],
                         ids=["another runner", "an outbox worker of the release before"])
def test_only_one_process_refreshes_the_estimates_at_a_time(app, database_url, held_by):
    postgresql_only(database_url)
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    with app.app_context():
        seed_demo(300, 5, seed=9)
        other = db.engine.connect()  # another process, in the middle of its own rebuild
        other.execute(text(f"SELECT {held_by}(:key)"), {"key": REFRESH_LOCK_KEY})
    try:
        assert outcomes(JobRunner(app).run_due()) == [("estimates.refresh", "busy")]
        assert estimate_rows(app) == 0
    finally:
        other.execute(text("SELECT pg_advisory_unlock_all()"))
        other.rollback()  # and with it a transaction's lock
        other.close()
    assert outcomes(JobRunner(app).run_due()) == [("estimates.refresh", "done")]
    assert estimate_rows(app) > 0


def test_the_outbox_worker_no_longer_refreshes_estimates(app):
    """A whole pass of the worker's loop, with stale estimates and history to learn from: no rebuild."""
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    with app.app_context():
        seed_demo(200, 5, seed=4)
    worker = OutboxWorker(app)
    drain = worker.drain

    def one_pass():
        report = drain()
        worker.stop()  # the loop ends after this pass, without waiting for its poll interval
        return report

    worker.drain = one_pass
    worker.run()
    assert worker.passes == 1
    assert estimate_rows(app) == 0
    assert not hasattr(worker, "refresh_estimates_if_due")


# --- flask jobs ---------------------------------------------------------------------------------------------------

def test_jobs_list_says_how_often_each_job_is_looked_at(runner, app):
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    listed = runner.invoke(args=["jobs", "list"])
    assert listed.exit_code == 0, listed.output
    assert "estimates.refresh  every 60s (ESTIMATES_REFRESH_SECONDS)  Rebuild the estimated-delivery table" \
           in listed.output
    app.config["ESTIMATES_REFRESH_SECONDS"] = 0
    assert "estimates.refresh  off (ESTIMATES_REFRESH_SECONDS)" in runner.invoke(args=["jobs", "list"]).output


def test_jobs_run_once_runs_each_due_job_and_says_what_it_did(runner, app):
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    with app.app_context():
        seed_demo(300, 5, seed=3)
    first = runner.invoke(args=["jobs", "run-once"])
    assert first.exit_code == 0, first.output
    assert f"estimates.refresh: done: rebuilt {estimate_rows(app)} area/status rows" in first.output
    again = runner.invoke(args=["jobs", "run-once"])
    assert again.exit_code == 0 and "estimates.refresh: nothing to do" in again.output
    app.config["ESTIMATES_REFRESH_SECONDS"] = 0
    assert "No job is on" in runner.invoke(args=["jobs", "run-once"]).output


def test_jobs_run_once_exits_1_when_a_job_failed(runner, app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the history cannot be read")

    monkeypatch.setattr("app.jobs.estimates.refresh_if_stale", broken)
    app.config["ESTIMATES_REFRESH_SECONDS"] = 3600
    result = runner.invoke(args=["jobs", "run-once"])
    assert result.exit_code == 1
    assert "estimates.refresh: failed: RuntimeError: the history cannot be read" in result.output
