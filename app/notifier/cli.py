"""flask notifications worker | drain: the outbox worker as its own process, or one pass of it."""
from __future__ import annotations

import signal

import click
from flask import current_app
from flask.cli import AppGroup

from app.notifier.worker import OutboxWorker

notifications = AppGroup("notifications", help="Send the email outbox.")


def run_until_signalled(loop, in_hand: str) -> None:
    """Run `loop` (anything with run() and stop(), such as the outbox worker or the job runner) in this process
    until SIGTERM or Ctrl-C, which lets it finish `in_hand` first; a second signal stops at once."""

    def stop(signum, _frame) -> None:
        click.echo(f"Received {signal.Signals(signum).name}: stopping after {in_hand}.", err=True)
        loop.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    loop.run()


@notifications.command("worker")
def worker_command() -> None:
    """Send notifications as they fall due, until SIGTERM or Ctrl-C (finishes the message in flight)."""
    run_until_signalled(OutboxWorker(current_app._get_current_object()), "the message in flight")


@notifications.command("drain")
def drain_command() -> None:
    """Send every notification that is due now, print the counts and exit."""
    report = OutboxWorker(current_app._get_current_object()).drain()
    click.echo(f"Outbox drained: {report}.")
