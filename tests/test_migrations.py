"""The schema built from the migrations is the schema the models describe."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

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
