"""The job runner: runs the periodic jobs that are due, in a daemon thread per process or as its own process.

Lifecycle (as the outbox worker's, app/notifier/worker.py):
- `start_runner_thread(app)` is called by `create_app` when JOBS_IN_WEB is on (never at import, so never before
  Gunicorn forks); `flask jobs runner` runs the same loop as a process of its own.
- The thread wakes every JOBS_TICK_SECONDS and calls `run_due(now)`, which tests also call directly with a clock
  of their own.
- `stop_runner_thread(app_or_none, timeout)` stops it after the job in hand. Also run at interpreter exit;
  Gunicorn's `worker_exit` hook calls it too.

Rules of `run_due`:
- A job runs at its first look in a process, then once its interval (from the config) has passed since its last
  run here; a job whose interval is 0 or less is off.
- One process at a time per job: on PostgreSQL the runner holds the job's advisory lock while it runs (a session
  lock on a connection of its own, so a job may commit as often as it needs). A process that cannot get it skips
  the job until its next interval: another one is at it. SQLite serves one process; nothing to hold. A job that
  is not `exclusive` (it claims its own work under leases) takes no lock: processes run it side by side.
- A job that raises is rolled back and logged with the failures in a row, and tried again at its next interval;
  the other jobs run as usual.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import click
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.domain.timeutil import utcnow
from app.extensions import db
from app.jobs.registry import JOBS, Job, check_jobs

log = logging.getLogger(__name__)

_registry_lock = threading.Lock()
_runners: dict[int, JobRunner] = {}  # id(app) → its runner thread in this process
_atexit_registered = False


@dataclass(frozen=True)
class JobRun:
    """What one look at a job came to: "done", "idle" (nothing was due), "busy" (another process holds the job)
    or "failed"; `detail` says what was done, or the error."""

    job: str
    outcome: str
    detail: str | None = None

    def __str__(self) -> str:
        words = {"done": "done", "idle": "nothing to do", "busy": "skipped, another process is running it",
                 "failed": "failed"}[self.outcome]
        return f"{self.job}: {words}" + (f": {self.detail}" if self.detail else "")


@dataclass
class JobRunner:
    """Runs the due jobs of one app. `run()` loops; `run_due(now)` is one look at every job."""

    app: Flask
    jobs: Sequence[Job] = JOBS
    clock: Callable[[], datetime] = utcnow
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    pid: int = field(default_factory=os.getpid)
    ticks: int = 0  # completed looks, for tests and health checks
    _next_run: dict[str, datetime] = field(default_factory=dict)  # job → when this process looks at it again
    _failures: dict[str, int] = field(default_factory=dict)  # job → failures in a row

    def __post_init__(self) -> None:
        self.jobs = check_jobs(self.jobs)

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def run(self) -> None:
        """Run the due jobs, then sleep JOBS_TICK_SECONDS (or until stopped), until stopped. Never raises."""
        tick = float(self.app.config["JOBS_TICK_SECONDS"])
        log.info("Job runner started (%s; waking every %gs).", ", ".join(job.name for job in self.jobs) or "no jobs",
                 tick)
        while not self.stopping:
            try:
                self.run_due()
            except Exception:  # noqa: BLE001 - run_due keeps each job's failure to itself; this is the runner's own
                log.exception("Job runner pass failed; trying again.")
            self.ticks += 1
            self.stop_event.wait(tick)
        log.info("Job runner stopped.")

    def due(self, now: datetime) -> list[Job]:
        """The jobs this process should look at `now`."""
        due = []
        for job in self.jobs:
            interval = job.interval(self.app.config)
            if interval <= 0:
                continue
            next_run = self._next_run.get(job.name)
            # A next run further away than one interval means the wall clock went back: look now.
            if next_run is None or now >= next_run or next_run - now > timedelta(seconds=interval):
                due.append(job)
        return due

    def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """Run every job that is due at `now` (default: the runner's clock), each in its own app context and
        transaction; returns what each came to. Never raises for a job's failure."""
        now = now or self.clock()
        runs = []
        for job in self.due(now):
            if self.stopping:
                break
            self._next_run[job.name] = now + timedelta(seconds=job.interval(self.app.config))
            runs.append(self._run(job, now))
        return runs

    def _run(self, job: Job, now: datetime) -> JobRun:
        started = time.monotonic()
        with self.app.app_context():
            try:
                with exclusive(job) if job.exclusive else nullcontext(True) as held:
                    if not held:
                        log.debug("Job %s skipped: another process is running it.", job.name)
                        return JobRun(job.name, "busy")
                    try:
                        detail = job.run(now)
                        db.session.commit()
                    finally:
                        db.session.rollback()
                        db.session.remove()
            except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others or the runner
                return self._failed(job, exc)
        failures = self._failures.pop(job.name, 0)
        if failures:
            log.info("Job %s ran again after %d failure%s in a row.", job.name, failures, "" if failures == 1 else "s")
        if detail is None:
            return JobRun(job.name, "idle")
        log.info("Job %s: %s (%.1fs).", job.name, detail, time.monotonic() - started)
        return JobRun(job.name, "done", detail)

    def _failed(self, job: Job, exc: Exception) -> JobRun:
        failures = self._failures[job.name] = self._failures.get(job.name, 0) + 1
        retry = job.interval(self.app.config)
        if isinstance(exc, SQLAlchemyError):  # the database is down or busy: say so without quoting SQL
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            log.error("Job %s failed (%d in a row; next try in %gs), database error: %s", job.name, failures, retry,
                      reason)
        else:
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("Job %s failed (%d in a row; next try in %gs).", job.name, failures, retry)
        return JobRun(job.name, "failed", reason)


@contextmanager
def exclusive(job: Job) -> Iterator[bool]:
    """True while this process holds `job`, False when another process does (in the app context).

    On PostgreSQL: the job's advisory lock, taken without waiting on a connection of its own in autocommit, so
    it outlasts any commit of the job and never holds a transaction open; released at the end of the block (or
    with the connection, should that break). On SQLite there is one process: always True."""
    if db.engine.dialect.name != "postgresql":
        yield True
        return
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if not connection.scalar(select(func.pg_try_advisory_lock(job.lock_key))):
            yield False
            return
        try:
            yield True
        finally:
            try:
                released = connection.scalar(select(func.pg_advisory_unlock(job.lock_key)))
            except SQLAlchemyError:
                released = False
            if not released:  # a session lock must never go back to the pool with its connection
                connection.invalidate()


# --- one runner thread per process ---------------------------------------------------------------------------

def start_runner_thread(app: Flask, jobs: Sequence[Job] | None = None) -> JobRunner | None:
    """Start this process's runner thread for `app` (once). Not for `flask` CLI commands other than `run`:
    `flask db upgrade` must not start jobs, and `flask jobs runner` runs the loop itself."""
    if _running_cli_command():
        return None
    global _atexit_registered
    with _registry_lock:
        existing = _runners.get(id(app))
        if existing is not None and existing.pid == os.getpid() and existing.thread and existing.thread.is_alive():
            return existing
        runner = JobRunner(app) if jobs is None else JobRunner(app, jobs=jobs)
        runner.thread = threading.Thread(target=runner.run, name="waybill-jobs", daemon=True)
        _runners[id(app)] = runner
        if not _atexit_registered:
            atexit.register(stop_runner_thread, None, 5.0)
            _atexit_registered = True
    runner.thread.start()
    return runner


def stop_runner_thread(app: Flask | None = None, timeout: float = 10.0) -> bool:
    """Stop the runner thread of `app`, or of every app in this process when `app` is None.

    A job in hand is finished (it is not interrupted); waits up to `timeout` seconds in all. True if every
    thread stopped in time. Safe to call more than once."""
    with _registry_lock:
        if app is None:
            runners = list(_runners.values())
            _runners.clear()
        else:
            runner = _runners.pop(id(app), None)
            runners = [runner] if runner else []
    for runner in runners:
        runner.stop()
    deadline = time.monotonic() + timeout
    stopped = True
    for runner in runners:
        if runner.thread is not None and runner.pid == os.getpid():
            runner.thread.join(max(deadline - time.monotonic(), 0))
            stopped = stopped and not runner.thread.is_alive()
    return stopped


def runner_for(app: Flask) -> JobRunner | None:
    return _runners.get(id(app))


def _running_cli_command() -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "run"
