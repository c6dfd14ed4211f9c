"""flask commands: users and seed-demo."""
from sqlalchemy import func, select

from app.extensions import db
from app.models import Shipment, TrackingEvent, User
from app.services.status import allowed_next_statuses


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
    assert short.exit_code == 2 and "at least 8" in short.output
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
