"""The delivery code: issued at every Out for Delivery while the setting is on, sent through the outbox and
stored only as a keyed hash; needed for Delivered, counted when wrong, locking the stop after five."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.domain.status import Status
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, DeliveryCode, Notification, Shipment
from app.services.field import delivery_codes
from app.services.field.delivery_codes import CodeCheck
from app.services.shipments.status_changes import StatusChange, apply_status_changes, record_status_change
from tests.field_support import COURIER, Field, outcomes, sent_code, user_id


@pytest.fixture
def field(app, client, auth, make_user, create_shipment):
    return Field(app, client, auth, make_user, create_shipment)


@pytest.fixture
def with_codes(field):
    field.settings(delivery_otp="on")
    courier_id = field.courier()
    parcel = field.parcel()
    field.assign(courier_id, [parcel])
    field.sign_in()
    return parcel


def test_out_for_delivery_sends_the_recipient_a_code_kept_only_as_a_keyed_hash(field, with_codes, app):
    parcel = with_codes
    with app.app_context():
        rows = db.session.scalars(select(Notification).join(Shipment).where(
            Shipment.tracking_id == parcel, Notification.channel.in_(["code_sms", "code_email"]))).all()
        assert sorted((r.channel, r.recipient) for r in rows) == [("code_email", "vikram@example.com"),
                                                                  ("code_sms", "+919876543210")]
        code = sent_code(app, parcel)
        stored = db.session.scalars(select(DeliveryCode)).one()
        assert code not in stored.code_hash and len(stored.code_hash) == 64
        audit = " ".join(f"{a.action} {a.details}" for a in db.session.scalars(select(AuditEntry)))
        assert "status_changed" in audit and code not in audit
        assert code not in " ".join(r.subject for r in rows)
    from app.services.outbox.messages import load_facts, render
    with app.app_context(), app.test_request_context():
        email = db.session.scalars(select(Notification).where(Notification.channel == "code_email")).one()
        rendered = render(email, load_facts([email]))
        assert code in rendered.body_text and code in rendered.body_html
        assert parcel in rendered.subject
    [stop] = field.client.get("/courier/stops").get_json()["stops"]
    assert stop["otp_required"] is True


def test_no_code_is_issued_while_the_setting_is_off(field):
    field.parcel()
    assert field.count(DeliveryCode) == 0
    assert field.count(Notification, Notification.channel.in_(["code_sms", "code_email"])) == 0


def test_the_right_code_delivers(field, with_codes, app):
    parcel = with_codes
    [result] = field.send(field.event(parcel, otp=sent_code(app, parcel)))
    assert result["outcome"] == "applied"
    with app.app_context():
        assert db.session.scalars(select(DeliveryCode)).one().used_at is not None


def test_delivered_without_the_code_is_refused(field, with_codes):
    [result] = field.send(field.event(with_codes))
    assert (result["outcome"], result["error"], list(result["fields"])) == ("refused", "invalid", ["otp"])
    assert field.status_of(with_codes) == "Out for Delivery"


def test_an_attempt_needs_no_code(field, with_codes):
    assert outcomes(field.send(field.event(with_codes, Status.DELIVERY_ATTEMPTED))) == ["applied"]


def test_five_wrong_codes_lock_the_stop_for_15_minutes(field, with_codes, app):
    parcel = with_codes
    right = sent_code(app, parcel)
    wrong = f"{(int(right) + 1) % 10000:04d}"
    results = field.send(*[field.event(parcel, otp=wrong) for _ in range(5)])
    assert [r["error"] for r in results] == ["otp_wrong"] * 4 + ["locked"]
    assert results[0]["fields"] == {"otp": "Wrong code: 4 tries left."}
    [locked] = field.send(field.event(parcel, otp=right))
    assert (locked["outcome"], locked["error"]) == ("refused", "locked")
    with app.app_context():
        code = db.session.scalars(select(DeliveryCode)).one()
        assert code.failures == 5
        assert timedelta(minutes=14) < code.locked_until - utcnow() <= timedelta(minutes=15)
        code.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert outcomes(field.send(field.event(parcel, otp=right))) == ["applied"]


def test_a_replayed_wrong_code_counts_once(field, with_codes, app):
    action = field.event(with_codes, otp="0000" if sent_code(app, with_codes) != "0000" else "1111")
    field.send(action)
    field.send(action)
    with app.app_context():
        assert db.session.scalar(select(DeliveryCode.failures)) == 1


def test_a_new_attempt_gets_a_new_code_and_a_fresh_count(field, with_codes, app):
    parcel = with_codes
    first = sent_code(app, parcel)
    field.send(field.event(parcel, otp=f"{(int(first) + 1) % 10000:04d}"))
    assert outcomes(field.send(field.event(parcel, Status.DELIVERY_ATTEMPTED))) == ["applied"]
    with app.app_context():
        record_status_change(parcel, Status.OUT_FOR_DELIVERY, "Kochi Hub", None, "operator1")
        db.session.commit()
        assert db.session.scalar(select(DeliveryCode.failures)) == 0
    assert field.count(Notification, Notification.channel == "code_sms") == 2
    field.assign(user_id(app, COURIER), [parcel])
    second = sent_code(app, parcel)
    if second != first:
        [stale] = field.send(field.event(parcel, otp=first))
        assert stale["error"] == "otp_wrong"
    assert outcomes(field.send(field.event(parcel, otp=second))) == ["applied"]


def test_codes_are_four_digits_one_a_shipment_and_event_and_need_the_key(app_ctx):
    codes = {delivery_codes.code_for(shipment, event) for shipment in range(1, 40) for event in range(1, 40)}
    assert all(len(code) == 4 and code.isdigit() for code in codes)
    assert len(codes) > 1000  # not one code for all
    assert delivery_codes.code_for(7, 9) == delivery_codes.code_for(7, 9)
    hashed = delivery_codes._code_hash(7, "1234")
    first = [delivery_codes.code_for(7, event) for event in range(20)]
    app_ctx.config["SECRET_KEY"] = "another-key"
    assert delivery_codes._code_hash(7, "1234") != hashed
    assert [delivery_codes.code_for(7, event) for event in range(20)] != first


def test_every_way_to_out_for_delivery_issues_codes_in_bulk(field, app):
    field.settings(delivery_otp="on")
    parcels = [field.parcel(Status.IN_TRANSIT), field.parcel(Status.IN_TRANSIT, email=None, mobile="098765 43211")]
    with app.app_context():
        outcomes_ = apply_status_changes([StatusChange(p, Status.OUT_FOR_DELIVERY, "Kochi Hub") for p in parcels],
                                         "operator1")
        db.session.commit()
        assert all(outcome.ok for outcome in outcomes_)
        rows = db.session.execute(select(Shipment.tracking_id, Notification.channel).join(Shipment).where(
            Notification.channel.in_(["code_sms", "code_email"]))).all()
        assert sorted(rows) == sorted([(parcels[0], "code_email"), (parcels[0], "code_sms"), (parcels[1], "code_sms")])
        assert db.session.query(DeliveryCode).count() == 2


def test_the_worker_sends_the_code_and_no_log_line_holds_it(field, with_codes, app, caplog):
    from app.notifier.worker import OutboxWorker

    code = sent_code(app, with_codes)
    caplog.set_level(logging.DEBUG)
    OutboxWorker(app).drain()
    with app.app_context():
        states = set(db.session.scalars(select(Notification.state).where(
            Notification.channel.in_(["code_sms", "code_email"]))))
    assert states == {"sent"}
    assert not [record for record in caplog.records if code in record.getMessage()]


def test_check_code_answers(field, with_codes, app):
    parcel = with_codes
    code = sent_code(app, parcel)
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == parcel))
        now = utcnow()
        assert delivery_codes.check_code(shipment_id, None, now).check == CodeCheck.MISSING
        assert delivery_codes.check_code(shipment_id, code, now).check == CodeCheck.RIGHT
        assert delivery_codes.check_code(shipment_id + 1000, None, now).check == CodeCheck.NOT_NEEDED
        delivery_codes.mark_used([shipment_id], now)
        assert delivery_codes.check_code(shipment_id, None, now).check == CodeCheck.NOT_NEEDED
        db.session.rollback()
