"""Asking "are you sure?" before webhook actions that one click used to take (app.admin.confirm): a GET of the
action's URL, or a browser's POST without `confirm=yes`, shows the question; JSON clients act at once. (Revoking
API keys, deactivating accounts and ending sessions: tests/test_api_keys.py, tests/test_staff_accounts.py.)"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, WebhookSubscription

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
URL = "https://hooks.example.com/waybill/events"


@pytest.fixture
def admin(auth):
    auth.login("chief", role="admin")
    return auth


def subscribe(client, admin) -> int:
    response = client.post("/admin/webhooks", json={"url": URL, "events": ["shipment.created"]},
                           headers=admin.headers())
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def csrf_from(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def state(app, subscription_id: int) -> tuple[bool | None, int]:
    """The subscription's active flag (None once deleted) and the number of webhook audit rows."""
    with app.app_context():
        subscription = db.session.get(WebhookSubscription, subscription_id)
        audits = db.session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(["webhook_updated", "webhook_deleted"])))
        return (None if subscription is None else subscription.active), audits


@pytest.mark.parametrize("action, question, after", [
    ("disable", "Are you sure you want to disable webhook #{id}?", False),
    ("delete", "Are you sure you want to delete webhook #{id}?", None),
])
def test_webhook_buttons_ask_first_in_the_browser(app, client, admin, action, question, after):
    subscription_id = subscribe(client, admin)
    path = f"/admin/webhooks/{subscription_id}/{action}"
    token = csrf_from(client.get("/admin/webhooks", headers=HTML))
    asked = client.get(path, headers=HTML)
    old_form = client.post(path, data={"csrf_token": token}, headers=HTML)  # the page's one-click form
    for page in (asked, old_form):
        text = page.get_data(as_text=True)
        assert page.status_code == 200 and question.format(id=subscription_id) in text
        assert f'action="{path}"' in text and 'name="confirm" value="yes"' in text
        assert 'href="/admin/webhooks"' in text  # Cancel goes back to the list
    assert state(app, subscription_id) == (True, 0)
    assert client.post(path, data={"confirm": "yes"}, headers=HTML).status_code == 400  # no CSRF token
    done = client.post(path, data={"csrf_token": csrf_from(asked), "confirm": "yes"}, headers=HTML)
    assert done.status_code == 302 and done.headers["Location"] == "/admin/webhooks"
    assert state(app, subscription_id) == (after, 1)
    assert client.get(f"/admin/webhooks/999999/{action}", headers=HTML).status_code == 404


@pytest.mark.parametrize("action, after", [("disable", False), ("delete", None)])
def test_json_clients_act_at_once(app, client, admin, action, after):
    subscription_id = subscribe(client, admin)
    response = client.post(f"/admin/webhooks/{subscription_id}/{action}",
                           headers={**admin.headers(), "Accept": "application/json"})
    assert response.status_code == 200
    assert state(app, subscription_id) == (after, 1)


def test_only_admins_see_the_questions(client, auth):
    assert client.get("/admin/webhooks/1/delete", headers=HTML).status_code == 302  # to the sign-in page
    auth.login("desk", role="operator")
    for path in ("/admin/webhooks/1/delete", "/admin/webhooks/1/disable", "/admin/api-keys/1/revoke"):
        assert client.get(path, headers=HTML).status_code == 403, path
