"""flask commands: deploy, users and seed-demo."""
import pytest
from sqlalchemy import func, select, text

from app.domain.status import allowed_next_statuses
from app.extensions import db
from app.models import Shipment, TrackingEvent, User


def test_users_create_prompts_for_password_and_stores_an_operator(runner, app):
    result = runner.invoke(args=["users", "create", "ravi", "--role", "operator"],
                           input="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output
    assert "Created operator ravi" in result.output
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "ravi")).one()
        assert user.role == "operator" and user.check_password("a-long-password")


def test_users_create_refuses_short_password_and_duplicates(runner, app, make_user):
    make_user("ravi")
    duplicate = runner.invoke(args=["users", "create", "RAVI"], input="a-long-password\na-long-password\n")
    assert duplicate.exit_code == 2 and "taken" in duplicate.output
    short = runner.invoke(args=["users", "create", "mina"], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 12" in short.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 1


def test_users_ensure_admin_reads_the_environment(runner, app, monkeypatch):
    monkeypatch.setenv("ADMIN_USERNAME", "chief")
    monkeypatch.setenv("ADMIN_PASSWORD", "very-secret-1")
    result = runner.invoke(args=["users", "ensure-admin"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalars(select(User)).one()
        assert (user.username, user.role) == ("chief", "admin") and user.check_password("very-secret-1")


def test_deploy_migrates_an_empty_database_to_the_head_and_ensures_the_admin(tmp_path):
    from app import create_app
    from app.config import TestingConfig
    from app.db.schema import migration_heads, schema_state

    config = TestingConfig(f"sqlite:///{tmp_path / 'fresh.db'}")
    config.ADMIN_USERNAME, config.ADMIN_PASSWORD = "chief", "very-secret-1"
    fresh = create_app(config)
    assert fresh.test_client().get("/readyz").status_code == 503
    result = fresh.test_cli_runner().invoke(args=["deploy"])
    assert result.exit_code == 0, result.output
    assert "Admin chief is ready" in result.output
    with fresh.app_context():
        applied = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
        assert applied == set(migration_heads(fresh.extensions["migrate"].directory)) and applied
        assert schema_state(fresh.extensions["migrate"].directory) == "current"
        user = db.session.scalars(select(User)).one()
        assert (user.username, user.role) == ("chief", "admin") and user.check_password("very-secret-1")
    assert fresh.test_client().get("/readyz").status_code == 200


def test_deploy_again_is_harmless_and_follows_a_changed_admin_password(make_config, app):
    from app import create_app

    for password in ("first-password", "second-password"):
        application = create_app(make_config(ADMIN_USERNAME="chief", ADMIN_PASSWORD=password))
        result = application.test_cli_runner().invoke(args=["deploy"])
        assert result.exit_code == 0, result.output
    client = application.test_client()
    assert client.post("/login", json={"username": "chief", "password": "first-password"}).status_code == 401
    assert client.post("/login", json={"username": "chief", "password": "second-password"}).status_code == 200
    with application.app_context():
        assert len(db.session.scalars(select(User)).all()) == 1


def test_deploy_refuses_a_weak_admin_password_and_leaves_the_admin_alone(make_config, app):
    from app import create_app

    application = create_app(make_config(ADMIN_USERNAME="chief", ADMIN_PASSWORD="password1234"))  # common
    result = application.test_cli_runner().invoke(args=["deploy"])
    assert result.exit_code == 2
    assert "refused" in result.output and "common" in result.output
    with application.app_context():
        assert db.session.scalars(select(User)).all() == []


@pytest.mark.parametrize("username, password", [(None, None), ("chief", None), (None, "very-secret-1")])
def test_deploy_without_both_admin_settings_migrates_and_creates_no_user(make_config, app, username, password):
    from app import create_app

    application = create_app(make_config(ADMIN_USERNAME=username, ADMIN_PASSWORD=password))
    result = application.test_cli_runner().invoke(args=["deploy"])
    assert result.exit_code == 0, result.output
    assert "no admin ensured" in result.output
    with application.app_context():
        assert db.session.scalars(select(User)).all() == []


def test_seed_demo_inserts_valid_histories(runner, app):
    result = runner.invoke(args=["seed-demo", "--shipments", "200", "--events", "5", "--seed", "7"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        shipments = db.session.scalars(select(Shipment)).all()
        assert len(shipments) == 200
        events = db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.shipment_id,
                                                                   TrackingEvent.occurred_at)).all()
        assert 800 <= len(events) <= 1200  # five per shipment on average
        by_shipment: dict[int, list[str]] = {}
        for event in events:
            by_shipment.setdefault(event.shipment_id, []).append(event.status)
        for shipment in shipments:
            history = by_shipment[shipment.id]
            assert history[0] == "Booked" and history[-1] == shipment.status
            for current, following in zip(history, history[1:], strict=False):
                assert following in allowed_next_statuses(current), history
        assert all(s.mobile.startswith("+91") and len(s.mobile) == 13 for s in shipments)
