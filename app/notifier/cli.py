"""flask notifications worker | drain: the outbox worker as its own process, or one pass of it."""
from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup

from app.notifier.worker import OutboxWorker

notifications = AppGroup("notifications", help="Send the email outbox.")


@notifications.command("worker")
def worker_command() -> None:
    """Send notifications as they fall due, until SIGTERM or Ctrl-C (finishes the message in flight)."""
    worker = OutboxWorker(current_app._get_current_object())

    def stop(signum, _frame) -> None:
        click.echo(f"Received {signal.Signals(signum).name}: stopping after the message in flight.", err=True)
        worker.stop()
        # A second signal stops at once.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()


@notifications.command("drain")
def drain_command() -> None:
    """Send every notification that is due now, print the counts and exit."""
    report = OutboxWorker(current_app._get_current_object()).drain()
    click.echo(f"Outbox drained: {report}.")
