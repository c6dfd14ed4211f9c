"""POST /courier/locations: which positions are kept, dropped or refused, what the courier's profile learns
from them (last position, idle anchor), who may send them, and the purge of old positions (the
`locations.purge` job)."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select

from app.domain.timeutil import as_utc, isoformat_z, utcnow
from app.extensions import db
from app.jobs.registry import JOBS
from app.jobs.runner import JobRunner
from app.models import CourierPosition
from app.services.field.locations import Position, record_positions
from tests.location_support import (
    TIMEZONE,
    add_positions,
    make_courier,
    profile_of,
    set_profile,
    shift_around,
    sign_in,
)

URL = "/courier/locations"
BANGALORE = (12.9716, 77.5946)
# About 111 m of latitude: far beyond the idle distance (25 m).
STEP = 0.001


@pytest.fixture(autouse=True)
def local_time(app):
    app.config["DISPLAY_TIMEZONE"] = TIMEZONE


@pytest.fixture
def courier(app, client):
    """A courier on shift all day, signed in: (user id, CSRF headers)."""
    courier_id = make_courier(app)
    return courier_id, sign_in(client, "ravi")


def point(at: datetime, lat: float = BANGALORE[0], lon: float = BANGALORE[1], accuracy: float = 8.0,
          **extra) -> dict:
    return {"lat": lat, "lon": lon, "accuracy": accuracy, "at": isoformat_z(at), **extra}


def send(client, headers, points):
    return client.post(URL, json={"points": points}, headers=headers)


def stored(app, courier_id: int) -> list[tuple[datetime, float, float]]:
    with app.app_context():
        rows = db.session.execute(select(CourierPosition.at, CourierPosition.lat, CourierPosition.lon)
                                  .where(CourierPosition.courier_id == courier_id)
                                  .order_by(CourierPosition.at)).all()
        return [(as_utc(at), lat, lon) for at, lat, lon in rows]


def position_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(CourierPosition))


def whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


# --- kept ---------------------------------------------------------------------------------------------------------

def test_a_batch_is_kept_and_the_profile_learns_the_newest_position(app, client, courier):
    courier_id, headers = courier
    t0 = whole_seconds(utcnow()) - timedelta(minutes=1)
    points = [point(t0 + timedelta(seconds=10 * i), lat=BANGALORE[0] + STEP * i, speed=4.5, heading=90,
                    battery=0.8) for i in range(3)]
    response = send(client, headers, points)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 3, "dropped": 0}
    assert [at for at, _, _ in stored(app, courier_id)] == [t0, t0 + timedelta(seconds=10), t0 + timedelta(seconds=20)]
    profile = profile_of(app, courier_id)
    assert (profile.last_lat, profile.last_lon, profile.last_accuracy) == (BANGALORE[0] + 2 * STEP, BANGALORE[1], 8.0)
    assert profile.last_seen_at == t0 + timedelta(seconds=20)
    # Each point moved more than the idle distance: the anchor followed to the last one.
    assert (profile.anchor_lat, profile.moved_at) == (BANGALORE[0] + 2 * STEP, t0 + timedelta(seconds=20))
    with app.app_context():
        kept = db.session.scalars(select(CourierPosition).order_by(CourierPosition.at)).first()
        assert (kept.speed, kept.heading, kept.battery, kept.accuracy) == (4.5, 90.0, 0.8, 8.0)


def test_points_out_of_order_are_taken_in_time_order(app, client, courier):
    courier_id, headers = courier
    t0 = whole_seconds(utcnow()) - timedelta(minutes=2)
    # The newest first, and one 3 s after the oldest: in time order that one is too close, whatever came first.
    points = [point(t0 + timedelta(seconds=30), lat=12.99), point(t0 + timedelta(seconds=3), lat=12.98),
              point(t0, lat=12.97)]
    assert send(client, headers, points).get_json() == {"accepted": 2, "dropped": 1}
    assert stored(app, courier_id) == [(t0, 12.97, BANGALORE[1]), (t0 + timedelta(seconds=30), 12.99, BANGALORE[1])]
    assert profile_of(app, courier_id).last_lat == 12.99


def test_imprecise_fixes_and_fixes_too_close_together_are_dropped(app, client, courier):
    courier_id, headers = courier
    t0 = whole_seconds(utcnow()) - timedelta(minutes=2)
    points = [point(t0, accuracy=50.0),  # as precise as needed: kept
              point(t0 + timedelta(seconds=10), accuracy=50.5),  # worse than 50 m: dropped
              point(t0 + timedelta(seconds=14)),  # 14 s after the last kept: kept
              point(t0 + timedelta(seconds=18)),  # 4 s after: dropped
              point(t0 + timedelta(seconds=19))]  # exactly 5 s after the last kept: kept
    assert send(client, headers, points).get_json() == {"accepted": 3, "dropped": 2}
    assert [at - t0 for at, _, _ in stored(app, courier_id)] == [timedelta(0), timedelta(seconds=14),
                                                                 timedelta(seconds=19)]


def test_the_gap_counts_from_the_last_point_kept_by_an_earlier_batch(app, client, courier):
    courier_id, headers = courier
    t0 = whole_seconds(utcnow()) - timedelta(minutes=5)
    assert send(client, headers, [point(t0 + timedelta(minutes=1))]).get_json() == {"accepted": 1, "dropped": 0}
    late = [point(t0 + timedelta(minutes=1, seconds=3)),  # 3 s after the stored one: dropped
            point(t0 + timedelta(seconds=58), lat=12.5),  # 2 s before it: dropped too
            point(t0, lat=12.6)]  # a minute before it: a late point, kept on the trail
    assert send(client, headers, late).get_json() == {"accepted": 1, "dropped": 2}
    assert [at - t0 for at, _, _ in stored(app, courier_id)] == [timedelta(0), timedelta(minutes=1)]
    profile = profile_of(app, courier_id)
    # The late point does not move the courier back.
    assert (profile.last_seen_at, profile.last_lat) == (t0 + timedelta(minutes=1), BANGALORE[0])


def test_points_taken_off_shift_are_dropped(app, client):
    t0 = whole_seconds(utcnow()) - timedelta(minutes=3)
    courier_id = make_courier(app, shift=shift_around(t0, inside=False))
    headers = sign_in(client, "ravi")
    assert send(client, headers, [point(t0)]).get_json() == {"accepted": 0, "dropped": 1}
    assert stored(app, courier_id) == []
    assert profile_of(app, courier_id).last_seen_at is None
    set_profile(app, courier_id, **dict(zip(("shift_start", "shift_end"), shift_around(t0, inside=True),
                                            strict=True)))
    assert send(client, headers, [point(t0)]).get_json() == {"accepted": 1, "dropped": 0}


def test_a_courier_with_no_profile_has_no_shift_so_every_point_is_dropped(app, client):
    courier_id = make_courier(app, profile=False)
    headers = sign_in(client, "ravi")
    response = send(client, headers, [point(utcnow() - timedelta(seconds=30))])
    assert (response.status_code, response.get_json()) == (202, {"accepted": 0, "dropped": 1})
    assert stored(app, courier_id) == []


def test_the_idle_anchor_stays_put_while_the_courier_moves_less_than_25_m(app, client, courier):
    courier_id, headers = courier
    t0 = whole_seconds(utcnow()) - timedelta(minutes=4)
    nudge = 0.0001  # about 11 m
    first = [point(t0), point(t0 + timedelta(seconds=10), lat=BANGALORE[0] + nudge),
             point(t0 + timedelta(seconds=20), lat=BANGALORE[0] + 2 * nudge)]
    send(client, headers, first)
    profile = profile_of(app, courier_id)
    assert (profile.anchor_lat, profile.anchor_lon, profile.moved_at) == (*BANGALORE, t0)  # the first point sets it
    assert profile.last_lat == BANGALORE[0] + 2 * nudge
    send(client, headers, [point(t0 + timedelta(seconds=60), lat=BANGALORE[0] + 3 * nudge)])  # 33 m from the anchor
    profile = profile_of(app, courier_id)
    assert (profile.anchor_lat, profile.moved_at) == (BANGALORE[0] + 3 * nudge, t0 + timedelta(seconds=60))


def test_a_batch_costs_the_profile_read_one_insert_and_one_update(app_ctx):
    """Three statements; on PostgreSQL two, the update riding in the insert's (WITH moved AS (UPDATE ...), prepared
    once per connection and run as EXECUTE), and the NOTIFY that tells the live streams the courier moved (their
    id only)."""
    courier_id = make_courier(app_ctx)
    t0 = utcnow() - timedelta(minutes=10)
    batch = [Position(t0 + timedelta(seconds=10 * i), 12.97 + STEP * i, 77.59, 6.0) for i in range(50)]
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(" ".join(statement.split()[:2]).upper())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        receipt = record_positions(courier_id, batch, TIMEZONE)
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert receipt.to_dict() == {"accepted": 50, "dropped": 0}
    on_postgresql = db.engine.dialect.name == "postgresql"
    expected = ["SELECT", "EXECUTE WAYBILL_MOVE_AND_INSERT_POSITIONS", "SELECT"] if on_postgresql \
        else ["SELECT", "INSERT", "UPDATE"]
    run = [s for s in statements if s.split()[0] not in ("BEGIN", "COMMIT", "PREPARE")]
    assert [s if s.startswith("EXECUTE") else s.split()[0] for s in run] == expected
    assert [s for s in statements if s.startswith("PREPARE")] in ([], ["PREPARE WAYBILL_MOVE_AND_INSERT_POSITIONS"])


def test_nothing_about_a_position_is_logged(app, client, courier, caplog):
    _, headers = courier
    with caplog.at_level(logging.DEBUG):
        send(client, headers, [point(utcnow() - timedelta(seconds=20), lat=12.345678, lon=76.543219)])
    assert not any("12.3456" in record.getMessage() or "76.5432" in record.getMessage()
                   for record in caplog.records)


# --- refused --------------------------------------------------------------------------------------------------------

def refused(client, headers, body, **kwargs) -> dict:
    response = client.post(URL, json=body, headers=headers, **kwargs) if body is not None else \
        client.post(URL, headers=headers, **kwargs)
    assert response.status_code == 400, response.get_json()
    return response.get_json()


def good(seconds_ago: int = 30) -> dict:
    return point(utcnow() - timedelta(seconds=seconds_ago))


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"points": "Send 1 to 500 points."}),
    ({"points": []}, {"points": "Send 1 to 500 points."}),
    ({"points": "12.97,77.59"}, {"points": "Must be a list of objects."}),
    ({"points": [[12.97, 77.59]]}, {"points": "Must be a list of objects."}),
    ({"points": [{"lat": 1}], "route": "x"}, {"route": "Unknown field."}),
], ids=["missing", "empty", "text", "list-of-lists", "unknown-field"])
def test_a_batch_that_is_not_a_list_of_1_to_500_points_is_refused(app, client, courier, body, fields):
    _, headers = courier
    assert refused(client, headers, body)["fields"] == fields


def test_a_full_batch_as_a_browser_writes_it_is_taken(app, client, courier):
    courier_id, headers = courier
    t0 = utcnow() - timedelta(hours=2)
    points = [point(t0 + timedelta(seconds=10 * i), lat=12.971634123456789 + i * 1e-5, lon=77.59461212345678,
                    accuracy=8.523456789012345, speed=4.521234567890123, heading=123.41234567890123,
                    battery=0.8300000000000001) | {"at": (t0 + timedelta(seconds=10 * i)).isoformat()}
              for i in range(500)]
    body = json.dumps({"points": points})
    assert len(body) > 64 * 1024  # more than the app takes elsewhere
    response = client.post(URL, data=body, content_type="application/json", headers=headers)
    assert (response.status_code, response.get_json()) == (202, {"accepted": 500, "dropped": 0})
    assert len(stored(app, courier_id)) == 500


def test_more_than_500_points_are_refused(app, client, courier):
    _, headers = courier
    assert refused(client, headers, {"points": [good()] * 501})["fields"] == {"points": "Send 1 to 500 points."}
    assert position_count(app) == 0


def test_a_body_that_is_not_json_is_refused(app, client, courier):
    _, headers = courier
    assert "JSON" in refused(client, headers, None, data={"points": "1"})["error"]
    assert "JSON" in refused(client, headers, None, data="{not json", content_type="application/json")["error"]
    assert "object" in refused(client, headers, [good()])["error"]


@pytest.mark.parametrize(("changes", "name", "message"), [
    ({"lat": 90.5}, "lat", "Must be from -90 to 90."),
    ({"lat": -91}, "lat", "Must be from -90 to 90."),
    ({"lon": 180.01}, "lon", "Must be from -180 to 180."),
    ({"lon": -181}, "lon", "Must be from -180 to 180."),
    ({"accuracy": 0}, "accuracy", "Must be more than 0 (metres)."),
    ({"accuracy": -3}, "accuracy", "Must be more than 0 (metres)."),
    ({"speed": -0.1}, "speed", "Must be 0 or more (metres a second)."),
    ({"heading": 360.5}, "heading", "Must be from 0 to 360 (degrees)."),
    ({"heading": -1}, "heading", "Must be from 0 to 360 (degrees)."),
    ({"battery": 1.2}, "battery", "Must be from 0 to 1 (the charge as a fraction)."),
    ({"battery": 80}, "battery", "Must be from 0 to 1 (the charge as a fraction)."),
    ({"lat": "12.97"}, "lat", "Must be a number."),
    ({"accuracy": True}, "accuracy", "Must be a number."),
    ({"battery": float("nan")}, "battery", "Must be a number."),
    ({"speed": float("inf")}, "speed", "Must be a number."),
    ({"lon": 10 ** 400}, "lon", "Must be a number."),
    ({"lat": None}, "lat", "Required."),
    ({"at": 1764150000}, "at", "Must be a string."),
    ({"at": "yesterday"}, "at", "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."),
    ({"at": "2026-11-26T12:30:00"}, "at",
     "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."),
    ({"at": "9999-12-31T23:59:59-05:00"}, "at",
     "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."),
    ({"altitude": 920}, "altitude", "Unknown field."),
    # The batch's text is read by the form alone (no general text check first): bad text is still refused.
    ({"at": "2026-11-26T12:30:05+05:30\u0000"}, "at",
     "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."),
    ({"at": "\ud800"}, "at", "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."),
    ({"alt\u0007": 1}, "alt\ufffd", "Unknown field."),
], ids=lambda value: str(value) if not isinstance(value, dict) else "-".join(map(str, value)))
def test_an_impossible_value_is_refused_naming_its_point(app, client, courier, changes, name, message):
    _, headers = courier
    bad = {**good(10), **changes}
    body = refused(client, headers, {"points": [good(40), good(20), bad]})
    assert body["fields"] == {f"points.2.{name}": message}
    assert position_count(app) == 0  # the good points of a refused batch are not kept either


def test_a_point_missing_its_values_names_each_one(app, client, courier):
    _, headers = courier
    assert refused(client, headers, {"points": [{}]})["fields"] == {
        "points.0.lat": "Required.", "points.0.lon": "Required.", "points.0.accuracy": "Required.",
        "points.0.at": "Required."}


def test_times_are_believed_from_7_days_back_to_5_minutes_ahead(app, client, courier):
    _, headers = courier
    now = utcnow()
    too_old, too_new = now - timedelta(days=7, minutes=1), now + timedelta(minutes=6)
    assert refused(client, headers, {"points": [point(too_old), point(too_new)]})["fields"] == {
        "points.0.at": "More than 7 days ago.",
        "points.1.at": "More than 5 minutes in the future: check the phone's clock."}
    assert send(client, headers, [point(now - timedelta(days=6)), point(now + timedelta(minutes=4))]).get_json() \
        == {"accepted": 2, "dropped": 0}


def test_the_time_may_carry_any_offset(app, client, courier):
    courier_id, headers = courier
    moment = whole_seconds(utcnow()) - timedelta(minutes=1)
    written = [moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
               (moment + timedelta(seconds=30)).astimezone(timezone(timedelta(hours=-5))).isoformat()]
    assert send(client, headers, [point(moment) | {"at": at} for at in written]).status_code == 202
    assert [at for at, _, _ in stored(app, courier_id)] == [moment, moment + timedelta(seconds=30)]


# --- who may send ---------------------------------------------------------------------------------------------------

def test_signed_out_is_401(client):
    assert client.post(URL, json={"points": [good()]}).status_code == 401


@pytest.mark.parametrize("role", ["operator", "admin", "viewer"])
def test_staff_who_are_not_couriers_get_403(app, client, auth, role):
    auth.login("staff1", role=role)
    response = client.post(URL, json={"points": [good()]}, headers=auth.headers())
    assert response.status_code == 403
    assert position_count(app) == 0


def test_a_post_without_the_csrf_token_is_refused_and_keeps_nothing(app, client, courier):
    response = client.post(URL, json={"points": [good()]})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert position_count(app) == 0


# --- the purge ------------------------------------------------------------------------------------------------------

PURGE = next(job for job in JOBS if job.name == "locations.purge")


@pytest.fixture
def purging(app, monkeypatch):
    app.config["LOCATION_PURGE_SECONDS"] = 3600
    monkeypatch.setattr("app.jobs.locations.PURGE_CHUNK", 2)
    return app


def test_positions_past_their_retention_are_purged_in_chunks(purging):
    now = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    courier_id = make_courier(purging)
    old = [(now - timedelta(days=90, minutes=i), 12.9, 77.5) for i in range(1, 6)]
    kept = [(now - timedelta(days=89, hours=23), 12.9, 77.5), (now - timedelta(hours=1), 12.9, 77.5)]
    add_positions(purging, courier_id, old + kept)
    (run,) = JobRunner(purging, jobs=[PURGE]).run_due(now)
    assert (run.outcome, run.detail) == ("done", "purged 5 positions older than 90 days")
    assert [at for at, _, _ in stored(purging, courier_id)] == [at for at, _, _ in kept]
    assert [r.outcome for r in JobRunner(purging, jobs=[PURGE]).run_due(now)] == ["idle"]


def test_a_run_purges_a_bounded_number_of_chunks(purging, monkeypatch):
    monkeypatch.setattr("app.jobs.locations.MAX_CHUNKS_PER_RUN", 2)
    now = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    courier_id = make_courier(purging)
    add_positions(purging, courier_id, [(now - timedelta(days=100, minutes=i), 12.9, 77.5) for i in range(5)])
    assert [r.detail for r in JobRunner(purging, jobs=[PURGE]).run_due(now)] == ["purged 4 positions older than "
                                                                                 "90 days"]
    assert len(stored(purging, courier_id)) == 1
    later = now + timedelta(hours=1)
    assert [r.detail for r in JobRunner(purging, jobs=[PURGE]).run_due(later)] == ["purged 1 position older than "
                                                                                   "90 days"]
    assert stored(purging, courier_id) == []


def test_the_retention_comes_from_the_config_and_0_keeps_everything(purging):
    now = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    courier_id = make_courier(purging)
    add_positions(purging, courier_id, [(now - timedelta(days=40), 12.9, 77.5), (now - timedelta(days=20), 12.9, 77.5)])
    purging.config["LOCATION_RETENTION_DAYS"] = 0
    assert [r.outcome for r in JobRunner(purging, jobs=[PURGE]).run_due(now)] == ["idle"]
    purging.config["LOCATION_RETENTION_DAYS"] = 30
    assert [r.outcome for r in JobRunner(purging, jobs=[PURGE]).run_due(now)] == ["done"]
    assert [at for at, _, _ in stored(purging, courier_id)] == [now - timedelta(days=20)]


def test_the_purge_job_is_off_until_its_interval_is_set(app):
    app.config.pop("LOCATION_PURGE_SECONDS", None)
    assert JobRunner(app, jobs=[PURGE]).run_due(utcnow()) == []
