"""The schema built from the migrations is the schema the models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from app import create_app
from app.config import TestingConfig
from app.extensions import db


def test_migrated_schema_matches_the_models(app_ctx):
    # The database under test was built by `flask db upgrade` (see tests/conftest.py), not by create_all.
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_lookup_indexes_exist(app_ctx):
    inspector = inspect(db.engine)
    shipment_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("shipments")}
    unique = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("shipments")} | {
        tuple(ix["column_names"]) for ix in inspector.get_indexes("shipments") if ix.get("unique")}
    assert ("tracking_id",) in unique
    assert ("mobile", "created_at", "id") in shipment_indexes
    event_indexes = {tuple(ix["column_names"]) for ix in inspector.get_indexes("tracking_events")}
    assert ("shipment_id", "occurred_at") in event_indexes
    outbox = {tuple(c["column_names"]) for c in inspector.get_unique_constraints("notifications")}
    assert ("event_id", "channel", "recipient") in outbox


def test_webhook_subscriptions_that_took_status_changes_keep_the_report_events(tmp_path):
    """0023: the report's events became a choice of their own; a subscription that took shipment.status_changed
    (and so received them before) is given both, one that did not is given neither."""
    app = create_app(TestingConfig(f"sqlite:///{tmp_path / 'before.db'}"))
    with app.app_context():
        upgrade(revision="0022_failed_deliveries")
        now = "2026-12-01 00:00:00"
        db.session.execute(text("INSERT INTO users (id, username, password_hash, role, active, created_at) "
                                "VALUES (1, 'integrator', 'x', 'operator', 1, :now)"), {"now": now})
        for sid, takes in ((1, True), (2, False)):
            db.session.execute(text(
                "INSERT INTO webhook_subscriptions (id, owner_id, url, on_created, on_status_changed, on_delivered,"
                " secret_sealed, active, created_at, updated_at) VALUES (:id, 1, 'https://hooks.example.com/', 1,"
                " :takes, 0, 'sealed', 1, :now, :now)"), {"id": sid, "takes": takes, "now": now})
        db.session.commit()
        upgrade()
        rows = db.session.execute(text("SELECT id, on_ndr_opened, on_ndr_resolved FROM webhook_subscriptions "
                                       "ORDER BY id")).all()
        db.session.remove()
        db.engine.dispose()
    assert [tuple(row) for row in rows] == [(1, 1, 1), (2, 0, 0)]
