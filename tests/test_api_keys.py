"""API keys: created by an admin and shown once, stored as a hash, authenticating as their account and role with
no session and no CSRF token, refused (401 + WWW-Authenticate) when wrong, revoked or expired — revocation
holding at once in another app process on the same database — and audited without the secret."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from sqlalchemy import select, update

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import ApiKey, AuditEntry, Shipment
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING
from tests.notifications.conftest import free_port
from tests.notifications.test_processes import AppProcess, app_env, wait_until_serving


def create_key_as_admin(client, auth, **body):
    payload = {"name": "Warehouse scanner", "username": "scanner", **body}
    return client.post("/admin/api-keys", json=payload, headers=auth.headers())


def test_an_admin_creates_a_key_shown_once_and_stored_only_as_its_hash(app, client, auth, make_user):
    make_user("scanner", role="operator")
    auth.login("boss", role="admin")
    response = create_key_as_admin(client, auth)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    secret = body["key"]
    assert secret.startswith("wb_live_") and len(secret) >= len("wb_live_") + 43  # 32 bytes, URL-safe base64
    assert set(secret[8:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert body["prefix"] == secret[:len(body["prefix"])] and len(body["prefix"]) >= 12
    assert (body["name"], body["username"], body["role"]) == ("Warehouse scanner", "scanner", "operator")
    assert response.headers["Cache-Control"] == "no-store"

    listed = client.get("/admin/api-keys", headers={"Accept": "application/json"}).get_json()["api_keys"]
    assert [k["id"] for k in listed] == [body["id"]]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None
    assert secret not in json.dumps(listed)
    with app.app_context():
        record = db.session.get(ApiKey, body["id"])
        assert record.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        stored = " ".join(str(getattr(record, c.key)) for c in ApiKey.__table__.columns)
        assert secret not in stored
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "api_key_created")).one()
        assert (audit.actor, audit.target_type, audit.target_id) == ("boss", "api_key", str(body["id"]))
        assert secret not in json.dumps(audit.details) and audit.details["owner"] == "scanner"


def test_creating_a_key_refuses_bad_input_and_writes_nothing(app, client, auth, make_user):
    make_user("gone", role="operator")
    auth.login("boss", role="admin")
    client.post("/admin/users/gone", json={"active": False}, headers=auth.headers())
    cases = [
        ({"name": "", "username": "scanner"}, "name"),
        ({"name": "x", "username": "nobody"}, "username"),
        ({"name": "x", "username": "gone"}, "username"),
        ({"name": "x", "username": "boss", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "username": "boss", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "x", "username": "boss", "owner": "boss"}, "owner"),
        ({"name": 5, "username": "boss"}, "name"),
    ]
    for body, field in cases:
        response = client.post("/admin/api-keys", json=body, headers=auth.headers())
        assert response.status_code == 400, body
        assert field in response.get_json()["fields"], (body, response.get_json())
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).all() == []


def test_only_admins_manage_keys_and_a_session_needs_its_csrf_token(client, auth, make_user):
    auth.login("operator1")
    assert client.get("/admin/api-keys").status_code == 403
    assert client.post("/admin/api-keys", json={"name": "x", "username": "operator1"},
                       headers=auth.headers()).status_code == 403
    auth.logout()
    auth.login("boss", role="admin")
    assert client.post("/admin/api-keys", json={"name": "x", "username": "boss"}).status_code == 400  # no token


def test_a_key_acts_as_its_account_with_no_session_and_no_csrf(app, client, issue_key):
    secret = issue_key("scanner", role="operator")
    response = client.post("/api/v1/shipments", json=VALID_BOOKING, headers=bearer(secret))
    assert response.status_code == 201, response.get_json()
    assert "Set-Cookie" not in response.headers
    with app.app_context():
        tracking_id = response.get_json()["tracking_id"]
        audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "shipment_created")).one()
        assert (audit.actor, audit.target_id) == ("scanner", tracking_id)
        assert secret not in json.dumps(audit.details)
        assert db.session.scalar(select(ApiKey.last_used_at)) is not None


def test_a_viewer_key_reads_but_cannot_write(app, client, issue_key, create_shipment):
    tracking_id = create_shipment()
    secret = issue_key("support", role="viewer")
    assert client.get(f"/api/v1/shipments/{tracking_id}", headers=bearer(secret)).status_code == 200
    for path, body in (("/api/v1/shipments", VALID_BOOKING),
                       (f"/api/v1/shipments/{tracking_id}/events", {"status": "Picked Up", "location": "Hub"})):
        response = client.post(path, json=body, headers=bearer(secret))
        assert response.status_code == 403 and response.mimetype == "application/problem+json"
    with app.app_context():
        assert db.session.scalars(select(Shipment.status)).all() == ["Booked"]


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer wb_live_not-a-real-key", "Bearer nonsense",
    "Bearer " + "x" * 5000, "bearer wb_live_\u00e9\u00e9",
])
def test_a_missing_or_wrong_key_is_a_401_problem_with_www_authenticate(client, issue_key, header):
    issue_key()
    headers = {"Authorization": header} if header is not None else {}
    response = client.get("/api/v1/shipments", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 401


def test_a_session_cookie_does_not_stand_in_for_a_key(client, auth):
    auth.login("boss", role="admin")
    assert client.get("/api/v1/shipments").status_code == 401


def test_an_expired_key_and_a_deactivated_account_are_refused(app, client, issue_key, auth):
    expiring = issue_key("scanner", expires_at=utcnow() + timedelta(hours=1))
    assert client.get("/api/v1/shipments", headers=bearer(expiring)).status_code == 200
    with app.app_context():
        db.session.execute(update(ApiKey).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get("/api/v1/shipments", headers=bearer(expiring)).status_code == 401

    other = issue_key("courier")
    assert client.get("/api/v1/shipments", headers=bearer(other)).status_code == 200
    auth.login("boss", role="admin")
    assert client.post("/admin/users/courier", json={"active": False}, headers=auth.headers()).status_code == 200
    assert client.get("/api/v1/shipments", headers=bearer(other)).status_code == 401


def test_last_use_is_written_at_most_once_a_minute(app, client, issue_key):
    secret = issue_key()
    client.get("/api/v1/shipments", headers=bearer(secret))
    with app.app_context():
        first = db.session.scalar(select(ApiKey.last_used_at))
    for _ in range(3):
        client.get("/api/v1/shipments", headers=bearer(secret))
    with app.app_context():
        assert db.session.scalar(select(ApiKey.last_used_at)) == first
        db.session.execute(update(ApiKey).values(last_used_at=first - timedelta(minutes=2)))
        db.session.commit()
    client.get("/api/v1/shipments", headers=bearer(secret))
    with app.app_context():
        assert db.session.scalar(select(ApiKey.last_used_at)) > first


def call(base_url: str, method: str, path: str, headers: dict, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = Request(base_url + path, data=data, method=method,
                      headers={"Content-Type": "application/json", "Accept": "application/json", **headers})
    try:
        with urlopen(request, timeout=30) as response:
            return response.status
    except HTTPError as error:
        return error.code


def test_revoking_holds_from_the_next_request_in_another_process(app, client, auth, database_url, tmp_path: Path):
    port = free_port()
    other = AppProcess(["run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger",
                        "--with-threads"], app_env(database_url, NOTIFY_WORKER_IN_WEB=False), tmp_path / "b.log")
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_serving(base_url, other)
        auth.login("boss", role="admin")
        created = create_key_as_admin(client, auth, username="boss").get_json()
        key = bearer(created["key"])
        assert call(base_url, "GET", "/api/v1/shipments", key) == 200  # the other process knows the key
        revoked = client.post(f"/admin/api-keys/{created['id']}/revoke", json={}, headers=auth.headers())
        assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
        assert call(base_url, "GET", "/api/v1/shipments", key) == 401  # and its very next request is refused
        assert client.get("/api/v1/shipments", headers=key).status_code == 401
        again = client.post(f"/admin/api-keys/{created['id']}/revoke", json={}, headers=auth.headers())
        assert again.status_code == 409
        assert client.post("/admin/api-keys/999999/revoke", json={}, headers=auth.headers()).status_code == 404
    finally:
        other.stop()
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "api_key")).all()
        assert sorted(actions) == ["api_key_created", "api_key_revoked"]


def test_the_keys_page_shows_a_new_key_once_and_revokes_with_the_form(client, auth):
    import re

    html = {"Accept": "text/html"}
    auth.login("boss", role="admin")
    page = client.get("/admin/api-keys", headers=html)
    assert page.status_code == 200 and "No keys yet." in page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    created = client.post("/admin/api-keys", data={"name": "Scanner", "username": "boss", "csrf_token": token,
                                                   "expires_at": "2099-01-31T18:00"}, headers=html)
    assert created.status_code == 201
    text = created.get_data(as_text=True)
    secret = re.search(r"(wb_live_[A-Za-z0-9_-]+)", text).group(1)
    assert client.get("/api/v1/shipments", headers=bearer(secret)).status_code == 200
    listing = client.get("/admin/api-keys", headers=html).get_data(as_text=True)
    assert secret not in listing and secret[:14] in listing and "31 Jan 2099" in listing
    refused = client.post("/admin/api-keys", data={"name": "", "username": "boss", "csrf_token": token},
                          headers=html)
    assert refused.status_code == 400 and "Give the key a name." in refused.get_data(as_text=True)
    key_id = re.search(r"/admin/api-keys/(\d+)/revoke", listing).group(1)
    # The list's one-click form asks first (so does a GET of the same URL); nothing is revoked yet.
    for question in (client.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token}, headers=html),
                     client.get(f"/admin/api-keys/{key_id}/revoke", headers=html)):
        assert question.status_code == 200
        assert "Are you sure you want to revoke the key " + secret[:14] in question.get_data(as_text=True)
    assert client.get("/api/v1/shipments", headers=bearer(secret)).status_code == 200
    assert client.get("/admin/api-keys/999999/revoke", headers=html).status_code == 404
    revoked = client.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token, "confirm": "yes"},
                          headers=html)
    assert revoked.status_code == 302
    assert "revoked" in client.get("/admin/api-keys", headers=html).get_data(as_text=True)
    assert client.get("/api/v1/shipments", headers=bearer(secret)).status_code == 401


def test_a_json_client_revokes_at_once_even_without_a_body(client, auth):
    auth.login("boss", role="admin")
    created = create_key_as_admin(client, auth, username="boss").get_json()
    revoked = client.post(f"/admin/api-keys/{created['id']}/revoke",
                          headers={**auth.headers(), "Accept": "application/json"})
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert client.get("/api/v1/shipments", headers=bearer(created["key"])).status_code == 401
