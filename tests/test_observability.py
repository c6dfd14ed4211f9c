"""Request ids, log lines that name their request, and the Prometheus scrape, through the test client.

A real Gunicorn with several workers is scraped in tests/deploy/test_metrics.py.
"""
from __future__ import annotations

import io
import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.extensions import db
from app.observability.logs import tag_handler
from app.observability.request_context import current_client_address, current_request_id
from app.services.outbox import preferences
from tests import log_privacy
from tests.conftest import VALID_BOOKING, clean_database

# Rendering, translations and logs: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

TOKEN = "metrics-test-token-0123456789"  # noqa: S105 - a test value
BEARER = {"Authorization": f"Bearer {TOKEN}"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def metrics_app(make_config):
    application = create_app(make_config(METRICS_TOKEN=TOKEN))
    yield application
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def own_app(make_config, made_apps):
    """An app of the test's own, for a test that adds a route: the session's app has served requests, and Flask
    takes no new route on an app that has."""
    application = create_app(make_config())
    made_apps.append(application)
    return application


@pytest.fixture
def log_lines():
    """Lines written by a handler set up the way create_app sets up the root logger, in JSON."""
    stream = io.StringIO()
    handler = tag_handler(logging.StreamHandler(stream), "json")
    logger = logging.getLogger("waybill.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


# --- X-Request-ID ------------------------------------------------------------------------------------------------

def test_a_sane_request_id_from_the_load_balancer_is_kept_and_returned(client):
    for request_id in ("1-6789123-abcdef01234567", "req_42.a-b", "x" * 64, "3f2a9c1e0b7d4e8f9a6b5c4d3e2f1a0b"):
        response = client.get("/healthz", headers={"X-Request-ID": request_id})
        assert response.headers["X-Request-ID"] == request_id


# Only [A-Za-z0-9._-]{1,64}, and nothing the log masker would hide (an email, a mobile number, a long digit run):
# the id is echoed and written on every log line of the request.
@pytest.mark.parametrize("sent", [None, "", "x" * 65, "two words", 'quote"d', "semi;colon", "tab\there",
                                  "<script>", "ünïcode", "{\"json\": 1}", "req:1", "a/b", "c+d=",
                                  "vikram@example.com", "vikram%40example.com", "9811100021", "+919811100021",
                                  "98111-00021", "req-981110002"])
def test_an_absent_or_odd_request_id_is_replaced_by_a_generated_one(client, sent):
    headers = {"X-Request-ID": sent} if sent is not None else {}
    response = client.get("/healthz", headers=headers)
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_every_response_gets_its_own_request_id_even_errors(client):
    ids = {client.get(path).headers["X-Request-ID"] for path in ("/healthz", "/track/FFFFFFFF", "/nowhere",
                                                                   "/healthz")}
    assert len(ids) == 4
    assert client.post("/create", json={}).headers["X-Request-ID"]
    assert client.get("/admin").headers["X-Request-ID"]  # refused before any view ran


def test_every_log_line_of_a_request_names_it_and_no_full_mobile(own_app, log_lines):
    app = own_app
    seen = {}

    @app.get("/_test/log/<path:rest>")
    def log_twice(rest):
        logger = logging.getLogger("waybill.test")
        logger.info("first line")
        logger.warning("second line about /%s", rest)
        seen.update(request_id=current_request_id(), client=current_client_address())
        return "ok"

    client = app.test_client()
    response = client.get("/_test/log/search/9876543210", headers={"X-Request-ID": "lb-id-1"})
    logging.getLogger("waybill.test").info("outside any request")
    # The session's personal-data scanner reads records before any formatter masks them; this line carries the
    # number on purpose, to prove the formatter masks it, so its raw record is not a leak.
    if log_privacy.scanner() is not None:
        log_privacy.scanner().forget(lambda hit: "second line about /search/" in hit.line)

    assert response.headers["X-Request-ID"] == "lb-id-1" == seen["request_id"]
    assert seen["client"] == "127.0.0.1"
    first, second, outside = log_lines()
    for line in (first, second):
        assert line["request_id"] == "lb-id-1"
        assert line["method"] == "GET"
        assert line["path"] == "/_test/log/search/******3210"
        assert set(line) >= {"time", "level", "logger", "message"}
    assert second["level"] == "WARNING" and second["logger"] == "waybill.test"
    assert "9876543210" not in json.dumps([first, second]) and "98765" not in second["message"]
    assert "request_id" not in outside and outside["message"] == "outside any request"
    assert current_request_id() is None and current_client_address() is None  # nothing leaks out of a request


def test_an_unhandled_error_is_logged_with_its_request_id(own_app, log_lines):
    app = own_app

    @app.get("/_test/boom")
    def boom():
        raise RuntimeError("boom")

    logging.getLogger("app.errors").addHandler(logging.getLogger("waybill.test").handlers[-1])
    try:
        response = app.test_client().get("/_test/boom", headers={"X-Request-ID": "boom-1"})
    finally:
        logging.getLogger("app.errors").removeHandler(logging.getLogger("waybill.test").handlers[-1])
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "boom-1"
    [line] = log_lines()
    assert line["request_id"] == "boom-1" and line["level"] == "ERROR" and line["logger"] == "app.errors"


def test_log_format_json_gives_the_root_handler_json_lines(make_config):
    create_app(make_config(LOG_FORMAT="json"))
    [handler] = [h for h in logging.getLogger().handlers if getattr(h, "waybill", False)]
    record = logging.LogRecord("app.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    assert json.loads(handler.format(record))["message"] == "hello world"
    create_app(make_config(LOG_FORMAT="text"))
    assert handler.format(record).endswith("app.x: hello world")


def test_an_unknown_log_format_is_refused(monkeypatch):
    from app.config import Config

    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(RuntimeError, match="LOG_FORMAT"):
        Config()


# --- /metrics ----------------------------------------------------------------------------------------------------

def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=BEARER)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_is_not_there_without_a_token(client):
    response = client.get("/metrics")
    assert response.status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", TOKEN,
                                           f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"])
def test_metrics_needs_the_bearer_token(metrics_app, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = metrics_app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "waybill_" not in response.get_data(as_text=True)


def test_request_counts_and_latency_move_per_endpoint_and_status(metrics_app):
    client = metrics_app.test_client()
    before = scrape(client)
    for _ in range(3):
        client.get("/healthz")
    client.get("/track/FFFFFFFF")
    client.get("/no/such/page")
    after = scrape(client)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("waybill_http_requests_total", endpoint="health.healthz", method="GET", status="200") == 3
    assert moved("waybill_http_requests_total", endpoint="tracking.track", method="GET", status="404") == 1
    assert moved("waybill_http_requests_total", endpoint="unmatched", method="GET", status="404") == 1
    assert moved("waybill_http_request_duration_seconds_count", endpoint="health.healthz", status="200") == 3
    assert moved("waybill_http_request_duration_seconds_bucket", endpoint="health.healthz", status="200",
                 le="+Inf") == 3
    assert moved("waybill_http_request_duration_seconds_sum", endpoint="health.healthz", status="200") > 0
    # No raw path (it would carry tracking IDs and mobile numbers) becomes a label.
    assert not any("FFFFFFFF" in str(key) or "/no/such" in str(key) for key in after)


def test_outbox_rows_by_state_and_the_oldest_pending_age(metrics_app):
    client = metrics_app.test_client()
    assert value(scrape(client), "waybill_outbox_rows", channel="email", state="pending") == 0
    for _ in range(2):
        assert client.post("/create", json=VALID_BOOKING).status_code == 201
    with metrics_app.app_context():
        db.session.execute(db.text("UPDATE notifications SET created_at = :t WHERE id = (SELECT min(id) FROM "
                                   "notifications)"), {"t": "2020-01-01 00:00:00.000000"})
        db.session.execute(db.text("UPDATE notifications SET state = 'dead' WHERE id = (SELECT max(id) FROM "
                                   "notifications)"))
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "waybill_outbox_rows", channel="email", state="pending") == 1
    assert value(samples, "waybill_outbox_rows", channel="email", state="dead") == 1
    assert value(samples, "waybill_outbox_oldest_pending_age_seconds", channel="email") > 5 * 365 * 86400


def test_messages_a_recipient_turned_off_are_counted_as_suppressed(metrics_app):
    client = metrics_app.test_client()
    before = value(scrape(client), "waybill_outbox_deliveries_total", channel="email", outcome="suppressed")
    response = client.post("/create", json=VALID_BOOKING)
    assert response.status_code == 201
    with metrics_app.app_context():
        shipment_id = db.session.scalar(db.text("SELECT id FROM shipments"))
        token = preferences.choices_token(shipment_id, "email")
    assert client.post(f"/n/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    after = value(scrape(client), "waybill_outbox_deliveries_total", channel="email", outcome="suppressed")
    assert after - before == 1  # the Booked email, queued and not yet sent


def test_database_pool_usage_is_reported(metrics_app):
    samples = scrape(metrics_app.test_client())
    assert value(samples, "waybill_db_pool_connections_open") >= 1  # the scrape itself used one
    assert value(samples, "waybill_db_pool_capacity") >= 1
    assert ("waybill_db_pool_connections_in_use", ()) in samples


def test_an_audit_row_carries_the_request_id_and_client_address(client, auth, create_shipment, app):
    from sqlalchemy import select

    from app.models import AuditEntry

    tracking_id = create_shipment()
    auth.login()
    response = client.post(f"/update/{tracking_id}", json={"status": "Picked Up", "location": "Kochi Hub"},
                           headers={**auth.headers(), "X-Request-ID": "alb-audit-9"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "alb-audit-9"
    with app.app_context():
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "status_changed")).one()
        assert (row.request_id, row.client_address) == ("alb-audit-9", "127.0.0.1")
