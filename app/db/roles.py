"""Two database roles: the owner migrates, the app serves with only what it needs.

The role that owns a table may do anything to it: drop its triggers, truncate it, grant itself back what was
revoked. So the audit trail is only append-only if the app does not connect as the owner. `flask deploy` migrates
with MIGRATION_DATABASE_URL (the owner; DATABASE_URL when unset), then grants the app's role (APP_DATABASE_ROLE,
else DATABASE_URL's user) exactly this, on PostgreSQL:

- every table: SELECT, INSERT, UPDATE, DELETE; never TRUNCATE, REFERENCES or TRIGGER, never ownership (so no
  ALTER, DROP or DISABLE TRIGGER);
- `audit_entries`: SELECT and INSERT only (its trigger also refuses UPDATE and DELETE, whoever sends them);
- `alembic_version`: SELECT only (the readiness probe compares it with the code's migrations);
- sequences: USAGE (nextval for new ids); the schema: USAGE.

What was granted before is revoked first, in the same transaction, so a privilege dropped here is really gone.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

APPEND_ONLY_TABLES = frozenset({"audit_entries"})
READ_ONLY_TABLES = frozenset({"alembic_version"})
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class GrantResult:
    role: str
    created: bool
    tables: int


def app_role_name(app_database_uri: str, explicit_role: str | None) -> str | None:
    """The role the app connects as: APP_DATABASE_ROLE, else the user named in DATABASE_URL (None: not known)."""
    if explicit_role and explicit_role.strip():
        return explicit_role.strip()
    return make_url(app_database_uri).username or None


def grant_app_role(owner_uri: str, app_database_uri: str, explicit_role: str | None) -> GrantResult | None:
    """Give the app's role its privileges on the migrated schema, connected as the owner (see the module's rules).

    Returns None, granting nothing, when the database is not PostgreSQL, the app's role is unknown, or it is the
    owner itself (one role for everything: fine on a laptop, not in production). A role that does not exist yet
    is created, able to log in, with DATABASE_URL's password when that URL names it."""
    if make_url(owner_uri).get_backend_name() != "postgresql":
        return None
    role = app_role_name(app_database_uri, explicit_role)
    if role is None:
        return None
    engine = create_engine(owner_uri, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if connection.scalar(text("SELECT current_user")) == role:
                return None
            quoted = connection.dialect.identifier_preparer.quote(role)
            created = _ensure_role(connection, role, quoted, app_database_uri)
            tables = list(connection.scalars(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")))
            connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}"))
            connection.execute(text(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {quoted}"))
            connection.execute(text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
            for table in tables:
                privileges = ("SELECT, INSERT" if table in APPEND_ONLY_TABLES
                              else "SELECT" if table in READ_ONLY_TABLES else TABLE_PRIVILEGES)
                table_name = connection.dialect.identifier_preparer.quote(table)
                connection.execute(text(f"GRANT {privileges} ON TABLE {table_name} TO {quoted}"))
            connection.execute(text(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
    finally:
        engine.dispose()
    return GrantResult(role=role, created=created, tables=len(tables))


def _ensure_role(connection, role: str, quoted: str, app_database_uri: str) -> bool:
    if connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}):
        return False
    app_url = make_url(app_database_uri)
    if app_url.username == role and app_url.password:
        # psycopg2 binds on the client, so the password arrives as a quoted literal, never in a log line.
        connection.execute(text(f"CREATE ROLE {quoted} LOGIN PASSWORD :password"), {"password": app_url.password})
    else:
        connection.execute(text(f"CREATE ROLE {quoted} LOGIN"))
    return True
