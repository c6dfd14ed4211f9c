"""Logging in and out, guards, CSRF ordering; no admin bootstrapped at start-up."""
from datetime import timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from app import create_app
from app.extensions import db
from app.models import User
from tests.conftest import clean_database

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_json_login_returns_user_role_csrf_token_and_a_browser_session_cookie(client, make_user):
    make_user("op1", "correct-horse-1")
    response = client.post("/login", json={"username": "op1", "password": "correct-horse-1"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "op1" and body["role"] == "operator" and body["csrf_token"]
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" not in cookie  # ends with the browser; the server-side record lasts SESSION_HOURS
    assert not any(c.startswith("remember_token=") for c in response.headers.getlist("Set-Cookie"))


def test_keep_me_signed_in_is_a_seven_day_cookie(client, make_user):
    make_user("op1", "correct-horse-1")
    response = client.post("/login", json={"username": "op1", "password": "correct-horse-1", "remember": True})
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Expires=" in cookie
    assert client.application.permanent_session_lifetime == timedelta(days=7)


@pytest.mark.parametrize("username, password", [("op1", "wrong-password"), ("ghost", "correct-horse-1"),
                                                ("OP1", "wrong-password")])
def test_bad_credentials_get_one_generic_401(client, make_user, username, password):
    make_user("op1", "correct-horse-1")
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Wrong username or password."}


def test_usernames_match_regardless_of_case(client, make_user):
    make_user("Op1", "correct-horse-1")
    assert client.post("/login", json={"username": "op1", "password": "correct-horse-1"}).status_code == 200


def test_inactive_user_cannot_log_in(client, make_user, app):
    user_id = make_user("op1", "correct-horse-1")
    with app.app_context():
        db.session.get(User, user_id).active = False
        db.session.commit()
    assert client.post("/login", json={"username": "op1", "password": "correct-horse-1"}).status_code == 401


@pytest.mark.parametrize("body", [{"username": "op1"}, {"password": "x"}, {"username": 1, "password": "x"}])
def test_login_with_missing_or_wrong_fields_is_400(client, body):
    assert client.post("/login", json=body).status_code == 400


def test_login_form_needs_csrf(client, make_user, app):
    user_id = make_user("op1", "correct-horse-1")
    response = client.post("/login", data={"username": "op1", "password": "correct-horse-1"})
    assert response.status_code == 400
    assert client.get("/admin", headers={"Accept": "application/json"}).status_code == 401  # not signed in
    with app.app_context():
        assert db.session.get(User, user_id).last_login_at is None  # no sign-in was recorded


def test_passwords_are_stored_hashed(app, make_user):
    user_id = make_user("op1", "correct-horse-1")
    with app.app_context():
        stored = db.session.get(User, user_id).password_hash
    assert "correct-horse-1" not in stored and stored.startswith("pbkdf2:sha256:1$")  # the tests' cheap method


def test_production_settings_hash_with_scrypt_and_sign_in_with_it(make_config):
    """The one sign-in on the real hash: every deployment's settings hash with scrypt (not from the environment),
    and a password hashed so signs in (the tests' cheap method elsewhere is only a setting)."""
    from app.config import Config

    assert Config().PASSWORD_HASH_METHOD == "scrypt"
    application = create_app(make_config(PASSWORD_HASH_METHOD=Config().PASSWORD_HASH_METHOD))
    with application.app_context():
        from app.services.staff.users import create_user

        user = create_user("real-hash", "correct-horse-1", "operator")
        db.session.commit()
        assert user.password_hash.startswith("scrypt:") and "correct-horse-1" not in user.password_hash
    client = application.test_client()
    assert client.post("/login", json={"username": "real-hash", "password": "correct-horse-1"}).status_code == 200
    assert client.post("/login", json={"username": "real-hash", "password": "wrong-horse-1"}).status_code == 401
    clean_database(application)


def test_login_records_last_login(client, make_user, app):
    user_id = make_user("op1", "correct-horse-1")
    client.post("/login", json={"username": "op1", "password": "correct-horse-1"})
    with app.app_context():
        assert db.session.get(User, user_id).last_login_at is not None


@pytest.mark.parametrize("url", ["/admin", "/admin/shipments/FFFFFFFF", "/admin/notifications"])
def test_staff_pages_answer_401_json_to_api_clients(client, url):
    response = client.get(url)
    assert response.status_code == 401 and response.get_json()["error"]


@pytest.mark.parametrize("url", ["/admin", "/admin/notifications"])
def test_staff_pages_redirect_browsers_to_login_with_next(client, url):
    response = client.get(url, headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert url.replace("/", "%2F") in response.headers["Location"] or url in response.headers["Location"]


def test_logged_in_staff_reach_the_dashboard(client, auth):
    auth.login()
    assert client.get("/admin").status_code == 200


def test_logout_ends_the_session(client, auth, create_shipment):
    tid = create_shipment()
    auth.login()
    assert auth.logout().status_code == 200
    response = client.post(f"/update/{tid}", json={"status": "Picked Up", "location": "X"}, headers=auth.headers())
    assert response.status_code == 401


@pytest.mark.parametrize("accept", ["application/json", "*/*", None])
def test_logout_without_a_body_answers_json_to_api_clients(client, auth, accept):
    token = auth.login()
    headers = {"X-CSRFToken": token, **({"Accept": accept} if accept else {})}
    response = client.post("/logout", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"logged_out": True}
    assert client.get("/admin", headers={"Accept": "application/json"}).status_code == 401


def test_logout_from_the_browser_form_goes_to_the_sign_in_page(client, auth):
    token = auth.login()
    response = client.post("/logout", data={"csrf_token": token},
                           headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_logout_needs_csrf_when_logged_in(client, auth):
    auth.login()
    assert client.post("/logout", json={}).status_code == 400
    assert client.get("/admin").status_code == 200  # still logged in


@pytest.mark.parametrize("target, expected", [
    ("/admin/shipments/ABCD1234", "/admin/shipments/ABCD1234"),
    ("https://evil.example/phish", "/admin"),
    ("//evil.example/phish", "/admin"),
    ("/\\evil.example", "/admin"),
    ("javascript:alert(1)", "/admin"),
    ("", "/admin"),
])
def test_login_form_redirects_only_to_local_next(app, make_user, target, expected):
    make_user("op1", "correct-horse-1")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)  # the rendered form carries the session's token
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"username": "op1", "password": "correct-horse-1", "csrf_token": token,
                                           "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == expected


def test_creating_the_app_touches_no_database_and_ensures_no_admin(make_config, app):
    """The admin is the release step's job (`flask deploy`), not every web worker's at start-up."""
    connections = []

    def count(*_args) -> None:
        connections.append(1)

    event.listen(Engine, "connect", count)
    try:
        create_app(make_config(ADMIN_USERNAME="chief", ADMIN_PASSWORD="first-password"))
    finally:
        event.remove(Engine, "connect", count)
    assert connections == []
    assert app.test_client().post("/login", json={"username": "chief", "password": "first-password"}) \
        .status_code == 401
    with app.app_context():
        assert db.session.scalars(select(User)).all() == []


def test_login_is_rate_limited(make_config):
    limited = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute"))
    client = limited.test_client()
    codes = [client.post("/login", json={"username": "x", "password": "y"}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert "error" in client.post("/login", json={"username": "x", "password": "y"}).get_json()
