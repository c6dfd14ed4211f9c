"""The booking statement is a PostgreSQL prepared statement (app.db.prepared): prepared once per pooled
connection, kept across rollbacks, prepared again on a connection that replaced a dead one, and it writes what
the text statement wrote (shipment, Booked event, email row; the SMS row when Booked sends one)."""
from __future__ import annotations

import pytest
from sqlalchemy import bindparam, literal_column, select, text

from app import create_app
from app.db.prepared import PreparedStatement
from app.extensions import db
from app.models import Notification, Shipment
from app.services.shipments.booking import NewShipment, create_shipment
from tests.conftest import clean_database

BOOKING = NewShipment(sender_name="Asha Rao", receiver_name="Vikram Nair", mobile="+919876543210",
                      email="vikram@example.com", destination="14 Marine Drive, Kochi 682031")


@pytest.fixture
def pg_app(app):
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("prepared statements are PostgreSQL's; SQLite books with three plain statements")
        db.engine.dispose()  # a fresh pool: the shared app's connections may hold the statement from other tests
    return app


def prepared_here() -> list[str]:
    """The statements prepared on the session's current connection."""
    return list(db.session.scalars(text("SELECT name FROM pg_prepared_statements ORDER BY name")))


def test_the_booking_is_prepared_once_per_connection_and_survives_a_rollback(pg_app):
    with pg_app.app_context():
        first = create_shipment(BOOKING)
        assert prepared_here() == ["waybill_booking"]
        db.session.rollback()  # the booking is undone; the prepared statement stays with the connection
        assert db.session.get(Shipment, first.id) is None
        assert prepared_here() == ["waybill_booking"]
        second = create_shipment(BOOKING)
        db.session.commit()
        assert prepared_here() == ["waybill_booking"]
        stored = db.session.get(Shipment, second.id)
        assert (stored.tracking_id, stored.status) == (second.tracking_id, "Booked")
        assert [(n.channel, n.recipient) for n in db.session.scalars(
            select(Notification).where(Notification.shipment_id == second.id))] == [("email", "vikram@example.com")]


def test_a_replaced_connection_prepares_the_booking_again(pg_app):
    with pg_app.app_context():
        create_shipment(BOOKING)
        db.session.commit()
        db.session.connection().invalidate()  # as after a database restart: the pool opens a new connection
        db.session.rollback()
        assert prepared_here() == []
        booked = create_shipment(BOOKING)
        db.session.commit()
        assert prepared_here() == ["waybill_booking"]
        assert db.session.get(Shipment, booked.id) is not None


def test_a_booked_sms_follows_the_setting_in_the_prepared_statement(make_config):
    application = create_app(make_config(SMS_STATUSES=("Booked", "Delivered")))
    with application.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("PostgreSQL only")
        booked = create_shipment(BOOKING)
        db.session.commit()
        rows = db.session.scalars(select(Notification).where(Notification.shipment_id == booked.id)
                                  .order_by(Notification.channel))
        assert [(n.channel, n.recipient) for n in rows] == [("email", "vikram@example.com"), ("sms", BOOKING.mobile)]
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


def test_literal_percent_signs_and_values_reach_the_database_as_written(pg_app):
    statement = PreparedStatement("waybill_test_echo", select(
        literal_column("'50%'").label("literal"), bindparam("value", type_=db.String).label("value")))
    with pg_app.app_context():
        row = statement.execute(db.session.connection(), {"value": "100% & 'quoted'"}).one()
        assert tuple(row) == ("50%", "100% & 'quoted'")
        db.session.rollback()


def test_statements_that_cannot_be_prepared_are_refused(pg_app):
    with pytest.raises(ValueError, match="not a statement name"):
        PreparedStatement("drop table; --", select(literal_column("1")))
    expanding = PreparedStatement("waybill_test_in", select(Shipment.id).where(
        Shipment.tracking_id.in_(bindparam("ids", expanding=True))))
    with pg_app.app_context(), pytest.raises(ValueError, match="expanding"):
        expanding.execute(db.session.connection(), {"ids": ["3EE0AFAD"]})
