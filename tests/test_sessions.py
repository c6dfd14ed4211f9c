"""Server-side staff sessions (the cookie holds only a random id), /account, and sign-in lockout."""
from __future__ import annotations

import hashlib
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from app import create_app
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, LoginThrottle, StaffSession
from app.services.staff.users import create_user
from tests.conftest import AuthActions, clean_database

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PASSWORD = "correct-horse-1"
WRONG = "wrong-password-1"


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def cookie_contents(app, client) -> dict:
    return dict(app.session_interface.get_signing_serializer(app).loads(session_cookie(client)))


def actions(app, *names: str) -> list[str]:
    with app.app_context():
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        if names:
            query = query.where(AuditEntry.action.in_(names))
        return list(db.session.scalars(query))


def sessions_of(app) -> list[StaffSession]:
    with app.app_context():
        rows = db.session.scalars(select(StaffSession).order_by(StaffSession.id)).all()
        db.session.expunge_all()
        return rows


def login(client, username="operator1", password=PASSWORD, **extra):
    return client.post("/login", json={"username": username, "password": password, **extra})


# --- the cookie and the record ------------------------------------------------------------------------------------

def test_the_cookie_carries_only_a_random_id_and_the_table_only_its_hash(app, client, auth):
    auth.login()
    contents = cookie_contents(app, client)
    assert set(contents) <= {"sid", "staff", "csrf_token", "_permanent"}
    assert "_user_id" not in contents and "_fresh" not in contents
    [record] = sessions_of(app)
    assert record.token_hash == hashlib.sha256(contents["sid"].encode()).hexdigest()
    assert contents["sid"] not in record.token_hash and len(contents["sid"]) >= 40
    assert record.client_address == "127.0.0.1" and record.revoked_at is None
    assert timedelta(hours=11, minutes=59) < record.expires_at - record.created_at <= timedelta(hours=12)


def test_every_sign_in_gets_its_own_session_id(app, client, make_user):
    make_user()
    login(client)
    first = cookie_contents(app, client)["sid"]
    login(client)
    assert cookie_contents(app, client)["sid"] != first
    assert len(sessions_of(app)) == 2


def test_keep_me_signed_in_is_the_same_record_with_a_seven_day_life(app, client, make_user):
    make_user()
    login(client, remember=True)
    [record] = sessions_of(app)
    assert timedelta(days=6, hours=23) < record.expires_at - record.created_at <= timedelta(days=7)


def test_session_life_is_configurable(make_config, make_user):
    application = create_app(make_config(SESSION_HOURS=1.5))
    make_user()
    login(application.test_client())
    [record] = sessions_of(application)
    assert record.expires_at - record.created_at == timedelta(hours=1, minutes=30)


def test_production_cookies_are_secure_httponly_and_lax(monkeypatch):
    from app.config import ProductionConfig

    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    config = ProductionConfig()
    assert (config.SESSION_COOKIE_SECURE, config.SESSION_COOKIE_HTTPONLY, config.SESSION_COOKIE_SAMESITE) == \
        (True, True, "Lax")


# --- ending sessions ----------------------------------------------------------------------------------------------

def test_logout_revokes_the_session_and_a_replayed_cookie_is_refused(app, client, auth):
    auth.login()
    stolen = session_cookie(client)
    assert auth.logout().status_code == 200
    [record] = sessions_of(app)
    assert record.revoked_at is not None
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/admin").status_code == 401
    assert replay.get("/admin", headers=HTML).headers["Location"].startswith("/login?next=")
    assert actions(app, "login", "logout") == ["login", "logout"]


def test_an_expired_session_is_signed_out(app, client, auth):
    auth.login()
    with app.app_context():
        db.session.execute(update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert client.get("/admin").status_code == 401


def test_an_unknown_session_id_in_a_validly_signed_cookie_is_signed_out(app, auth, client):
    auth.login()
    forged = app.test_client()
    serializer = app.session_interface.get_signing_serializer(app)
    forged.set_cookie("session", serializer.dumps({"sid": "not-a-real-session-id", "staff": {"username": "x"}}))
    assert forged.get("/admin").status_code == 401
    assert forged.get_cookie("session") is None  # the stale id is dropped: the cookie is cleared


def test_last_seen_is_written_at_most_once_a_minute(app, client, auth):
    auth.login()
    [before] = sessions_of(app)
    client.get("/admin")
    [same] = sessions_of(app)
    assert same.last_seen_at == before.last_seen_at
    with app.app_context():
        db.session.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(minutes=2)))
        db.session.commit()
    client.get("/admin")
    [after] = sessions_of(app)
    assert utcnow() - after.last_seen_at < timedelta(seconds=30)


@contextmanager
def statements_on(app):
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_public_routes_never_look_the_session_up(app, client, auth, create_shipment):
    tracking_id = create_shipment()
    auth.login()
    with statements_on(app) as seen:
        responses = [
            client.get("/", headers=HTML), client.get(f"/track/{tracking_id}"),
            client.get(f"/track/{tracking_id}", headers=HTML), client.get("/search/9876543210"),
            client.get("/search/9876543210", headers=HTML), client.get("/healthz"), client.get("/readyz"),
            client.post("/create", json={"sender_name": "A B", "receiver_name": "C D", "mobile": "9876543210",
                                         "email": "c@example.com", "destination": "Pune"}),
            client.get("/no-such-page", headers=HTML),
        ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 200, 200, 201, 404]
    assert not [s for s in seen if "staff_sessions" in s or "users" in s.split("WHERE")[0]]
    # The signed-in navigation still shows on public pages, from the cookie's hint (never an authorisation).
    assert "Sign out" in responses[0].get_data(as_text=True)
    with statements_on(app) as seen:
        client.get("/admin")
    assert any("staff_sessions" in s for s in seen)


def test_only_sign_in_and_sign_out_among_public_routes_may_read_the_session(app):
    readers = {endpoint for endpoint, view in app.view_functions.items()
               if getattr(view, "uses_staff_session", False) and getattr(view, "required_roles", None) is None}
    assert readers == {"auth.login", "auth.logout"}


# --- /account -----------------------------------------------------------------------------------------------------

def second_browser(app, make_user) -> AuthActions:
    other = AuthActions(app.test_client(), make_user)
    other.login(create=False)
    return other


def test_account_lists_own_active_sessions_and_marks_this_one(app, client, auth, make_user):
    auth.login()
    second_browser(app, make_user)
    body = client.get("/account").get_json()
    assert body["username"] == "operator1" and len(body["sessions"]) == 2
    assert [s["current"] for s in body["sessions"]].count(True) == 1
    assert set(body["sessions"][0]) == {"id", "created_at", "last_seen_at", "expires_at", "client_address",
                                        "user_agent", "current"}
    page = client.get("/account", headers=HTML).get_data(as_text=True)
    assert "(this session)" in page and "Change your password" in page


@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_every_role_may_use_its_account_page(client, auth, role):
    auth.login("someone", role=role)
    assert client.get("/account").status_code == 200


def test_changing_ones_password_ends_the_other_sessions_only(app, client, auth, make_user):
    auth.login()
    other = second_browser(app, make_user)
    response = client.post("/account/password", json={"current_password": PASSWORD,
                                                       "new_password": "brand-new-secret-7"}, headers=auth.headers())
    assert response.get_json() == {"password_changed": True, "sessions_ended": 1}
    assert client.get("/admin").status_code == 200
    assert other.client.get("/admin").status_code == 401
    assert login(app.test_client(), password="brand-new-secret-7").status_code == 200
    with app.app_context():
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user_updated")).one()
        assert (row.actor, row.details) == ("operator1", {"changed": ["password"], "sessions_ended": 1})


@pytest.mark.parametrize("body, field", [
    ({"current_password": "not-my-password", "new_password": "brand-new-secret-7"}, "current_password"),
    ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "password1234"}, "new_password"),
    ({"current_password": PASSWORD, "new_password": "brand-new-secret-7", "confirm_password": "x"},
     "confirm_password"),
    ({"new_password": "brand-new-secret-7"}, "current_password"),
])
def test_bad_password_changes_are_400_and_change_nothing(app, client, auth, body, field):
    auth.login()
    response = client.post("/account/password", json=body, headers=auth.headers())
    assert response.status_code == 400 and field in response.get_json()["fields"]
    assert login(app.test_client()).status_code == 200
    assert actions(app, "user_updated") == []


def test_the_account_form_changes_the_password_in_the_browser(app, client, auth):
    auth.login()
    page = client.get("/account", headers=HTML)
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    wrong = client.post("/account/password", data={"csrf_token": token, "current_password": "nope-nope-nope",
                                                    "new_password": "brand-new-secret-7",
                                                    "confirm_password": "brand-new-secret-7"}, headers=HTML)
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    done = client.post("/account/password", data={"csrf_token": token, "current_password": PASSWORD,
                                                   "new_password": "brand-new-secret-7",
                                                   "confirm_password": "brand-new-secret-7"}, headers=HTML)
    assert done.status_code == 302 and done.headers["Location"] == "/account"


def test_ending_another_session_from_the_account_page(app, client, auth, make_user):
    auth.login()
    other = second_browser(app, make_user)
    sessions = client.get("/account").get_json()["sessions"]
    [other_id] = [s["id"] for s in sessions if not s["current"]]
    response = client.post(f"/account/sessions/{other_id}/end", json={}, headers=auth.headers())
    assert response.get_json() == {"ended": other_id, "signed_out": False}
    assert other.client.get("/admin").status_code == 401
    assert client.get("/admin").status_code == 200
    assert actions(app, "session_ended") == ["session_ended"]


def test_ending_this_session_signs_out_and_others_cannot_be_ended(app, client, auth, make_user):
    auth.login()
    intruder = AuthActions(app.test_client(), make_user)
    intruder.login("mallory")
    [mine] = client.get("/account").get_json()["sessions"]
    assert intruder.client.post(f"/account/sessions/{mine['id']}/end", json={},
                                headers=intruder.headers()).status_code == 404
    response = client.post(f"/account/sessions/{mine['id']}/end", json={}, headers=auth.headers())
    assert response.get_json() == {"ended": mine["id"], "signed_out": True}
    assert client.get("/admin").status_code == 401


# --- lockout ------------------------------------------------------------------------------------------------------

def test_five_failures_lock_the_username_even_for_the_right_password(app, client, make_user):
    make_user()
    codes = [login(client, password=WRONG).status_code for _ in range(5)]
    assert codes == [401] * 5
    locked = login(client)
    assert locked.status_code == 429
    assert locked.get_json() == {"error": "Wrong username or password."}
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    assert login(client, "OPERATOR1").status_code == 429  # the lock is on the name, whatever its case
    assert actions(app, "login_failed", "login_locked", "login") == ["login_failed"] * 5 + ["login_locked"] * 2
    with app.app_context():
        fifth = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed")
                                   .order_by(AuditEntry.id.desc())).first()
        assert fifth.details == {"failures": 5, "locked_minutes": 15} and fifth.target_id == "operator1"


def test_an_unknown_username_locks_exactly_like_a_real_one(client):
    assert [login(client, "ghost", WRONG).status_code for _ in range(6)] == [401] * 5 + [429]


def test_the_browser_form_is_locked_too(app, client, make_user):
    make_user()
    for _ in range(5):
        login(client, password=WRONG)
    page = client.get("/login", headers=HTML).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/login", data={"csrf_token": token, "username": "operator1", "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert "Wrong username or password." in response.get_data(as_text=True)


def test_the_lock_ends_after_its_time_and_a_success_clears_the_count(app, client, make_user):
    make_user()
    for _ in range(5):
        login(client, password=WRONG)
    with app.app_context():
        db.session.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert login(client).status_code == 200
    with app.app_context():
        assert db.session.scalars(select(LoginThrottle)).all() == []


def test_failures_older_than_the_window_do_not_count(app, client, make_user):
    make_user()
    for _ in range(4):
        login(client, password=WRONG)
    with app.app_context():
        db.session.execute(update(LoginThrottle).values(window_started_at=utcnow() - timedelta(minutes=16)))
        db.session.commit()
    assert [login(client, password=WRONG).status_code for _ in range(4)] == [401] * 4
    assert login(client).status_code == 200


def test_counters_that_count_nothing_any_more_are_deleted_when_a_new_name_is_counted(app, client):
    for name in ("typed-once", "guessed-name", "locked-name"):
        login(client, username=name, password=WRONG)
    with app.app_context():
        db.session.execute(update(LoginThrottle).values(window_started_at=utcnow() - timedelta(minutes=16)))
        db.session.execute(update(LoginThrottle).where(LoginThrottle.username_key == "locked-name")
                           .values(locked_until=utcnow() + timedelta(minutes=5)))
        db.session.commit()
    login(client, username="typed-once", password=WRONG)  # an existing counter: nothing is pruned
    with app.app_context():
        assert len(db.session.scalars(select(LoginThrottle)).all()) == 3
    login(client, username="someone-new", password=WRONG)
    with app.app_context():
        left = {row.username_key: row.failures for row in db.session.scalars(select(LoginThrottle))}
    # The stale, unlocked counter is gone; the live lock, the counter just bumped and the new one stay.
    assert left == {"locked-name": 1, "typed-once": 1, "someone-new": 1}


def test_lockout_settings_are_read_from_the_config(make_config, make_user):
    application = create_app(make_config(LOGIN_LOCK_AFTER=2, LOGIN_LOCK_MINUTES=1))
    make_user()
    client = application.test_client()
    assert [login(client, password=WRONG).status_code for _ in range(2)] == [401, 401]
    response = login(client)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) <= 60


@pytest.mark.one_database  # the time is the hash's (scrypt), the same on either database
def test_unknown_and_real_usernames_take_the_same_time(make_config):
    """No user enumeration by timing: an unknown name is checked against a dummy hash of the same cost."""
    # The production hash: with the tests' cheap one both sides would take microseconds and prove nothing.
    application = create_app(make_config(LOGIN_LOCK_AFTER=10_000, PASSWORD_HASH_METHOD="scrypt"))
    with application.app_context():
        assert create_user("operator1", "correct-horse-1", "operator").password_hash.startswith("scrypt:")
        db.session.commit()
    client = application.test_client()
    login(client, "nobody-at-all", WRONG)  # warm up (the dummy hash is made once)

    def seconds(username: str) -> float:
        started = time.perf_counter()
        assert login(client, username, WRONG).status_code == 401
        return time.perf_counter() - started

    # Interleaved, so a machine that gets busier or quieter during the test slows both sides alike (two series
    # one after the other once measured the load, not the code: a ratio of 2.01 on a loaded machine).
    times = {"operator1": [], "nobody-at-all": []}
    for _ in range(24):
        for username, series in times.items():
            series.append(seconds(username))
    real, unknown = statistics.median(times["operator1"]), statistics.median(times["nobody-at-all"])
    assert 0.5 < unknown / real < 2.0, (real, unknown)
    clean_database(application)


def test_the_per_address_limit_still_applies_before_the_account_lock(make_config):
    limited = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN="3 per minute"))
    client = limited.test_client()
    codes = [login(client, f"user{n}", WRONG).status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]


def test_an_old_remember_me_cookie_neither_signs_in_nor_gets_in_the_way(app, client, auth):
    from flask_login.utils import encode_cookie

    auth.login()
    with app.test_request_context():
        legacy = encode_cookie("1")  # what Flask-Login's remember cookie held: the user's id, signed
    client.set_cookie("remember_token", legacy)
    response = client.get("/admin")
    assert response.status_code == 200  # the real session still counts
    assert any(c.startswith("remember_token=;") for c in response.headers.getlist("Set-Cookie"))  # and it is gone
    stranger = app.test_client()
    stranger.set_cookie("remember_token", legacy)
    assert stranger.get("/admin").status_code == 401
