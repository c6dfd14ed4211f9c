"""Is the database's schema the one this code was written for? The readiness probe asks, once per request."""
from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db


@cache
def migration_heads(directory: str) -> frozenset[str]:
    """The head revisions of the migrations in `directory`: read from disk once per process."""
    return frozenset(ScriptDirectory(directory).get_heads())


def schema_state(migrations_directory: str) -> str:
    """Where the database stands against the migrations: one cheap query in the normal case.

    "current" when alembic_version holds exactly the migrations' heads; "outdated" when the database answers but is
    not migrated to them (no alembic_version table yet, or an older or newer revision); "unreachable" when the
    database does not answer."""
    try:
        applied = frozenset(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except SQLAlchemyError:
        db.session.rollback()
        try:
            db.session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            db.session.rollback()
            return "unreachable"
        return "outdated"  # the database answers, but was never migrated
    return "current" if applied == migration_heads(migrations_directory) else "outdated"
