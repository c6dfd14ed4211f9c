"""/admin/users: staff accounts from the browser and for API clients, the password policy, the last-admin rule."""
from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.errors import Conflict
from app.extensions import db
from app.models import AuditEntry, User
from app.services.staff.passwords import password_problem
from app.services.staff.users import UserChanges, update_user
from tests.conftest import AuthActions

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PASSWORD = "correct-horse-1"
USER_KEYS = {"username", "role", "active", "last_login_at", "created_at"}


@pytest.fixture
def admin(auth):
    auth.login("chief", role="admin")
    return auth


def audit_rows(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.id)).all()
        db.session.expunge_all()
        return rows


def other_client(app, make_user, username: str, role: str = "operator") -> AuthActions:
    """A second browser: its own cookie jar, signed in as a new account."""
    other = AuthActions(app.test_client(), make_user)
    other.login(username, role=role)
    return other


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


# --- the password policy ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("password, problem", [
    ("short-pass1", "at least 12"),
    ("password1234", "common"),
    ("qwertyuiop123", "common"),
    ("RaviKumar-01", "username"),
    ("x" * 257, "at most 256"),
])
def test_password_policy_refuses(password, problem):
    assert problem in password_problem(password, "ravikumar-01")


def test_password_policy_accepts_a_long_uncommon_password():
    assert password_problem("correct-horse-1", "ravi") is None


# --- GET /admin/users ---------------------------------------------------------------------------------------------

def test_admin_lists_accounts_with_exactly_the_documented_fields(client, admin, make_user):
    make_user("ravi", PASSWORD, "viewer")
    body = client.get("/admin/users").get_json()
    assert [u["username"] for u in body["users"]] == ["chief", "ravi"]
    assert all(set(u) == USER_KEYS for u in body["users"])
    chief, ravi = body["users"]
    assert (chief["role"], chief["active"]) == ("admin", True) and chief["last_login_at"].endswith("Z")
    assert (ravi["role"], ravi["last_login_at"]) == ("viewer", None) and ravi["created_at"].endswith("Z")


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_admins_manage_staff(client, auth, role):
    auth.login("someone", role=role)
    assert client.get("/admin/users").status_code == 403
    response = client.post("/admin/users", json={"username": "new1", "password": PASSWORD, "role": "admin"},
                           headers=auth.headers())
    assert response.status_code == 403
    assert client.post("/admin/users/someone", json={"role": "admin"}, headers=auth.headers()).status_code == 403
    assert client.get("/admin/users", headers=HTML).status_code == 403


def test_signed_out_clients_get_401_and_browsers_the_sign_in_page(client):
    assert client.get("/admin/users").status_code == 401
    assert client.post("/admin/users", json={}).status_code == 401
    response = client.get("/admin/users", headers=HTML)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


# --- POST /admin/users --------------------------------------------------------------------------------------------

def test_admin_creates_an_account_that_can_sign_in_and_it_is_audited_once(client, admin, app):
    response = client.post("/admin/users", json={"username": "Ravi.K", "password": PASSWORD, "role": "viewer"},
                           headers=admin.headers())
    assert response.status_code == 201
    assert response.get_json() == {**response.get_json(), "username": "Ravi.K", "role": "viewer", "active": True,
                                   "last_login_at": None}
    assert set(response.get_json()) == USER_KEYS
    fresh = app.test_client()
    assert fresh.post("/login", json={"username": "ravi.k", "password": PASSWORD}).get_json()["role"] == "viewer"
    [row] = [r for r in audit_rows(app, "user_created") if r.target_id == "Ravi.K"]
    assert (row.actor, row.target_type, row.details) == ("chief", "user", {"role": "viewer"})
    assert PASSWORD not in str(row.details)


@pytest.mark.parametrize("body, field", [
    ({"username": "ravi", "password": "short-pass1", "role": "operator"}, "password"),
    ({"username": "ravi", "password": "password1234", "role": "operator"}, "password"),
    ({"username": "ravi-kumar-9", "password": "Ravi-Kumar-9", "role": "operator"}, "password"),
    ({"username": "ravi", "password": PASSWORD, "role": "superuser"}, "role"),
    ({"username": "ravi kumar", "password": PASSWORD, "role": "operator"}, "username"),
    ({"username": "x" * 65, "password": PASSWORD, "role": "operator"}, "username"),
    ({"username": "ravi", "role": "operator"}, "password"),
    ({"username": "ravi", "password": 12, "role": "operator"}, "password"),
    ({"username": "ravi", "password": PASSWORD, "role": "operator", "admin": True}, "admin"),
])
def test_bad_new_accounts_are_400_with_fields_and_nothing_is_written(client, admin, app, body, field):
    response = client.post("/admin/users", json=body, headers=admin.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
    assert [row.target_id for row in audit_rows(app, "user_created")] == ["chief"]


def test_a_taken_username_is_409_whatever_its_case(client, admin, make_user):
    make_user("ravi")
    response = client.post("/admin/users", json={"username": "RAVI", "password": PASSWORD, "role": "operator"},
                           headers=admin.headers())
    assert response.status_code == 409 and "taken" in response.get_json()["error"]


def test_the_database_itself_refuses_usernames_that_differ_only_in_case(app_ctx, make_user):
    make_user("ravi")
    with pytest.raises(IntegrityError):
        db.session.execute(text("INSERT INTO users (username, password_hash, role, active, created_at) "
                                "VALUES ('RaVi', 'x', 'operator', :yes, CURRENT_TIMESTAMP)"), {"yes": True})
        db.session.flush()
    db.session.rollback()


def test_creating_without_a_csrf_token_is_400(client, admin):
    response = client.post("/admin/users", json={"username": "ravi", "password": PASSWORD, "role": "operator"})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]


# --- POST /admin/users/<username> ---------------------------------------------------------------------------------

def test_changing_a_role_is_audited_with_from_and_to(client, admin, make_user, app):
    make_user("ravi")
    response = client.post("/admin/users/RAVI", json={"role": "viewer"}, headers=admin.headers())
    assert response.status_code == 200 and response.get_json()["role"] == "viewer"
    [row] = audit_rows(app, "user_updated")
    assert (row.actor, row.target_id) == ("chief", "ravi")
    assert row.details == {"changed": ["role"], "role": {"from": "operator", "to": "viewer"}}


def test_a_role_change_applies_to_the_open_session_at_once(client, admin, make_user, app):
    ravi = other_client(app, make_user, "ravi")
    assert ravi.client.get("/admin/notifications").status_code == 200
    client.post("/admin/users/ravi", json={"role": "viewer"}, headers=admin.headers())
    assert ravi.client.get("/admin/notifications").status_code == 403


@pytest.mark.parametrize("body, status", [
    ({"role": "boss"}, 400), ({"active": "no"}, 400), ({"password": "short"}, 400), ({"nickname": "r"}, 400),
    ({}, 400), ({"role": None}, 400),
])
def test_bad_changes_are_400_and_change_nothing(client, admin, make_user, app, body, status):
    make_user("ravi")
    response = client.post("/admin/users/ravi", json=body, headers=admin.headers())
    assert response.status_code == status, response.get_json()
    assert audit_rows(app, "user_updated") == []


def test_changing_an_unknown_account_is_404(client, admin):
    assert client.post("/admin/users/ghost", json={"role": "viewer"}, headers=admin.headers()).status_code == 404
    assert client.get("/admin/users/ghost").status_code == 404


def test_deactivation_signs_the_account_out_at_once_and_reactivation_lets_it_back(client, admin, make_user, app):
    ravi = other_client(app, make_user, "ravi")
    assert ravi.client.get("/admin").status_code == 200
    response = client.post("/admin/users/ravi", json={"active": False}, headers=admin.headers())
    assert response.status_code == 200 and response.get_json()["active"] is False
    assert ravi.client.get("/admin").status_code == 401
    assert ravi.client.get("/admin", headers=HTML).headers["Location"].startswith("/login")
    assert app.test_client().post("/login", json={"username": "ravi", "password": PASSWORD}).status_code == 401
    client.post("/admin/users/ravi", json={"active": True}, headers=admin.headers())
    assert app.test_client().post("/login", json={"username": "ravi", "password": PASSWORD}).status_code == 200
    first, second = audit_rows(app, "user_updated")
    assert first.details == {"changed": ["active"], "active": {"from": True, "to": False}, "sessions_ended": 1}
    assert second.details == {"changed": ["active"], "active": {"from": False, "to": True}}


def test_a_new_password_from_the_admin_ends_the_accounts_sessions(client, admin, make_user, app):
    ravi = other_client(app, make_user, "ravi")
    response = client.post("/admin/users/ravi", json={"password": "new-horse-battery-9"}, headers=admin.headers())
    assert response.status_code == 200
    assert ravi.client.get("/admin").status_code == 401
    fresh = app.test_client()
    assert fresh.post("/login", json={"username": "ravi", "password": PASSWORD}).status_code == 401
    assert fresh.post("/login", json={"username": "ravi", "password": "new-horse-battery-9"}).status_code == 200
    [row] = audit_rows(app, "user_updated")
    assert row.details == {"changed": ["password"], "sessions_ended": 1}
    assert "new-horse-battery-9" not in str(row.details)
    assert client.get("/admin").status_code == 200  # the admin's own session is untouched


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(client, admin, app, make_user):
    for body in ({"role": "operator"}, {"active": False}, {"role": "viewer", "active": False}):
        response = client.post("/admin/users/chief", json=body, headers=admin.headers())
        assert response.status_code == 409, body
        assert "no active admin" in response.get_json()["error"]
    assert client.get("/admin/users").status_code == 200
    make_user("second", role="admin")
    assert client.post("/admin/users/second", json={"role": "operator"}, headers=admin.headers()).status_code == 200
    assert client.post("/admin/users/chief", json={"active": False}, headers=admin.headers()).status_code == 409
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.username == "chief")) == "admin"
    assert len(audit_rows(app, "user_updated")) == 1


def test_an_inactive_admin_does_not_count_as_the_remaining_admin(client, admin, make_user):
    make_user("dormant", role="admin")
    assert client.post("/admin/users/dormant", json={"active": False}, headers=admin.headers()).status_code == 200
    assert client.post("/admin/users/chief", json={"role": "operator"}, headers=admin.headers()).status_code == 409


def test_the_bootstrap_admin_cannot_be_demoted_or_deactivated_from_the_page(make_config, make_user):
    from app import create_app

    application = create_app(make_config(ADMIN_USERNAME="root", ADMIN_PASSWORD="root-password-long"))
    make_user("root", "root-password-long", "admin")  # what `flask deploy` ensures
    auth = AuthActions(application.test_client(), make_user)
    auth.login("chief", role="admin")
    for body in ({"role": "operator"}, {"active": False}):
        response = auth.client.post("/admin/users/ROOT", json=body, headers=auth.headers())
        assert response.status_code == 409 and "bootstrap" in response.get_json()["error"]
    assert auth.client.post("/admin/users/root", json={"password": "another-long-pass"},
                            headers=auth.headers()).status_code == 200


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, make_user):
    """The last-admin check is decided inside each change's transaction, so a race cannot remove both."""
    make_user("alpha", role="admin")
    make_user("beta", role="admin")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: str, target: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                update_user(target, UserChanges(role="operator"), actor=actor)
                db.session.commit()
                outcomes.append("ok")
            except Conflict:
                db.session.rollback()
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=demote, args=pair) for pair in (("alpha", "beta"), ("beta", "alpha"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["ok", "refused"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1


# --- ending sessions and unlocking --------------------------------------------------------------------------------

def test_admin_ends_all_sessions_of_an_account(client, admin, make_user, app):
    first = other_client(app, make_user, "ravi")
    second = AuthActions(app.test_client(), make_user)
    second.login("ravi", create=False)
    response = client.post("/admin/users/ravi/sessions/end", json={}, headers=admin.headers())
    assert response.get_json() == {"username": "ravi", "sessions_ended": 2}
    assert first.client.get("/admin").status_code == 401 and second.client.get("/admin").status_code == 401
    [row] = audit_rows(app, "session_ended")
    assert (row.actor, row.target_id, row.details) == ("chief", "ravi", {"count": 2})


def test_admin_unlocks_a_locked_account(client, admin, make_user, app):
    make_user("ravi")
    stranger = app.test_client()
    for _ in range(5):
        stranger.post("/login", json={"username": "ravi", "password": "wrong-password-1"})
    assert stranger.post("/login", json={"username": "ravi", "password": PASSWORD}).status_code == 429
    page = client.get("/admin/users/ravi", headers=HTML).get_data(as_text=True)
    assert "Unlock" in page
    response = client.post("/admin/users/ravi/unlock", json={}, headers=admin.headers())
    assert response.get_json() == {"username": "ravi", "was_locked": True}
    assert stranger.post("/login", json={"username": "ravi", "password": PASSWORD}).status_code == 200
    [row] = audit_rows(app, "user_unlocked")
    assert (row.actor, row.target_id, row.details) == ("chief", "ravi", {"was_locked": True})


@pytest.mark.parametrize("action, answer", [
    ("unlock", {"username": "ravi", "was_locked": False}),
    ("sessions/end", {"username": "ravi", "sessions_ended": 1}),
])
def test_a_bodiless_post_that_accepts_json_gets_json(client, admin, make_user, app, action, answer):
    """curl -X POST -H 'Accept: application/json' -H 'X-CSRFToken: …' with no body: JSON, not a 302."""
    other_client(app, make_user, "ravi")
    json_only = {**admin.headers(), "Accept": "application/json"}
    response = client.post(f"/admin/users/ravi/{action}", headers=json_only)
    assert response.status_code == 200 and response.get_json() == answer
    unknown = client.post(f"/admin/users/nobody/{action}", headers=json_only)
    assert unknown.status_code == 404 and unknown.get_json() == {"error": "No such staff account."}
    no_token = client.post(f"/admin/users/ravi/{action}", headers={"Accept": "application/json"})
    assert no_token.status_code == 400 and "CSRF" in no_token.get_json()["error"]


# --- asking before acting -----------------------------------------------------------------------------------------

def test_ending_sessions_in_the_browser_asks_first(client, admin, make_user, app):
    ravi = other_client(app, make_user, "ravi")
    token = csrf_from(client.get("/admin/users/ravi", headers=HTML))
    question = client.get("/admin/users/ravi/sessions/end", headers=HTML)
    assert question.status_code == 200 and question.headers["Cache-Control"] == "no-store"
    text = question.get_data(as_text=True)
    assert "Are you sure you want to end every session of ravi?" in text
    assert 'action="/admin/users/ravi/sessions/end"' in text and 'name="confirm" value="yes"' in text
    # The old one-click form (no confirmation) gets the question, and nothing happens.
    old_form = client.post("/admin/users/ravi/sessions/end", data={"csrf_token": token}, headers=HTML)
    assert old_form.status_code == 200 and "Are you sure" in old_form.get_data(as_text=True)
    assert ravi.client.get("/admin").status_code == 200 and audit_rows(app, "session_ended") == []
    assert client.post("/admin/users/ravi/sessions/end", data={"confirm": "yes"}, headers=HTML).status_code == 400
    done = client.post("/admin/users/ravi/sessions/end", data={"csrf_token": csrf_from(question), "confirm": "yes"},
                       headers=HTML)
    assert done.status_code == 302 and ravi.client.get("/admin").status_code == 401
    assert len(audit_rows(app, "session_ended")) == 1
    assert client.get("/admin/users/nobody/sessions/end", headers=HTML).status_code == 404


def test_deactivating_in_the_browser_asks_first_and_json_clients_act_at_once(client, admin, make_user, app):
    make_user("ravi")
    make_user("mina")
    token = csrf_from(client.get("/admin/users/ravi", headers=HTML))
    question = client.get("/admin/users/ravi/deactivate", headers=HTML)
    text = question.get_data(as_text=True)
    assert question.status_code == 200 and "Are you sure you want to deactivate ravi?" in text
    assert 'action="/admin/users/ravi"' in text and 'name="active" value="false"' in text
    old_form = client.post("/admin/users/ravi", data={"csrf_token": token, "active": "false"}, headers=HTML)
    assert old_form.status_code == 200 and "Are you sure you want to deactivate ravi?" in old_form.get_data(
        as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.active).where(User.username == "ravi")) is True
    # Reactivating, and other changes, need no confirmation.
    assert client.post("/admin/users/ravi", data={"csrf_token": token, "role": "viewer"},
                       headers=HTML).status_code == 302
    confirmed = client.post("/admin/users/ravi", data={"csrf_token": token, "active": "false", "confirm": "yes"},
                            headers=HTML)
    assert confirmed.status_code == 302
    assert client.post("/admin/users/mina", json={"active": False}, headers=admin.headers()).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(User.active).where(User.username.in_(["ravi", "mina"]))).all() == [
            False, False]
    assert len(audit_rows(app, "user_updated")) == 3
    assert client.get("/admin/users/nobody/deactivate", headers=HTML).status_code == 404


@pytest.mark.parametrize("path", ["/admin/users/ravi/deactivate", "/admin/users/ravi/sessions/end"])
def test_confirmation_pages_are_for_admins_only(client, auth, make_user, path):
    make_user("ravi")
    assert client.get(path, headers=HTML).status_code == 302  # not signed in: to the sign-in page
    auth.login("desk", role="operator")
    assert client.get(path, headers=HTML).status_code == 403


# --- the HTML pages -----------------------------------------------------------------------------------------------

def test_the_users_page_creates_accounts_through_its_form(client, admin, app):
    page = client.get("/admin/users", headers=HTML)
    assert page.status_code == 200 and "Staff accounts" in page.get_data(as_text=True)
    token = csrf_from(page)
    response = client.post("/admin/users", data={"csrf_token": token, "username": "mina", "role": "viewer",
                                                 "password": PASSWORD}, headers=HTML)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    listing = client.get("/admin/users", headers=HTML).get_data(as_text=True)
    assert "Created viewer mina." in listing and ">mina</a>" in listing

    weak = client.post("/admin/users", data={"csrf_token": token, "username": "omar", "role": "operator",
                                             "password": "password"}, headers=HTML)
    assert weak.status_code == 400 and "at least 12" in weak.get_data(as_text=True)
    taken = client.post("/admin/users", data={"csrf_token": token, "username": "MINA", "role": "operator",
                                              "password": PASSWORD}, headers=HTML)
    assert taken.status_code == 409 and "taken" in taken.get_data(as_text=True)
    assert client.post("/admin/users", data={"username": "omar", "role": "operator", "password": PASSWORD},
                       headers=HTML).status_code == 400  # no CSRF token


def test_the_account_page_changes_role_and_active_and_shows_refusals(client, admin, make_user, app):
    make_user("ravi")
    token = csrf_from(client.get("/admin/users/ravi", headers=HTML))
    response = client.post("/admin/users/ravi", data={"csrf_token": token, "role": "viewer"}, headers=HTML)
    assert response.status_code == 302
    response = client.post("/admin/users/ravi", data={"csrf_token": token, "active": "false", "confirm": "yes"},
                           headers=HTML)
    assert response.status_code == 302
    page = client.get("/admin/users/ravi", headers=HTML).get_data(as_text=True)
    assert "deactivated" in page and "Reactivate" in page
    refused = client.post("/admin/users/chief", data={"csrf_token": token, "role": "operator"}, headers=HTML)
    assert refused.status_code == 409 and "no active admin" in refused.get_data(as_text=True)
    short = client.post("/admin/users/ravi", data={"csrf_token": token, "password": "short"}, headers=HTML)
    assert short.status_code == 400 and "at least 12" in short.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.username == "ravi")) == "viewer"


def test_admins_see_a_staff_link_and_others_do_not(client, auth, make_user, app):
    auth.login("chief", role="admin")
    assert 'href="/admin/users"' in client.get("/admin", headers=HTML).get_data(as_text=True)
    operator = other_client(app, make_user, "ravi")
    assert 'href="/admin/users"' not in operator.client.get("/admin", headers=HTML).get_data(as_text=True)
