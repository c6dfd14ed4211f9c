"""Fixtures for the notification tests: real SMTP servers (aiosmtpd) on free 127.0.0.1 ports — plain,
STARTTLS and SMTP_SSL with a self-signed certificate made for the run — a server that accepts connections and
never answers, and an `app` whose mail settings point at the plain server with short test timings."""
from __future__ import annotations

import asyncio
import email
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from app import create_app
from app.extensions import db
from app.notifier.worker import OutboxWorker, stop_worker_thread
from tests.conftest import VALID_BOOKING, clean_database

SMTP_USERNAME = "waybill"
SMTP_PASSWORD = "smtp-secret"
SENDER = "Waybill <no-reply@waybill.test>"

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll until `predicate()` is truthy; fail the test after `timeout` seconds. Returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class MailSink:
    """An aiosmtpd handler that keeps every message; recipients containing a `refuse` marker get a 550,
    while `hold` is set, the reply to DATA is held back (a server that is slow to say 250), and `delay` seconds
    pass between keeping a message and its 250 (a steady, slow server)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.reset()

    def reset(self) -> None:
        """An empty mailbox and default behaviour, for the next test on a shared server (a test may have replaced
        a hook on the instance, as a server that refuses for a while)."""
        for name in [name for name in vars(self) if name.startswith("handle_")]:
            delattr(self, name)
        self.hold.clear()
        with self.lock:
            self.messages: list[EmailMessage] = []
            self.refuse: set[str] = set()
            self.data_started = 0
            self.in_flight = 0
            self.delay = 0.0
            self.peers: set = set()  # one (host, port) per SMTP connection that delivered a message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook
        if any(marker in address for marker in self.refuse):
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook
        with self.lock:
            self.data_started += 1
            self.in_flight += 1
        try:
            while self.hold.is_set():
                await asyncio.sleep(0.02)
            message = email.message_from_bytes(envelope.content, policy=default_policy)
            with self.lock:
                self.messages.append(message)
                self.peers.add(session.peer)
            if self.delay:
                await asyncio.sleep(self.delay)
            return "250 2.0.0 Message accepted"
        finally:
            with self.lock:
                self.in_flight -= 1

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until no message is being received (a test that held or slowed the server may leave one)."""
        self.hold.clear()
        self.delay = 0.0
        wait_for(lambda: self.in_flight == 0, timeout=timeout, message="the SMTP server to finish its messages")

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = (getattr(auth_data, "login", None) == SMTP_USERNAME.encode()
          and getattr(auth_data, "password", None) == SMTP_PASSWORD.encode())
    return AuthResult(success=ok)


@dataclass
class SMTPServer:
    """A real SMTP server in a thread. `stop()` and `start()` again keep the same port."""

    mode: str  # plain | starttls | ssl
    port: int
    sink: MailSink
    certificate: tuple[Path, Path] | None = None
    controller: Controller | None = None

    def start(self) -> SMTPServer:
        kwargs: dict = {"server_hostname": "smtp.test", "ready_timeout": 10}
        if self.mode != "plain":
            assert self.certificate is not None
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, self.certificate))
            if self.mode == "ssl":
                # aiosmtpd only knows about TLS it negotiated itself (STARTTLS); this whole connection is TLS.
                kwargs.update(ssl_context=context, auth_require_tls=False)
            else:
                kwargs.update(tls_context=context, require_starttls=True)
            kwargs.update(authenticator=_authenticate, auth_required=True)
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self, **overrides) -> dict:
        """App config pointing at this server."""
        settings = {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": self.port,
                    "MAIL_USE_SSL": self.mode == "ssl", "MAIL_USE_TLS": self.mode == "starttls"}
        if self.mode != "plain":
            assert self.certificate is not None
            settings.update(MAIL_USERNAME=SMTP_USERNAME, MAIL_PASSWORD=SMTP_PASSWORD,
                            MAIL_CA_FILE=str(self.certificate[0]))
        return {**settings, **overrides}


class HangingServer:
    """Accepts TCP connections and never says a word (an SMTP server that is stuck)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        self.closed.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (and localhost), made for this run: (cert.pem, key.pem)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("The openssl command is needed to generate the test certificate.")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def _server(mode: str, certificate=None):
    server = SMTPServer(mode, free_port(), MailSink(), certificate).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def session_smtp_server():
    yield from _server("plain")


@pytest.fixture
def smtp_server(session_smtp_server):
    """The session's plain SMTP server (starting one per test cost more than many tests), running, with an empty
    mailbox and default behaviour for this test. A test may stop it to play an outage: it runs again after."""
    server = session_smtp_server
    if server.controller is None:
        server.start()
    server.sink.settle()
    server.sink.reset()
    yield server
    if server.controller is None:
        server.start()
    server.sink.settle()


@pytest.fixture
def starttls_server(certificate):
    yield from _server("starttls", certificate)


@pytest.fixture
def ssl_server(certificate):
    yield from _server("ssl", certificate)


@pytest.fixture
def hanging_server():
    server = HangingServer()
    yield server
    server.close()


# Short timings, so that retries, leases and polling happen within a test's patience.
FAST = {
    "MAIL_DEFAULT_SENDER": SENDER,
    "MAIL_TIMEOUT": 5.0,
    "MAIL_RETRY_BACKOFF": 0.1,
    "MAIL_RETRY_BACKOFF_MAX": 0.4,
    "MAIL_MAX_ATTEMPTS": 4,
    "NOTIFY_POLL_SECONDS": 0.1,
    "NOTIFY_LEASE_SECONDS": 20.0,
    "NOTIFY_BATCH_SIZE": 10,
    "NOTIFY_WORKER_IN_WEB": False,
    "SMS_RETRY_BACKOFF": 0.1,
    "SMS_RETRY_BACKOFF_MAX": 0.4,
    "SMS_MAX_ATTEMPTS": 4,
    # These tests count and time email rows; the SMS tests (test_sms_channel.py) choose their statuses.
    "SMS_STATUSES": (),
}


@pytest.fixture
def mail_settings(smtp_server) -> dict:
    """The config overrides of the `app` fixture: the plain SMTP server, fast timings, no worker thread."""
    return smtp_server.settings(**FAST)


@pytest.fixture(scope="session")
def shared_apps(database_url):
    """Apps of this database by their settings, reused by every test that asks for the same ones: most of these
    tests ask for one of a few (the shared SMTP server, webhooks on)."""
    apps: dict[str, object] = {}
    yield apps
    for application in apps.values():
        stop_worker_thread(application, timeout=15)
        with application.app_context():
            db.engine.dispose()


def _settings_key(settings: dict) -> str | None:
    """A key for settings an app can be shared under; None for an app that starts a worker thread of its own."""
    if settings.get("NOTIFY_WORKER_IN_WEB"):
        return None
    return repr(sorted(settings.items()))


@pytest.fixture
def make_app(make_config, shared_apps):
    """Apps on this test's database (extra overrides per call): the same settings give the same app, shared
    across tests (its settings put back after each), except apps that start their worker thread. Worker
    threads stop at teardown and the database is emptied."""
    own, shared = [], {}

    def make(**overrides):
        settings = {**FAST, **overrides}
        key = _settings_key(settings)
        if key is None:
            application = create_app(make_config(**settings))
            own.append(application)
            return application
        application = shared_apps.get(key)
        if application is None:
            application = shared_apps[key] = create_app(make_config(**settings))
        shared.setdefault(id(application), (application, dict(application.config)))
        return application

    yield make
    for application in own + [application for application, _ in shared.values()]:
        assert stop_worker_thread(application, timeout=15), "the worker thread did not stop"
    for application, settings in shared.values():
        application.config.clear()
        application.config.update(settings)
    if own or shared:
        clean_database((own + [application for application, _ in shared.values()])[0])
    for application in own:
        with application.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app, mail_settings):
    """Overrides the shared `app`: the same database, with mail settings for these tests."""
    return make_app(**mail_settings)


@pytest.fixture
def drain(app):
    """One pass of the outbox worker (what `flask notifications drain` does), for the `app` fixture."""
    def run(application=None):
        return OutboxWorker(application or app).drain()
    return run


OPERATOR = ("operator1", "correct-horse-1")


@dataclass
class Desk:
    """A logged-in operator at one app, over its test client: books shipments, records status changes."""

    client: object
    headers: dict

    def book(self, **overrides) -> str:
        response = self.client.post("/create", json={**VALID_BOOKING, **overrides})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["tracking_id"]

    def update(self, tracking_id: str, status: str, location: str = "Mumbai Hub", note: str | None = None,
               customer_message: str | None = None):
        body = {"status": status, "location": location, **({"note": note} if note else {}),
                **({"customer_message": customer_message} if customer_message else {})}
        return self.client.post(f"/update/{tracking_id}", json=body, headers=self.headers)


@pytest.fixture
def desk_for(make_user):
    """desk_for(app) → a Desk logged in at that app (the operator is created once per test)."""
    created = []

    def make(application) -> Desk:
        if not created:
            make_user(*OPERATOR)
            created.append(True)
        client = application.test_client()
        response = client.post("/login", json={"username": OPERATOR[0], "password": OPERATOR[1]})
        assert response.status_code == 200, response.get_json()
        return Desk(client, {"X-CSRFToken": response.get_json()["csrf_token"]})
    return make


@pytest.fixture
def desk(desk_for, app) -> Desk:
    return desk_for(app)


def notification_rows(application) -> list:
    """Every outbox row, oldest first, as detached objects."""
    from sqlalchemy import select

    from app.models import Notification

    with application.app_context():
        rows = db.session.scalars(select(Notification).order_by(Notification.id)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows
