"""Shared fixtures. Every test that uses `app` runs on SQLite and again on PostgreSQL.

PostgreSQL is used when TEST_DATABASE_URL is set (a server URL; each run creates its own fresh database and
drops it at the end). Under CI=true a missing or unreachable PostgreSQL fails the run instead of skipping.
"""
from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from app.config import TestingConfig
from app.extensions import db, limiter
from app.observability.logs import mask_contacts
from app.services.operations.live import stop_live_feed
from app.web.access_log import ENVIRON_KEY as LOG_SAFE_URI
from tests import log_privacy

IN_CI = os.environ.get("CI", "").lower() == "true"
APPEND_ONLY_TABLES = ("audit_entries",)  # a trigger refuses DELETE on PostgreSQL; TRUNCATE passes


def _create_postgres_database(server_url: str) -> tuple[str, str]:
    url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg2")
    name = f"waybill_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A commit need not wait for its WAL to reach the disk: nothing here survives a server crash anyway, and
        # the wait (about 6 ms a commit on this kind of disk, 0.3 ms without) was most of a PostgreSQL test's time.
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_postgres_database(server_url: str, name: str) -> None:
    url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg2")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def pytest_configure(config) -> None:
    """Every log line of the session is searched for the emails and mobiles the tests use (tests/log_privacy.py).
    The translation catalogues are compiled first (as run-local.sh does), so a plain pytest run speaks Hindi: by
    the controller only, before it starts any pytest-xdist worker, so no worker reads a half-written catalogue."""
    log_privacy.install(VALID_BOOKING)
    if not _is_xdist_worker(config):
        _compile_translations()


def _is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that say nothing about the SQL dialect (marked `one_database`, and every browser test) run on SQLite
    only, which every machine has; the rest run on both databases. A marked test that asks for `database_url`
    itself (it looks at the dialect), or is marked `dialect`, still runs on both. See tests/README.md."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and callspec.params.get("database_url") == "postgresql"
        one_database = item.get_closest_marker("one_database") or item.get_closest_marker("browser")
        dialect = item.get_closest_marker("dialect") or "database_url" in item._fixtureinfo.argnames
        if on_postgresql and one_database and not dialect:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    _long_files_first(items)


def _long_files_first(items: list) -> None:
    """Files with a `slow` test (the container, the API contract, fuzzing, the load test), then the browser
    files, then the rest, each group in its own order: pytest-xdist hands out whole files in this order, so the
    longest start first and the short ones fill the end instead of one worker finishing a long file alone while
    the other core idles."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    rank = {item.path: 0 if item.path in slow_files else 1 if item.get_closest_marker("browser") else 2
            for item in items}
    items.sort(key=lambda item: rank[item.path])  # stable: each file's tests keep their order


def _compile_translations() -> None:
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (Path(__file__).resolve().parents[1] / "translations").glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as source:
            catalog = read_po(source)
        with mo.open("wb") as target:
            write_mo(target, catalog)


def pytest_sessionfinish(session, exitstatus) -> None:
    """The log search's verdict. Under pytest-xdist each worker hands its findings to the controller (through
    `workeroutput`, collected by pytest_testnodedown), which judges the whole run."""
    scanner = log_privacy.scanner()
    if scanner is None:
        return
    if _is_xdist_worker(session.config):
        session.config.workeroutput["log_privacy"] = log_privacy.report(scanner.finish(),
                                                                         log_privacy.still_installed())
        return
    found, installed = log_privacy.merge_reports(scanner.finish(), log_privacy.still_installed(),
                                                 _worker_log_reports)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write_line = reporter.write_line if reporter is not None else print
    log_privacy.fail_session_on_hits(session, found, write_line, installed)


_worker_log_reports: list[dict] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """A pytest-xdist worker finished: keep its log search's findings for the controller's verdict. A worker
    that died without a report counts as a log search that did not run."""
    _worker_log_reports.append(getattr(node, "workeroutput", {}).get("log_privacy") or {"hits": [], "installed": False})


def pytest_unconfigure(config) -> None:
    log_privacy.uninstall()


@dataclass
class _Databases:
    urls: dict[str, str] = field(default_factory=dict)  # by backend
    drops: list[Callable[[], None]] = field(default_factory=list)


@pytest.fixture(scope="session")
def _session_databases() -> Iterator[_Databases]:
    """The databases this process made, by backend, kept until the session ends: pytest-xdist hands a process
    whole files, each run on SQLite then on PostgreSQL, so `database_url` switches back and forth at every file;
    creating and migrating a database at each switch cost about a second a file."""
    made = _Databases()
    yield made
    for drop in made.drops:
        drop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory, _session_databases) -> Iterator[str]:
    """A migrated, empty database for this run: a SQLite file, or a fresh PostgreSQL database (made once a
    process, then handed out again: every test leaves it empty)."""
    made = _session_databases
    if request.param in made.urls:
        yield made.urls[request.param]
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'waybill.db'}"
        _migrate(url)
        made.urls["sqlite"] = url
        yield url
        return
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        if IN_CI:
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: the PostgreSQL half of the suite cannot run.")
        pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests skipped")
    try:
        url, name = _create_postgres_database(server_url)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means the same thing here
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    made.drops.append(lambda: _drop_postgres_database(server_url, name))
    _migrate(url)
    made.urls["postgresql"] = url
    yield url


def _migrate(url: str) -> None:
    """Build the schema from the migrations, never from the models."""
    app = create_app(TestingConfig(url))
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


def clean_database(app) -> None:
    """Every table emptied and, on PostgreSQL, every id sequence back at 1, as after a fresh migration.

    Rows are deleted, children first: TRUNCATE of all tables is file work on PostgreSQL (135 ms a test here)
    where deleting a test's few rows takes a few milliseconds. The audit trail refuses DELETE, so it alone is
    truncated, and only when it holds rows."""
    with app.app_context():
        db.session.remove()
        tables = [table.name for table in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # One round trip for it all (a statement each was 11 ms a test; this is about 3).
                with conn.connection.cursor() as cursor:  # the driver's own: no parameters, so "%I" stays
                    cursor.execute(_postgresql_emptying(tuple(tables)))
            else:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))


@functools.cache
def _postgresql_emptying(tables: tuple[str, ...]) -> str:
    """The statements that empty `tables` (children first) on PostgreSQL, as one script."""
    statements = [f"DO $$ BEGIN IF EXISTS (SELECT 1 FROM {table}) THEN TRUNCATE {table}; END IF; END $$"
                  if table in APPEND_ONLY_TABLES else f"DELETE FROM {table}" for table in tables]
    statements.append("SELECT setval(format('%I.%I', schemaname, sequencename), 1, false) "
                      "FROM pg_sequences WHERE schemaname = current_schema()")
    return ";\n".join(statements)


@pytest.fixture
def make_config(database_url):
    """TestingConfig for this backend; pass attribute overrides as keywords (a new object each call)."""
    def make(**overrides) -> TestingConfig:
        config = TestingConfig(database_url)
        for key, value in overrides.items():
            setattr(config, key, value)
        return config
    return make


@pytest.fixture(scope="session")
def _session_apps() -> Iterator[dict[str, object]]:
    """The apps `session_app` built, by database URL, kept for the session (see _session_databases)."""
    apps: dict[str, object] = {}
    yield apps
    for application in apps.values():
        with application.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def session_app(database_url, _session_apps):
    """One app per database for the whole run: building one (its URL map above all) costs more than most tests.
    Tests that need other settings build their own with `make_config`."""
    if database_url not in _session_apps:
        _session_apps[database_url] = create_app(TestingConfig(database_url))
    return _session_apps[database_url]


@pytest.fixture
def app(session_app):
    """The session's app, emptied after each test; a setting a test changes is put back."""
    settings = dict(session_app.config)
    yield session_app
    stop_live_feed(session_app)  # a test that opened a stream started its feed
    clean_database(session_app)
    session_app.config.clear()
    session_app.config.update(settings)


@pytest.fixture(autouse=True)
def _limiter_left_as_found() -> Iterator[None]:
    """The rate limiter is one object shared by every app of the process, and building an app with limits on
    turns it on for all of them (the session's apps too): a test that builds one would hold back the bookings of
    whichever test its process runs next. Each test leaves it as it found it (switched off, its counters no longer
    count: the next app built with limits on gets a new store; emptying this one could mean reaching a Redis that a
    test made unreachable on purpose)."""
    enabled = limiter.enabled
    yield
    limiter.enabled = enabled


@pytest.fixture
def made_apps():
    """Apps a test creates itself (append them): their rows are deleted afterwards, as the `app` fixture's are,
    so no later test finds this one's bookings."""
    made = []
    yield made
    for application in made:
        stop_live_feed(application)
        clean_database(application)
        with application.app_context():
            db.engine.dispose()


@pytest.fixture
def app_ctx(app):
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """A new staff account; the user id. A courier gets a two-wheeler and the default capacity and shift (a
    courier's vehicle is required)."""
    from app.services.field.couriers import CourierFields
    from app.services.staff.users import create_user

    def make(username: str = "operator1", password: str = "correct-horse-1", role: str = "operator"):
        with app.app_context():
            courier = CourierFields(vehicle="two_wheeler") if role == "courier" else None
            user = create_user(username, password, role, courier=courier)
            db.session.commit()
            return user.id
    return make


@pytest.fixture
def issue_key(app):
    """A new API key (its secret) for `username`, created with the account when it does not exist yet."""
    from app.services.staff.api_keys import create_api_key
    from app.services.staff.users import create_user, find_user

    def issue(username: str = "integrator", role: str = "operator", name: str = "test key", expires_at=None) -> str:
        with app.app_context():
            if find_user(username) is None:
                create_user(username, "correct-horse-1", role)
            issued = create_api_key(name, username, expires_at, actor="system")
            db.session.commit()
            return issued.secret
    return issue


@dataclass
class AuthActions:
    client: object
    make_user: object
    csrf_token: str | None = None

    def login(self, username: str = "operator1", password: str = "correct-horse-1", role: str = "operator",
              create: bool = True) -> str:
        """Log in through the JSON API; returns (and remembers) the session's CSRF token."""
        if create:
            self.make_user(username, password, role)
        response = self.client.post("/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.get_json()
        self.csrf_token = response.get_json()["csrf_token"]
        return self.csrf_token

    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.csrf_token} if self.csrf_token else {}

    def logout(self):
        return self.client.post("/logout", json={}, headers=self.headers())


@pytest.fixture
def auth(client, make_user):
    return AuthActions(client, make_user)


VALID_BOOKING = {
    "sender_name": "Asha Rao",
    "receiver_name": "Vikram Nair",
    "mobile": "+91 98765 43210",
    "email": "vikram@example.com",
    "destination": "Kochi",
}


@pytest.fixture
def booking():
    return dict(VALID_BOOKING)


@pytest.fixture
def create_shipment(client):
    """Book a shipment through the public API and return its tracking ID."""
    def create(**overrides) -> str:
        response = client.post("/create", json={**VALID_BOOKING, **overrides})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["tracking_id"]
    return create


class LogSafeRequestHandler(WSGIRequestHandler):
    """Werkzeug's request log line, with the URI the app marked safe to log (as Gunicorn logs it in production):
    the dashboard's search or a /search/<mobile> path would otherwise put a full number in the test logs. A
    request the app did not route (a malformed Host) is masked by its text, as Gunicorn does."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        safe_uri = (getattr(self, "environ", None) or {}).get(LOG_SAFE_URI)
        self.path = safe_uri if isinstance(safe_uri, str) else mask_contacts(self.path)
        super().log_request(code, size)


# How often a test's HTTP server looks for shutdown(): the default half second made every test with a receiver
# wait a quarter of a second on average as it ended (40 s of the suite).
SHUTDOWN_POLL_SECONDS = 0.01


class LiveServer:
    def __init__(self, application) -> None:
        self.server = make_server("127.0.0.1", 0, application, threaded=True, request_handler=LogSafeRequestHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The test app served over real HTTP on 127.0.0.1 (a free port) in a thread."""
    with LiveServer(app) as server:
        yield server
