"""Courier accounts: the role `courier` with its vehicle, capacity, shift and shown name, made and changed with
the account (service, JSON and the staff pages), where a courier lands after signing in, and what the menu offers
them (each test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import re
from datetime import time

import pytest
from sqlalchemy import func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, CourierProfile, User
from app.services.field.couriers import CourierFields
from app.services.staff.users import UserChanges, create_user, update_user
from tests.test_role_pages import nav_links

PASSWORD = "correct-horse-1"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def profile(username: str) -> CourierProfile | None:
    user = db.session.scalar(select(User).where(User.username == username))
    return db.session.get(CourierProfile, user.id, populate_existing=True)


def audit(action: str) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def make_courier(app, username: str = "ravi", **details) -> None:
    with app.app_context():
        create_user(username, PASSWORD, "courier", courier=CourierFields(**{"vehicle": "two_wheeler", **details}))
        db.session.commit()


@pytest.fixture
def admin(auth):
    auth.login("chief", role="admin")
    return auth


# --- the service --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("vehicle, capacity", [("two_wheeler", 30), ("three_wheeler", 60), ("van", 150)])
def test_a_new_courier_gets_the_defaults_of_their_vehicle_and_the_audit_row_says_so(app_ctx, vehicle, capacity):
    create_user("ravi", PASSWORD, "courier", actor="chief", courier=CourierFields(vehicle=vehicle))
    db.session.commit()
    made = profile("ravi")
    assert (made.vehicle, made.capacity, made.shift_start, made.shift_end, made.name) == (
        vehicle, capacity, time(9), time(18), None)
    row = audit("user_created")[-1]
    assert (row.actor, row.target_id) == ("chief", "ravi")
    assert row.details == {"role": "courier", "vehicle": vehicle, "capacity": capacity,
                           "shift": {"start": "09:00", "end": "18:00"}}


def test_given_details_are_kept_and_an_overnight_shift_is_allowed_and_the_name_stays_out_of_the_audit(app_ctx):
    create_user("ravi", PASSWORD, "courier", courier=CourierFields(
        name="Ravi", vehicle="van", capacity=80, shift_start=time(22), shift_end=time(6, 30)))
    db.session.commit()
    made = profile("ravi")
    assert (made.name, made.capacity, made.shift_start, made.shift_end) == ("Ravi", 80, time(22), time(6, 30))
    details = audit("user_created")[-1].details
    assert details["shift"] == {"start": "22:00", "end": "06:30"} and "Ravi" not in str(details)


@pytest.mark.parametrize("details, field", [
    ({}, "vehicle"),
    ({"vehicle": "bicycle"}, "vehicle"),
    ({"vehicle": "van", "capacity": 0}, "capacity"),
    ({"vehicle": "van", "capacity": 1001}, "capacity"),
    ({"vehicle": "van", "shift_start": time(9), "shift_end": time(9)}, "shift_end"),
    ({"vehicle": "van", "shift_start": time(18)}, "shift_end"),  # ends at the default 18:00
    ({"vehicle": "van", "name": "x" * 101}, "name"),
])
def test_a_courier_with_bad_details_is_refused_and_nothing_is_written(app_ctx, details, field):
    with pytest.raises(ValidationError) as refused:
        create_user("ravi", PASSWORD, "courier", courier=CourierFields(**details))
    assert set(refused.value.fields) == {field}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(User)) == 0
    assert db.session.scalar(select(func.count()).select_from(CourierProfile)) == 0


def test_other_roles_have_no_courier_details(app_ctx):
    with pytest.raises(ValidationError) as refused:
        create_user("ravi", PASSWORD, "operator", courier=CourierFields(vehicle="van", capacity=5))
    assert set(refused.value.fields) == {"vehicle", "capacity"}
    create_user("asha", PASSWORD, "operator", courier=CourierFields(name=""))  # a blank form field is not sent
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(CourierProfile)) == 0


def test_changing_the_vehicle_moves_a_default_capacity_but_keeps_a_chosen_one(app_ctx):
    create_user("ravi", PASSWORD, "courier", courier=CourierFields(vehicle="two_wheeler"))
    create_user("asha", PASSWORD, "courier", courier=CourierFields(vehicle="two_wheeler", capacity=45))
    for username in ("ravi", "asha"):
        update_user(username, UserChanges(courier=CourierFields(vehicle="van")), actor="chief")
    db.session.commit()
    assert (profile("ravi").vehicle, profile("ravi").capacity) == ("van", 150)
    assert (profile("asha").vehicle, profile("asha").capacity) == ("van", 45)
    ravi, asha = audit("user_updated")
    assert ravi.details == {"changed": ["vehicle", "capacity"], "vehicle": {"from": "two_wheeler", "to": "van"},
                            "capacity": {"from": 30, "to": 150}}
    assert asha.details == {"changed": ["vehicle"], "vehicle": {"from": "two_wheeler", "to": "van"}}


def test_becoming_a_courier_needs_a_vehicle_and_leaving_keeps_the_profile(app_ctx):
    create_user("ravi", PASSWORD, "operator")
    db.session.commit()
    with pytest.raises(ValidationError) as refused:
        update_user("ravi", UserChanges(role="courier"), actor="chief")
    assert set(refused.value.fields) == {"vehicle"}
    db.session.rollback()
    update_user("ravi", UserChanges(role="courier", courier=CourierFields(vehicle="van", capacity=70)), actor="chief")
    db.session.commit()
    assert audit("user_updated")[-1].details == {
        "changed": ["role", "courier"], "role": {"from": "operator", "to": "courier"},
        "courier": {"vehicle": "van", "capacity": 70, "shift": {"start": "09:00", "end": "18:00"}}}

    update_user("ravi", UserChanges(role="viewer"), actor="chief")
    db.session.commit()
    assert profile("ravi").capacity == 70  # kept, harmless: a viewer has no run sheet
    with pytest.raises(ValidationError) as refused:
        update_user("ravi", UserChanges(courier=CourierFields(capacity=10)), actor="chief")
    assert set(refused.value.fields) == {"capacity"}
    db.session.rollback()
    update_user("ravi", UserChanges(role="courier"), actor="chief")  # back, as it was: no vehicle needed
    db.session.commit()
    assert (profile("ravi").vehicle, profile("ravi").capacity) == ("van", 70)


def test_a_change_to_nothing_new_writes_no_audit_row_and_a_blank_name_clears_it(app_ctx):
    create_user("ravi", PASSWORD, "courier", courier=CourierFields(vehicle="van", name="Ravi"))
    update_user("ravi", UserChanges(courier=CourierFields(vehicle="van", capacity=150)), actor="chief")
    assert audit("user_updated") == []
    update_user("ravi", UserChanges(courier=CourierFields(name="")), actor="chief")
    db.session.commit()
    assert profile("ravi").name is None
    assert audit("user_updated")[-1].details == {"changed": ["name"]}


# --- JSON --------------------------------------------------------------------------------------------------------

def test_admin_creates_a_courier_with_json_and_sees_the_courier_details(client, admin, app):
    response = client.post("/admin/users", headers=admin.headers(), json={
        "username": "ravi", "password": PASSWORD, "role": "courier", "vehicle": "three_wheeler",
        "shift_start": "21:00", "shift_end": "05:00", "name": "Ravi"})
    assert response.status_code == 201, response.get_json()
    expected = {"name": "Ravi", "vehicle": "three_wheeler", "capacity": 60, "shift_start": "21:00",
                "shift_end": "05:00"}
    assert response.get_json()["courier"] == expected
    users = {u["username"]: u for u in client.get("/admin/users").get_json()["users"]}
    assert users["ravi"]["courier"] == expected and "courier" not in users["chief"]
    assert client.get("/admin/users/ravi").get_json()["courier"] == expected


@pytest.mark.parametrize("body, field", [
    ({}, "vehicle"),
    ({"vehicle": "rocket"}, "vehicle"),
    ({"vehicle": "van", "capacity": "many"}, "capacity"),
    ({"vehicle": "van", "capacity": True}, "capacity"),
    ({"vehicle": "van", "capacity": 0}, "capacity"),
    ({"vehicle": "van", "capacity": 5000}, "capacity"),
    ({"vehicle": "van", "shift_start": "25:00"}, "shift_start"),
    ({"vehicle": "van", "shift_end": "6pm"}, "shift_end"),
    ({"vehicle": "van", "shift_start": 9}, "shift_start"),
    ({"vehicle": "van", "shift_start": "10:00", "shift_end": "10:00"}, "shift_end"),
])
def test_bad_courier_details_are_400_with_fields_and_write_nothing(client, admin, app, body, field):
    response = client.post("/admin/users", headers=admin.headers(),
                           json={"username": "ravi", "password": PASSWORD, "role": "courier", **body})
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "ravi")) is None


def test_courier_details_for_another_role_are_400(client, admin):
    response = client.post("/admin/users", headers=admin.headers(),
                           json={"username": "ravi", "password": PASSWORD, "role": "operator", "vehicle": "van"})
    assert response.status_code == 400 and "vehicle" in response.get_json()["fields"]


def test_admin_changes_a_couriers_details_with_json(client, admin, app):
    make_courier(app)
    response = client.post("/admin/users/ravi", headers=admin.headers(),
                           json={"capacity": 40, "shift_end": "20:30"})
    assert response.status_code == 200
    assert response.get_json()["courier"] == {"name": None, "vehicle": "two_wheeler", "capacity": 40,
                                              "shift_start": "09:00", "shift_end": "20:30"}
    assert client.post("/admin/users/ravi", headers=admin.headers(), json={"capacity": -1}).status_code == 400
    response = client.post("/admin/users/ravi", headers=admin.headers(), json={"role": "operator"})
    assert response.status_code == 200 and "courier" not in response.get_json()
    response = client.post("/admin/users/ravi", headers=admin.headers(), json={"role": "courier"})
    assert response.get_json()["courier"]["capacity"] == 40


def test_making_an_operator_a_courier_needs_a_vehicle(client, admin, make_user):
    make_user("asha", PASSWORD, "operator")
    response = client.post("/admin/users/asha", headers=admin.headers(), json={"role": "courier"})
    assert response.status_code == 400 and "vehicle" in response.get_json()["fields"]
    response = client.post("/admin/users/asha", headers=admin.headers(), json={"role": "courier", "vehicle": "van"})
    assert response.status_code == 200 and response.get_json()["courier"]["capacity"] == 150


# --- the pages ---------------------------------------------------------------------------------------------------

def test_the_users_page_form_makes_a_courier_and_shows_the_courier_fields(client, admin, app):
    page = client.get("/admin/users", headers=HTML).get_data(as_text=True)
    assert "Couriers only" in page and 'name="vehicle"' in page and 'name="shift_start"' in page
    form = {"csrf_token": admin.csrf_token, "username": "ravi", "password": PASSWORD, "role": "courier",
            "vehicle": "van", "capacity": "", "shift_start": "", "shift_end": "", "name": ""}
    response = client.post("/admin/users", data=form, headers=HTML)
    assert response.status_code == 302
    # An operator from the same form, its courier fields left blank, has no courier details.
    response = client.post("/admin/users", headers=HTML, data={**form, "username": "asha", "role": "operator",
                                                               "vehicle": ""})
    assert response.status_code == 302
    with app.app_context():
        assert (profile("ravi").vehicle, profile("ravi").capacity) == ("van", 150)
        assert profile("asha") is None
    page = client.get("/admin/users", headers=HTML).get_data(as_text=True)
    assert "Van · 150 parcels · 09:00–18:00" in page


@pytest.mark.parametrize("fields, message", [
    ({"vehicle": "van", "shift_start": "7 am"}, "A time as HH:MM"),
    ({"vehicle": ""}, "Choose the courier&#39;s vehicle"),
])
def test_the_users_page_shows_bad_courier_details_beside_their_fields(client, admin, app, fields, message):
    response = client.post("/admin/users", headers=HTML, data={
        "csrf_token": admin.csrf_token, "username": "ravi", "password": PASSWORD, "role": "courier", **fields})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(r'class="field__error"[^>]*>.*?' + re.escape(message), page, re.S)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "ravi")) is None


def test_a_couriers_page_has_the_courier_form_and_saves_it(client, admin, app):
    make_courier(app, name="Ravi")
    page = client.get("/admin/users/ravi", headers=HTML).get_data(as_text=True)
    assert "Save courier details" in page and 'value="09:00"' in page and 'value="Ravi"' in page
    response = client.post("/admin/users/ravi", headers=HTML, data={
        "csrf_token": admin.csrf_token, "vehicle": "two_wheeler", "capacity": "25", "shift_start": "08:00",
        "shift_end": "16:00", "name": "Ravi K"})
    assert response.status_code == 302
    with app.app_context():
        made = profile("ravi")
        assert (made.capacity, made.shift_start, made.shift_end, made.name) == (25, time(8), time(16), "Ravi K")
    response = client.post("/admin/users/ravi", headers=HTML, data={"csrf_token": admin.csrf_token,
                                                                    "capacity": "0"})
    assert response.status_code == 400 and "Capacity is a whole number" in response.get_data(as_text=True)


def test_an_operators_page_offers_the_vehicle_with_the_role(client, admin, make_user):
    make_user("asha", PASSWORD, "operator")
    page = client.get("/admin/users/asha", headers=HTML).get_data(as_text=True)
    assert "Save courier details" not in page and 'name="vehicle"' in page


# --- signing in and the menu -------------------------------------------------------------------------------------

def sign_in_with_the_form(client, username: str, next_url: str | None = None):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"username": username, "password": PASSWORD, "csrf_token": token}
    if next_url is not None:
        form["next"] = next_url
    return client.post("/login", data=form)


@pytest.mark.parametrize("next_url, landing", [
    (None, "/courier/"),
    ("/admin", "/courier/"),  # would be 403
    ("/admin/runsheets", "/courier/"),
    ("https://elsewhere.example/courier/", "/courier/"),
    ("/courier/stops", "/courier/stops"),
    ("/account", "/account"),
])
def test_a_courier_lands_in_the_courier_app(app, next_url, landing):
    make_courier(app)
    response = sign_in_with_the_form(app.test_client(), "ravi", next_url)
    assert response.status_code == 302 and response.headers["Location"] == landing


def test_other_staff_still_land_on_the_dashboard_and_a_signed_in_courier_is_sent_on(app, make_user):
    make_user("asha", PASSWORD, "operator")
    assert sign_in_with_the_form(app.test_client(), "asha").headers["Location"] == "/admin"
    make_courier(app)
    client = app.test_client()
    sign_in_with_the_form(client, "ravi")
    assert client.get("/login").headers["Location"] == "/courier/"


def test_a_courier_is_offered_only_the_courier_app_and_their_account(client, auth, app):
    make_courier(app)
    auth.login("ravi", create=False)
    response = client.get("/account", headers=HTML)
    assert response.status_code == 200
    assert nav_links(response) == ["Track &amp; book", "Courier app"]
    html = response.get_data(as_text=True)
    assert 'href="/courier/"' in html and 'href="/account"' in html
    for url in ("/admin", "/admin/users", "/admin/scan", "/admin/notifications"):
        assert client.get(url, headers=HTML).status_code == 403, url
    auth.logout()
    auth.login("asha", role="operator")
    assert "Courier app" not in nav_links(client.get("/admin", headers=HTML))


def test_the_users_command_makes_a_courier_with_a_vehicle(app, runner):
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    refused = runner.invoke(args=["users", "create", "ravi", "--role", "courier"], input=typed)
    assert refused.exit_code == 2 and "vehicle" in refused.output
    made = runner.invoke(args=["users", "create", "ravi", "--role", "courier", "--vehicle", "van"], input=typed)
    assert made.exit_code == 0, made.output
    with app.app_context():
        assert (profile("ravi").vehicle, profile("ravi").capacity) == ("van", 150)
    other = runner.invoke(args=["users", "create", "asha", "--vehicle", "van"], input=typed)
    assert other.exit_code == 2 and "Only couriers" in other.output
