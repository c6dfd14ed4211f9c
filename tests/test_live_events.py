"""Push: the server-sent event streams (GET /track/<id>/events, GET /admin/live/events) served over real HTTP.

Both databases: PostgreSQL feeds the streams from LISTEN/NOTIFY, SQLite from a poll loop. Changes are made by a
second app (its own engine and hooks, like another process), so the stream hears of them only through the feed.
Settings are short (heartbeat, end of stream), so each test takes about a second.
"""
from __future__ import annotations

import http.client
import json
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from app import create_app
from app.domain.field import IDLE_AFTER, LiveState, live_state
from app.domain.timeutil import utcnow
from app.extensions import db
from app.services.field.runsheets import assign_stops
from app.services.operations.alerts import raise_alert
from app.services.operations.live import stop_live_feed
from app.services.shipments.status_changes import record_status_change
from tests.location_support import OUT_FOR_DELIVERY, make_courier, move_to, run_sheet, sign_in

SECRET_BITS = ("98765", "vikram@example.com", "Vikram Nair", "Asha Rao")


class Stream:
    """A raw SSE client: reads events (dicts of field → value, comments under ":") as they arrive."""

    def __init__(self, base_url: str, path: str, headers: dict | None = None, timeout: float = 5.0) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.sock = self.conn.sock  # http.client lets go of it once the response says it will close
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.raw = ""

    def next(self, timeout: float = 3.0) -> dict | None:
        """The next event or comment block; None when the server closed the stream."""
        self.sock.settimeout(timeout)
        block: dict = {}
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode()
            self.raw += text
            text = text.rstrip("\n")
            if text == "":
                if block:
                    return block
                continue
            name, _, value = text.partition(":")
            block.setdefault(name, "")
            block[name] = (block[name] + "\n" if block[name] and name == "data" else "") + value.lstrip(" ") \
                if name == "data" else value.lstrip(" ")

    def next_event(self, timeout: float = 3.0) -> dict | None:
        """The next block that carries data (comments and `retry` skipped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            block = self.next(left)
            if block is None or "data" in block:
                return block
        raise TimeoutError("no event")

    def close(self) -> None:
        self.response.close()
        self.conn.close()
        self.sock.close()


@pytest.fixture
def streams(app, live_server):
    """The test app served over HTTP with short stream settings; its feed stopped afterwards."""
    app.config.update(SSE_HEARTBEAT_SECONDS=5.0, SSE_MAX_SECONDS=10.0, SSE_POLL_SECONDS=0.1)
    opened: list[Stream] = []

    def open_stream(path: str, **kwargs) -> Stream:
        stream = Stream(live_server.url, path, **kwargs)
        opened.append(stream)
        return stream
    yield open_stream
    for stream in opened:
        stream.close()
    stop_live_feed(app)


@pytest.fixture
def writer(make_config, made_apps):
    """A second app on the same database: its commits reach the streams only through NOTIFY or the poll."""
    application = create_app(make_config())
    made_apps.append(application)

    def change(tracking_id: str, status: str) -> None:
        with application.app_context():
            record_status_change(tracking_id, status, "Hub", None, actor="test")
            db.session.commit()
            db.session.remove()
    change.app = application
    return change


def test_a_stream_opens_with_retry_and_the_public_document(streams, create_shipment, client):
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    assert stream.status == 200 and stream.response.getheader("Content-Type").startswith("text/event-stream")
    first = stream.next()
    assert first == {"retry": "5000"}
    event = stream.next_event()
    assert json.loads(event["data"]) == client.get(f"/track/{tid}").get_json()
    assert event["id"] == client.get(f"/track/{tid}").headers["ETag"].strip('"')


def test_a_change_reaches_the_stream_within_a_second(streams, create_shipment, writer):
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    assert json.loads(stream.next_event()["data"])["status"] == "Booked"
    started = time.monotonic()
    writer(tid, "Picked Up")
    event = stream.next_event(timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert json.loads(event["data"])["status"] == "Picked Up"


def test_reconnecting_with_last_event_id_sends_the_current_state_again(streams, create_shipment, writer):
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    old = stream.next_event()["id"]
    stream.close()
    writer(tid, "Picked Up")  # missed while away
    again = streams(f"/track/{tid}/events", headers={"Last-Event-ID": old})
    event = again.next_event()
    assert event["id"] != old and json.loads(event["data"])["status"] == "Picked Up"


def test_a_quiet_stream_sends_a_comment_every_heartbeat(app, streams, create_shipment):
    app.config["SSE_HEARTBEAT_SECONDS"] = 0.3
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    stream.next_event()
    started = time.monotonic()
    assert stream.next(timeout=2.0) == {"": "keep-alive"}
    assert 0.2 < time.monotonic() - started < 1.0


def test_a_stream_is_closed_after_its_maximum_life(app, streams, create_shipment):
    app.config.update(SSE_MAX_SECONDS=0.6, SSE_HEARTBEAT_SECONDS=0.25)
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    started = time.monotonic()
    while stream.next(timeout=3.0) is not None:
        pass
    assert 0.5 < time.monotonic() - started < 2.0


def test_the_public_stream_carries_nothing_private(streams, create_shipment, writer):
    tid = create_shipment()
    stream = streams(f"/track/{tid}/events")
    stream.next_event()
    writer(tid, "Picked Up")
    data = json.loads(stream.next_event()["data"])
    assert not {"mobile", "email", "sender_address", "address", "receiver_name", "sender_name"} & set(data)
    assert not [bit for bit in SECRET_BITS if bit in stream.raw]


def test_an_unknown_id_is_a_404_and_no_stream(streams):
    stream = streams("/track/FFFFFFFF/events", headers={"Accept": "application/json"})
    assert stream.status == 404


def test_the_stream_is_rate_limited_like_tracking(make_config, made_apps, create_shipment):
    application = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_TRACK="2 per minute",
                                         RATELIMIT_TRACK_MISS="1 per minute", SSE_MAX_SECONDS=0.1))
    made_apps.append(application)
    client = application.test_client()
    tid = create_shipment()
    for _ in range(2):
        with client.get(f"/track/{tid}/events", buffered=False) as response:
            assert response.status_code == 200
    assert client.get(f"/track/{tid}/events").status_code == 429
    stop_live_feed(application)


def test_a_process_that_is_not_the_streams_service_answers_503(app, client, create_shipment):
    app.config["SSE_STREAMS"] = False
    tid = create_shipment()
    response = client.get(f"/track/{tid}/events")
    assert response.status_code == 503 and response.headers["Retry-After"]


def test_a_stop_closed_before_yours_reaches_your_stream_at_once(app, streams, create_shipment, writer):
    """Stops before yours change when the courier closes one, not only when they next send a position: the
    stream of a later parcel on the run sheet hears of the delivery at once, and no position is sent."""
    courier_id = make_courier(app, "ravi")
    first, second, third = (create_shipment() for _ in range(3))
    for tracking_id in (first, second, third):
        move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(first, "open"), (second, "open"), (third, "open")])
    stream = streams(f"/track/{third}/events")
    assert json.loads(stream.next_event()["data"])["courier"]["stops_before_you"] == 2
    started = time.monotonic()
    writer(first, "Delivered")
    event = stream.next_event(timeout=2.0)
    assert time.monotonic() - started < 1.0
    body = json.loads(event["data"])
    assert body["status"] == "Out for Delivery" and body["courier"]["stops_before_you"] == 1


def test_the_staff_stream_needs_view_operations(streams, make_user, live_server):
    assert streams("/admin/live/events").status == 401
    make_user("carrier1", role="courier")  # a courier may not watch the others
    cookie = _session_cookie(live_server.url, "carrier1")
    assert streams("/admin/live/events", headers={"Cookie": cookie}).status == 403


def test_the_staff_stream_sends_couriers_shipments_and_alerts(app, streams, make_user, live_server, writer,
                                                            create_shipment):
    courier_id = make_courier(app, "ravi")
    make_user("viewer1", role="viewer")
    stream = streams("/admin/live/events", headers={"Cookie": _session_cookie(live_server.url, "viewer1")})
    assert stream.status == 200
    first = stream.next_event()
    assert first["event"] == "courier" and json.loads(first["data"])["username"] == "ravi"
    assert json.loads(first["data"])["state"] == "offline"
    # A position from the courier app (another process): the courier event follows.
    with writer.app.test_client() as phone:
        headers = sign_in(phone, "ravi")
        started = time.monotonic()
        posted = phone.post("/courier/locations", headers=headers, json={"points": [
            {"lat": 12.97, "lon": 77.59, "accuracy": 5, "at": utcnow().isoformat().replace("+00:00", "Z")}]})
        assert posted.status_code == 202 and posted.get_json()["accepted"] == 1
    moved = stream.next_event(timeout=2.0)
    assert time.monotonic() - started < 1.0
    assert moved["event"] == "courier"
    data = json.loads(moved["data"])
    assert data["position"] == {"lat": 12.97, "lon": 77.59} and data["state"] == "idle"
    tid = create_shipment()
    writer(tid, "Picked Up")
    shipment = stream.next_event(timeout=2.0)
    if json.loads(shipment["data"])["status"] == "Booked":  # the booking's own event, when it came apart
        shipment = stream.next_event(timeout=2.0)
    assert shipment["event"] == "shipment" and json.loads(shipment["data"])["status"] == "Picked Up"
    with writer.app.app_context():
        alert_id = raise_alert("courier_silent", "courier:test", courier_id=courier_id, details={"username": "ravi"})
        db.session.commit()
    alert = stream.next_event(timeout=2.0)
    assert alert["event"] == "alert" and json.loads(alert["data"])["id"] == alert_id
    assert len({moved["id"], shipment["id"], alert["id"], first["id"]}) == 4


def test_the_staff_stream_hears_a_run_sheet_change_without_a_position(app, streams, make_user, live_server,
                                                                      writer, create_shipment):
    """A stop assigned, then closed, changes the courier's entry (its stop counts): each reaches the live map at
    once, though the courier sends no position."""
    make_courier(app, "ravi")
    make_user("viewer1", role="viewer")
    tracking_id = create_shipment()
    move_to(app, tracking_id, "Picked Up", "In Transit")
    stream = streams("/admin/live/events", headers={"Cookie": _session_cookie(live_server.url, "viewer1")})
    assert json.loads(stream.next_event()["data"])["stops_open"] == 0
    with writer.app.app_context():
        assign_stops("ravi", [tracking_id], day=None, actor="test", timezone=writer.app.config["DISPLAY_TIMEZONE"])
        db.session.commit()
    assigned = _next_courier_event(stream)
    assert (assigned["username"], assigned["stops_open"], assigned["stops_done"]) == ("ravi", 1, 0)
    writer(tracking_id, "Out for Delivery")
    writer(tracking_id, "Delivered")
    delivered = _next_courier_event(stream)
    assert (delivered["stops_open"], delivered["stops_done"]) == (0, 1)


def _next_courier_event(stream) -> dict:
    """The next courier entry on the staff stream (shipment events of the same change passed over)."""
    while True:
        event = stream.next_event(timeout=2.0)
        if event["event"] == "courier":
            return json.loads(event["data"])


def _session_cookie(base_url: str, username: str) -> str:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", "/login", body=json.dumps({"username": username, "password": "correct-horse-1"}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200, response.read()
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    conn.close()
    return cookie


@pytest.mark.parametrize(("minutes_silent", "moved_minutes_ago", "stops", "risky", "on_shift_now", "expected"), [
    (1, 1, 2, 0, True, LiveState.ACTIVE),
    (1, 1, 2, 1, True, LiveState.AT_RISK),
    (1, 9, 2, 0, True, LiveState.IDLE),
    (1, 1, 0, 0, True, LiveState.IDLE),
    (5, 5, 2, 0, True, LiveState.IDLE),
    (15, 15, 2, 1, True, LiveState.OFFLINE),
    (1, 1, 2, 1, False, LiveState.OFFLINE),
])
def test_the_live_state_rule(minutes_silent, moved_minutes_ago, stops, risky, on_shift_now, expected):
    now = utcnow()
    assert timedelta(minutes=8) == IDLE_AFTER
    assert live_state(now, on_shift_now=on_shift_now, last_seen_at=now - timedelta(minutes=minutes_silent),
                      moved_at=now - timedelta(minutes=moved_minutes_ago), open_stops=stops, stops_at_risk=risky,
                      silent_after=timedelta(minutes=15)) == expected
