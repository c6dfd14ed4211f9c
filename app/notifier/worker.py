"""The outbox worker: drains due notifications, in a daemon thread per process or as its own process.

Lifecycle:
- `start_worker_thread(app)` is called by `create_app` (never at import, so never before Gunicorn forks).
- `install_wake_hook()` makes a commit that gave the outbox work (a session marked by
  app.services.outbox.queueing.mark_outbox_changed) wake this process's worker at once; otherwise it polls every
  NOTIFY_POLL_SECONDS for rows inserted by other processes.
- Each claimed row is rendered here, just before it is sent (app.services.outbox.messages), not in the request.
- `stop_worker_thread(app_or_none, timeout)` stops it: the message being sent is finished, the rest of the
  claimed batch is given back to the outbox at once. Also run at interpreter exit; Gunicorn's `worker_exit`
  hook should call it too.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta

import click
from flask import Flask, current_app, has_app_context
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.domain.timeutil import utcnow
from app.extensions import db
from app.notifier import channels, claims
from app.notifier.sender import DeliveryFailed, scrub_addresses
from app.observability import metrics
from app.services.outbox import messages
from app.services.outbox.queueing import OUTBOX_CHANGED

log = logging.getLogger(__name__)
WAKE_COALESCE_SECONDS = 0.05

_registry_lock = threading.Lock()
_workers: dict[int, OutboxWorker] = {}  # id(app) → its worker thread in this process
_hook_installed = False
_atexit_registered = False


@dataclass
class DrainReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    released: int = 0
    lost_leases: int = 0
    batches: int = 0

    def add(self, other: DrainReport) -> None:
        for name in ("sent", "retrying", "dead", "released", "lost_leases", "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def __str__(self) -> str:
        return (f"sent {self.sent}, retrying later {self.retrying}, dead {self.dead}, "
                f"given back {self.released}")


@dataclass
class OutboxWorker:
    """Claims, sends and settles due notifications for one app. `run()` loops; `drain()` is one pass."""

    app: Flask
    stop_event: threading.Event = field(default_factory=threading.Event)
    wake_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    pid: int = field(default_factory=os.getpid)
    passes: int = 0  # completed passes over the outbox, for health checks and tests
    _last_lease_check: float = float("-inf")  # monotonic time of the last look for expired leases

    def wake(self) -> None:
        self.wake_event.set()

    def stop(self) -> None:
        self.stop_event.set()
        self.wake_event.set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def run(self) -> None:
        """Drain, then sleep until woken or NOTIFY_POLL_SECONDS pass, until stopped. Never raises."""
        poll = float(self.app.config["NOTIFY_POLL_SECONDS"])
        log.info("Notification worker started (backend %s, polling every %ss).",
                 self.app.config["MAIL_BACKEND"], poll)
        failures = 0
        while not self.stopping:
            try:
                self.drain()
                failures = 0
                self.passes += 1
            except SQLAlchemyError as exc:  # the database is down or busy: say so without quoting SQL parameters
                failures += 1
                first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
                log.error("Notification worker pass failed (%d in a row), database error: %s", failures,
                          scrub_addresses(first_line))
            except Exception:  # noqa: BLE001 - the loop must survive a bug in one batch
                failures += 1
                log.exception("Notification worker pass failed (%d in a row); trying again.", failures)
            # A failing database is not hammered: wait longer after repeated failures (up to a minute).
            timeout = poll if failures == 0 else min(poll * 2 ** min(failures, 10), 60.0)
            woken = self.wake_event.wait(timeout)
            self.wake_event.clear()
            if woken and not self.stopping:
                # Under load commits come in bursts: a short pause lets one claim take the whole burst.
                self.stop_event.wait(WAKE_COALESCE_SECONDS)
        log.info("Notification worker stopped.")

    def drain(self) -> DrainReport:
        """Send everything due now, batch after batch, until nothing is due or the worker is stopping.

        Each channel's sender (so one SMTP connection, one HTTP client) is opened at its first row of the pass
        and serves every batch of the pass. A pass sends what was due when it started: a row that fails in it
        waits for its backoff and a later pass.
        """
        report = DrainReport()
        senders: dict[str, channels.ChannelSender] = {}
        started = utcnow()
        with self.app.app_context():
            try:
                while not self.stopping:
                    batch, facts = self._claim(due_by=started)
                    if not batch:
                        break
                    report.add(self._deliver(batch, facts, senders))
            finally:
                for sender in senders.values():
                    sender.close()
                db.session.rollback()
                db.session.remove()
        return report

    def _claim(self, due_by=None) -> tuple[list[claims.ClaimedMessage], messages.MessageFacts]:
        """Claim a batch and read, in the same transaction, what its messages show. Rows whose recipient turned
        their channel off since they were queued are marked suppressed instead (a batch of only those is
        followed by the next claim, so the pass does not end early)."""
        config = self.app.config
        try:
            while True:
                now = time.monotonic()
                reclaim_expired = now - self._last_lease_check >= float(config["NOTIFY_POLL_SECONDS"])
                claimed = claims.claim_due(int(config["NOTIFY_BATCH_SIZE"]), float(config["NOTIFY_LEASE_SECONDS"]),
                                           channels.max_attempts(config), reclaim_expired=reclaim_expired,
                                           due_by=due_by)
                batch = claims.suppress_turned_off(claimed)
                facts = messages.load_facts(batch)
                db.session.commit()
                kept = {item.id for item in batch}
                for item in (item for item in claimed if item.id not in kept):
                    log.info("Notification #%s (%s) suppressed: the recipient turned these messages off.",
                             item.id, item.channel)
                if reclaim_expired:
                    self._last_lease_check = now
                if batch or not claimed:
                    return batch, facts
        except Exception:
            db.session.rollback()
            raise

    def _sender(self, name: str, senders: dict[str, channels.ChannelSender]) -> channels.ChannelSender:
        """This pass's sender for channel `name`, opened on first use (DeliveryFailed when it cannot be)."""
        if name not in senders:
            try:
                senders[name] = channels.channel(name).open(self.app.config)
            except LookupError as exc:
                raise DeliveryFailed(str(exc), permanent=True) from None
        return senders[name]

    def _deliver(self, batch: list[claims.ClaimedMessage], facts: messages.MessageFacts,
                 senders: dict[str, channels.ChannelSender]) -> DrainReport:
        """Render and send a claimed batch, each row through its channel's sender (kept for the next batch).

        Each outcome is recorded and committed before the next message goes (one small UPDATE for a success), so
        a process killed mid-batch can repeat only the message it was sending: at most one duplicate per crash.
        When a channel's far end is unreachable, the batch's other rows of that channel fail the same way
        without being tried; other channels go on.
        """
        config = self.app.config
        policies = channels.retry_policies(config)
        # Only start a message while at least half the lease is left, so a slow send still ends inside it.
        safety = timedelta(seconds=float(config["NOTIFY_LEASE_SECONDS"]) / 2)
        report = DrainReport(batches=1)
        unreachable: dict[str, DeliveryFailed] = {}
        for index, claimed in enumerate(batch):
            if self.stopping or utcnow() > claimed.lease_until - safety:
                report.released += claims.release(batch[index:])
                db.session.commit()
                break
            policy = policies.get(claimed.channel, _NO_RETRY)
            if claimed.channel in unreachable:
                self._settle_failure(claimed, unreachable[claimed.channel], policy, report)
                continue
            try:
                sender = self._sender(claimed.channel, senders)
            except DeliveryFailed as exc:  # bad configuration: the channel's other rows fail the same way
                unreachable[claimed.channel] = exc
                self._settle_failure(claimed, exc, policy, report)
                continue
            try:
                sender.send(claimed, facts)
            except DeliveryFailed as exc:
                if exc.connection:
                    unreachable[claimed.channel] = exc
                self._settle_failure(claimed, exc, policy, report)
                continue
            except Exception as exc:  # noqa: BLE001 - e.g. a template or encoding error: fail this row only
                log.exception("Unexpected error sending notification #%s", claimed.id)
                self._settle_failure(claimed, DeliveryFailed(f"Internal error: {type(exc).__name__}"),
                                     policy, report)
                continue
            self._settle_sent(claimed, report)
        return report

    def _settle_sent(self, claimed: claims.ClaimedMessage, report: DrainReport) -> None:
        """Record (and commit) one delivered message, before anything else is sent.

        On PostgreSQL the commit does not wait for its WAL to reach the disk (synchronous_commit off, for this
        transaction only): the server has the record the moment it answers, so a worker killed after it cannot
        send the message again. Only a crash of the database server itself could forget the last fraction of a
        second of such records, and then those messages go twice, as at-least-once delivery allows. Waiting for
        the disk on every message halved the emails one worker sends a second (370/s to 192/s here)."""
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        recorded = claims.mark_sent(claimed)
        db.session.commit()
        if recorded:
            report.sent += 1
            metrics.count_delivery(claimed.channel, "sent")
            log.info("Notification #%s (%s) %r sent to %s (attempt %d).", claimed.id, claimed.channel,
                     claimed.subject, _masked(claimed), claimed.attempts)
        else:
            report.lost_leases += 1
            log.warning("Notification #%s was sent after its lease ran out; another worker may send it "
                        "again. NOTIFY_LEASE_SECONDS should be well above the channel's timeout.", claimed.id)

    def _settle_failure(self, claimed: claims.ClaimedMessage, exc: DeliveryFailed, policy: claims.RetryPolicy,
                        report: DrainReport) -> None:
        state = claims.mark_failed(claimed, exc.reason, exc.permanent, policy)
        db.session.commit()
        reason = scrub_addresses(exc.reason)
        recipient = _masked(claimed)
        if state in ("dead", "pending"):
            metrics.count_delivery(claimed.channel, "dead" if state == "dead" else "failed")
        if state == "dead":
            report.dead += 1
            log.error("Notification #%s (%s) to %s is dead after attempt %d: %s", claimed.id, claimed.channel,
                      recipient, claimed.attempts, reason)
        elif state == "pending":
            report.retrying += 1
            log.warning("Notification #%s (%s) to %s failed (attempt %d), retrying in %.3gs: %s", claimed.id,
                        claimed.channel, recipient, claimed.attempts, policy.delay_after(claimed.attempts), reason)
        else:
            report.lost_leases += 1


_NO_RETRY = claims.RetryPolicy(max_attempts=1, backoff=0.0, backoff_max=0.0)  # a channel nobody sends


def _masked(claimed: claims.ClaimedMessage) -> str:
    """The recipient as a log line may show it: masked by its channel's rule (fully hidden when unknown)."""
    try:
        return channels.channel(claimed.channel).mask(claimed.recipient)
    except LookupError:
        return "(hidden)"


# --- one worker thread per process -------------------------------------------------------------------------

def start_worker_thread(app: Flask) -> OutboxWorker | None:
    """Start this process's worker thread for `app` (once). Not for `flask` CLI commands other than `run`:
    `flask db upgrade` must not start sending, and `flask notifications worker` runs the loop itself."""
    if _running_cli_command():
        return None
    global _atexit_registered
    with _registry_lock:
        existing = _workers.get(id(app))
        if existing is not None and existing.pid == os.getpid() and existing.thread and existing.thread.is_alive():
            return existing
        worker = OutboxWorker(app)
        worker.thread = threading.Thread(target=worker.run, name="waybill-notifier", daemon=True)
        _workers[id(app)] = worker
        if not _atexit_registered:
            atexit.register(stop_worker_thread, None, 5.0)
            _atexit_registered = True
    worker.thread.start()
    return worker


def stop_worker_thread(app: Flask | None = None, timeout: float = 10.0) -> bool:
    """Stop the worker thread of `app`, or of every app in this process when `app` is None.

    Lets the message in flight finish (bounded by MAIL_TIMEOUT), gives the rest of its batch back, and waits
    up to `timeout` seconds in all. True if every thread stopped in time. Safe to call more than once.
    """
    with _registry_lock:
        if app is None:
            workers = list(_workers.values())
            _workers.clear()
        else:
            worker = _workers.pop(id(app), None)
            workers = [worker] if worker else []
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + timeout
    stopped = True
    for worker in workers:
        if worker.thread is not None and worker.pid == os.getpid():
            worker.thread.join(max(deadline - time.monotonic(), 0))
            stopped = stopped and not worker.thread.is_alive()
    return stopped


def worker_for(app: Flask) -> OutboxWorker | None:
    return _workers.get(id(app))


def _running_cli_command() -> bool:
    context = click.get_current_context(silent=True)
    return context is not None and context.command.name != "run"


# --- waking the worker when this process commits a new notification ----------------------------------------

def install_wake_hook() -> None:
    """Listen for commits of sessions marked by app.services.outbox.queueing.mark_outbox_changed (once per process,
    whatever the number of apps)."""
    global _hook_installed
    with _registry_lock:
        if _hook_installed:
            return
        event.listen(Session, "after_commit", _wake_after_commit)
        event.listen(Session, "after_rollback", _forget_changes)
        _hook_installed = True


def _wake_after_commit(session: Session) -> None:
    if not session.info.pop(OUTBOX_CHANGED, False):
        return
    if has_app_context():
        worker = _workers.get(id(current_app._get_current_object()))
        workers = [worker] if worker else []
    else:
        workers = list(_workers.values())
    for worker in workers:
        worker.wake()


def _forget_changes(session: Session) -> None:
    session.info.pop(OUTBOX_CHANGED, None)
