"""Each staff role in headless Chromium: menus and pages offer exactly what the role may do, refused attempts land
on the friendly 403 page, and the audit trail works and passes axe-core."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.models import AuditEntry
from tests.browser.conftest import audit
from tests.browser.test_portals import PASSWORD, sign_in

pytestmark = pytest.mark.browser

FORBIDDEN = "You don't have access to this"

VIEWER_MENU = ["Track & book", "Dashboard", "Live map", "Failed deliveries", "Alerts", "SLA", "Reports"]


def menu_links(page):
    return page.get_by_role("navigation", name="Main").locator(".site-nav__links a")


def submit_form(page, action: str, fields: dict[str, str]) -> None:
    """Post a form the page does not offer, with the session's own CSRF token (what a stale or hand-made page
    would do)."""
    page.evaluate("""([action, fields]) => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = action;
        const token = document.querySelector('input[name=csrf_token]').value;
        for (const [name, value] of Object.entries({...fields, csrf_token: token})) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
    }""", [action, fields])


def expect_forbidden(page) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(FORBIDDEN)
    expect(page.locator(".error-page__code")).to_have_text("Error 403")


def test_a_viewer_reads_but_changes_nothing(page, make_user, create_shipment, auth):
    tracking_id = create_shipment()
    auth.login("ravi", role="operator")
    assert auth.client.post(f"/update/{tracking_id}", headers=auth.headers(),
                            json={"status": "Picked Up", "location": "Kochi Hub"}).status_code == 200
    make_user("support1", PASSWORD, "viewer")

    sign_in(page, "support1")
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(menu_links(page)).to_have_text(VIEWER_MENU)
    page.get_by_role("link", name=tracking_id).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)
    expect(page.get_by_text("Your role (viewer) is read-only")).to_be_visible()
    expect(page.get_by_role("button", name="Record update")).to_have_count(0)
    expect(page.get_by_label("New status")).to_have_count(0)
    entries = page.locator(".audit-list__item")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Booked → Picked Up")
    expect(entries.first).to_contain_text("by ravi")
    expect(page.get_by_role("link", name="This shipment in the audit trail")).to_have_count(0)
    audit(page, "admin-shipment-viewer")

    submit_form(page, f"/admin/shipments/{tracking_id}", {"status": "In Transit", "location": "Chennai Hub"})
    expect_forbidden(page)
    expect(page.get_by_text("Your role may not do this.")).to_be_visible()
    audit(page, "forbidden")
    page.get_by_role("link", name="Back to the dashboard").click()
    expect(page).to_have_url(re.compile(r"/admin$"))

    for url in ("/admin/notifications", "/admin/audit"):
        page.goto(url)
        expect_forbidden(page)
        expect(menu_links(page)).to_have_text(VIEWER_MENU)

    page.goto(f"/admin/shipments/{tracking_id}")
    expect(page.locator(".audit-list__item")).to_have_count(1)  # the refused attempt changed nothing
    expect(page.locator("ol.timeline > li")).to_have_count(2)


def test_an_operator_updates_but_has_no_admin_pages(page, make_user, create_shipment):
    tracking_id = create_shipment()
    make_user("operator1", PASSWORD, "operator")

    sign_in(page)
    expect(menu_links(page)).to_have_text(["Track & book", "Dashboard", "Scan", "Run sheets", "Live map", "Couriers",
                                           "Cash", "Zones", "Dispatch", "Failed deliveries", "Alerts", "SLA",
                                           "Reports", "Outbox"])
    page.get_by_role("link", name=tracking_id).click()
    page.get_by_label("New status").select_option("Picked Up")
    page.get_by_label("Location").fill("Hyderabad Hub")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator(".flash--success")).to_have_text("Status updated: Picked Up at Hyderabad Hub.")
    expect(page.locator(".audit-list__item").first).to_contain_text("Booked → Picked Up")
    expect(page.locator(".audit-list__item").first).to_contain_text("by operator1")
    expect(page.get_by_role("link", name="This shipment in the audit trail")).to_have_count(0)

    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Outbox")
    expect(page.locator(".site-nav a[aria-current=page]")).to_have_text("Outbox")

    page.goto("/admin/audit")
    expect_forbidden(page)
    expect(menu_links(page)).to_have_text(["Track & book", "Dashboard", "Scan", "Run sheets", "Live map", "Couriers",
                                           "Cash", "Zones", "Dispatch", "Failed deliveries", "Alerts", "SLA",
                                           "Reports", "Outbox"])


def test_an_admin_reads_and_filters_the_audit_trail(page, app, make_user, create_shipment, auth):
    tracking_id = create_shipment()
    other_id = create_shipment()
    auth.login("ravi", role="operator")
    for target, status in ((tracking_id, "Picked Up"), (other_id, "Picked Up"), (tracking_id, "On Hold")):
        assert auth.client.post(f"/update/{target}", headers=auth.headers(),
                                json={"status": status, "location": "Kochi Hub"}).status_code == 200
    with app.app_context():  # an older month of retries, to page through
        base = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
        for n in range(30):
            db.session.add(AuditEntry(at=base + timedelta(hours=n), actor="system", action="notification_retried",
                                      target_type="notification", target_id=str(n + 1)))
        db.session.commit()
        db.session.remove()
    make_user("boss", PASSWORD, "admin")

    sign_in(page, "boss")
    expect(menu_links(page)).to_have_text(["Track & book", "Dashboard", "Scan", "Run sheets", "Live map", "Couriers",
                                           "Cash", "Zones", "Dispatch", "Failed deliveries", "Alerts", "SLA",
                                           "Reports", "Outbox", "Settings", "Field settings", "Promises", "Audit",
                                           "Webhooks", "Staff", "API keys"])
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit trail")
    expect(page.locator(".site-nav a[aria-current=page]")).to_have_text("Audit")
    rows = page.locator("table.data-table tbody tr")
    expect(rows).to_have_count(25)
    with app.app_context():  # 33, and any sign-in rows the app records
        total = db.session.query(AuditEntry).count()
        db.session.remove()
    expect(page.locator(".result-count")).to_contain_text(f"Showing 1–25 of {total} entries.")
    expect(rows.filter(has_text="Status changed").first).to_contain_text("Picked Up → On Hold")  # newest first
    audit(page, "audit")

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(total - 25)
    expect(rows.last).to_contain_text("notification 1")

    page.get_by_label("Target").fill(f" {tracking_id.lower()} ")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Picked Up → On Hold")
    expect(rows.nth(1)).to_contain_text("Booked → Picked Up")
    expect(rows.first.get_by_role("link", name=tracking_id)).to_be_visible()

    page.get_by_label("Target").fill("")
    page.get_by_label("Action").select_option("notification_retried")
    page.get_by_label("From date").fill("2025-06-01")
    page.get_by_label("To date").fill("2025-06-01")
    page.get_by_role("button", name="Apply").click()
    # 1 June 2025 in Asia/Kolkata ends at 18:30 UTC: the retries at 06:00 … 18:00 UTC, 13 of them.
    expect(rows).to_have_count(13)
    expect(page.locator(".result-count")).to_contain_text("of 13 entries")
    audit(page, "audit-filtered")

    page.get_by_label("From date").fill("2025-06-02")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".error-summary")).to_be_focused()
    expect(page.locator("#until-error")).to_contain_text("Must be on or after the from date.")
    expect(page.get_by_label("Action")).to_have_value("notification_retried")
    audit(page, "audit-errors")

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(25)
    page.goto(f"/admin/shipments/{tracking_id}")
    page.get_by_role("link", name="This shipment in the audit trail").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_label("Target")).to_have_value(tracking_id)
