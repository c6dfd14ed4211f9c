"""Roles as data, every staff route declaring its roles, and the append-only audit trail."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.domain.roles import PERMISSIONS, ROLES, Permission, may
from app.extensions import db
from app.models import AuditEntry, Notification
from app.services.staff.audit import ACTIONS, REDACTED, record_audit

# Routes anyone may call. A new route is either added here on purpose or declares its roles.
PUBLIC_ENDPOINTS = {
    "static", "tracking.landing", "tracking.track_form", "tracking.track", "tracking.search_form",
    "tracking.search", "tracking.full_details", "shipments.create", "auth.login", "auth.logout", "health.healthz",
    "health.readyz",
    "health.prometheus_metrics",  # no session: the scraper's bearer token (METRICS_TOKEN), else 404
    "api.openapi_document", "api.api_docs",  # the API's published contract and its readable page
    "notifications.choices",  # no session: the signed token in the URL (the recipient's choices, one-click unsubscribe)
    "tracking.track_events",  # the public tracking JSON pushed as it changes: what GET /track/<id> answers anyone
    "tracking.ndr_answer",  # no session: the signed token in the URL (the recipient's answer to a failed delivery)
    "shipments.serviceability",  # whether a PIN code is served: nothing personal
    "shipments.quote",  # what a booking would cost: the pricing fields in, the charges out, nothing personal
    "courier.manifest", "courier.service_worker",  # the courier app's manifest and service worker: no staff data
}


def test_every_permission_is_held_by_known_roles_and_admin_holds_all():
    for permission, roles in PERMISSIONS.items():
        assert roles <= set(ROLES), permission
        # The courier app acts on one's own run sheet: only couriers have one.
        assert ("admin" in roles) == (permission != Permission.USE_COURIER_APP), permission
    assert PERMISSIONS[Permission.USE_COURIER_APP] == {"courier"}
    assert [p for p, roles in PERMISSIONS.items() if "courier" in roles] == [Permission.MANAGE_OWN_ACCOUNT,
                                                                            Permission.USE_COURIER_APP]
    assert may("viewer", Permission.VIEW_SHIPMENTS) and not may("viewer", Permission.CHANGE_SHIPMENTS)
    assert may("operator", Permission.RETRY_NOTIFICATIONS) and not may("operator", Permission.MANAGE_STAFF)
    assert not may(None, Permission.VIEW_SHIPMENTS)


def test_every_non_public_route_declares_its_roles(app):
    undeclared = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith("public_"):
            continue
        view = app.view_functions[rule.endpoint]
        if not getattr(view, "required_roles", None):
            undeclared.append(f"{rule.rule} ({rule.endpoint})")
    assert undeclared == [], f"staff routes without declared roles: {undeclared}"


def test_staff_required_refuses_to_be_used_without_a_permission():
    from app.auth.guard import staff_required

    with pytest.raises(TypeError):
        staff_required(lambda: None)
    with pytest.raises(KeyError):
        staff_required("no_such_permission")


def test_viewer_reads_shipments_but_every_change_is_403(client, auth, create_shipment, app):
    tracking_id = create_shipment()
    auth.login("support1", role="viewer")
    assert client.get("/admin").status_code == 200
    assert client.get(f"/admin/shipments/{tracking_id}").get_json()["email"] == "vikram@example.com"
    for url, body in ((f"/update/{tracking_id}", {"status": "Picked Up", "location": "Hub"}),
                      (f"/admin/shipments/{tracking_id}", {"status": "Picked Up", "location": "Hub"}),
                      ("/admin/notifications/1/retry", {})):
        response = client.post(url, json=body, headers=auth.headers())
        assert response.status_code == 403, url
    assert client.get("/admin/notifications").status_code == 403
    with app.app_context():
        assert db.session.scalar(text("SELECT status FROM shipments")) == "Booked"
        assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "status_changed")) is None


def test_a_status_change_writes_exactly_one_audit_row(client, auth, create_shipment, app):
    tracking_id = create_shipment()
    auth.login()
    response = client.post(f"/update/{tracking_id}", json={"status": "Picked Up", "location": "Kochi Hub"},
                           headers=auth.headers())
    assert response.status_code == 200
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "status_changed")).all()
        assert len(rows) == 1
        row = rows[0]
        assert (row.actor, row.target_type, row.target_id) == ("operator1", "shipment", tracking_id)
        assert row.details == {"from": "Booked", "to": "Picked Up", "location": "Kochi Hub"}
        assert row.client_address == "127.0.0.1"


def test_a_refused_status_change_leaves_no_audit_row(client, auth, create_shipment, app):
    tracking_id = create_shipment()
    auth.login()
    response = client.post(f"/update/{tracking_id}", json={"status": "Delivered", "location": "Kochi"},
                           headers=auth.headers())
    assert response.status_code == 409
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
        assert sorted(actions) == ["login", "user_created"]  # the account and its sign-in, nothing more


def test_retrying_a_dead_notification_is_audited(client, auth, create_shipment, app):
    create_shipment()
    with app.app_context():
        notification = db.session.scalars(select(Notification)).one()
        db.session.execute(text("UPDATE notifications SET state = 'dead'"))
        db.session.commit()
        notification_id = notification.id
    auth.login()
    assert client.post(f"/admin/notifications/{notification_id}/retry", json={},
                       headers=auth.headers()).status_code == 200
    with app.app_context():
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "notification_retried")).one()
        assert (row.actor, row.target_type, row.target_id) == ("operator1", "notification", str(notification_id))


def test_audit_details_never_carry_secrets_or_contacts(app_ctx):
    with pytest.raises(ValueError):
        record_audit("user_updated", actor="admin", details={"password": "x"})
    with pytest.raises(ValueError):
        record_audit("no_such_action", actor="admin")
    record_audit("status_changed", actor="op", target_type="shipment", target_id="AB12CD34",
                 details={"location": "Call vikram@example.com or +91 98765 43210", "to": "On Hold"})
    db.session.commit()
    row = db.session.scalars(select(AuditEntry)).one()
    assert row.details["location"] == f"Call {REDACTED} or {REDACTED}"
    assert "login" in ACTIONS


def test_audit_details_keep_tracking_ids_dates_and_amounts_that_look_like_digits(app_ctx):
    """Only a full mobile is redacted: an all-digit tracking ID (8 hex digits that happen to be decimal), a date
    and an amount stay, so a scan batch still names every parcel it changed."""
    record_audit("scan_batch", actor="op", target_type="shipments", target_id="2 scans",
                 details={"changed": ["52177239", "AB12CD34"], "from": "2026-12-07", "total": "25000.00",
                          "note": "call 9876543210, +44 7700 900123 or 98765-43210"})
    db.session.commit()
    row = db.session.scalars(select(AuditEntry)).one()
    assert row.details["changed"] == ["52177239", "AB12CD34"]
    assert (row.details["from"], row.details["total"]) == ("2026-12-07", "25000.00")
    assert row.details["note"] == f"call {REDACTED}, {REDACTED} or {REDACTED}"


def test_audit_rows_cannot_be_updated_or_deleted_on_postgresql(app_ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    record_audit("login", actor="admin")
    db.session.commit()
    for statement in ("UPDATE audit_entries SET actor = 'someone else'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.scalar(text("SELECT actor FROM audit_entries")) == "admin"
