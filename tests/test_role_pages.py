"""Pages offer each staff role exactly what it may do: menus, forms and buttons decided from the permissions
table, and the friendly 403 page for anything else."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.auth.guard import staff_required
from app.domain.roles import PERMISSIONS, ROLE_DESCRIPTIONS, ROLES, Permission
from app.extensions import db
from app.models import AuditEntry, Shipment

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ROOT = Path(__file__).resolve().parent.parent


def nav_links(response) -> list[str]:
    nav = re.search(r'<ul class="site-nav__links">(.*?)</ul>', response.get_data(as_text=True), re.S).group(1)
    return re.findall(r">([^<>]+)</a>", nav)


def test_a_viewer_gets_no_update_form_but_a_read_only_note(client, auth, create_shipment, app):
    tracking_id = create_shipment()
    auth.login("support1", role="viewer")
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "read-only" in html and "Your role (viewer)" in html
    assert 'action="/admin/shipments/' not in html and "Record update" not in html
    assert 'id="recent-locations"' not in html

    auth.logout()
    auth.login("ravi", role="operator")
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert f'action="/admin/shipments/{tracking_id}"' in html and "read-only" not in html


def test_a_viewers_update_attempt_is_the_friendly_403_page(client, auth, create_shipment, app):
    tracking_id = create_shipment()
    auth.login("support1", role="viewer")
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML,
                           data={"csrf_token": auth.csrf_token, "status": "Picked Up", "location": "Hub"})
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Error 403" in html and "You don&#39;t have access to this" in html
    with app.app_context():
        assert db.session.scalar(select(Shipment.status)) == "Booked"
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "status_changed")) == 0


@pytest.mark.parametrize("role, links", [
    ("viewer", ["Track &amp; book", "Dashboard", "Live map", "Failed deliveries", "Alerts", "SLA", "Reports"]),
    ("operator", ["Track &amp; book", "Dashboard", "Scan", "Run sheets", "Live map", "Couriers", "Cash", "Zones",
                  "Dispatch", "Failed deliveries", "Alerts", "SLA", "Reports", "Outbox"]),
    ("admin", ["Track &amp; book", "Dashboard", "Scan", "Run sheets", "Live map", "Couriers", "Cash", "Zones",
               "Dispatch", "Failed deliveries", "Alerts", "SLA", "Reports", "Outbox", "Settings", "Field settings",
               "Promises", "Audit", "Webhooks", "Staff", "API keys"]),
])
def test_the_menu_offers_what_the_role_may_open(client, auth, role, links):
    auth.login(f"{role}1", role=role)
    response = client.get("/admin", headers=HTML)
    assert nav_links(response) == links
    for label, url in (("Outbox", "/admin/notifications"), ("Audit", "/admin/audit")):
        assert (client.get(url).status_code == 200) == (label in links), url


def test_the_menu_marks_the_current_page(client, auth):
    auth.login("boss", role="admin")
    for url in ("/admin/notifications", "/admin/audit"):
        html = client.get(url, headers=HTML).get_data(as_text=True)
        assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == [url]


def test_the_staff_link_appears_for_admins_once_the_users_page_exists(app, client, auth):
    if "admin.users" not in app.view_functions:
        app.add_url_rule("/admin/users", endpoint="admin.users",
                         view_func=staff_required(Permission.MANAGE_STAFF)(lambda: "users"))
    auth.login("ravi", role="operator")
    assert "Staff" not in nav_links(client.get("/admin", headers=HTML))
    auth.logout()
    auth.login("boss", role="admin")
    assert "Staff" in nav_links(client.get("/admin", headers=HTML))
    assert 'href="/admin/users"' in client.get("/admin", headers=HTML).get_data(as_text=True)


def test_the_menu_has_no_staff_link_while_there_is_no_users_page(app, client, auth):
    if "admin.users" in app.view_functions:
        pytest.skip("the staff accounts page exists in this build")
    auth.login("boss", role="admin")
    assert "Staff" not in nav_links(client.get("/admin", headers=HTML))


def test_templates_decide_by_permission_never_by_role_name():
    role_names = "|".join(ROLES)
    for template in (ROOT / "app" / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"\.role\s*(==|!=|\bin\b|\bnot\b)", text), template
        assert not re.search(rf"""(==|!=|\bin\b)\s*\(?\s*['"]({role_names})['"]""", text), template


def test_readme_roles_table_uses_the_role_descriptions():
    readme = (ROOT / "README.md").read_text()
    for role in ROLES:
        permissions = ", ".join(f"`{p}`" for p in PERMISSIONS if role in PERMISSIONS[p])
        assert f"| `{role}` | {ROLE_DESCRIPTIONS[role]} | {permissions} |" in readme, role
