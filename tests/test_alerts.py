"""Alerts: every kind raised once per cause across repeated looks, counted in Prometheus; the list, the
acknowledgement; the digest's timing and its outbox rows (its real send: tests/notifications/test_alert_digest.py)."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from app.domain.status import Status
from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.jobs.alerts import watch_for_alerts
from app.jobs.registry import JOBS
from app.models import Alert, AuditEntry, CourierProfile, Notification, Shipment, TrackingEvent
from app.services.operations.alert_digest import DIGEST_CHANNEL, queue_alert_digest
from app.services.operations.alerts import ALERT_KINDS, raise_alert
from tests.field_support import Field

HTML = {"Accept": "text/html"}


@pytest.fixture
def field(app, client, auth, make_user, create_shipment):
    return Field(app, client, auth, make_user, create_shipment)


def raised(kind: str) -> float:
    return REGISTRY.get_sample_value("waybill_alerts_raised_total", {"kind": kind}) or 0.0


def watch(app, now: datetime) -> str | None:
    with app.app_context():
        said = watch_for_alerts(now)
        db.session.commit()
        return said


def alerts(app, kind: str | None = None) -> list[Alert]:
    with app.app_context():
        query = select(Alert).order_by(Alert.id)
        return list(db.session.scalars(query.where(Alert.kind == kind) if kind else query))


def shipment_id(app, tracking_id: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))


def test_the_watch_job_is_registered_on_its_setting():
    [job] = [job for job in JOBS if job.name == "alerts.watch"]
    assert job.every.setting == "ALERTS_POLL_SECONDS" and job.exclusive


# --- each kind, once ---------------------------------------------------------------------------------------------

def test_sla_alerts_are_raised_once_per_parcel_and_counted(app, create_shipment):
    tight = create_shipment()
    with app.app_context():
        since = as_utc(db.session.scalar(select(Shipment.updated_at).where(Shipment.tracking_id == tight)))
        db.session.execute(update(Shipment).where(Shipment.tracking_id == tight)
                           .values(promised_by=since + timedelta(days=1)))
        db.session.commit()
    at_risk_before, breached_before = raised("sla_at_risk"), raised("sla_breached")
    for minutes in (60, 61, 62):  # repeated looks while at risk
        watch(app, since + timedelta(minutes=minutes))
    for days in (2, 3):  # and while breached
        watch(app, since + timedelta(days=days))
    [at_risk], [breached] = alerts(app, "sla_at_risk"), alerts(app, "sla_breached")
    assert at_risk.cause == breached.cause == f"shipment:{shipment_id(app, tight)}"
    assert at_risk.details["promised_by"] and at_risk.details["estimated_latest"]
    assert "estimated_latest" not in breached.details
    assert (raised("sla_at_risk") - at_risk_before, raised("sla_breached") - breached_before) == (1.0, 1.0)


def courier_on_the_road(app, field, *, day, last_seen_at) -> tuple[int, str]:
    """A courier on shift round the clock with one open stop on the run sheet of `day`."""
    courier_id = field.courier()
    parcel = field.parcel()
    field.assign(courier_id, [parcel], day=day)
    with app.app_context():
        db.session.execute(update(CourierProfile).where(CourierProfile.user_id == courier_id).values(
            shift_start=time(0, 0), shift_end=time(0, 0), last_seen_at=last_seen_at))
        db.session.commit()
    return courier_id, parcel


def test_a_silent_courier_raises_once_per_silence(app, field):
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=zone)
    courier_id, _ = courier_on_the_road(app, field, day=noon.date(), last_seen_at=as_utc(noon))
    watch(app, as_utc(noon + timedelta(minutes=14)))
    assert alerts(app, "courier_silent") == []
    before = raised("courier_silent")
    for minutes in (15, 20, 40):
        watch(app, as_utc(noon + timedelta(minutes=minutes)))
    [first] = alerts(app, "courier_silent")
    assert first.courier_id == courier_id and first.cause == f"courier:{courier_id}:2026-12-07T06:30:00Z"
    assert first.details == {"last_seen_at": "2026-12-07T06:30:00Z", "silent_since": "2026-12-07T06:30:00Z",
                             "open_stops": 1}
    with app.app_context():  # heard from again at 12:50, then silent again
        db.session.execute(update(CourierProfile).where(CourierProfile.user_id == courier_id)
                           .values(last_seen_at=as_utc(noon + timedelta(minutes=50))))
        db.session.commit()
    watch(app, as_utc(noon + timedelta(minutes=60)))
    assert len(alerts(app, "courier_silent")) == 1
    watch(app, as_utc(noon + timedelta(minutes=70)))
    watch(app, as_utc(noon + timedelta(minutes=80)))
    assert [a.cause for a in alerts(app, "courier_silent")][1] == f"courier:{courier_id}:2026-12-07T07:20:00Z"
    assert raised("courier_silent") - before == 2.0


def test_a_courier_never_heard_from_is_silent_from_the_shifts_start_and_only_on_shift(app, field):
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])
    morning = datetime(2026, 12, 7, 9, 0, tzinfo=zone)
    courier_id, _ = courier_on_the_road(app, field, day=morning.date(), last_seen_at=None)
    with app.app_context():
        db.session.execute(update(CourierProfile).where(CourierProfile.user_id == courier_id)
                           .values(shift_start=time(9, 0), shift_end=time(18, 0)))
        db.session.commit()
    watch(app, as_utc(morning + timedelta(minutes=10)))
    watch(app, as_utc(morning - timedelta(hours=2)))  # before the shift: not expected to be heard from
    assert alerts(app, "courier_silent") == []
    watch(app, as_utc(morning + timedelta(minutes=15)))
    watch(app, as_utc(morning + timedelta(minutes=30)))
    [alert] = alerts(app, "courier_silent")
    assert alert.cause == f"courier:{courier_id}:2026-12-07T03:30:00Z" and alert.details["last_seen_at"] is None


def test_a_courier_without_open_stops_is_not_silent(app, field):
    zone = ZoneInfo(app.config["DISPLAY_TIMEZONE"])
    noon = datetime(2026, 12, 7, 12, 0, tzinfo=zone)
    _, parcel = courier_on_the_road(app, field, day=noon.date() + timedelta(days=1), last_seen_at=None)
    watch(app, as_utc(noon + timedelta(hours=3)))  # tomorrow's stops are not today's
    assert alerts(app, "courier_silent") == []


def test_out_for_delivery_without_an_outcome_raises_once_per_time_out(app, field):
    parcel = field.parcel(Status.OUT_FOR_DELIVERY)
    [out] = [e for e in field.events_of(parcel) if e.status == Status.OUT_FOR_DELIVERY]
    sent_out = as_utc(out.occurred_at)
    watch(app, sent_out + timedelta(hours=5, minutes=59))
    assert alerts(app, "unconfirmed_out_for_delivery") == []
    before = raised("unconfirmed_out_for_delivery")
    for hours in (6, 7, 9):
        watch(app, sent_out + timedelta(hours=hours))
    [alert] = alerts(app, "unconfirmed_out_for_delivery")
    assert alert.cause == f"event:{out.id}" and alert.shipment_id == shipment_id(app, parcel)
    assert raised("unconfirmed_out_for_delivery") - before == 1.0
    with app.app_context():  # attempted, then out again: a new time out
        from app.services.shipments.status_changes import record_status_change

        record_status_change(parcel, Status.DELIVERY_ATTEMPTED, "Kochi", None, "operator1",
                             attempt_reason="nobody_home")
        record_status_change(parcel, Status.OUT_FOR_DELIVERY, "Kochi", None, "operator1")
        db.session.commit()
        again = db.session.scalar(select(func.max(TrackingEvent.id)))
    watch(app, utcnow() + timedelta(hours=7))
    watch(app, utcnow() + timedelta(hours=8))
    assert [a.cause for a in alerts(app, "unconfirmed_out_for_delivery")] == [f"event:{out.id}", f"event:{again}"]


def test_a_cod_shortfall_raises_with_the_collection_once(app, field):
    courier_id = field.courier()
    short, exact = field.parcel(payment="cod", cod_amount="1250.50"), field.parcel(
        payment="cod", cod_amount="300.00", mobile="098765 43211")
    field.assign(courier_id, [short, exact])
    field.sign_in()
    before = raised("cod_shortfall")
    delivered = field.event(short, cod_collected="1200.50", method="cash")
    [result] = field.send(delivered)
    assert result["outcome"] == "applied"
    [replayed] = field.send(delivered)  # the app sends it again: applied once
    assert replayed["outcome"] == "duplicate"
    [fine] = field.send(field.event(exact, cod_collected="300.00", method="cash"))
    assert fine["outcome"] == "applied"
    [alert] = alerts(app, "cod_shortfall")
    event_id = field.events_of(short)[-1].id
    assert alert.cause == f"cod:{event_id}" and (alert.shipment_id, alert.courier_id) == (
        shipment_id(app, short), courier_id)
    assert alert.details == {"expected": "1250.50", "collected": "1200.50", "short_by": "50.00"}
    assert raised("cod_shortfall") - before == 1.0


def test_raise_alert_takes_every_kind_once_per_cause(app):
    with app.app_context():
        for kind in ALERT_KINDS:
            before = raised(kind)
            assert raise_alert(kind, "test:1", details={"n": 1}) is not None
            assert raise_alert(kind, "test:1", details={"n": 2}) is None
            assert raised(kind) - before == 1.0
        with pytest.raises(ValueError):
            raise_alert("on_fire", "test:1")
        db.session.commit()
    assert len(alerts(app)) == len(ALERT_KINDS)


# --- the list and the acknowledgement ----------------------------------------------------------------------------

@pytest.fixture
def two_alerts(app, create_shipment, make_user):
    tracking_id = create_shipment()
    courier_id = make_user("ravi", role="courier")
    with app.app_context():
        parcel = raise_alert("sla_breached", "shipment:x", shipment_id=db.session.scalar(
            select(Shipment.id).where(Shipment.tracking_id == tracking_id)), details={"status": "Booked"})
        courier = raise_alert("courier_silent", "courier:x", courier_id=courier_id, details={"open_stops": 2})
        db.session.commit()
    return parcel, courier, tracking_id


def test_the_alerts_json_names_the_parcel_and_the_courier(client, auth, two_alerts):
    parcel, courier, tracking_id = two_alerts
    auth.login("viewer1", role="viewer")
    body = client.get("/admin/alerts").get_json()
    keys = {"id", "kind", "tracking_id", "courier", "raised_at", "details", "acknowledged_by", "acknowledged_at"}
    assert [set(a) for a in body["alerts"]] == [keys, keys]
    by_id = {a["id"]: a for a in body["alerts"]}
    assert (by_id[parcel]["tracking_id"], by_id[parcel]["courier"]) == (tracking_id, None)
    assert (by_id[courier]["tracking_id"], by_id[courier]["courier"]) == (None, "ravi")
    assert by_id[parcel]["raised_at"].endswith("Z") and by_id[courier]["details"] == {"open_stops": 2}
    assert client.get("/admin/alerts?state=acknowledged").get_json() == {"alerts": []}
    assert client.get("/admin/alerts?state=maybe").status_code == 400
    assert client.get("/admin/alerts?sort=x").status_code == 400
    page = client.get("/admin/alerts", headers=HTML).get_data(as_text=True)
    assert f'data-alert-id="{parcel}"' in page and "Acknowledge</button>" not in page  # a viewer may not


def test_acknowledging_needs_a_note_is_audited_and_happens_once(app, client, auth, two_alerts):
    parcel, courier, _ = two_alerts
    auth.login()
    url = f"/admin/alerts/{parcel}/acknowledge"
    assert client.post(url, json={}, headers=auth.headers()).get_json()["fields"] == {
        "note": "Say what was done about it."}
    assert client.post(url, json={"note": "   "}, headers=auth.headers()).status_code == 400
    assert client.post(url, json={"note": "x" * 501}, headers=auth.headers()).status_code == 400
    assert client.post(url, json={"note": "Called the hub"}).status_code == 400  # no CSRF token
    done = client.post(url, json={"note": "Called the hub; out again at 3"}, headers=auth.headers())
    assert done.status_code == 200
    assert done.get_json()["acknowledged_by"] == "operator1" and done.get_json()["acknowledged_at"].endswith("Z")
    again = client.post(url, json={"note": "Me too"}, headers=auth.headers())
    assert again.status_code == 409
    assert client.post("/admin/alerts/999999/acknowledge", json={"note": "x"}, headers=auth.headers()) \
        .status_code == 404
    with app.app_context():
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "alert_acknowledged")).all()
        assert (entry.actor, entry.target_id) == ("operator1", str(parcel))
        assert entry.details == {"kind": "sla_breached", "note": "Called the hub; out again at 3"}
        assert db.session.get(Alert, parcel).note == "Called the hub; out again at 3"
    assert [a["id"] for a in client.get("/admin/alerts").get_json()["alerts"]] == [courier]
    assert [a["id"] for a in client.get("/admin/alerts?state=acknowledged").get_json()["alerts"]] == [parcel]
    assert len(client.get("/admin/alerts?state=all").get_json()["alerts"]) == 2


def test_the_page_acknowledges_with_a_note_and_shows_a_missing_one(app, client, auth, two_alerts):
    from tests.test_public_privacy import csrf_from

    parcel, _, _ = two_alerts
    auth.login()
    page = client.get("/admin/alerts", headers=HTML)
    token = csrf_from(page)
    blank = client.post(f"/admin/alerts/{parcel}/acknowledge", data={"csrf_token": token, "note": ""}, headers=HTML)
    assert blank.status_code == 400 and "Say what was done about it." in blank.get_data(as_text=True)
    done = client.post(f"/admin/alerts/{parcel}/acknowledge", data={"csrf_token": token, "note": "Sorted"},
                       headers=HTML)
    assert done.status_code == 302
    assert "Sorted" in client.get("/admin/alerts?state=acknowledged", headers=HTML).get_data(as_text=True)


def test_viewers_may_look_but_not_acknowledge(client, auth, two_alerts):
    parcel, _, _ = two_alerts
    assert client.get("/admin/alerts").status_code == 401
    auth.login("viewer1", role="viewer")
    assert client.get("/admin/alerts").status_code == 200
    assert client.post(f"/admin/alerts/{parcel}/acknowledge", json={"note": "x"},
                       headers=auth.headers()).status_code == 403


# --- the digest --------------------------------------------------------------------------------------------------

def digest_rows(app) -> list[Notification]:
    with app.app_context():
        return list(db.session.scalars(select(Notification).where(Notification.channel == DIGEST_CHANNEL)
                                       .order_by(Notification.id)))


def test_one_digest_per_interval_to_every_address_with_the_alerts_marked(app, create_shipment):
    app.config["ADMIN_ALERT_EMAILS"] = ["ops@example.com", "lead@example.com"]
    tracking_id = create_shipment()
    create_shipment(mobile="098765 43211")  # its Booked event is there for the second digest to name
    sid = shipment_id(app, tracking_id)
    start = utcnow()
    with app.app_context():
        raise_alert("sla_breached", "shipment:1", shipment_id=sid, now=start)
        raise_alert("courier_silent", "courier:1", now=start)
        db.session.commit()
    assert watch(app, start) == "queued a digest of 2 alerts"
    rows = digest_rows(app)
    assert [(r.recipient, r.subject) for r in rows] == [("ops@example.com", "Waybill: 2 new alerts"),
                                                        ("lead@example.com", "Waybill: 2 new alerts")]
    assert {as_utc(a.emailed_at) for a in alerts(app)} == {start} == {as_utc(r.created_at) for r in rows}
    with app.app_context():
        raise_alert("unconfirmed_out_for_delivery", "event:1", shipment_id=sid, now=start)
        db.session.commit()
    assert watch(app, start + timedelta(minutes=4, seconds=59)) is None  # too soon after the last one
    assert len(digest_rows(app)) == 2
    assert watch(app, start + timedelta(minutes=5)) == "queued a digest of 1 alert"
    rows = digest_rows(app)
    assert len(rows) == 4 and rows[2].subject == "Waybill: 1 new alert"
    assert len({r.event_id for r in rows}) == 2  # each digest names an event no digest named before
    assert watch(app, start + timedelta(minutes=20)) is None  # nothing new


def test_without_admin_addresses_nothing_is_queued_and_the_alerts_wait(app):
    app.config["ADMIN_ALERT_EMAILS"] = []
    with app.app_context():
        raise_alert("courier_silent", "courier:1")
        assert queue_alert_digest(utcnow(), timedelta(minutes=5), []) is None
        db.session.commit()
    assert digest_rows(app) == [] and alerts(app)[0].emailed_at is None
