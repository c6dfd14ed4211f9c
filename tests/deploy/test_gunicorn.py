"""gunicorn.conf.py: settings from the environment, the masking access log, the worker_exit hook (the outbox and
job threads), and a real Gunicorn booted with it."""
from __future__ import annotations

import contextlib
import logging
import os
import runpy
import threading
import time
import types
import urllib.error
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.deploy.conftest import ROOT, get, server_env, start_gunicorn

CONFIG = str(ROOT / "gunicorn.conf.py")
SETTINGS_ENV = ("PORT", "BIND", "WEB_CONCURRENCY", "GUNICORN_WORKER_CLASS", "GUNICORN_THREADS", "ACCESS_LOG",
                "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_TIMEOUT", "GUNICORN_CONTROL_SOCKET")


def load(monkeypatch, **env: str) -> dict:
    for name in SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(CONFIG)


def test_binds_all_interfaces_on_port_8000_by_default(monkeypatch):
    assert load(monkeypatch)["bind"] == ["0.0.0.0:8000"]


def test_port_and_bind_come_from_the_environment(monkeypatch):
    assert load(monkeypatch, PORT="9001")["bind"] == ["0.0.0.0:9001"]
    assert load(monkeypatch, PORT="9001", BIND="127.0.0.1:7000")["bind"] == ["127.0.0.1:7000"]


def cpus(monkeypatch, affinity: int, cgroup_cpu_max: str | None) -> None:
    """This process may run on `affinity` CPUs, under a cgroup v2 quota like "150000 100000" (or none)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(affinity)))
    read_text = Path.read_text

    def read(path, *args, **kwargs):
        if str(path).startswith("/sys/fs/cgroup/"):
            if str(path) == "/sys/fs/cgroup/cpu.max" and cgroup_cpu_max is not None:
                return cgroup_cpu_max
            raise FileNotFoundError(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read)


def test_workers_come_from_web_concurrency_or_the_usable_cpus(monkeypatch):
    assert load(monkeypatch, WEB_CONCURRENCY="7")["workers"] == 7
    cpus(monkeypatch, affinity=3, cgroup_cpu_max=None)
    assert load(monkeypatch)["workers"] == 4  # gthread: one process per CPU, plus one
    assert load(monkeypatch, GUNICORN_WORKER_CLASS="sync")["workers"] == 7  # sync: 2 x CPUs + 1
    cpus(monkeypatch, affinity=8, cgroup_cpu_max="150000 100000")  # 1.5 CPUs of quota on an 8-CPU host
    assert load(monkeypatch)["workers"] == 3
    cpus(monkeypatch, affinity=8, cgroup_cpu_max="max 100000")
    assert load(monkeypatch)["workers"] == 9


def test_worker_model_is_configurable(monkeypatch):
    settings = load(monkeypatch, GUNICORN_WORKER_CLASS="sync", GUNICORN_THREADS="1")
    assert (settings["worker_class"], settings["threads"]) == ("sync", 1)


def test_never_preloads_and_stops_within_the_ecs_stop_timeout(monkeypatch):
    settings = load(monkeypatch)
    assert settings["preload_app"] is False
    assert settings["graceful_timeout"] < 30
    assert settings["control_socket_disable"] is True


def test_access_log_goes_to_stdout_unless_switched_off(monkeypatch):
    assert load(monkeypatch)["accesslog"] == "-"
    assert load(monkeypatch, ACCESS_LOG="off")["accesslog"] is None


@pytest.mark.parametrize(("text", "expected"), [
    ("GET /search/9876543210 HTTP/1.1", "GET /search/******3210 HTTP/1.1"),
    ("GET /search/+91%2098765%2043210 HTTP/1.1", "GET /search/+**%20*****%20*3210 HTTP/1.1"),
    ("/search/%39%38%37%36%35%34%33%32%31%30", "/search/******3210"),  # digits written as escapes
    ("/search/098765-43210?x=1", "/search/******-*3210?x=1"),
    ("GET /search%2F9876543210 HTTP/1.1", "GET /search%2F******3210 HTTP/1.1"),  # an escaped slash
    ("http://x/Search%2f9876543210", "http://x/Search%2f******3210"),
    ("/track/ABCD1234?mobile=9876543210&x=2", "/track/ABCD1234?mobile=******3210&x=2"),
    ("/track/ABCD1234", "/track/ABCD1234"),
    ("/healthz", "/healthz"),
])
def test_mobile_numbers_are_masked_to_their_last_four_digits(monkeypatch, text, expected):
    assert load(monkeypatch)["mask_contacts"](text) == expected


def test_the_access_logger_masks_every_atom(monkeypatch):
    settings = load(monkeypatch)
    logger_class = settings["MaskingLogger"]
    logger = logger_class.__new__(logger_class)  # atoms() needs no set-up
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/search/9876543210", "PATH_INFO": "/search/9876543210",
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_REFERER": "http://x/search/+919876543210"}
    response = types.SimpleNamespace(status="200 OK", headers=[], sent=10)
    request = types.SimpleNamespace(headers=[("REFERER", "http://x/search/+919876543210")])
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=5))
    text = " ".join(str(value) for value in atoms.values())
    assert "98765" not in text and "3210" in text


def test_worker_exit_stops_the_notification_threads_of_the_process(monkeypatch, seeded_sqlite):
    from app import create_app
    from app.config import TestingConfig
    from app.notifier import worker as notifier_worker

    config = TestingConfig(seeded_sqlite[1])
    config.NOTIFY_POLL_SECONDS = 0.05
    app = create_app(config)
    worker = notifier_worker.OutboxWorker(app)
    worker.thread = threading.Thread(target=worker.run, daemon=True)
    monkeypatch.setitem(notifier_worker._workers, id(app), worker)
    worker.thread.start()
    load(monkeypatch)["worker_exit"](types.SimpleNamespace(log=logging.getLogger("test")),
                                     types.SimpleNamespace(pid=os.getpid()))
    assert not worker.thread.is_alive() and worker.stopping
    assert id(app) not in notifier_worker._workers


def test_worker_exit_stops_the_job_runner_thread_of_the_process(monkeypatch, seeded_sqlite):
    from app import create_app
    from app.config import TestingConfig
    from app.jobs.runner import runner_for

    config = TestingConfig(seeded_sqlite[1])
    config.JOBS_IN_WEB = True
    config.JOBS_TICK_SECONDS = 0.05
    app = create_app(config)
    runner = runner_for(app)
    assert runner is not None and runner.thread.is_alive()
    load(monkeypatch)["worker_exit"](types.SimpleNamespace(log=logging.getLogger("test")),
                                     types.SimpleNamespace(pid=os.getpid()))
    assert not runner.thread.is_alive() and runner.stopping
    assert runner_for(app) is None


# --- a real Gunicorn ------------------------------------------------------------------------------------------

def test_gunicorn_boots_the_app_and_serves_health_and_readiness(live_gunicorn):
    assert get(f"{live_gunicorn.url}/healthz")[0] == 200
    assert get(f"{live_gunicorn.url}/readyz")[0] == 200
    log = live_gunicorn.log()
    assert "Using worker: gthread" in log
    assert log.count("Booting worker") == 2


def test_no_full_mobile_number_reaches_the_access_log(live_gunicorn):
    number = "+91 98765 43210"
    # The server is the module's: earlier tests' searches are in its log already, so this one's line is the one
    # that comes after them (it is written just after the response goes out).
    before = sum("/search/" in line for line in live_gunicorn.log().splitlines())
    assert get(f"{live_gunicorn.url}/search/{quote(number, safe='+')}")[0] == 200
    deadline = time.monotonic() + 5
    while True:
        log = live_gunicorn.log()
        search_lines = [line for line in log.splitlines() if "/search/" in line]
        if len(search_lines) > before or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(search_lines) > before, log
    assert "3210" in search_lines[-1]
    assert "98765" not in log and "9876543210" not in log


def test_sigterm_stops_gunicorn_gracefully_and_quickly(seeded_sqlite, tmp_path):
    database_path, url = seeded_sqlite
    server = start_gunicorn(server_env(url, WEB_CONCURRENCY="1"), tmp_path / "gunicorn.log", database_path)
    took = server.stop()
    assert server.process.returncode == 0, server.log()
    assert took < 15, server.log()
    assert "Shutting down: Master" in server.log()


def wait_for_access_line(server, needle: str) -> list[str]:
    """The access-log lines holding `needle` (the line is written just after the response goes out)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in server.log().splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


@pytest.mark.parametrize(("path", "logged"), [
    ("/search%2F9876543211", "/search/******3211"),  # served by /search/<mobile>, not written as /search/
    ("/search%2f%2B91%2098765%2043212", "/search/+**%20*****%20*3212"),
    ("//search/9876543213", "/search/******3213"),  # Werkzeug merges the slashes and redirects
    ("/admin?q=Vikram%20Nair%209876543214", "/admin?q=***"),  # the dashboard's free-text search is hidden
    ("/track/ABCD1234?mobile=9876543215", "/track/ABCD1234?mobile=******3215"),
    ("/no-such-page/9876543216", "/no-such-page/******3216"),  # no route: every phone-length digit run
    # A mobile typed into the track-by-ID box: the form redirects to /track/<what was typed>.
    ("/track?tracking_id=98765%2043217", "/track?tracking_id=*****+*3217"),
    ("/track/98765%2043218", "/track/*****%20*3218"),
    ("/track/vikram%40example.com", "/track/v***@example.com"),
])
def test_the_access_log_masks_mobiles_by_the_route_that_matched(live_gunicorn, path, logged):
    with contextlib.suppress(urllib.error.HTTPError):  # a 404: only the log line matters here
        get(f"{live_gunicorn.url}{path}")
    # The last digits as they end the logged request line, masked or not: a line's random request id can hold the
    # four digits too.
    digits = logged[-4:] if logged[-4:].isdigit() else None
    lines = wait_for_access_line(live_gunicorn, f"{digits} HTTP/" if digits else logged)
    assert any(logged in line for line in lines), (logged, lines)
    log = live_gunicorn.log()
    assert "987654321" not in log and "98765%2043" not in log and "98765+43" not in log
    assert "Vikram" not in log and "vikram" not in log


def test_a_malformed_host_is_one_access_line_and_a_plain_400(live_gunicorn):
    import http.client
    from urllib.parse import urlsplit

    before = live_gunicorn.log().splitlines()
    target = urlsplit(live_gunicorn.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    connection.request("GET", "/healthz?probe=long-host", headers={"Host": "a" * 64 + ".example.com",
                                                                   "Accept": "text/html"})
    response = connection.getresponse()
    assert response.status == 400 and response.getheader("Content-Type").startswith("text/plain")
    response.read()
    connection.close()
    assert wait_for_access_line(live_gunicorn, "probe=long-host")
    time.sleep(0.3)  # anything else the request wrote would be there by now
    new = live_gunicorn.log().splitlines()[len(before):]
    # Only the access line (the outbox worker may log its own business meanwhile, never about this request).
    about_it = [line for line in new if "long-host" in line or "aaaaaaaa" in line or "Traceback" in line
                or "ERROR" in line or "Error" in line]
    assert len(about_it) == 1 and '"GET /healthz?probe=long-host HTTP/1.1" 400' in about_it[0], new


BAD_HOST = {"Host": "a" * 64 + ".example.com"}


def raw_request(server, request: bytes) -> bytes:
    """`request` sent as it is over a socket; the answer up to the server closing the connection."""
    import socket
    from urllib.parse import urlsplit

    target = urlsplit(server.url)
    with socket.create_connection((target.hostname, target.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(("path", "headers", "logged"), [
    # (a) refused for a malformed Host before any route: masked by its text
    ("/track/ABCDEF12?m=9811100021&probe=a1", BAD_HOST, "/track/ABCDEF12?m=******0021&probe=a1"),
    ("/track/ABCDEF12?e=asha.rao%40example.com&probe=a2", BAD_HOST, "?e=a***%40example.com&probe=a2"),
    ("/track/asha.rao@example.com?probe=a3", BAD_HOST, "/track/a***@example.com?probe=a3"),
    # (b) an email where a mobile is expected
    ("/search/asha.rao%40example.com?probe=b1", {}, "/search/a***@example.com?probe=b1"),
    ("/api/v1/shipments?mobile=asha.rao%40example.com&probe=b2", {}, "?mobile=a***@example.com&probe=b2"),
    ("/admin?mobile=asha.rao%40example.com&probe=b3", {}, "/admin?mobile=a***@example.com&probe=b3"),
    # (c) the Referer and the User-Agent
    ("/healthz?probe=c1", {"Referer": "http://waybill.test/search/9811100022",
                           "User-Agent": "probe (+91 98111 00023; asha.rao@example.com)"},
     '"http://waybill.test/search/******0022" "probe (+** ***** *0023; a***@example.com)"'),
    ("/healthz?probe=c2", {**BAD_HOST, "Referer": "http://waybill.test/track/asha.rao@example.com"},
     '"http://waybill.test/track/a***@example.com"'),
    # (d) an X-Request-ID holding an email or a mobile is replaced, never echoed nor logged
    ("/healthz?probe=d1", {"X-Request-ID": "asha.rao@example.com"}, "/healthz?probe=d1"),
    ("/healthz?probe=d2", {"X-Request-ID": "9811100024"}, "/healthz?probe=d2"),
])
def test_no_email_or_mobile_reaches_the_access_log_whatever_the_route_or_status(live_gunicorn, path, headers,
                                                                                logged):
    import http.client
    from urllib.parse import urlsplit

    target = urlsplit(live_gunicorn.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    assert response.status < 500
    assert "asha" not in (response.getheader("X-Request-ID") or "")
    assert "98111" not in (response.getheader("X-Request-ID") or "")
    connection.close()
    probe = path.rsplit("probe=", 1)[1]
    lines = wait_for_access_line(live_gunicorn, f"probe={probe}")
    assert len(lines) == 1 and logged in lines[0], (logged, lines)
    log = live_gunicorn.log()
    assert "asha" not in log and "98111" not in log and "981110002" not in log


def test_a_malformed_chunked_body_is_a_400_and_one_warning_line(live_gunicorn):
    before = len(live_gunicorn.log().splitlines())
    for path, content_type in (("/create", "application/json"), ("/search", "application/x-www-form-urlencoded")):
        answer = raw_request(live_gunicorn, (
            f"POST {path}?probe=chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\nZZ\r\n").encode())
        head = answer.split(b"\r\n\r\n", 1)[0].decode().lower()  # and Gunicorn closed the connection
        assert head.startswith("http/1.1 400"), answer[:300]
        assert "x-content-type-options: nosniff" in head and b"could not be read" in answer
    lines = wait_for_access_line(live_gunicorn, "probe=chunked")
    deadline = time.monotonic() + 5
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        lines = wait_for_access_line(live_gunicorn, "probe=chunked")
    assert len(lines) == 2 and all('" 400 ' in line for line in lines), lines
    time.sleep(0.3)  # anything else the requests wrote would be there by now
    new = live_gunicorn.log().splitlines()[before:]
    assert len([line for line in new if "Refused an unreadable request body" in line]) == 2, new
    assert not [line for line in new if "Traceback" in line or "ERROR" in line or " 500 " in line], new
