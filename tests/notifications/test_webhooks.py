"""Signed webhooks through the outbox, over HTTP to a real receiver on 127.0.0.1 (WEBHOOK_ALLOW_PRIVATE on, except
where the address checks are the point): subscriptions from /admin/webhooks, deliveries queued with the change,
signatures the receiver verifies, rotation, retries, dead deliveries and replay, leases, two workers, the address
checks, and the failure clock that switches a subscription off. Each test runs on SQLite and on PostgreSQL."""
from __future__ import annotations

import http.server
import json
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.config import ProductionConfig
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, Notification, WebhookAttempt, WebhookSubscription
from app.notifier import channels, claims
from app.notifier.webhooks import verify
from app.notifier.worker import OutboxWorker
from tests.conftest import SHUTDOWN_POLL_SECONDS
from tests.notifications.conftest import free_port, wait_for

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
ADMIN = ("chief", "correct-horse-9")
ALERTS = ["alerts@waybill.test"]
HOOKS = {
    "MAIL_BACKEND": "console",
    "WEBHOOK_ALLOW_PRIVATE": True,
    "WEBHOOK_TIMEOUT": 2.0,
    "WEBHOOK_MAX_ATTEMPTS": 4,
    "WEBHOOK_RETRY_BACKOFF": 0.05,
    "WEBHOOK_RETRY_BACKOFF_MAX": 0.2,
    "WEBHOOK_RETRY_JITTER": 0.1,
    "ADMIN_ALERT_EMAILS": ALERTS,
}
ALL_EVENTS = ["shipment.created", "shipment.status_changed", "shipment.delivered"]


class Receiver:
    """An integrator's endpoint: records every POST and answers with scripted statuses (then 200); while `hold`
    is set, the answer waits (a delivery stays in flight)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hold = threading.Event()
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.location: str | None = None
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                deadline = time.monotonic() + 10
                while receiver.hold.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.send_response(status)
                if receiver.location and 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2000")
                self.end_headers()
                self.wfile.write(b"r" * 2000)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True).start()

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def app(make_app):
    return make_app(**HOOKS)


class Staff:
    def __init__(self, client, token: str) -> None:
        self.client, self.token = client, token
        self.headers = {"X-CSRFToken": token}

    def post(self, path: str, **kwargs):
        return self.client.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def subscribe(self, url: str, events=None, **extra) -> tuple[int, str]:
        response = self.post("/admin/webhooks", json={"url": url, "events": events or ALL_EVENTS, **extra})
        assert response.status_code == 201, response.get_json()
        body = response.get_json()
        assert body["secret"].startswith("whsec_")
        return body["id"], body["secret"]


def _login(application, make_user, username, password, role) -> Staff:
    make_user(username, password, role)
    client = application.test_client()
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200
    return Staff(client, response.get_json()["csrf_token"])


@pytest.fixture
def admin(app, make_user) -> Staff:
    return _login(app, make_user, *ADMIN, "admin")


def drain_until(application, predicate, timeout: float = 15.0, message: str = "deliveries"):
    def attempt():
        OutboxWorker(application).drain()
        return predicate()
    return wait_for(attempt, timeout=timeout, interval=0.05, message=message)


def webhook_rows(application) -> list[Notification]:
    with application.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.channel == "webhook")
                                  .order_by(Notification.id)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def attempts_of(application) -> list[WebhookAttempt]:
    with application.app_context():
        rows = db.session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


# --- delivery, signing, payload ---------------------------------------------------------------------------------

def test_a_booking_and_a_status_change_reach_the_receiver_signed_with_the_shown_secret(app, admin, desk, receiver):
    _, secret = admin.subscribe(receiver.url, description="Shop")
    tracking_id = desk.book()
    assert desk.update(tracking_id, "Picked Up", location="Kakinada", note="fragile").status_code == 200
    drain_until(app, lambda: len(receiver.received()) == 2)
    requests = receiver.received()
    for request in requests:
        assert verify(secret, request["headers"]["Waybill-Signature"], request["body"])
        assert request["headers"]["Content-Type"] == "application/json"
    ids = [r["headers"]["Waybill-Event-Id"] for r in requests]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"evt_\d+", i) for i in ids)
    created, changed = receiver.events()
    assert [created["type"], changed["type"]] == ["shipment.created", "shipment.status_changed"]
    assert [created["id"], changed["id"]] == ids
    assert created["data"]["shipment"]["tracking_id"] == tracking_id
    assert created["data"]["shipment"]["status"] == "Booked" and created["data"]["previous_status"] is None
    assert changed["data"]["event"] == {**changed["data"]["event"], "status": "Picked Up", "location": "Kakinada",
                                        "note": "fragile"}
    assert changed["data"]["previous_status"] == "Booked"
    assert changed["data"]["shipment"]["mobile"].startswith("+")  # the staff view: it goes to the integrator
    assert [row.state for row in webhook_rows(app)] == ["sent", "sent"]
    assert [(a.attempt, a.status_code, len(a.response_body)) for a in attempts_of(app)] == [(1, 200, 1024)] * 2


def test_each_subscription_gets_the_event_types_it_chose(app, admin, desk, receiver):
    admin.subscribe(receiver.url + "?only=delivered", events=["shipment.delivered"])
    admin.subscribe(receiver.url + "?only=changes", events=["shipment.status_changed"])
    tracking_id = desk.book()
    for status in ("Picked Up", "In Transit", "Out for Delivery", "Delivered"):
        assert desk.update(tracking_id, status).status_code == 200
    drain_until(app, lambda: len(receiver.received()) == 5)
    by_path: dict[str, list[str]] = {}
    for request, event in zip(receiver.received(), receiver.events(), strict=True):
        by_path.setdefault(request["path"], []).append(event["data"]["event"]["status"] + ":" + event["type"])
    assert by_path["/hook?only=delivered"] == ["Delivered:shipment.delivered"]
    assert by_path["/hook?only=changes"] == [f"{s}:shipment.status_changed" for s in
                                             ("Picked Up", "In Transit", "Out for Delivery", "Delivered")]


def test_the_delivered_payload_says_who_received_the_parcel(app, admin, desk, receiver):
    admin.subscribe(receiver.url, events=["shipment.delivered"])
    tracking_id = desk.book()
    for status in ("Picked Up", "In Transit", "Out for Delivery"):
        assert desk.update(tracking_id, status).status_code == 200
    delivered = desk.client.post(f"/update/{tracking_id}", headers=desk.headers, json={
        "status": "Delivered", "location": "Kakinada", "received_by": "Ravi Kumar Menon"})
    assert delivered.status_code == 200, delivered.get_json()
    drain_until(app, lambda: len(receiver.received()) == 1)
    [event] = receiver.events()
    assert event["type"] == "shipment.delivered"
    assert event["data"]["event"]["received_by"] == "Ravi Kumar Menon"  # the staff view: the full name


def test_deliveries_are_queued_in_the_changes_transaction(app, admin, desk, receiver):
    admin.subscribe(receiver.url)
    tracking_id = desk.book()
    refused = desk.update(tracking_id, "Delivered")  # not allowed from Booked: nothing is written
    assert refused.status_code == 409
    assert [row.subject for row in webhook_rows(app)] == ["shipment.created"]


def test_a_rotated_secret_overlaps_the_new_one_then_stops_signing(app, admin, desk, receiver):
    subscription_id, old = admin.subscribe(receiver.url)
    rotated = admin.post(f"/admin/webhooks/{subscription_id}/rotate", json={"overlap_hours": 1})
    assert rotated.status_code == 200
    new = rotated.get_json()["secret"]
    assert new != old and rotated.get_json()["previous_secret_until"]
    desk.book()
    drain_until(app, lambda: len(receiver.received()) == 1)
    [request] = receiver.received()
    signature = request["headers"]["Waybill-Signature"]
    assert signature.count("v1=") == 2
    assert verify(new, signature, request["body"]) and verify(old, signature, request["body"])
    ended = admin.post(f"/admin/webhooks/{subscription_id}/rotate", json={"overlap_hours": 0}).get_json()
    assert ended["previous_secret_until"] is None
    desk.book()
    drain_until(app, lambda: len(receiver.received()) == 2)
    request = receiver.received()[1]
    signature = request["headers"]["Waybill-Signature"]
    assert signature.count("v1=") == 1 and verify(ended["secret"], signature, request["body"])
    assert not verify(new, signature, request["body"]) and not verify(old, signature, request["body"])
    default = admin.post(f"/admin/webhooks/{subscription_id}/rotate", json={}).get_json()
    assert default["previous_secret_until"]  # WEBHOOK_ROTATION_OVERLAP_HOURS, 24 by default


# --- failures, retries, dead, replay ----------------------------------------------------------------------------

def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(app, admin, desk, receiver):
    receiver.statuses = [500, 503]
    admin.subscribe(receiver.url, events=["shipment.created"])
    desk.book()
    drain_until(app, lambda: webhook_rows(app)[0].state == "sent")
    requests = receiver.received()
    assert len(requests) == 3
    assert len({r["headers"]["Waybill-Event-Id"] for r in requests}) == 1  # one event, tried three times
    assert [(a.attempt, a.status_code) for a in attempts_of(app)] == [(1, 500), (2, 503), (3, 200)]
    assert webhook_rows(app)[0].attempts == 3
    with app.app_context():
        assert db.session.scalar(select(WebhookSubscription.failing_since)) is None  # the success reset it


def test_after_its_last_attempt_a_delivery_is_dead_and_a_replay_delivers_it(app, admin, desk, receiver):
    receiver.statuses = [500] * 4
    admin.subscribe(receiver.url, events=["shipment.created"])
    desk.book()
    drain_until(app, lambda: webhook_rows(app)[0].state == "dead")
    [row] = webhook_rows(app)
    assert row.attempts == 4 and "Gave up after 4 attempts" in row.last_error
    listing = admin.get("/admin/webhooks").get_json()["subscriptions"][0]
    assert [d["id"] for d in listing["dead_deliveries"]] == [row.id]
    assert admin.post(f"/admin/webhooks/deliveries/{row.id}/replay", json={}).get_json()["state"] == "pending"
    drain_until(app, lambda: webhook_rows(app)[0].state == "sent")
    requests = receiver.received()
    assert len(requests) == 5 and requests[-1]["headers"]["Waybill-Event-Id"] == f"evt_{row.id}"
    again = admin.post(f"/admin/webhooks/deliveries/{row.id}/replay", json={})
    assert again.status_code == 409
    with app.app_context():
        audit = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("webhook%"))).all()
    assert audit == ["webhook_created", "webhook_delivery_replayed"]


def test_a_worker_that_died_holding_a_delivery_is_replaced_after_its_lease(app, admin, desk, receiver):
    admin.subscribe(receiver.url, events=["shipment.created"])
    desk.book()
    with app.app_context():  # a worker claims the row, then dies before sending it
        taken = claims.claim_due(10, lease_seconds=0.5, max_attempts=channels.max_attempts(app.config))
        db.session.commit()
    assert "webhook" in {c.channel for c in taken}
    OutboxWorker(app).drain()
    assert receiver.received() == []  # the lease still holds
    time.sleep(0.6)
    drain_until(app, lambda: webhook_rows(app)[0].state == "sent")
    assert len(receiver.received()) == 1


def test_two_workers_on_one_database_deliver_each_event_once(make_app, app, admin, desk, receiver):
    admin.subscribe(receiver.url)
    tracking_ids = [desk.book() for _ in range(8)]
    for tracking_id in tracking_ids:
        assert desk.update(tracking_id, "Picked Up").status_code == 200
    other = make_app(**HOOKS)
    done = threading.Event()
    errors: list[BaseException] = []

    def work(application):
        try:
            while not done.is_set():
                OutboxWorker(application).drain()
                time.sleep(0.01)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in (app, other)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: all(r.state == "sent" for r in webhook_rows(app)), timeout=30, message="all sent")
    finally:
        done.set()
        for thread in threads:
            thread.join(10)
    assert errors == []
    ids = [r["headers"]["Waybill-Event-Id"] for r in receiver.received()]
    assert len(ids) == 16 and len(set(ids)) == 16


# --- where Waybill sends to -------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://hooks.example.com/x", "https://127.0.0.1/hook", "https://10.0.0.5/hook", "https://192.168.1.9/",
    "https://169.254.169.254/latest/meta-data/", "https://[fe80::1]/", "https://[::1]/", "https://100.100.100.200/",
    "https://[::ffff:127.0.0.1]/", "https://user:pw@hooks.example.com/", "ftp://hooks.example.com/",
])
def test_subscribing_to_a_url_that_is_not_public_https_is_refused(make_app, make_user, url):
    strict = make_app(**{**HOOKS, "WEBHOOK_ALLOW_PRIVATE": False})
    staff = _login(strict, make_user, *ADMIN, "admin")
    response = staff.post("/admin/webhooks", json={"url": url, "events": ALL_EVENTS})
    assert response.status_code == 400 and "url" in response.get_json()["fields"]
    with strict.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


DISGUISED_PRIVATE = [  # what the resolver takes for loopback, "this host" or a metadata server, or not a host
    "https://2130706433/", "https://0x7f000001/", "https://0177.0.0.1/", "https://127.1/", "https://0/",
    "https://localhost/hook", "https://LocalHost./hook", "https://api.localhost/", "https://metadata.google.internal/",
    "https://metadata.google.internal./computeMetadata/v1/", "https://hooks.exa mple.com/", "https://1.2.3.4.5/",
]


@pytest.mark.parametrize("url", DISGUISED_PRIVATE)
def test_subscribing_to_a_disguised_private_or_malformed_host_is_refused_by_page_and_api(
        make_app, make_user, issue_key, url):
    """The same check as delivery's (parse_destination), at subscribe time: 400 with fields.url, nothing stored."""
    from tests.api_support import bearer

    strict = make_app(**{**HOOKS, "WEBHOOK_ALLOW_PRIVATE": False})
    staff = _login(strict, make_user, *ADMIN, "admin")
    response = staff.post("/admin/webhooks", json={"url": url, "events": ALL_EVENTS})
    assert response.status_code == 400 and "url" in response.get_json()["fields"], response.get_json()
    page = staff.client.post("/admin/webhooks", headers=HTML, data={
        "csrf_token": staff.token, "url": url, "events": ["shipment.created"]})
    assert page.status_code == 400
    api = strict.test_client().post("/api/v1/webhooks", headers=bearer(issue_key("shop", role="admin")),
                                    json={"url": url, "events": ["shipment.created"]})
    assert api.status_code == 400 and "url" in api.get_json()["errors"], api.get_json()
    with pytest.raises(channels.webhooks.DestinationRefused):  # and delivery refuses it with the same function
        channels.webhooks.check_url(url, allow_private=False)
    with strict.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


def test_the_resolved_address_is_checked_at_send_time(make_app, app, admin, desk, receiver):
    """A name that passed when subscribing and resolves to loopback when sending (what DNS rebinding does)
    is refused before any connection; so is a subscription made while private addresses were allowed."""
    strict = make_app(**{**HOOKS, "WEBHOOK_ALLOW_PRIVATE": False})
    admin.subscribe(f"https://localhost:{receiver.port}/hook")  # a name: not resolved when subscribing
    admin.subscribe(f"https://127.0.0.1:{receiver.port}/hook")  # allowed by `app`, sent by `strict`
    desk.book()
    OutboxWorker(strict).drain()
    assert receiver.received() == []
    rows = webhook_rows(app)
    assert [row.state for row in rows] == ["pending", "pending"]
    assert all("loopback" in row.last_error for row in rows), [row.last_error for row in rows]
    assert all(a.status_code is None and "loopback" in a.error for a in attempts_of(app))


def test_in_production_plain_http_and_private_receivers_cannot_be_allowed(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key")
    monkeypatch.delenv("WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert ProductionConfig().WEBHOOK_ALLOW_PRIVATE is False
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    with pytest.raises(RuntimeError, match="WEBHOOK_ALLOW_PRIVATE"):
        ProductionConfig()


def test_a_redirect_is_not_followed_and_only_1kb_of_an_answer_is_kept(app, admin, desk, receiver):
    receiver.statuses = [302]
    receiver.location = f"http://127.0.0.1:{receiver.port}/elsewhere"
    admin.subscribe(receiver.url, events=["shipment.created"])
    desk.book()
    OutboxWorker(app).drain()
    assert [r["path"] for r in receiver.received()] == ["/hook"]
    [row] = webhook_rows(app)
    assert row.state == "pending" and "redirects are not followed" in row.last_error
    [attempt] = attempts_of(app)
    assert attempt.status_code == 302 and len(attempt.response_body) == 1024


# --- the failure clock ------------------------------------------------------------------------------------------

def test_a_subscription_failing_for_three_days_is_disabled_and_the_admins_are_told(app, admin, desk, receiver):
    receiver.statuses = [500] * 10
    subscription_id, _ = admin.subscribe(receiver.url)
    tracking_id = desk.book()
    OutboxWorker(app).drain()
    with app.app_context():
        subscription = db.session.get(WebhookSubscription, subscription_id)
        assert subscription.active and subscription.failing_since is not None
        # Three days of failures, told through the data: the clock started 72 h and a minute ago.
        subscription.failing_since = utcnow() - timedelta(hours=72, minutes=1)
        db.session.execute(update(Notification).where(Notification.channel == "webhook")
                           .values(next_attempt_at=utcnow()))
        db.session.commit()
    OutboxWorker(app).drain()
    with app.app_context():
        subscription = db.session.get(WebhookSubscription, subscription_id)
        assert not subscription.active and "72 hours" in subscription.disabled_reason
        alerts = db.session.scalars(select(Notification).where(Notification.channel == "admin_email")).all()
        assert [(a.recipient, a.subject) for a in alerts] == [
            (ALERTS[0], f"Webhook subscription #{subscription_id} disabled (127.0.0.1)")]
        assert db.session.scalar(select(AuditEntry.actor).where(AuditEntry.action == "webhook_updated")) == "system"
    assert desk.update(tracking_id, "Picked Up").status_code == 200
    assert [row.subject for row in webhook_rows(app)] == ["shipment.created"]  # nothing new is queued
    listing = admin.get("/admin/webhooks").get_json()["subscriptions"][0]
    assert listing["active"] is False and listing["disabled_reason"]


def test_a_disabled_subscription_gets_nothing_and_its_waiting_deliveries_end_dead(app, admin, desk, receiver):
    subscription_id, _ = admin.subscribe(receiver.url)
    desk.book()
    assert admin.post(f"/admin/webhooks/{subscription_id}/disable", json={}).get_json()["active"] is False
    desk.book()
    OutboxWorker(app).drain()
    assert receiver.received() == []
    [row] = webhook_rows(app)
    assert row.state == "dead" and "disabled" in row.last_error
    assert admin.post(f"/admin/webhooks/deliveries/{row.id}/replay", json={}).status_code == 409
    assert admin.post(f"/admin/webhooks/{subscription_id}/enable", json={}).get_json()["active"] is True
    assert admin.post(f"/admin/webhooks/deliveries/{row.id}/replay", json={}).status_code == 200
    drain_until(app, lambda: len(receiver.received()) == 1)


def test_deleting_a_subscription_ends_its_waiting_deliveries(app, admin, desk, receiver):
    subscription_id, _ = admin.subscribe(receiver.url)
    desk.book()
    assert admin.post(f"/admin/webhooks/{subscription_id}/delete", json={}).get_json()["deleted"] is True
    [row] = webhook_rows(app)
    assert row.state == "dead" and "deleted" in row.last_error
    assert admin.get("/admin/webhooks").get_json()["subscriptions"] == []
    assert admin.post(f"/admin/webhooks/deliveries/{row.id}/replay", json={}).status_code == 404


@pytest.mark.parametrize("answer", [200, 500])
def test_deleting_a_subscription_while_its_delivery_is_in_flight_ends_it_quietly(app, admin, desk, receiver,
                                                                                   answer):
    """The worker's pass goes on: the vanished subscription's deliveries end (sent if the receiver took it,
    dead if not) with no attempt logged for it, and the next subscription's delivery goes out in the same pass."""
    doomed, _ = admin.subscribe(receiver.url, events=["shipment.created"])
    desk.book()  # one delivery, for the doomed subscription
    other = Receiver()
    try:
        admin.subscribe(other.url, events=["shipment.created"])
        desk.book()  # two more: the doomed subscription's and the other one's
        receiver.statuses.append(answer)
        receiver.hold.set()
        outcome: list = []
        worker = threading.Thread(target=lambda: outcome.append(_drain_or_error(app)))
        worker.start()
        wait_for(lambda: receiver.received(), message="the first delivery to be in flight")
        assert admin.post(f"/admin/webhooks/{doomed}/delete", json={}).status_code == 200
        receiver.hold.clear()
        worker.join(30)
        assert not worker.is_alive()
        [report] = outcome
        assert not isinstance(report, BaseException), repr(report)
        assert len(other.received()) == 1  # the rest of the pass went on
    finally:
        other.close()
    states = {row.recipient: row.state for row in webhook_rows(app) if row.recipient != f"subscription:{doomed}"}
    assert list(states.values()) == ["sent"]
    doomed_rows = [row for row in webhook_rows(app) if row.recipient == f"subscription:{doomed}"]
    assert [row.state for row in doomed_rows] == ["sent" if answer == 200 else "dead", "dead"]
    assert all("deleted" in row.last_error for row in doomed_rows if row.state == "dead")
    assert [a.subscription_id for a in attempts_of(app)] == [int(next(iter(states))[len("subscription:"):])]
    assert len(receiver.received()) == 1


def _drain_or_error(application):
    try:
        return OutboxWorker(application).drain()
    except BaseException as exc:  # noqa: BLE001 - the test reports it
        return exc


# --- the admin pages --------------------------------------------------------------------------------------------

def test_the_page_creates_a_webhook_and_shows_its_secret_once(app, admin, receiver):
    page = admin.get("/admin/webhooks", headers=HTML)
    assert page.status_code == 200 and 'name="events"' in page.get_data(as_text=True)
    created = admin.client.post("/admin/webhooks", headers=HTML, data={
        "csrf_token": admin.token, "url": receiver.url, "events": ["shipment.created", "shipment.delivered"],
        "description": "Warehouse"})
    assert created.status_code == 201
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', created.get_data(as_text=True)).group(1)
    later = admin.get("/admin/webhooks", headers=HTML).get_data(as_text=True)
    assert secret not in later and "Warehouse" in later
    with app.app_context():
        details = " ".join(json.dumps(d) for d in db.session.scalars(select(AuditEntry.details)))
        subscription = db.session.scalars(select(WebhookSubscription)).one()
    assert secret not in details and secret not in subscription.secret_sealed
    assert subscription.on_created and subscription.on_delivered and not subscription.on_status_changed
    refused = admin.client.post("/admin/webhooks", headers=HTML, data={
        "csrf_token": admin.token, "url": "ftp://x", "events": []})
    assert refused.status_code == 400 and "was not created" in refused.get_data(as_text=True)
    no_token = admin.client.post("/admin/webhooks", headers=HTML, data={"url": receiver.url,
                                                                        "events": ["shipment.created"]})
    assert no_token.status_code == 400
    rotated = admin.client.post(f"/admin/webhooks/{subscription.id}/rotate", headers=HTML,
                                data={"csrf_token": admin.token, "overlap_hours": "2"})
    assert rotated.status_code == 200
    assert re.search(r'id="webhook-secret">(whsec_[^<]+)<', rotated.get_data(as_text=True)).group(1) != secret


def test_an_admin_sees_and_changes_only_their_own_subscriptions_on_the_pages(app, admin, make_user, desk,
                                                                              receiver):
    """The API's rule on /admin/webhooks too: another admin's subscription is not listed, and acting on it (or on
    one of its deliveries) is a 404 that changes nothing."""
    theirs, secret = admin.subscribe(receiver.url)
    receiver.statuses = [500] * 4
    desk.book()
    drain_until(app, lambda: webhook_rows(app) and webhook_rows(app)[0].state == "dead")
    [dead] = webhook_rows(app)
    other = _login(app, make_user, "deputy", "correct-horse-8", "admin")
    assert other.get("/admin/webhooks").get_json()["subscriptions"] == []
    assert f"#{theirs}" not in other.get("/admin/webhooks", headers=HTML).get_data(as_text=True)
    with app.app_context():
        before = db.session.scalar(select(WebhookSubscription.secret_sealed))
        audited = db.session.scalar(select(func.count()).select_from(AuditEntry))
    for path in (f"/admin/webhooks/{theirs}/rotate", f"/admin/webhooks/{theirs}/disable",
                 f"/admin/webhooks/{theirs}/enable", f"/admin/webhooks/{theirs}/delete",
                 f"/admin/webhooks/deliveries/{dead.id}/replay"):
        response = other.post(path, json={})
        assert response.status_code == 404, (path, response.get_json())
        assert "secret" not in response.get_json()
        page = other.client.post(path, headers=HTML, data={"csrf_token": other.token, "confirm": "yes"})
        assert page.status_code == 404 and "whsec_" not in page.get_data(as_text=True), path
    with app.app_context():
        assert db.session.scalar(select(WebhookSubscription.secret_sealed)) == before
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == audited
    assert [row.state for row in webhook_rows(app)] == ["dead"]
    assert [s["id"] for s in admin.get("/admin/webhooks").get_json()["subscriptions"]] == [theirs]
    assert admin.post(f"/admin/webhooks/{theirs}/rotate", json={}).status_code == 200  # the owner still can


def test_answers_that_show_a_secret_are_not_cached(app, admin, receiver, make_user):
    created = admin.post("/admin/webhooks", json={"url": receiver.url, "events": ALL_EVENTS})
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    subscription_id = created.get_json()["id"]
    page = admin.client.post("/admin/webhooks", headers=HTML, data={
        "csrf_token": admin.token, "url": receiver.url, "events": ["shipment.created"]})
    assert page.status_code == 201 and page.headers["Cache-Control"] == "no-store"
    rotated = admin.post(f"/admin/webhooks/{subscription_id}/rotate", json={})
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    rotated_page = admin.client.post(f"/admin/webhooks/{subscription_id}/rotate", headers=HTML,
                                     data={"csrf_token": admin.token})
    assert rotated_page.status_code == 200 and rotated_page.headers["Cache-Control"] == "no-store"
    make_user("scanner", "correct-horse-1", "operator")  # API keys: the issue answers, JSON and page, too
    key = admin.post("/admin/api-keys", json={"name": "Scanner", "username": "scanner"})
    assert key.status_code == 201 and key.headers["Cache-Control"] == "no-store"
    key_page = admin.client.post("/admin/api-keys", headers=HTML, data={
        "csrf_token": admin.token, "name": "Scanner 2", "username": "scanner"})
    assert key_page.status_code == 201 and key_page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path, body", [
    ("/admin/webhooks", {"events": ALL_EVENTS}),
    ("/admin/webhooks", {"url": "", "events": ALL_EVENTS}),
    ("/admin/webhooks", {"url": 5, "events": ALL_EVENTS}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h"}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": []}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": "shipment.created"}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": ["shipment.lost"]}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": [1]}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": ALL_EVENTS, "description": 7}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": ALL_EVENTS, "description": "d" * 201}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/" + "p" * 2000, "events": ALL_EVENTS}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h", "events": ALL_EVENTS, "secret": "mine"}),
    ("/admin/webhooks", {"url": "http://127.0.0.1:9/h\u0000", "events": ALL_EVENTS}),
    ("/admin/webhooks", ["not", "an", "object"]),
    ("/admin/webhooks/{id}/rotate", {"overlap_hours": -1}),
    ("/admin/webhooks/{id}/rotate", {"overlap_hours": 1000}),
    ("/admin/webhooks/{id}/rotate", {"overlap_hours": "soon"}),
    ("/admin/webhooks/{id}/rotate", {"overlap_hours": True}),
    ("/admin/webhooks/{id}/rotate", {"overlap": 1}),
])
def test_bad_input_is_a_400_with_fields_and_changes_nothing(app, admin, receiver, path, body):
    subscription_id, _ = admin.subscribe(receiver.url)
    with app.app_context():
        before = db.session.scalar(select(WebhookSubscription.secret_sealed))
    response = admin.post(path.format(id=subscription_id), json=body)
    assert response.status_code == 400, response.get_json()
    assert set(response.get_json()) >= {"error", "fields"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 1
        assert db.session.scalar(select(WebhookSubscription.secret_sealed)) == before


def test_malformed_bodies_and_unknown_ids_are_4xx(app, admin, desk):
    assert admin.post("/admin/webhooks", data="{not json", headers={"Content-Type": "application/json"}) \
        .status_code == 400
    desk.book()
    assert webhook_rows(app) == []  # no subscription: no webhook rows
    with app.app_context():
        email_id = db.session.scalar(select(Notification.id))
    for path in ("/admin/webhooks/999/disable", "/admin/webhooks/999/enable", "/admin/webhooks/999/delete",
                 "/admin/webhooks/999/rotate", "/admin/webhooks/99999999999/disable",
                 "/admin/webhooks/deliveries/999/replay", f"/admin/webhooks/deliveries/{email_id}/replay",
                 "/admin/webhooks/deliveries/99999999999/replay", "/admin/webhooks/abc/disable"):
        assert admin.post(path, json={}).status_code == 404, path


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_manage_webhooks(app, make_user, role):
    staff = _login(app, make_user, f"{role}9", "correct-horse-7", role)
    assert staff.get("/admin/webhooks").status_code == 403
    for path in ("/admin/webhooks", "/admin/webhooks/1/disable", "/admin/webhooks/1/enable",
                 "/admin/webhooks/1/rotate", "/admin/webhooks/1/delete", "/admin/webhooks/deliveries/1/replay"):
        assert staff.post(path, json={"url": "http://127.0.0.1:9/", "events": ALL_EVENTS}).status_code == 403, path
    anonymous = app.test_client()
    assert anonymous.get("/admin/webhooks").status_code == 401
    assert anonymous.post("/admin/webhooks", json={}).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(WebhookSubscription)) == 0


# --- the README's verification snippets, run against a real delivery ---------------------------------------------

def _readme_snippet(language: str) -> str:
    from pathlib import Path

    section = (Path(__file__).resolve().parents[2] / "README.md").read_text().split("## Webhooks", 1)[1]
    section = section.split("\n## ", 1)[0]
    [block] = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    return block


def test_the_readme_verification_snippets_accept_a_real_delivery_and_refuse_a_tampered_one(
        app, admin, desk, receiver, tmp_path):
    import shutil
    import subprocess

    _, secret = admin.subscribe(receiver.url)
    desk.book()
    drain_until(app, lambda: len(receiver.received()) == 1)
    [request] = receiver.received()
    header, body = request["headers"]["Waybill-Signature"], request["body"]
    scope: dict = {}
    exec(_readme_snippet("python"), scope)  # noqa: S102 - the README's own code, run as written
    check = scope["verify_waybill_signature"]
    assert check(secret, header, body) and not check(secret, header, body + b" ")
    assert not check("whsec_wrong", header, body)
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the JavaScript snippet was not run")
    script = tmp_path / "verify.js"
    script.write_text(_readme_snippet("javascript") + """
const [secret, header, bodyFile] = process.argv.slice(2);
const body = require("fs").readFileSync(bodyFile);
const tampered = Buffer.concat([body, Buffer.from(" ")]);
console.log(JSON.stringify([verifyWaybillSignature(secret, header, body),
                            verifyWaybillSignature(secret, header, tampered),
                            verifyWaybillSignature("whsec_wrong", header, body)]));
""")
    (tmp_path / "body.json").write_bytes(body)
    result = subprocess.run(["node", str(script), secret, header, str(tmp_path / "body.json")],
                            capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(result.stdout) == [True, False, False]
