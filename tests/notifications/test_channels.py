"""One outbox, several channels: the worker hands each claimed row to its channel's sender, each channel keeps its
own attempt limit, and a row nobody can send fails visibly without holding up the others. Real SMTP throughout."""
from __future__ import annotations

from datetime import timedelta

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Notification
from app.notifier import channels, claims
from app.notifier.sender import DeliveryFailed
from tests.notifications.conftest import notification_rows


def _second_row(application, channel: str, **values) -> int:
    """Another outbox row for the first row's event, on `channel`."""
    with application.app_context():
        first = db.session.get(Notification, notification_rows(application)[0].id)
        row = Notification(shipment_id=first.shipment_id, event_id=first.event_id, channel=channel,
                           recipient="+919876500001", subject=first.subject, **values)
        db.session.add(row)
        db.session.commit()
        return row.id


def test_a_row_of_a_channel_nobody_sends_is_dead_and_the_email_beside_it_is_sent(app, desk, drain, smtp_server):
    desk.book()
    pigeon = _second_row(app, "pigeon")
    report = drain()
    assert (report.sent, report.dead) == (1, 1)
    rows = {row.id: row for row in notification_rows(app)}
    assert rows[pigeon].state == "dead" and "no sender for channel 'pigeon'" in rows[pigeon].last_error
    assert [row.state for row in rows.values() if row.channel == "email"] == ["sent"]
    assert smtp_server.sink.count() == 1


def test_an_unreachable_channel_fails_its_rows_and_not_the_others(make_app, desk_for, drain, smtp_server,
                                                                    monkeypatch):
    class Unreachable:  # a gateway that is down: every send finds no one listening
        def __init__(self, config):
            pass

        def send(self, claimed, facts):
            tried.append(claimed.id)
            raise DeliveryFailed("gateway unreachable", connection=True)

        def close(self):
            pass

    tried: list[int] = []
    monkeypatch.setitem(channels.CHANNELS, "sms", channels.Channel(
        "sms", open=Unreachable, retry_policy=lambda config: claims.RetryPolicy(5, 60.0, 60.0),
        mask=lambda number: "…" + number[-4:]))
    mailer = make_app(**smtp_server.settings())
    desk = desk_for(mailer)
    for _ in range(3):
        desk.book()
    with mailer.app_context():
        events = [(row.shipment_id, row.event_id) for row in db.session.query(Notification).all()]
        for shipment_id, event_id in events:
            db.session.add(Notification(shipment_id=shipment_id, event_id=event_id, channel="sms",
                                        recipient="+919876500001", subject="sms"))
        db.session.commit()
    report = drain(mailer)
    assert report.sent == 3 and report.retrying == 3
    assert len(tried) == 1  # the first sms row found the gateway down; the other two were not tried
    by_channel = {}
    for row in notification_rows(mailer):
        by_channel.setdefault(row.channel, []).append((row.state, row.attempts))
    assert by_channel == {"email": [("sent", 1)] * 3, "sms": [("pending", 1)] * 3}
    assert smtp_server.sink.count() == 3


def test_expired_leases_are_judged_by_each_channels_own_attempt_limit(app, desk, smtp_server):
    desk.book()
    _second_row(app, "webhook")
    with app.app_context():
        # Claimed a minute ago with a 30 s lease: both leases ran out, without waiting for them.
        claims.claim_due(10, lease_seconds=30, max_attempts={"email": 5, "webhook": 5},
                         now=utcnow() - timedelta(minutes=1), due_by=utcnow())
        db.session.execute(Notification.__table__.update().values(attempts=2))
        db.session.commit()
    with app.app_context():
        reclaimed = claims.claim_due(10, lease_seconds=30, max_attempts={"email": 2, "webhook": 15})
        db.session.commit()
    assert [(claimed.channel, claimed.attempts) for claimed in reclaimed] == [("webhook", 3)]
    states = {row.channel: (row.state, row.last_error or "") for row in notification_rows(app)}
    assert states["email"][0] == "dead" and "lease expired" in states["email"][1]
    assert states["webhook"][0] == "sending"


def test_a_channel_not_named_in_the_limits_gets_no_more_attempts(app, desk):
    desk.book()
    with app.app_context():
        db.session.execute(Notification.__table__.update().values(
            state="sending", attempts=1, lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert claims.claim_due(10, lease_seconds=30, max_attempts={"sms": 9}) == []
        db.session.commit()
    assert notification_rows(app)[0].state == "dead"


def test_every_channel_declares_its_limits_from_the_configuration(app):
    policies = channels.retry_policies(app.config)
    assert policies["email"].max_attempts == app.config["MAIL_MAX_ATTEMPTS"]
    assert channels.max_attempts(app.config)["email"] == app.config["MAIL_MAX_ATTEMPTS"]
