"""The worker as separate processes: the CLI commands, a worker killed mid-send, and two app processes with
their worker threads on one database delivering every email exactly once."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.error import URLError
from urllib.request import HTTPCookieProcessor, Request, build_opener

import pytest

from tests import log_privacy
from tests.notifications.conftest import FAST, OPERATOR, VALID_BOOKING, free_port, notification_rows, wait_for

# Real processes, killed and restarted: 5-17 s a test.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JOURNEY = ["Picked Up", "In Transit", "Out for Delivery", "Delivered"]


def app_env(database_url: str, **settings) -> dict[str, str]:
    """The environment of an app process: this test's database and mail settings, nothing inherited that
    could change them."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("FLASK_", "MAIL_", "NOTIFY_", "WAYBILL_", "ADMIN_", "DATABASE_URL"))}
    env.update(WAYBILL_ENV="development", SECRET_KEY="test-secret-key", DATABASE_URL=database_url,
               RATELIMIT_ENABLED="false", LOG_LEVEL="INFO", PUBLIC_BASE_URL="http://waybill.test",
               PYTHONUNBUFFERED="1")
    for key, value in {**FAST, **settings}.items():
        if isinstance(value, tuple):  # a list setting (SMS_STATUSES): comma-separated, "none" when empty
            env[key] = ",".join(value) or "none"
        elif value is not None:
            env[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default action. A test run started in the background by a
    non-interactive shell (`pytest &`, CI scripts, nohup) has SIGINT ignored, children inherit that, and Python
    then keeps it ignored instead of raising KeyboardInterrupt: `flask run` never saw the Ctrl-C it was sent."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class AppProcess:
    """`python -m flask --app app …` in a subprocess, its output in a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log_file = log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", *args], cwd=REPO, env=env,
                                        stdout=self.log_file, stderr=subprocess.STDOUT,
                                        preexec_fn=default_sigint)
        log_privacy.watch_file(log_path, f"flask {args[0]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.log_file.close()


@pytest.fixture
def processes():
    started: list[AppProcess] = []

    def start(args: list[str], env: dict[str, str], log_path: Path) -> AppProcess:
        process = AppProcess(args, env, log_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()
        process.log_file.close()


def test_drain_command_sends_what_is_due_and_prints_counts(app, desk, runner, smtp_server):
    tracking_id = desk.book()
    desk.update(tracking_id, "Picked Up")
    smtp_server.sink.refuse.add("nobody")
    desk.book(email="nobody@example.com")

    result = runner.invoke(args=["notifications", "drain"])

    assert result.exit_code == 0, result.output
    assert "sent 2, retrying later 0, dead 1" in result.output
    assert smtp_server.sink.count() == 2
    again = runner.invoke(args=["notifications", "drain"])
    assert "sent 0, retrying later 0, dead 0" in again.output


def test_cli_commands_do_not_start_the_web_worker_thread(app, desk, smtp_server, database_url, processes,
                                                         tmp_path):
    desk.book()
    drain = processes(["notifications", "drain"],
                      app_env(database_url, **smtp_server.settings(NOTIFY_WORKER_IN_WEB=True)), tmp_path / "d.log")
    assert drain.process.wait(60) == 0, drain.output()
    assert "Outbox drained: sent 1" in drain.output()
    assert "Notification worker started" not in drain.output()  # only the command's own single pass ran


def test_worker_command_sends_and_stops_on_sigterm(app, desk, smtp_server, database_url, processes, tmp_path):
    desk.book()
    worker = processes(["notifications", "worker"], app_env(database_url, **smtp_server.settings()),
                       tmp_path / "worker.log")
    wait_for(lambda: smtp_server.sink.count() == 1, timeout=30, message="the worker process to send")
    tracking_id = desk.book()
    wait_for(lambda: smtp_server.sink.count() == 2, timeout=10, message="the polling worker to send again")
    assert worker.stop(signal.SIGTERM) == 0
    output = worker.output()
    assert "Notification worker stopped." in output
    assert tracking_id in output  # the subject is logged …
    assert "vikram@example.com" not in output  # … the address only masked


def test_worker_killed_mid_send_the_row_is_sent_again_after_its_lease(
        app, desk, drain, smtp_server, database_url, processes, tmp_path):
    smtp_server.sink.hold.set()  # the server takes the message but holds back its "250 OK"
    desk.book()
    worker = processes(["notifications", "worker"],
                       app_env(database_url, **smtp_server.settings(NOTIFY_LEASE_SECONDS=3)),
                       tmp_path / "worker.log")
    wait_for(lambda: smtp_server.sink.data_started == 1, timeout=30, message="the worker to be mid-send")
    worker.process.kill()  # SIGKILL: no clean-up, no chance to give the row back
    worker.process.wait(10)
    [row] = notification_rows(app)
    assert (row.state, row.attempts) == ("sending", 1)
    smtp_server.sink.hold.clear()

    wait_for(lambda: drain().sent, timeout=15, message="the row to be claimed again once its lease expired")
    [row] = notification_rows(app)
    assert (row.state, row.attempts) == ("sent", 2)
    [message] = smtp_server.sink.received()  # the killed worker's copy never got its 250
    assert message["X-Waybill-Notification-Id"] == str(row.id)


WORKER_PROCESSES = {
    "standalone worker": (["notifications", "worker"], {}),
    "web process": (["run", "--host", "127.0.0.1", "--port", "{port}", "--no-reload", "--no-debugger"],
                    {"NOTIFY_WORKER_IN_WEB": True}),
}


@pytest.mark.parametrize("kind", list(WORKER_PROCESSES))
def test_kill_9_mid_batch_repeats_at_most_one_email_per_killed_process(
        app, desk, drain, smtp_server, database_url, processes, tmp_path, kind):
    """The fault test: 30 emails, two senders killed with SIGKILL in the middle of a batch, then the rest drained.
    Each message is recorded as sent before the next one goes, so only the message a process was sending when it
    died can go twice; nothing is lost."""
    emails, kill_after = 30, (5, 15)
    for index in range(emails):
        desk.book(email=f"r{index}@example.com")
    smtp_server.sink.delay = 0.05  # a slow server: the kills land inside batches, and mostly mid-send
    args, settings = WORKER_PROCESSES[kind]
    env = app_env(database_url, **smtp_server.settings(NOTIFY_LEASE_SECONDS=3, **settings))
    for number, received in enumerate(kill_after):
        sender = processes([arg.format(port=free_port()) for arg in args], env, tmp_path / f"{number}.log")
        wait_for(lambda: smtp_server.sink.count() >= received, timeout=60,  # noqa: B023 - used at once
                 message=f"the {kind} to send {received} emails")
        sender.process.kill()  # SIGKILL: no clean-up, no chance to record or give back anything
        sender.process.wait(10)

    wait_for(lambda: (drain(), all(row.state == "sent" for row in notification_rows(app)))[1], timeout=60,
             interval=0.2, message="the killed processes' rows to be sent after their leases")
    copies = Counter(m["X-Waybill-Notification-Id"] for m in smtp_server.sink.received())
    assert set(copies) == {str(row.id) for row in notification_rows(app)}  # none lost
    duplicates = sum(count - 1 for count in copies.values())
    assert duplicates <= len(kill_after), copies  # at most the message in flight, once per killed process


class HttpDesk:
    """An operator logged in at one app process over real HTTP (its own cookie jar)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()))
        self.csrf_token = ""

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.csrf_token:
            headers["X-CSRFToken"] = self.csrf_token
        data = json.dumps(body).encode() if body is not None else None
        with self.opener.open(Request(self.base_url + path, data=data, method=method, headers=headers),
                              timeout=30) as response:
            return json.loads(response.read())

    def login(self) -> HttpDesk:
        self.csrf_token = self.call("POST", "/login", {"username": OPERATOR[0], "password": OPERATOR[1]})[
            "csrf_token"]
        return self


def wait_until_serving(base_url: str, process: AppProcess) -> None:
    def ready() -> bool:
        assert process.process.poll() is None, process.output()
        try:
            with build_opener().open(base_url + "/healthz", timeout=2) as response:
                return response.status == 200
        except (URLError, OSError):
            return False

    wait_for(ready, timeout=60, interval=0.1, message=f"{base_url} to serve")


def test_two_app_processes_deliver_every_email_exactly_once(
        app, make_user, smtp_server, database_url, processes, tmp_path):
    shipments, clients = 24, 4  # 24 bookings and 4 × 24 = 96 status changes, 120 emails
    make_user(*OPERATOR)
    settings = smtp_server.settings(NOTIFY_WORKER_IN_WEB=True, NOTIFY_BATCH_SIZE=5, NOTIFY_POLL_SECONDS=0.2)
    servers = []
    for name in ("a", "b"):
        port = free_port()
        process = processes(["run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger",
                             "--with-threads"], app_env(database_url, **settings), tmp_path / f"{name}.log")
        servers.append((f"http://127.0.0.1:{port}", process))
    for base_url, process in servers:
        wait_until_serving(base_url, process)

    def operator(index: int) -> None:
        """Books its share of the shipments and takes each through its journey, alternating processes."""
        desks = [HttpDesk(base_url).login() for base_url, _ in servers]
        for number in range(index, shipments, clients):
            tracking_id = desks[number % 2].call("POST", "/create", VALID_BOOKING)["tracking_id"]
            for step, status in enumerate(JOURNEY):
                body = desks[(number + step + 1) % 2].call("POST", f"/update/{tracking_id}",
                                                           {"status": status, "location": f"Hub {step}"})
                assert body["status"] == status

    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(operator, index) for index in range(clients)]:
            future.result()

    expected = shipments * (1 + len(JOURNEY))
    wait_for(lambda: sum(r.state == "sent" for r in notification_rows(app)) == expected, timeout=90,
             interval=0.2, message=f"all {expected} emails to be sent")
    for _, process in servers:  # SIGINT: the dev server's Ctrl-C, a clean exit with the worker stopped
        assert process.stop(signal.SIGINT) == 0, process.output()

    rows = notification_rows(app)
    copies = Counter(m["X-Waybill-Notification-Id"] for m in smtp_server.sink.received())
    assert len(rows) == expected
    assert set(copies) == {str(row.id) for row in rows}  # every email arrived …
    assert [id_ for id_, count in copies.items() if count > 1] == []  # … exactly once
    assert all(row.attempts == 1 for row in rows)
    sent_by = [process.output().count(" sent to ") for _, process in servers]
    assert sum(sent_by) == expected and all(sent_by), sent_by  # both processes' workers took part
