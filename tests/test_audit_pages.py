"""/admin/audit (HTML and JSON, admin only) and a shipment's audit entries on its staff page."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.extensions import db
from app.models import AuditEntry
from app.services.staff.audit import ACTIONS, AUDIT_PAGE_SIZE

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ROOT = Path(__file__).resolve().parent.parent


def add_entries(app, *entries: dict) -> None:
    """Audit rows written straight to the table (the trail is append-only, so tests only ever insert)."""
    with app.app_context():
        for entry in entries:
            db.session.add(AuditEntry(**{"at": datetime.now(UTC), "actor": "system", "action": "login", **entry}))
        db.session.commit()
        db.session.remove()


def update(auth, tracking_id: str, status: str, location: str = "Kochi Hub"):
    response = auth.client.post(f"/update/{tracking_id}", json={"status": status, "location": location},
                                headers=auth.headers())
    assert response.status_code == 200, response.get_json()


# --- who may see the audit trail ----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers, expected", [({}, 401), (HTML, 302)], ids=["json", "html"])
def test_the_audit_trail_needs_a_login(client, headers, expected):
    response = client.get("/admin/audit?action=login", headers=headers)
    assert response.status_code == expected
    if expected == 302:
        assert response.headers["Location"].endswith("/login?next=/admin/audit?action%3Dlogin")


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_the_audit_trail_is_admin_only(client, auth, app, role):
    add_entries(app, {"actor": "boss", "action": "login"})
    auth.login(f"{role}1", role=role)
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert response.get_json() == {"error": "Your role may not do this."}
    page = client.get("/admin/audit", headers=HTML)
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert "You don&#39;t have access to this" in html and "ask an administrator" in html
    assert "boss" not in html
    assert "Back to the dashboard" in html  # both roles may see the dashboard


# --- the JSON ---------------------------------------------------------------------------------------------------

def test_json_lists_entries_newest_first(client, auth, app, create_shipment):
    tracking_id = create_shipment()
    auth.login("boss", role="admin")
    update(auth, tracking_id, "Picked Up")
    update(auth, tracking_id, "In Transit", "Chennai Hub")
    body = client.get("/admin/audit?action=status_changed").get_json()
    assert set(body) == {"entries", "page", "per_page", "pages", "total"}
    assert (body["page"], body["pages"], body["total"], body["per_page"]) == (1, 1, 2, AUDIT_PAGE_SIZE)
    newest, oldest = body["entries"]
    assert set(newest) == {"at", "actor", "action", "target_type", "target_id", "details"}
    assert newest["details"] == {"from": "Picked Up", "to": "In Transit", "location": "Chennai Hub"}
    assert oldest["details"] == {"from": "Booked", "to": "Picked Up", "location": "Kochi Hub"}
    assert (newest["actor"], newest["action"], newest["target_type"], newest["target_id"]) == \
        ("boss", "status_changed", "shipment", tracking_id)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", newest["at"])
    assert newest["at"] >= oldest["at"]


def test_filters_by_actor_action_and_target(client, auth, app):
    add_entries(
        app,
        {"actor": "Ravi", "action": "status_changed", "target_type": "shipment", "target_id": "AB12CD34"},
        {"actor": "ravi", "action": "login"},
        {"actor": "meera", "action": "status_changed", "target_type": "shipment", "target_id": "FFFF0000"},
        {"actor": "meera", "action": "notification_retried", "target_type": "notification", "target_id": "42"},
        {"actor": "system", "action": "user_updated", "target_type": "user", "target_id": "42"},
    )
    auth.login("boss", role="admin")

    def matching(query: str) -> list[tuple[str, str, str | None]]:
        response = client.get(f"/admin/audit?{query}")
        assert response.status_code == 200, response.get_json()
        return [(e["actor"], e["action"], e["target_id"]) for e in response.get_json()["entries"]]

    assert matching("actor=RAVI") == [("ravi", "login", None), ("Ravi", "status_changed", "AB12CD34")]
    assert matching("actor=ravi&action=login") == [("ravi", "login", None)]
    assert matching("action=status_changed") == [("meera", "status_changed", "FFFF0000"),
                                                 ("Ravi", "status_changed", "AB12CD34")]
    # A tracking ID is matched as the app matches it everywhere: any case, spaces around.
    assert matching("target=%20ab12cd34%20") == [("Ravi", "status_changed", "AB12CD34")]
    assert matching("target=shipment:ab12cd34") == [("Ravi", "status_changed", "AB12CD34")]
    assert matching("target=notification:42") == [("meera", "notification_retried", "42")]
    assert sorted(a for _, a, _ in matching("target=42")) == ["notification_retried", "user_updated"]
    assert matching("target=nobody:42") == []
    assert matching("actor=meera&action=&target=&since=&until=&page=") == [  # empty fields filter nothing
        ("meera", "notification_retried", "42"), ("meera", "status_changed", "FFFF0000")]


def test_the_date_range_is_whole_days_in_the_display_timezone(client, auth, app):
    # DISPLAY_TIMEZONE is Asia/Kolkata (UTC+05:30): 1 June 2025 there runs from 31 May 18:30 to 1 June 18:30 UTC.
    assert app.config["DISPLAY_TIMEZONE"] == "Asia/Kolkata"
    start = datetime(2025, 5, 31, 18, 30, tzinfo=UTC)
    add_entries(app, *({"actor": name, "at": at} for name, at in (
        ("before", start - timedelta(seconds=1)), ("first", start),
        ("last", start + timedelta(days=1, seconds=-1)), ("after", start + timedelta(days=1)))))
    auth.login("boss", role="admin")

    def actors(query: str) -> list[str]:
        response = client.get(f"/admin/audit?{query}")
        assert response.status_code == 200, response.get_json()
        return [e["actor"] for e in response.get_json()["entries"]]

    assert actors("since=2025-06-01&until=2025-06-01") == ["last", "first"]
    assert actors("since=2025-05-01&until=2025-05-31") == ["before"]
    assert actors("since=2025-06-02&until=2025-06-30") == ["after"]
    assert actors("until=2025-06-01") == ["last", "first", "before"]


def test_pages_of_25_newest_first(client, auth, app):
    base = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)
    add_entries(app, *({"actor": f"user{n:02d}", "action": "user_updated", "at": base + timedelta(minutes=n)}
                       for n in range(30)))
    auth.login("boss", role="admin")
    first = client.get("/admin/audit?action=user_updated").get_json()
    assert (first["total"], first["pages"], first["page"]) == (30, 2, 1)
    assert [e["actor"] for e in first["entries"]] == [f"user{n:02d}" for n in range(29, 4, -1)]
    second = client.get("/admin/audit?action=user_updated&page=2").get_json()
    assert [e["actor"] for e in second["entries"]] == [f"user{n:02d}" for n in range(4, -1, -1)]
    assert client.get("/admin/audit?action=user_updated&page=3").get_json()["entries"] == []

    html = client.get("/admin/audit?action=user_updated", headers=HTML).get_data(as_text=True)
    assert "Showing 1–25 of 30 entries." in html
    assert html.count('<td data-label="Who" class="nowrap">') == 25
    assert 'href="/admin/audit?page=2&amp;action=user_updated" rel="next"' in html
    html = client.get("/admin/audit?action=user_updated&page=2", headers=HTML).get_data(as_text=True)
    assert "Showing 26–30 of 30 entries." in html
    assert 'aria-current="page"><span class="visually-hidden">Page </span>2' in html


@pytest.mark.parametrize("query, field", [
    ("action=deleted_everything", "action"),
    ("since=2025-13-01", "since"),
    ("until=yesterday", "until"),
    ("since=0001-01-01", "since"),
    ("until=9999-12-31", "until"),
    ("since=2025-06-02&until=2025-06-01", "until"),
    ("page=0", "page"),
    ("page=abc", "page"),
    ("page=99999999999999999999", "page"),
    ("actor=" + "x" * 65, "actor"),
    ("target=" + "x" * 200, "target"),
])
def test_bad_filters_are_400_with_fields(client, auth, query, field):
    auth.login("boss", role="admin")
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert list(body["fields"]) == [field] and body["error"]
    page = client.get(f"/admin/audit?{query}", headers=HTML)
    assert page.status_code == 400
    assert "There is a problem" in page.get_data(as_text=True) or field == "page"


def test_the_html_page_shows_entries_and_keeps_the_filters(client, auth, app, create_shipment):
    tracking_id = create_shipment()
    auth.login("boss", role="admin")
    update(auth, tracking_id, "Picked Up", "Hyderabad Hub")
    response = client.get(f"/admin/audit?target={tracking_id.lower()}&since=2025-01-01", headers=HTML)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>Audit trail</h1>" in html
    assert f'<a class="code" href="/admin/shipments/{tracking_id}">{tracking_id}</a>' in html
    assert "Booked → Picked Up · Location: Hyderabad Hub" in html
    assert "Status changed" in html
    assert f'value="{tracking_id.lower()}"' in html and 'value="2025-01-01"' in html
    options = re.findall(r'<option[^>]*value="([a-z_]*)"', html)
    assert options == ["", *sorted(ACTIONS)]

    bad = client.get("/admin/audit?since=2025-06-02&until=2025-06-01&actor=ravi", headers=HTML)
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert 'id="until-error"' in html and "Must be on or after the from date." in html
    assert 'value="ravi"' in html and "<table" not in html


# --- a shipment's own audit entries -------------------------------------------------------------------------------

def test_the_shipment_page_shows_its_audit_entries(client, auth, app, create_shipment):
    tracking_id = create_shipment()
    other = create_shipment()
    auth.login("ravi", role="operator")
    update(auth, tracking_id, "Picked Up", "Hyderabad Hub")
    update(auth, tracking_id, "On Hold", "Hyderabad Hub")
    update(auth, other, "Picked Up", "Elsewhere")

    body = client.get(f"/admin/shipments/{tracking_id.lower()}").get_json()
    assert [(e["actor"], e["details"]["from"], e["details"]["to"]) for e in body["audit"]] == [
        ("ravi", "Picked Up", "On Hold"), ("ravi", "Booked", "Picked Up")]
    assert all(e["target_id"] == tracking_id and e["at"].endswith("Z") for e in body["audit"])
    assert len(body["events"]) == 3 and body["allowed_next_statuses"] == ["Picked Up", "RTO Initiated"]

    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    audit_panel = html[html.index('id="audit-h"'):]
    assert audit_panel.index("Picked Up → On Hold") < audit_panel.index("Booked → Picked Up")
    assert "by ravi" in audit_panel and "Elsewhere" not in audit_panel
    assert "This shipment in the audit trail" not in html  # the trail itself is for admins

    auth.logout()
    auth.login("boss", role="admin")
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert f'href="/admin/audit?target={tracking_id}">This shipment in the audit trail' in html


def test_a_new_shipment_has_an_empty_audit_list(client, auth, create_shipment):
    tracking_id = create_shipment()
    auth.login("support1", role="viewer")
    assert client.get(f"/admin/shipments/{tracking_id}").get_json()["audit"] == []
    assert "No staff action recorded" in client.get(f"/admin/shipments/{tracking_id}",
                                                     headers=HTML).get_data(as_text=True)


# --- the README keeps the actions true ----------------------------------------------------------------------------

def test_readme_lists_every_audit_action():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Audit trail"):]
    section = section[:section.index("\n## ", 1)]
    for action in ACTIONS:
        assert f"`{action}`" in section, action
