"""flask commands: deploy, users, seed-demo, estimates, dispatch (notifications and jobs commands come from
app.notifier and app.jobs)."""
from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from app.domain.field import VEHICLES
from app.domain.roles import ROLES
from app.errors import DomainError, ValidationError
from app.extensions import db
from app.services.field.couriers import CourierFields
from app.services.shipments.demo import seed_demo
from app.services.staff.users import create_user, ensure_admin

users = AppGroup("users", help="Manage staff accounts.")


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
@click.option("--vehicle", type=click.Choice(VEHICLES), help="A courier's vehicle (required for a courier; the "
              "capacity and shift take their defaults, changed on the account's page).")
@click.password_option(help="Prompted for (twice) when not given.")
def create_user_command(username: str, role: str, vehicle: str | None, password: str) -> None:
    """Create a staff account (the same password policy as the browser: 12+ characters, not common)."""
    try:
        user = create_user(username, password, role, courier=CourierFields(vehicle=vehicle))
    except DomainError as exc:
        _explain(exc)
        raise SystemExit(2) from exc
    db.session.commit()
    click.echo(f"Created {user.role} {user.username}.")


@users.command("ensure-admin")
@click.argument("username", envvar="ADMIN_USERNAME")
@click.password_option(envvar="ADMIN_PASSWORD", help="Defaults to ADMIN_PASSWORD.")
def ensure_admin_command(username: str, password: str) -> None:
    """Create the admin (or reset its password) from arguments or ADMIN_USERNAME / ADMIN_PASSWORD."""
    try:
        user = ensure_admin(username, password)
    except ValidationError as exc:
        _explain(exc)
        raise SystemExit(2) from exc
    db.session.commit()
    click.echo(f"Admin {user.username} is ready.")


@click.command("deploy")
@with_appcontext
def deploy_command() -> None:
    """The release step, run once before new code serves: migrate the database to the head (as the tables' owner,
    MIGRATION_DATABASE_URL, when set), grant the app's role what it needs and no more (app/db/roles.py), then
    ensure the admin from ADMIN_USERNAME / ADMIN_PASSWORD (when both are set). Web workers do none of it."""
    from flask_migrate import upgrade

    from app.db.roles import grant_app_role

    config = current_app.config
    upgrade()
    owner_uri = config.get("MIGRATION_DATABASE_URI") or config["SQLALCHEMY_DATABASE_URI"]
    granted = grant_app_role(owner_uri, config["SQLALCHEMY_DATABASE_URI"], config.get("APP_DATABASE_ROLE"))
    if granted is not None:
        click.echo(f"Database role {granted.role}{' created and' if granted.created else ''} granted rows of "
                   f"{granted.tables} tables (audit trail: read and append only).")
    elif db.engine.dialect.name == "postgresql":
        click.echo("Note: the app connects as the tables' owner, which can alter or empty the audit trail; set "
                   "MIGRATION_DATABASE_URL to the owner and DATABASE_URL to a role of its own (README).", err=True)
    username, password = current_app.config.get("ADMIN_USERNAME"), current_app.config.get("ADMIN_PASSWORD")
    if not username or not password:
        click.echo("Database migrated. ADMIN_USERNAME / ADMIN_PASSWORD are not both set: no admin ensured.")
        return
    try:
        user = ensure_admin(username, password)
    except ValidationError as exc:  # a weak ADMIN_PASSWORD: the admin stays as it was
        click.echo("Database migrated. ADMIN_USERNAME / ADMIN_PASSWORD refused, the admin is unchanged:", err=True)
        _explain(exc)
        raise SystemExit(2) from exc
    db.session.commit()
    click.echo(f"Database migrated. Admin {user.username} is ready.")


def _explain(error: DomainError) -> None:
    fields = getattr(error, "fields", None)
    if not fields:
        click.echo(error.message, err=True)
    for field, message in (fields or {}).items():
        click.echo(f"{field}: {message}", err=True)


@click.command("seed-demo")
@with_appcontext
@click.option("--shipments", default=1000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--events", default=5, show_default=True, type=click.IntRange(1, 50),
              help="Average tracking events per shipment.")
@click.option("--seed", default=None, type=int, help="Random seed, for repeatable data.")
@click.option("--batch-size", default=None, type=click.IntRange(100, 200_000),
              help="Shipments per transaction (default: 20,000 on PostgreSQL, 2,000 elsewhere).")
def seed_demo_command(shipments: int, events: int, seed: int | None, batch_size: int | None) -> None:
    """Insert realistic demo shipments with their event histories (in bulk: COPY on PostgreSQL)."""
    from time import perf_counter

    started = perf_counter()
    with click.progressbar(length=shipments, label="Seeding shipments", show_pos=True, show_eta=True,
                           file=sys.stderr) as bar:
        made, made_events = seed_demo(shipments, events, seed=seed, batch_size=batch_size, progress=bar.update)
    elapsed = perf_counter() - started
    click.echo(f"Inserted {made} shipments and {made_events} tracking events in {elapsed:.1f} s.")


estimates = AppGroup("estimates", help="Estimated delivery: learn it from history, and measure it.")


@estimates.command("refresh")
def refresh_estimates_command() -> None:
    """Rebuild the per-area estimates from the last ETA_WINDOW_DAYS of deliveries."""
    from app.services.shipments.estimates import refresh_estimates

    config = current_app.config
    rows = refresh_estimates(config["ETA_WINDOW_DAYS"], config["ETA_MIN_SAMPLES"])
    db.session.commit()
    click.echo(f"Estimates refreshed: {rows} area/status rows from the last {config['ETA_WINDOW_DAYS']} days.")


@estimates.command("backtest")
@click.option("--holdout", default=0.3, show_default=True, type=click.FloatRange(0.05, 0.9),
              help="Share of the newest deliveries to test on (the rest is learned from).")
def backtest_estimates_command(holdout: float) -> None:
    """Replay history: the estimate at each event of recent deliveries against when they really arrived."""
    from app.services.shipments.estimates import backtest

    config = current_app.config
    result = backtest(config["ETA_WINDOW_DAYS"], config["ETA_MIN_SAMPLES"], holdout)
    if not result.estimates:
        raise click.ClickException("No deliveries to test on in the window: run seed-demo or wait for history.")
    click.echo(f"Tested {result.estimates} estimates on {result.deliveries} deliveries "
               f"(learned from the older {1 - holdout:.0%} of the last {config['ETA_WINDOW_DAYS']} days).")
    click.echo(f"Median absolute error: {result.median_abs_error_hours:.1f} h")
    click.echo(f"Delivered inside the window: {result.inside_window:.1%}")
    click.echo("Basis: " + ", ".join(f"{basis} {count}" for basis, count in sorted(result.by_basis.items())))


dispatch = AppGroup("dispatch", help="Dispatch planning: the route solver, measured on benchmark instances.")


@dispatch.command("solve")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--seconds", type=click.FloatRange(0.1, 3600), default=8.0, show_default=True,
              help="VROOM's time limit (the benchmark's setting).")
def solve_instance_command(file: str, seconds: float) -> None:
    """Plan a Solomon VRPTW instance (FILE) with VROOM and with the savings baseline, and print the VROOM plan
    as JSON: instance, vehicles, exact distance, routes (customer numbers), seconds, unassigned,
    savings_distance. Needs no database."""
    from app.services.planning.solomon import solve_instance

    try:
        result = solve_instance(file, seconds=seconds)
    except ValidationError as exc:
        _explain(exc)
        raise SystemExit(2) from exc
    click.echo(json.dumps(result))


def register_commands(app: Flask) -> None:
    from app.jobs.cli import jobs
    from app.notifier.cli import notifications

    app.cli.add_command(deploy_command)
    app.cli.add_command(notifications)
    app.cli.add_command(jobs)
    app.cli.add_command(users)
    app.cli.add_command(estimates)
    app.cli.add_command(dispatch)
    app.cli.add_command(seed_demo_command)
