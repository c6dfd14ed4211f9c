"""The app connects as a role that does not own the tables (PostgreSQL): `flask deploy` migrates as the owner
(MIGRATION_DATABASE_URL) and grants the app's role row access only, so the audit trail stays append-only even
against the app's own connection."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import errors
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import config as app_config
from app import create_app
from tests.conftest import VALID_BOOKING

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
ADMIN = ("admin", "roles-admin-password-7")


@pytest.fixture
def owner_and_app_urls():
    """A fresh database owned by the server's user, and a new login role that owns nothing."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL not set: the database role test needs PostgreSQL")
    server_url = make_url(server.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg2")
    suffix = uuid.uuid4().hex[:10]
    database, role, password = f"waybill_roles_{suffix}", f"waybill_app_{suffix}", f"pw-{uuid.uuid4().hex}"
    admin = create_engine(server_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN PASSWORD :password'), {"password": password})
    owner_url = server_url.set(database=database)
    app_url = owner_url.set(username=role, password=password)
    try:
        yield owner_url.render_as_string(hide_password=False), app_url.render_as_string(hide_password=False), role
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def deploy(owner_url: str, app_url: str) -> subprocess.CompletedProcess:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update({"WAYBILL_ENV": "development", "SECRET_KEY": "roles-test-secret", "DATABASE_URL": app_url,
                "MIGRATION_DATABASE_URL": owner_url, "ADMIN_USERNAME": ADMIN[0], "ADMIN_PASSWORD": ADMIN[1]})
    return subprocess.run([FLASK, "--app", "app", "deploy"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def as_app_role(app_url: str, statement: str) -> BaseException | None:
    """Run `statement` on a plain connection as the app's role; the error it raised, rolled back, or None."""
    url = make_url(app_url)
    conn = psycopg2.connect(host=url.host, port=url.port, dbname=url.database, user=url.username,
                            password=url.password)
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
        return None
    except psycopg2.Error as error:
        return error
    finally:
        conn.rollback()
        conn.close()


AUDIT_TAMPERING = (
    "TRUNCATE audit_entries",
    "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
    "DROP TRIGGER audit_entries_append_only ON audit_entries",
    "UPDATE audit_entries SET actor = 'someone else'",
    "DELETE FROM audit_entries",
)


def test_the_app_role_books_but_cannot_touch_the_audit_trail(owner_and_app_urls):
    owner_url, app_url, role = owner_and_app_urls
    result = deploy(owner_url, app_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Database role {role} granted" in result.stdout

    # The app, connected as its own role: ready, books, and audits (deploy already wrote the admin's audit row).
    app = create_app(app_config.TestingConfig(app_url))
    with app.test_client() as client:
        assert client.get("/readyz").status_code == 200
        booked = client.post("/create", json=VALID_BOOKING)
        assert booked.status_code == 201, booked.get_json()
        assert client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]}).status_code == 200
    with app.app_context():
        from app.extensions import db
        assert db.session.scalar(text("SELECT current_user")) == role
        assert db.session.scalar(text("SELECT count(*) FROM audit_entries")) >= 2  # admin created, signed in
        db.session.remove()
        db.engine.dispose()

    for statement in AUDIT_TAMPERING:
        error = as_app_role(app_url, statement)
        assert isinstance(error, errors.InsufficientPrivilege), (statement, error)
        # Refused for want of the privilege (or of ownership), not merely by the trigger an owner could drop.
        assert "append-only" not in str(error), (statement, error)
    assert as_app_role(app_url, "SELECT count(*) FROM audit_entries") is None
    assert as_app_role(app_url, "UPDATE shipments SET updated_at = updated_at") is None  # rows elsewhere: yes
