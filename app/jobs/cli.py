"""flask jobs list | run-once | runner: the periodic jobs, run by hand or by a process of their own."""
from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from app.jobs.registry import JOBS
from app.jobs.runner import JobRunner
from app.notifier.cli import run_until_signalled

jobs = AppGroup("jobs", help="Periodic jobs: list them, run the due ones once, or run the runner.")


@jobs.command("list")
def list_command() -> None:
    """Every job, how often a process looks at it (its setting), and what it does."""
    config = current_app.config
    for job in JOBS:
        interval = job.interval(config)
        when = f"every {interval:g}s" if interval > 0 else "off"
        click.echo(f"{job.name}  {when} ({job.every.setting})  {job.summary}")
    if not JOBS:
        click.echo("No jobs.")


@jobs.command("run-once")
def run_once_command() -> None:
    """Run every job that is on once (each under its lock), print what each did, and exit (1 if one failed)."""
    runs = JobRunner(current_app._get_current_object()).run_due()
    for run in runs:
        click.echo(str(run))
    if not runs:
        click.echo("No job is on (every interval is 0).")
    if any(run.outcome == "failed" for run in runs):
        raise SystemExit(1)


@jobs.command("runner")
def runner_command() -> None:
    """Run the jobs as they fall due, until SIGTERM or Ctrl-C (finishes the job in hand). For JOBS_IN_WEB=false."""
    run_until_signalled(JobRunner(current_app._get_current_object()), "the job in hand")
