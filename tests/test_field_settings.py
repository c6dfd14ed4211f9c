"""The field settings: what proof a delivery needs and the delivery code, for admins (GET/POST
/admin/field-settings, JSON and the page), checked, audited, and read by the courier app."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, FieldSetting
from app.services.field.settings import get_settings, set_settings

DEFAULTS = {"received_by": "required", "signature": "warn", "photo": "warn", "delivery_otp": "off"}
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture
def admin(auth):
    auth.login("admin1", role="admin")
    return auth


def audit_rows(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "field_settings_changed")))


def test_the_defaults_hold_until_an_admin_changes_them(client, admin):
    response = client.get("/admin/field-settings", headers=JSON)
    assert response.status_code == 200
    assert response.get_json() == {"settings": DEFAULTS}


def test_an_admin_changes_some_settings_and_it_is_audited(client, admin, app):
    response = client.post("/admin/field-settings", json={"photo": "Required", "delivery_otp": "on"},
                           headers=admin.headers())
    assert response.status_code == 200
    assert response.get_json() == {"settings": {**DEFAULTS, "photo": "required", "delivery_otp": "on"}}
    assert client.get("/admin/field-settings", headers=JSON).get_json()["settings"]["photo"] == "required"
    [row] = audit_rows(app)
    assert (row.actor, row.details) == ("admin1", {"photo": {"from": "warn", "to": "required"},
                                                   "delivery_otp": {"from": "off", "to": "on"}})
    with app.app_context():
        assert db.session.get(FieldSetting, "photo").updated_by == "admin1"


def test_saving_what_is_already_set_writes_nothing(client, admin, app):
    response = client.post("/admin/field-settings", json={"received_by": "required"}, headers=admin.headers())
    assert response.status_code == 200
    assert audit_rows(app) == []


def test_settings_change_again_in_place(client, admin, app):
    for level in ("off", "required", "warn"):
        response = client.post("/admin/field-settings", json={"signature": level}, headers=admin.headers())
        assert response.get_json()["settings"]["signature"] == level
    with app.app_context():
        assert db.session.query(FieldSetting).count() == 1
    assert len(audit_rows(app)) == 3


@pytest.mark.parametrize("body, field", [
    ({"photo": "sometimes"}, "photo"),
    ({"delivery_otp": "required"}, "delivery_otp"),
    ({"received_by": ""}, "received_by"),
    ({"colour": "blue"}, "colour"),
    ({"photo": 3}, "photo"),
])
def test_a_bad_setting_is_400_and_changes_nothing(client, admin, app, body, field):
    response = client.post("/admin/field-settings", json={"signature": "off", **body}, headers=admin.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert client.get("/admin/field-settings", headers=JSON).get_json()["settings"] == DEFAULTS
    assert audit_rows(app) == []


def test_the_page_shows_and_saves_the_settings(client, admin, app):
    page = client.get("/admin/field-settings", headers=HTML)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    checked = re.findall(r'<input checked id="[a-z_]+-\d" name="([a-z_]+)" type="radio" value="([a-z]+)">', html)
    assert dict(checked) == DEFAULTS
    form = {"csrf_token": admin.csrf_token, "received_by": "warn", "signature": "warn", "photo": "off",
            "delivery_otp": "on"}
    response = client.post("/admin/field-settings", data=form, headers=HTML)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/field-settings")
    with app.app_context():
        assert get_settings() == {"received_by": "warn", "signature": "warn", "photo": "off", "delivery_otp": "on"}


def test_the_page_shows_a_refused_value_beside_its_field(client, admin):
    form = {"csrf_token": admin.csrf_token, "received_by": "maybe", "signature": "warn", "photo": "off",
            "delivery_otp": "on"}
    response = client.post("/admin/field-settings", data=form, headers=HTML)
    assert response.status_code == 400
    assert "Must be one of: off, warn, required." in response.get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(client, admin):
    response = client.post("/admin/field-settings", json={"photo": "off"})
    assert response.status_code == 400
    assert client.get("/admin/field-settings", headers=JSON).get_json()["settings"] == DEFAULTS


@pytest.mark.parametrize("role", ["operator", "viewer", "courier"])
def test_only_admins_hold_the_field_settings(client, auth, role):
    auth.login("someone", role=role)
    assert client.get("/admin/field-settings", headers=JSON).status_code == 403
    assert client.post("/admin/field-settings", json={"photo": "off"}, headers=auth.headers()).status_code == 403


def test_a_stored_value_no_longer_allowed_reads_as_the_default(app_ctx):
    db.session.add(FieldSetting(key="photo", value="always", updated_by="admin1"))
    db.session.flush()
    assert get_settings()["photo"] == "warn"
    db.session.rollback()


def test_set_settings_checks_every_value_before_writing_any(app_ctx):
    from app.errors import ValidationError

    with pytest.raises(ValidationError) as refused:
        set_settings({"photo": "off", "signature": "never", "speed": "fast"}, actor="admin1")
    assert sorted(refused.value.fields) == ["signature", "speed"]
    assert get_settings() == DEFAULTS
