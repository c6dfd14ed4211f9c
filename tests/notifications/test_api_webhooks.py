"""/api/v1/webhooks: an integrator's key manages its own account's subscriptions, and a dead delivery is
replayed through the API; over HTTP to a real receiver on 127.0.0.1, on both databases."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from app.notifier.webhooks import verify
from tests.api_support import bearer
from tests.notifications import test_webhooks as hooks
from tests.notifications.test_webhooks import drain_until, webhook_rows

PROBLEM = "application/problem+json"


@pytest.fixture
def app(make_app):
    return make_app(**hooks.HOOKS)


@pytest.fixture
def receiver():
    running = hooks.Receiver()
    yield running
    running.close()


@pytest.fixture
def key(issue_key) -> dict[str, str]:
    return bearer(issue_key("shop", role="admin"))


def subscribe(client, key, url: str, events=("shipment.created",)) -> dict:
    response = client.post("/api/v1/webhooks", headers=key, json={"url": url, "events": list(events),
                                                                  "description": "the shop"})
    assert response.status_code == 201, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def test_a_key_subscribes_and_the_receiver_verifies_with_the_secret_it_was_shown(app, client, key, desk, receiver):
    created = subscribe(client, key, receiver.url)
    assert created["secret"].startswith("whsec_") and created["events"] == ["shipment.created"]
    tracking_id = desk.book()
    drain_until(app, lambda: receiver.received())
    [request] = receiver.received()
    assert verify(created["secret"], request["headers"]["Waybill-Signature"], request["body"])
    listing = client.get("/api/v1/webhooks", headers=key).get_json()["webhooks"]
    assert [hook["id"] for hook in listing] == [created["id"]] and "secret" not in listing[0]
    assert listing[0]["recent_attempts"][0]["status_code"] == 200
    assert tracking_id in request["body"].decode()


def test_a_key_sees_and_changes_only_its_own_accounts_subscriptions(app, client, key, issue_key, receiver):
    mine = subscribe(client, key, receiver.url)
    other = bearer(issue_key("marketplace", role="admin"))
    assert client.get("/api/v1/webhooks", headers=other).get_json() == {"webhooks": []}
    for method, path in (("post", f"/api/v1/webhooks/{mine['id']}/disable"),
                         ("delete", f"/api/v1/webhooks/{mine['id']}")):
        response = getattr(client, method)(path, headers=other)
        assert response.status_code == 404 and response.mimetype == PROBLEM
    disabled = client.post(f"/api/v1/webhooks/{mine['id']}/disable", headers=key)
    assert disabled.status_code == 200 and disabled.get_json()["active"] is False
    deleted = client.delete(f"/api/v1/webhooks/{mine['id']}", headers=key)
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert client.get("/api/v1/webhooks", headers=key).get_json() == {"webhooks": []}
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "shop")
                                     .order_by(AuditEntry.id)).all()
    assert actions == ["webhook_created", "webhook_updated", "webhook_deleted"]


def test_a_dead_delivery_is_replayed_through_the_api(app, client, key, desk, receiver):
    receiver.statuses = [500] * 4
    hook = subscribe(client, key, receiver.url)
    desk.book()
    drain_until(app, lambda: webhook_rows(app)[0].state == "dead")
    [row] = webhook_rows(app)
    replay = f"/api/v1/webhooks/{hook['id']}/deliveries/{row.id}/replay"
    response = client.post(replay, headers=key)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["state"] == "pending" and response.get_json()["event_id"] == f"evt_{row.id}"
    drain_until(app, lambda: webhook_rows(app)[0].state == "sent")
    again = client.post(replay, headers=key)
    assert again.status_code == 409 and again.mimetype == PROBLEM
    assert client.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{row.id + 1000}/replay",
                       headers=key).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"url": "https://example.com/hook"}, "events"),
    ({"url": "https://example.com/hook", "events": []}, "events"),
    ({"url": "https://example.com/hook", "events": ["shipment.exploded"]}, "events"),
    ({"events": ["shipment.created"]}, "url"),
    ({"url": 5, "events": ["shipment.created"]}, "url"),
    ({"url": "https://example.com/hook", "events": ["shipment.created"], "secret": "mine"}, "secret"),
])
def test_a_bad_subscription_is_a_400_problem_and_nothing_is_stored(app, client, key, body, field):
    response = client.post("/api/v1/webhooks", headers=key, json=body)
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert any(name.split(".")[0].split("[")[0] == field for name in response.get_json()["errors"])
    assert client.get("/api/v1/webhooks", headers=key).get_json() == {"webhooks": []}


def test_a_private_receiver_is_refused_when_private_addresses_are_not_allowed(make_app, issue_key):
    strict = make_app(WEBHOOK_ALLOW_PRIVATE=False)
    response = strict.test_client().post("/api/v1/webhooks", headers=bearer(issue_key("shop", role="admin")),
                                         json={"url": "https://127.0.0.1:8443/hook", "events": ["shipment.created"]})
    assert response.status_code == 400 and "url" in response.get_json()["errors"]


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_admin_keys_manage_webhooks(client, issue_key, role):
    staff = bearer(issue_key(f"{role}-key", role=role))
    assert client.get("/api/v1/webhooks", headers=staff).status_code == 403
    assert client.post("/api/v1/webhooks", headers=staff, json={
        "url": "https://example.com/hook", "events": ["shipment.created"]}).status_code == 403
