"""Pooled connections are pinged only after sitting idle, and a dead idle one never reaches a request."""
import time

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db

APP_NAME = "waybill-pool-test"


@pytest.fixture
def postgres_app(make_config, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server connection to lose")
    apps = []

    def make(**overrides):
        options = {"pool_pre_ping": False, "connect_args": {"application_name": APP_NAME}}
        application = create_app(make_config(SQLALCHEMY_ENGINE_OPTIONS=options, **overrides))
        apps.append(application)
        return application
    yield make
    for application in apps:
        with application.app_context():
            db.engine.dispose()


def kill_pooled_connections(database_url: str) -> int:
    """What a database restart does to a pool: the test app's connections are ended by the server."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND application_name = :name"),
                                {"name": APP_NAME}).scalar()
    finally:
        admin.dispose()


def track(client, tracking_id):
    return client.get(f"/track/{tracking_id}", headers={"Accept": "application/json"})


def test_an_idle_connection_that_died_is_replaced_before_the_request_uses_it(postgres_app, database_url,
                                                                             create_shipment):
    tracking_id = create_shipment()
    application = postgres_app(DB_PING_AFTER_IDLE_SECONDS=0.2)
    client = application.test_client()
    assert track(client, tracking_id).status_code == 200  # a connection is now in the pool
    assert kill_pooled_connections(database_url) >= 1
    time.sleep(0.3)
    assert track(client, tracking_id).status_code == 200


def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_app, database_url, create_shipment):
    # The other side of the trade: within the threshold there is no ping (no extra round trip per request), so a
    # connection that died in that window fails one request, and the pool is renewed after it.
    tracking_id = create_shipment()
    application = postgres_app(DB_PING_AFTER_IDLE_SECONDS=60)
    client = application.test_client()
    assert track(client, tracking_id).status_code == 200
    kill_pooled_connections(database_url)
    assert track(client, tracking_id).status_code == 500
    assert track(client, tracking_id).status_code == 200
