"""/admin/notifications: the outbox for staff, in HTML and JSON; the retry action for dead rows."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Notification
from app.services.outbox.queueing import OUTBOX_PAGE_SIZE
from app.services.shipments.booking import NewShipment, create_shipment
from tests.notifications.conftest import notification_rows

HTML = {"Accept": "text/html"}


def set_state(app, state: str, **values) -> None:
    with app.app_context():
        db.session.execute(update(Notification).values(state=state, **values))
        db.session.commit()
        db.session.remove()


def book_directly(app, count: int) -> None:
    with app.app_context():
        for index in range(count):
            create_shipment(NewShipment("Asha Rao", "Vikram Nair", "+919876543210", f"r{index}@example.com",
                                        "Kochi"))
        db.session.commit()
        db.session.remove()


@pytest.mark.parametrize("headers, expected", [({}, 401), (HTML, 302)])
def test_outbox_needs_a_staff_login(client, headers, expected):
    response = client.get("/admin/notifications", headers=headers)
    assert response.status_code == expected
    if expected == 302:
        assert "/login?next=" in response.headers["Location"]


def test_json_lists_newest_first_with_staff_fields(app, desk, client):
    first = desk.book(email="first@example.com")
    second = desk.book(email="second@example.com")
    body = desk.client.get("/admin/notifications").get_json()
    assert [n["tracking_id"] for n in body["notifications"]] == [second, first]
    entry = body["notifications"][0]
    assert entry["recipient"] == "second@example.com"
    assert entry["state"] == "pending" and entry["attempts"] == 0 and entry["last_error"] is None
    assert entry["subject"] == f"Shipment {second}: Booked"
    assert entry["created_at"].endswith("Z") and entry["sent_at"] is None
    assert body["total"] == 2 and body["page"] == 1 and body["pages"] == 1
    assert body["counts"] == {"pending": 2, "sending": 0, "sent": 0, "dead": 0, "suppressed": 0}


def test_filter_by_state(app, desk):
    desk.book()
    set_state(app, "sent")
    desk.book()
    pending = desk.client.get("/admin/notifications?state=pending").get_json()
    assert [n["state"] for n in pending["notifications"]] == ["pending"]
    assert pending["state"] == "pending" and pending["total"] == 1
    assert desk.client.get("/admin/notifications?state=dead").get_json()["notifications"] == []
    everything = desk.client.get("/admin/notifications?state=").get_json()
    assert everything["total"] == 2 and everything["state"] is None


def test_pages(app, desk):
    book_directly(app, OUTBOX_PAGE_SIZE + 1)
    first = desk.client.get("/admin/notifications").get_json()
    second = desk.client.get("/admin/notifications?page=2").get_json()
    assert len(first["notifications"]) == OUTBOX_PAGE_SIZE and first["pages"] == 2
    assert len(second["notifications"]) == 1
    assert second["notifications"][0]["id"] == min(n.id for n in notification_rows(app))
    assert desk.client.get("/admin/notifications?page=3").get_json()["notifications"] == []
    html = desk.client.get("/admin/notifications?page=2", headers=HTML).get_data(as_text=True)
    assert '<nav class="pagination"' in html and 'rel="prev"' in html and 'rel="next"' not in html


@pytest.mark.parametrize("query, field", [
    ("state=lost", "state"), ("state=SENT", "state"), ("page=0", "page"), ("page=-1", "page"),
    ("page=abc", "page"), ("page=1.5", "page"), ("page=99999999999", "page"),
])
def test_bad_filters_are_400(app, desk, query, field):
    response = desk.client.get(f"/admin/notifications?{query}")
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert desk.client.get(f"/admin/notifications?{query}", headers=HTML).status_code == 400


def test_html_page_shows_the_outbox(app, desk):
    tracking_id = desk.book(email="refused@example.com")
    set_state(app, "dead", attempts=1, last_error="Recipient refused: 550 5.1.1 no such user")
    html = desk.client.get("/admin/notifications?state=dead", headers=HTML).get_data(as_text=True)
    assert '<table class="data-table data-table--stack">' in html
    assert '<span class="badge badge-dead">dead</span>' in html
    assert "refused@example.com" in html and tracking_id in html
    assert "550 5.1.1 no such user" in html
    assert '<form class="filters"' in html
    assert re.search(r'<form method="post" action="/admin/notifications/\d+/retry">', html)
    assert 'name="csrf_token"' in html and '<button class="button" type="submit"' in html


def test_retry_needs_login_and_csrf(app, desk, client):
    desk.book()
    set_state(app, "dead", attempts=4)
    notification_id = notification_rows(app)[0].id
    url = f"/admin/notifications/{notification_id}/retry"

    assert client.post(url).status_code == 401  # nobody logged in (the fixture's own client)
    assert desk.client.post(url).status_code == 400  # logged in, no CSRF token
    assert desk.client.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert notification_rows(app)[0].state == "dead"

    response = desk.client.post(url, headers=desk.headers)
    assert response.status_code == 200
    assert response.get_json()["notification"]["state"] == "pending"
    row = notification_rows(app)[0]
    assert (row.state, row.attempts) == ("pending", 0)


def test_retry_from_the_html_form(app, desk):
    desk.book()
    set_state(app, "dead", attempts=4)
    html = desk.client.get("/admin/notifications?state=dead", headers=HTML).get_data(as_text=True)
    action = re.search(r'action="(/admin/notifications/\d+/retry)"', html).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = desk.client.post(action, data={"csrf_token": token, "state": "dead"}, headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/notifications?state=dead")
    assert notification_rows(app)[0].state == "pending"


@pytest.mark.parametrize("state", ["pending", "sending", "sent"])
def test_only_dead_rows_can_be_retried(app, desk, state):
    desk.book()
    set_state(app, state)
    notification_id = notification_rows(app)[0].id
    response = desk.client.post(f"/admin/notifications/{notification_id}/retry", headers=desk.headers)
    assert response.status_code == 409
    assert notification_rows(app)[0].state == state


def test_retry_of_an_unknown_row_is_404(app, desk):
    assert desk.client.post("/admin/notifications/999999/retry", headers=desk.headers).status_code == 404
    # An id beyond the column's range is unknown too, not a driver overflow (500).
    too_big = desk.client.post("/admin/notifications/99999999999999999999/retry", headers=desk.headers)
    assert too_big.status_code == 404


def test_a_retried_email_and_a_replayed_webhook_delivery_are_revived_alike(make_app, make_user):
    """Both ways of sending a dead row again (the outbox's retry, a webhook replay) revive it the one way
    (queueing.revive_dead); each still writes its own audit row."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.domain.timeutil import utcnow
    from app.models import AuditEntry
    from app.services.outbox.queueing import retry_dead
    from app.services.outbox.webhooks import create_subscription, replay_delivery

    app = make_app(WEBHOOK_ALLOW_PRIVATE=True)
    owner = make_user("hooks-admin", "correct-horse-1", "admin")
    with app.app_context():
        create_subscription(owner, "http://127.0.0.1:9/hook", ["shipment.created"], actor="hooks-admin")
        create_shipment(NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "Kochi"))
        db.session.commit()
        long_ago = utcnow() - timedelta(days=2)
        db.session.execute(update(Notification).values(
            state="dead", attempts=4, next_attempt_at=long_ago, lease_until=long_ago, last_error="refused"))
        db.session.commit()
        email = db.session.scalars(select(Notification).where(Notification.channel == "email")).one()
        delivery = db.session.scalars(select(Notification).where(Notification.channel == "webhook")).one()
        before = utcnow()
        retry_dead(email.id, actor="operator1")
        replay_delivery(delivery.id, actor="hooks-admin")
        db.session.commit()
        revived = [(row.state, row.attempts, row.lease_until, row.last_error) for row in (email, delivery)]
        assert revived == [("pending", 0, None, "refused")] * 2
        assert all(before <= row.next_attempt_at <= utcnow() for row in (email, delivery))
        actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "notification")
                                     .order_by(AuditEntry.id)).all()
        assert actions == ["notification_retried", "webhook_delivery_replayed"]
