"""/api/v1 with an API key: booking (with Idempotency-Key, also under concurrency), reading, the filtered and
paginated listing, status changes, the problem details of every kind of error, the rate limit, and the OpenAPI
document that the routes are validated against."""
from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import func, select, update

from app import create_app
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, IdempotencyKey, Notification, Shipment
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING

PROBLEM = "application/problem+json"


@pytest.fixture
def key(issue_key) -> dict[str, str]:
    return bearer(issue_key("integrator", role="operator"))


def counts(app) -> tuple[int, int]:
    """(shipments, notifications)."""
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Shipment)),
                db.session.scalar(select(func.count()).select_from(Notification)))


def assert_problem(response, status: int, *fields: str) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"].startswith("http://waybill.test/api/docs#problem-")
    for name in fields:
        assert name in body.get("errors", {}), body
    return body


# --- booking ----------------------------------------------------------------------------------------------------

def test_booking_answers_201_with_the_links_and_queues_one_email(app, client, key):
    response = client.post("/api/v1/shipments", json=VALID_BOOKING, headers=key)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    tracking_id = body["tracking_id"]
    assert re.fullmatch(r"[0-9A-F]{8}", tracking_id) and body["status"] == "Booked"
    assert body["tracking_url"] == f"http://waybill.test/track/{tracking_id}"
    assert body["label_url"] == f"http://waybill.test/api/v1/shipments/{tracking_id}/label"
    assert body["mobile"] == "+919876543210" and body["email"] == "vikram@example.com"
    assert response.headers["Location"] == f"http://waybill.test/api/v1/shipments/{tracking_id}"
    assert counts(app) == (1, 1)
    label = client.get(urlsplit(body["label_url"]).path, headers=key)
    assert label.status_code == 200 and label.mimetype == "application/pdf" and label.data.startswith(b"%PDF")
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "integrator")
                                     .order_by(AuditEntry.id)).all()
        assert actions == ["shipment_created", "labels_printed"]


@pytest.mark.parametrize(("body", "field"), [
    ({**VALID_BOOKING, "mobile": "12"}, "mobile"),
    ({**VALID_BOOKING, "email": "not-an-email"}, "email"),
    ({**VALID_BOOKING, "sender_name": "   "}, "sender_name"),
    ({**VALID_BOOKING, "destination": "x" * 201}, "destination"),
    ({**VALID_BOOKING, "receiver_name": 42}, "receiver_name"),
    ({**VALID_BOOKING, "mobile": None}, "mobile"),
    ({**VALID_BOOKING, "colour": "red"}, "colour"),
    ({k: v for k, v in VALID_BOOKING.items() if k != "destination"}, "destination"),
    ({**VALID_BOOKING, "weight_kg": "2"}, "weight_kg"),  # a number, not text
    ({**VALID_BOOKING, "pieces": 51}, "pieces"),
    ({**VALID_BOOKING, "destination_pincode": "999999"}, "destination_pincode"),  # not in the directory
    ({**VALID_BOOKING, "sender_name": "Asha\x00Rao"}, "sender_name"),
])
def test_booking_follows_the_rules_of_create_and_names_the_field(app, client, key, body, field):
    assert_problem(client.post("/api/v1/shipments", json=body, headers=key), 400, field)
    assert counts(app) == (0, 0)


def test_the_same_idempotency_key_and_body_get_the_first_answer_and_one_email(app, client, key, issue_key):
    headers = {**key, "Idempotency-Key": "order-1001"}
    first = client.post("/api/v1/shipments", json=VALID_BOOKING, headers=headers)
    reordered = dict(reversed(list(VALID_BOOKING.items())))  # the same body, keys in another order
    again = client.post("/api/v1/shipments", json=reordered, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert counts(app) == (1, 1)

    other_body = client.post("/api/v1/shipments", json={**VALID_BOOKING, "destination": "Pune"}, headers=headers)
    assert_problem(other_body, 422)
    assert counts(app) == (1, 1)

    # Keys belong to one API key: another integrator's "order-1001" is its own booking.
    other_key = {**bearer(issue_key("partner")), "Idempotency-Key": "order-1001"}
    assert client.post("/api/v1/shipments", json=VALID_BOOKING, headers=other_key).get_json()["tracking_id"] \
        != first.get_json()["tracking_id"]
    # After 24 hours the key may be used again.
    with app.app_context():
        db.session.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    later = client.post("/api/v1/shipments", json=VALID_BOOKING, headers=headers)
    assert later.status_code == 201 and later.get_json()["tracking_id"] != first.get_json()["tracking_id"]
    assert counts(app) == (3, 3)


def test_a_refused_booking_remembers_nothing_under_its_key(app, client, key):
    headers = {**key, "Idempotency-Key": "order-7"}
    assert_problem(client.post("/api/v1/shipments", json={**VALID_BOOKING, "mobile": "12"}, headers=headers), 400)
    assert client.post("/api/v1/shipments", json=VALID_BOOKING, headers=headers).status_code == 201
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


@pytest.mark.parametrize("value", ["", "has space", "x" * 256, "caf\u00e9"])
def test_a_malformed_idempotency_key_is_a_400(app, client, key, value):
    response = client.post("/api/v1/shipments", json=VALID_BOOKING,
                           headers={**key, "Idempotency-Key": value.encode().decode("latin-1")})
    assert_problem(response, 400, "Idempotency-Key")
    assert counts(app) == (0, 0)


def post_json(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    request = Request(url, data=json.dumps(body).encode(), method="POST",
                      headers={"Content-Type": "application/json", **headers})
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except HTTPError as error:
        return error.code, json.loads(error.read())


def test_concurrent_identical_requests_book_once(app, live_server, key):
    """Eight threads send the same booking with the same key at the same moment, over real HTTP."""
    headers = {**key, "Idempotency-Key": "burst-42"}
    start = threading.Barrier(8)
    answers: list[tuple[int, dict]] = []

    def send() -> None:
        start.wait()
        answers.append(post_json(live_server.url + "/api/v1/shipments", VALID_BOOKING, headers))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [status for status, _ in answers] == [201] * 8, answers
    assert len({body["tracking_id"] for _, body in answers}) == 1
    assert counts(app) == (1, 1)


# --- reading and listing ----------------------------------------------------------------------------------------

def test_a_shipment_reads_with_its_contacts_and_timeline(client, key, create_shipment):
    tracking_id = create_shipment()
    body = client.get(f"/api/v1/shipments/{tracking_id.lower()}", headers=key).get_json()
    assert body["tracking_id"] == tracking_id and body["email"] == "vikram@example.com"
    assert [e["status"] for e in body["events"]] == ["Booked"]
    assert_problem(client.get("/api/v1/shipments/FFFFFFFF", headers=key), 404)


def book_many(client, key, n: int, **overrides) -> list[str]:
    return [client.post("/api/v1/shipments", json={**VALID_BOOKING, **overrides}, headers=key).get_json()
            ["tracking_id"] for _ in range(n)]


def test_the_listing_pages_with_next_links_and_filters(app, client, key):
    first = book_many(client, key, 5)
    others = book_many(client, key, 2, mobile="098765 43211")
    seen, url, pages = [], "/api/v1/shipments?limit=2", 0
    while url:
        page = client.get(url, headers=key)
        assert page.status_code == 200
        body = page.get_json()
        assert len(body["shipments"]) <= 2
        seen += [s["tracking_id"] for s in body["shipments"]]
        url = body["next"] and urlsplit(body["next"])._replace(scheme="", netloc="").geturl()
        pages += 1
    assert seen == first + others and pages == 4

    by_mobile = client.get("/api/v1/shipments?mobile=9876543211", headers=key).get_json()["shipments"]
    assert [s["tracking_id"] for s in by_mobile] == others
    client.post(f"/api/v1/shipments/{first[1]}/events", json={"status": "Picked Up", "location": "Hub"}, headers=key)
    picked = client.get("/api/v1/shipments?status=Picked%20Up", headers=key).get_json()["shipments"]
    assert [s["tracking_id"] for s in picked] == [first[1]]
    with app.app_context():
        changed_at = db.session.scalar(select(Shipment.updated_at).where(Shipment.tracking_id == first[1]))
    since = changed_at.isoformat().replace("+00:00", "Z")
    recent = client.get("/api/v1/shipments", query_string={"updated_since": since}, headers=key).get_json()
    assert [s["tracking_id"] for s in recent["shipments"]] == [first[1]] and recent["next"] is None
    filtered = client.get("/api/v1/shipments?limit=1&mobile=9876543210", headers=key).get_json()
    assert "mobile=" in filtered["next"] and "limit=1" in filtered["next"]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"), ("status=Lost", "status"),
    ("updated_since=yesterday", "updated_since"), ("updated_since=2026-01-01T00:00:00", "updated_since"),
    ("mobile=12", "mobile"), ("cursor=bm90LWEtY3Vyc29y", "cursor"), ("cursor=%%%", "cursor"),
    ("colour=red", "colour"), ("limit=1&limit=2", "limit"),
])
def test_a_bad_listing_query_is_a_400_naming_the_parameter(client, key, query, field):
    assert_problem(client.get(f"/api/v1/shipments?{query}", headers=key), 400, field)


# --- events -----------------------------------------------------------------------------------------------------

def test_an_event_is_201_and_a_forbidden_transition_409_names_the_allowed(app, client, key, create_shipment):
    tracking_id = create_shipment()
    response = client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key, json={
        "status": "Picked Up", "location": "Kochi Hub", "note": "dock 4", "customer_message": "On its way",
        "occurred_at": "2026-12-01T09:30:00+05:30", "received_by": None})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "Picked Up" and body["allowed_next_statuses"] == ["In Transit", "On Hold"]
    assert body["event"]["actor"] == "integrator" and body["event"]["note"] == "dock 4"
    conflict = assert_problem(client.post(f"/api/v1/shipments/{tracking_id}/events", headers=key,
                                          json={"status": "Delivered", "location": "Kochi",
                                                "received_by": "Ravi"}), 409)
    assert conflict["allowed"] == ["In Transit", "On Hold"] and conflict["current_status"] == "Picked Up"
    assert "In Transit, On Hold" in conflict["detail"]
    with app.app_context():
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "status_changed")).one()
        assert audit.actor == "integrator" and audit.target_id == tracking_id
    assert_problem(client.post("/api/v1/shipments/FFFFFFFF/events", headers=key,
                               json={"status": "Picked Up", "location": "Hub"}), 404)


@pytest.mark.parametrize(("body", "field"), [
    ({"location": "Hub"}, "status"),
    ({"status": "Lost", "location": "Hub"}, "status"),
    ({"status": "Picked Up", "location": ""}, "location"),
    ({"status": "Picked Up", "location": "Hub", "note": 5}, "note"),
    ({"status": "Picked Up", "location": "Hub", "occurred_at": "2026-12-01T09:30:00"}, "occurred_at"),
    ({"status": "Picked Up", "location": "Hub", "received_by": ""}, "received_by"),
    ({"status": "Picked Up", "location": "Hub", "attempt_reason": ["x"]}, "attempt_reason"),
    ({"status": "Picked Up", "location": "Hub", "actor": "someone"}, "actor"),
])
def test_a_bad_event_is_a_400_and_changes_nothing(app, client, key, create_shipment, body, field):
    tracking_id = create_shipment()
    assert_problem(client.post(f"/api/v1/shipments/{tracking_id}/events", json=body, headers=key), 400, field)
    with app.app_context():
        assert db.session.scalars(select(Shipment.status)).all() == ["Booked"]


# --- every error is a problem -----------------------------------------------------------------------------------

def test_every_kind_of_error_is_problem_details(app, client, key, create_shipment):
    tracking_id = create_shipment()
    events = f"/api/v1/shipments/{tracking_id}/events"
    assert_problem(client.post(events, data="{not json", content_type="application/json", headers=key), 400)
    assert_problem(client.post(events, data="[1, 2]", content_type="application/json", headers=key), 400)
    assert_problem(client.post(events, data="[" * 100_000, content_type="application/json", headers=key), 413)
    assert_problem(client.post(events, data="status=Picked+Up", content_type="application/x-www-form-urlencoded",
                               headers=key), 415)
    assert_problem(client.post(events, data=b"\xff\xfe", content_type="application/json", headers=key), 400)
    deep = "[" * 5000 + "]" * 5000
    assert_problem(client.post(events, data='{"status": ' + deep + "}", content_type="application/json",
                               headers=key), 400)
    assert_problem(client.post(events, json={"status": "Picked Up", "location": "x" * 70_000}, headers=key), 413)
    assert_problem(client.get("/api/v1/shipments/%00", headers=key), 400)
    assert_problem(client.get("/api/v1/no-such-thing", headers=key), 404)
    assert_problem(client.post("/api/v1/no-such-thing", headers=key), 404)
    wrong_method = assert_problem(client.delete("/api/v1/shipments", headers=key), 405)
    assert wrong_method["status"] == 405
    assert_problem(client.get("/api/v1/shipments"), 401)
    with app.app_context():
        assert db.session.scalars(select(Shipment.status)).all() == ["Booked"]
    # Outside /api/v1 the app's own error shape is unchanged.
    assert client.get("/no-such-page", headers={"Accept": "application/json"}).get_json() == {
        "error": client.get("/no-such-page", headers={"Accept": "application/json"}).get_json()["error"]}


def test_the_rate_limit_counts_per_key_and_answers_429_problem(app, make_config, issue_key):
    limited = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_API="3 per minute"))
    client = limited.test_client()
    first, second = bearer(issue_key("one")), bearer(issue_key("two"))
    answers = [client.get("/api/v1/shipments", headers=first) for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert answers[0].headers["RateLimit-Limit"] == "3" and answers[2].headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(answers[0].headers["RateLimit-Reset"]) <= 60
    refused = assert_problem(client.get("/api/v1/shipments", headers=first), 429)
    assert refused["status"] == 429
    retry = client.get("/api/v1/shipments", headers=first)
    assert 0 < int(retry.headers["Retry-After"]) <= 60 and retry.headers["RateLimit-Remaining"] == "0"
    assert retry.headers["RateLimit-Policy"] == "3;w=60"
    assert client.get("/api/v1/shipments", headers=second).status_code == 200  # another key, its own budget


def test_the_default_limit_is_generous(make_config, issue_key):
    """With limits on and the default RATELIMIT_API (the test settings switch limits off), an integrator's burst
    of 40 calls in a second goes through, and the answers say the budget is 50 a second."""
    limited = create_app(make_config(RATELIMIT_ENABLED=True))
    assert limited.config["RATELIMIT_API"] == "50 per second"
    client, headers = limited.test_client(), bearer(issue_key("burst"))
    answers = [client.get("/api/v1/shipments", headers=headers) for _ in range(40)]
    assert [a.status_code for a in answers] == [200] * 40
    assert answers[-1].headers["RateLimit-Limit"] == "50" and answers[-1].headers["RateLimit-Policy"] == "50;w=1"


# --- the document -----------------------------------------------------------------------------------------------

def test_the_document_describes_every_api_route_and_its_errors(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["apiKey"] == {
        **document["components"]["securitySchemes"]["apiKey"], "type": "http", "scheme": "bearer"}
    documented = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    routes = {(method, re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routes
    booking = document["paths"]["/api/v1/shipments"]["post"]
    assert {"201", "400", "401", "403", "413", "415", "422", "429"} <= set(booking["responses"])
    assert booking["responses"]["401"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"}
    body = document["components"]["schemas"]["NewShipment"]
    # The email is optional: a mobile is enough (SMS only).
    assert body["additionalProperties"] is False and set(body["required"]) == set(VALID_BOOKING) - {"email"}
    assert document["paths"]["/api/v1/shipments/{tracking_id}/events"]["post"]["responses"]["409"]


def test_the_docs_page_is_rendered_from_the_document_without_inline_script(client):
    page = client.get("/api/docs", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    for path in ("/api/v1/shipments", "/api/v1/shipments/{tracking_id}/events", "/api/v1/openapi.json"):
        assert path in text
    assert 'id="problem-unprocessable"' in text and "NewShipment" in text
    assert re.search(r"<script(?![^>]*\bsrc=)", text) is None and " style=" not in text


# --- the README ---------------------------------------------------------------------------------------------------

def integrator_examples() -> str:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Integrator API", 1)[1].split("\n## ", 1)[0]
    [block] = [b for b in re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL) if "BASE=" in b]
    return block


def test_the_readme_integrator_examples_run_as_written(live_server, make_user, app, tmp_path):
    import os
    import shutil
    import subprocess

    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    make_user("admin", "readme-admin-password-1", role="admin")
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / ".admin-password").write_text("readme-admin-password-1\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("ADMIN_")}
    env["BASE"] = live_server.url
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", integrator_examples()], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout
    tracking_id = output.splitlines()[0]
    assert re.fullmatch(r"[0-9A-F]{8}", tracking_id), output
    assert '"allowed_next_statuses":["In Transit","On Hold"]' in output
    assert '"status":409' in output and "HTTP 409" in output
    assert "HTTP 200 application/pdf" in output and output.rstrip().endswith("3.1.0")
    assert (tmp_path / f"label-{tracking_id}.pdf").read_bytes().startswith(b"%PDF")
    with app.app_context():
        assert db.session.scalars(select(Shipment.status)).all() == ["Picked Up"]


def test_old_idempotency_keys_are_purged_by_a_command(app, client, key, runner):
    for name in ("old", "new"):
        client.post("/api/v1/shipments", json=VALID_BOOKING, headers={**key, "Idempotency-Key": name})
    with app.app_context():
        db.session.execute(update(IdempotencyKey).where(IdempotencyKey.key == "old")
                           .values(created_at=utcnow() - timedelta(hours=25)))
        db.session.commit()
    result = runner.invoke(args=["api", "purge-idempotency-keys"])
    assert result.exit_code == 0 and "Removed 1 expired" in result.output
    with app.app_context():
        assert db.session.scalars(select(IdempotencyKey.key)).all() == ["new"]
