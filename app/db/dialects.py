"""Statements whose spelling differs between PostgreSQL and SQLite."""
from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db


def dialect_insert(table: Table):
    """INSERT for the session's database, with its `on_conflict_do_nothing` / `on_conflict_do_update`."""
    return (pg_insert if db.session.connection().dialect.name == "postgresql" else sqlite_insert)(table)
