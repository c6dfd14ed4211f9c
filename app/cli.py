"""flask commands: users, seed-demo (notifications commands are added by app.notifier)."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.errors import ValidationError
from app.extensions import db
from app.services.demo import seed_demo
from app.services.roles import ROLES
from app.services.users import create_user, ensure_admin

users = AppGroup("users", help="Manage staff accounts.")


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
@click.password_option(help="Prompted for (twice) when not given.")
def create_user_command(username: str, role: str, password: str) -> None:
    """Create a staff account."""
    try:
        user = create_user(username, password, role)
    except ValidationError as exc:
        for field, message in exc.fields.items():
            click.echo(f"{field}: {message}", err=True)
        raise SystemExit(2) from exc
    db.session.commit()
    click.echo(f"Created {user.role} {user.username}.")


@users.command("ensure-admin")
@click.argument("username", envvar="ADMIN_USERNAME")
@click.password_option(envvar="ADMIN_PASSWORD", help="Defaults to ADMIN_PASSWORD.")
def ensure_admin_command(username: str, password: str) -> None:
    """Create the admin (or reset its password) from arguments or ADMIN_USERNAME / ADMIN_PASSWORD."""
    user = ensure_admin(username, password)
    db.session.commit()
    click.echo(f"Admin {user.username} is ready.")


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


def register_commands(app: Flask) -> None:
    from app.notifier.cli import notifications

    app.cli.add_command(notifications)
    app.cli.add_command(users)
    app.cli.add_command(seed_demo_command)
