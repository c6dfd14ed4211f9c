"""A real Gunicorn, started with gunicorn.conf.py the way the container starts it, on a migrated SQLite file.

No `app` or `database_url` fixture here: these tests run once, not once per database backend.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import log_privacy

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
OPERATOR = ("smoke-operator", "smoke-operator-password")


def tool(name: str) -> str:
    """A command from this virtualenv (where requirements-dev.txt puts the linters)."""
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}: pip install -r requirements-dev.txt")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUNICORN_", "WEB_CONC"))}
    env.update({
        "DATABASE_URL": database_url, "WAYBILL_ENV": "production", "SECRET_KEY": "deploy-tests-secret-key",
        "SESSION_COOKIE_SECURE": "false", "RATELIMIT_ENABLED": "false", "MAIL_BACKEND": "console",
        "LOG_LEVEL": "INFO", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": "", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([tool("flask"), "--app", "app", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    log_privacy.scan_output(result.stdout + result.stderr, f"flask {args[0]}")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - 127.0.0.1 only
        return response.status, response.read()


@dataclass
class LiveGunicorn:
    url: str
    process: subprocess.Popen
    log_path: Path
    database_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> float:
        """SIGTERM, as ECS sends it; returns how long the graceful stop took."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        return time.monotonic() - started


def start_gunicorn(env: dict[str, str], log_path: Path, database_path: Path) -> LiveGunicorn:
    port = free_port()
    env = {**env, "BIND": f"127.0.0.1:{port}"}
    with log_path.open("w") as log_file:
        process = subprocess.Popen([tool("gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"], cwd=ROOT,
                                   env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    log_privacy.watch_file(log_path, "gunicorn")
    server = LiveGunicorn(f"http://127.0.0.1:{port}", process, log_path, database_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{server.log()}")
        try:
            if get(f"{server.url}/healthz", timeout=1)[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    pytest.fail(f"gunicorn did not answer /healthz in 30 s:\n{server.log()}")


def write_sample(database_path: Path, path: Path) -> dict:
    """What loadtests/bench.py writes after seeding, read from the SQLite file."""
    with sqlite3.connect(database_path) as conn:
        tracking_ids = [r[0] for r in conn.execute("SELECT tracking_id FROM shipments")]
        mobiles = sorted({r[0] for r in conn.execute("SELECT mobile FROM shipments")})
        active = [r[0] for r in conn.execute(
            "SELECT tracking_id FROM shipments WHERE status NOT IN ('Delivered', 'Returned to Sender', 'Cancelled')")]
    sample = {"tracking_ids": tracking_ids, "mobiles": mobiles, "active_tracking_ids": active,
              "operator": {"username": OPERATOR[0], "password": OPERATOR[1]}}
    path.write_text(json.dumps(sample))
    return sample


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory) -> tuple[Path, str]:
    """A migrated SQLite file with 60 demo shipments and an operator account."""
    directory = tmp_path_factory.mktemp("deploy")
    database_path = directory / "waybill.db"
    url = f"sqlite:///{database_path}"
    env = server_env(url)
    flask(env, "db", "upgrade")
    flask(env, "seed-demo", "--shipments", "60", "--seed", "5")
    flask(env, "users", "create", OPERATOR[0], "--role", "operator", "--password", OPERATOR[1])
    return database_path, url


@pytest.fixture(scope="session")
def live_gunicorn(seeded_sqlite, tmp_path_factory) -> Iterator[LiveGunicorn]:
    """Gunicorn from gunicorn.conf.py (2 gthread workers, access log on) serving the seeded SQLite file."""
    database_path, url = seeded_sqlite
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    server = start_gunicorn(server_env(url, WEB_CONCURRENCY="2", ACCESS_LOG="on"), log_path, database_path)
    yield server
    server.stop()
