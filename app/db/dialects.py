"""Statements whose spelling differs between PostgreSQL and SQLite."""
from __future__ import annotations

from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db


def dialect_insert(table: Table):
    """INSERT for the session's database, with its `on_conflict_do_nothing` / `on_conflict_do_update`."""
    return (pg_insert if db.session.connection().dialect.name == "postgresql" else sqlite_insert)(table)


# Built once: select(func.pg_notify(...)) built per call cost a batch of positions a fifth of its app CPU (the
# function expression's construction and cache key), measured with loadtests/position_cpu.py under py-spy.
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify(channel: str, payload: str) -> bool:
    """NOTIFY `channel` with `payload` in the session's transaction (heard only if and when it commits). False on
    SQLite, which has no NOTIFY: the caller tells its own process instead."""
    if db.session.get_bind().dialect.name != "postgresql":
        return False
    db.session.execute(_NOTIFY, {"channel": channel, "payload": payload})
    return True
