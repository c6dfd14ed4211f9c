"""GET /metrics from a real Gunicorn with 2 workers in multiprocess mode, scraped while the app is under a little
load, and its JSON logs (LOG_FORMAT=json): every line an object, every access line with its request id."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.error import HTTPError

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VALID_BOOKING
from tests.deploy.conftest import get, server_env, start_gunicorn

TOKEN = "deploy-metrics-token-5a1b"  # noqa: S105 - a test value


def call(url: str, method: str = "GET", body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/json", "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            return response.status, dict(response.headers)
    except HTTPError as error:
        return error.code, dict(error.headers)


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def metered_gunicorn(seeded_sqlite, tmp_path_factory):
    directory = tmp_path_factory.mktemp("metered")
    # A database of its own: the session's other Gunicorn (live_gunicorn) serves the seeded file, and its outbox
    # threads would send some of this test's emails, which this server's metrics would then never count.
    database_path = directory / "waybill.db"
    with sqlite3.connect(seeded_sqlite[0]) as source, sqlite3.connect(database_path) as copy:
        source.backup(copy)  # consistent even while the other server has the file open
    url = f"sqlite:///{database_path}"
    (directory / "metrics").mkdir()
    (directory / "metrics" / "counter_1.db").write_bytes(b"stale values of an earlier run")
    env = server_env(url, WEB_CONCURRENCY="2", ACCESS_LOG="on", LOG_FORMAT="json", METRICS_TOKEN=TOKEN,
                     PROMETHEUS_MULTIPROC_DIR=str(directory / "metrics"), NOTIFY_POLL_SECONDS="0.2")
    server = start_gunicorn(env, directory / "gunicorn.log", database_path)
    server.metrics_dir = directory / "metrics"
    yield server
    server.stop()


def test_metrics_from_every_worker_move_under_load(metered_gunicorn):
    url = metered_gunicorn.url
    assert call(f"{url}/metrics")[0] == 401
    assert call(f"{url}/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401
    before = scrape(url)
    sent_before = value(before, "waybill_outbox_deliveries_total", channel="email", outcome="sent")

    with ThreadPoolExecutor(8) as pool:  # a little load, over new connections, so both workers take part
        health = list(pool.map(lambda _: call(f"{url}/healthz")[0], range(60)))
        bookings = list(pool.map(lambda _: call(f"{url}/create", "POST", VALID_BOOKING)[0], range(6)))
        tracks = list(pool.map(lambda _: call(f"{url}/track/FFFFFFFF")[0], range(5)))
    assert set(health) == {200} and set(bookings) == {201} and set(tracks) == {404}

    deadline = time.monotonic() + 30  # the workers' outbox threads send the six booking emails
    while True:
        after = scrape(url)
        sent = value(after, "waybill_outbox_deliveries_total", channel="email", outcome="sent") - sent_before
        if sent >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sent == 6

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    # Every request counted once, whichever worker served it (a scrape answered by one worker sums all).
    assert moved("waybill_http_requests_total", endpoint="health.healthz", method="GET", status="200") == 60
    assert moved("waybill_http_requests_total", endpoint="shipments.create", method="POST", status="201") == 6
    assert moved("waybill_http_request_duration_seconds_count", endpoint="tracking.track", status="404") == 5
    assert moved("waybill_tracking_cache_lookups_total", result="miss") == 5  # SQLite: the cache stays off
    assert value(after, "waybill_outbox_rows", channel="email", state="pending") == 0
    assert value(after, "waybill_outbox_oldest_pending_age_seconds", channel="email") == 0
    assert value(after, "waybill_db_pool_connections_open") >= 2  # each worker's pool holds one at least
    assert value(after, "waybill_db_pool_capacity") == 2 * 15  # two workers' pools, 5 + 10 overflow each
    assert not (metered_gunicorn.metrics_dir / "counter_1.db").exists()  # the stale file was cleared at start
    again = scrape(url)  # the next scrape may be answered by the other worker: the same totals
    assert value(again, "waybill_http_requests_total", endpoint="health.healthz", method="GET",
                 status="200") == value(after, "waybill_http_requests_total", endpoint="health.healthz",
                                        method="GET", status="200")


def test_a_stopped_worker_leaves_the_live_pool_gauges(metered_gunicorn):
    """child_exit marks a dead worker's files: its open connections no longer count."""
    url = metered_gunicorn.url

    def served_by() -> set[int]:
        return {line["process"] for line in json_lines(metered_gunicorn) if line.get("logger") == "gunicorn.access"}

    deadline = time.monotonic() + 30  # both workers up and serving
    while len(served_by()) < 2 or value(scrape(url), "waybill_db_pool_capacity") != 30:
        assert time.monotonic() < deadline, served_by()
        get(f"{url}/healthz")
    pids = served_by()
    capacity = value(scrape(url), "waybill_db_pool_capacity")
    victim = min(pids)
    os.kill(victim, signal.SIGTERM)  # one worker stops; the master starts another
    deadline = time.monotonic() + 30  # until the replacement worker has served a request (its app is up)
    while True:
        get(f"{url}/healthz")
        if served_by() - pids:
            break
        assert time.monotonic() < deadline, "no replacement worker served a request"
        time.sleep(0.05)
    # Without mark_process_dead the dead worker's pool would still count: three pools' worth.
    assert value(scrape(url), "waybill_db_pool_capacity") == capacity


def json_lines(server) -> list[dict]:
    """Every complete line of the server's log, parsed. The log is read while the server writes it, so a last
    line without its newline is still being written: it is left for the next read, never judged half-done."""
    text = server.log()
    lines = [line for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


def test_json_logs_carry_the_request_id_and_no_full_mobile(metered_gunicorn):
    url = metered_gunicorn.url
    status, headers = call(f"{url}/search/9876543210", headers={"X-Request-ID": "alb-trace-77"})
    assert status == 200 and headers["X-Request-ID"] == "alb-trace-77"
    deadline = time.monotonic() + 5  # the access line is written just after the response goes out
    while True:
        lines = json_lines(metered_gunicorn)
        mine = [line for line in lines if line.get("request_id") == "alb-trace-77"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [access] = mine
    assert access["logger"] == "gunicorn.access" and access["level"] == "INFO"
    assert access["method"] == "GET" and access["path"] == "/search/******3210"
    assert access["status"] == 200 and isinstance(access["duration_ms"], int)
    assert {"time", "message", "process"} <= set(access)
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    assert "9876543210" not in metered_gunicorn.log() and "98765" not in metered_gunicorn.log()
    generated = call(f"{url}/healthz")[1]["X-Request-ID"]
    assert len(generated) == 32


def test_every_json_line_parses_whatever_the_request_carries(metered_gunicorn):
    """The masker once ran over serialised JSON and swallowed the backslash before the quote that follows a
    /search/<mobile> Referer: every line of the session must still be an object, with no email or mobile."""
    import http.client
    from urllib.parse import urlsplit

    target = urlsplit(metered_gunicorn.url)
    requests = [
        ("/healthz?probe=j1", {"Referer": "http://waybill.test/search/9811100025"}),
        ("/search/9811100025?probe=j2", {"Referer": "http://waybill.test/search/+91%2098111%2000025",
                                         "User-Agent": 'probe "quoted" \\ asha.rao@example.com'}),
        ("/track/asha.rao@example.com?probe=j3", {"Host": "a" * 64 + ".example.com",
                                                  "Referer": "http://waybill.test/search/9811100025\\"}),
        ("/healthz?probe=j4", {"X-Request-ID": "asha.rao@example.com"}),
    ]
    for path, headers in requests:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
        connection.close()
    deadline = time.monotonic() + 5
    while True:
        lines = json_lines(metered_gunicorn)  # fails on the first line that is not JSON
        probes = [line for line in lines if "probe=j" in line.get("message", "")]
        if len(probes) == len(requests) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(probes) == len(requests), probes
    assert any('"http://waybill.test/search/******0025\\"' in line["message"] for line in probes), probes
    log = metered_gunicorn.log()
    assert "asha" not in log and "9811100025" not in log and "98111%2000025" not in log


def test_without_a_token_there_is_no_metrics_route(live_gunicorn):
    assert call(f"{live_gunicorn.url}/metrics")[0] == 404
    assert Path(os.environ.get("TMPDIR", "/tmp")).is_dir()  # noqa: S108 - where the default directory goes
