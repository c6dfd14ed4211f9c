"""Couriers as staff see them: GET /admin/couriers (JSON and page: state, position, stops, the day's cash) and
GET /admin/couriers/<username>/trail (a day as GeoJSON), and who may see them."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, select

from app.domain.field import path_length_m
from app.domain.timeutil import isoformat_z, to_local, utcnow
from app.extensions import db
from app.models import CodCollection, Shipment, TrackingEvent, User
from app.services.field.roster import courier_roster
from tests.location_support import TIMEZONE, add_positions, make_courier, run_sheet, sign_in

NOW = datetime(2026, 11, 26, 6, 30, tzinfo=UTC)  # 12:00 in Kolkata
DAY_STARTS = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)  # 26 Nov, 00:00 in Kolkata
NIGHT_SHIFT = (time(20, 0), time(6, 0))
JSON = {"Accept": "application/json"}


@pytest.fixture(autouse=True)
def local_time(app):
    app.config["DISPLAY_TIMEZONE"] = TIMEZONE


def roster(app, now: datetime = NOW) -> dict[str, dict]:
    with app.app_context():
        return {entry.username: entry.to_dict() for entry in courier_roster(now, TIMEZONE)}


def collect(app, courier_id: int, tracking_id: str, amount: str, at: datetime) -> None:
    """A cash-on-delivery collection, hung on the parcel's Booked event (each event takes one)."""
    with app.app_context():
        shipment_id, event_id = db.session.execute(
            select(Shipment.id, TrackingEvent.id).join(TrackingEvent, TrackingEvent.shipment_id == Shipment.id)
            .where(Shipment.tracking_id == tracking_id)).first()
        db.session.add(CodCollection(shipment_id=shipment_id, event_id=event_id, courier_id=courier_id,
                                     expected=Decimal(amount), collected=Decimal(amount), method="cash",
                                     collected_at=at))
        db.session.commit()


# --- the state of each courier -----------------------------------------------------------------------------------

def test_each_active_courier_has_a_state_from_their_shift_and_positions(app, make_user):
    make_courier(app, "asha", shift=(time(9, 0), time(18, 0)), last_lat=12.97, last_lon=77.59, last_accuracy=6.0,
                 last_seen_at=NOW - timedelta(seconds=30), anchor_lat=12.97, anchor_lon=77.59,
                 moved_at=NOW - timedelta(minutes=1))
    make_courier(app, "bala", last_lat=12.9, last_lon=77.5, last_accuracy=9.0, last_seen_at=NOW - timedelta(minutes=1),
                 moved_at=NOW - timedelta(minutes=9))
    make_courier(app, "chitra", last_lat=12.9, last_lon=77.5, last_accuracy=9.0,
                 last_seen_at=NOW - timedelta(minutes=20), moved_at=NOW - timedelta(minutes=20))
    make_courier(app, "dev", shift=NIGHT_SHIFT)
    make_courier(app, "farid", profile=False)
    make_courier(app, "esha")
    make_user("op1", role="operator")
    with app.app_context():
        db.session.execute(User.__table__.update().where(User.username == "esha").values(active=False))
        db.session.commit()
    found = roster(app)
    assert list(found) == ["asha", "bala", "chitra", "dev", "farid"]  # by username; no one inactive, no operator
    assert {name: entry["state"] for name, entry in found.items()} == {
        "asha": "active", "bala": "idle", "chitra": "offline", "dev": "off_shift", "farid": "off_shift"}
    assert found["asha"] == {
        "username": "asha", "name": "Ravi Kumar", "vehicle": "two_wheeler", "capacity": 40, "state": "active",
        "last_seen_at": "2026-11-26T06:29:30Z", "position": {"lat": 12.97, "lon": 77.59, "accuracy": 6.0},
        "stops_open": 0, "stops_done": 0, "cod_collected": "0.00"}
    assert found["dev"]["position"] is None and found["dev"]["last_seen_at"] is None
    assert (found["farid"]["vehicle"], found["farid"]["capacity"], found["farid"]["name"]) == (None, None, None)
    # The night shift is on at 23:00 local.
    assert roster(app, NOW + timedelta(hours=11))["dev"]["state"] == "offline"


def test_stops_count_open_ones_anywhere_and_those_done_today(app, create_shipment):
    asha, bala = make_courier(app, "asha"), make_courier(app, "bala")
    ids = [create_shipment() for _ in range(7)]
    today, yesterday = date(2026, 11, 26), date(2026, 11, 25)
    run_sheet(app, asha, [(ids[0], "open"), (ids[1], "open"), (ids[2], "done"), (ids[3], "moved")], day=today,
              closed_at={ids[2]: DAY_STARTS + timedelta(minutes=1)}, outcome="Delivered")
    run_sheet(app, asha, [(ids[4], "open"), (ids[5], "done")], day=yesterday,
              closed_at={ids[5]: DAY_STARTS - timedelta(minutes=1)}, outcome="Delivered")  # closed yesterday
    run_sheet(app, bala, [(ids[6], "done")], day=yesterday, closed_at={ids[6]: NOW - timedelta(hours=1)},
              outcome="Delivery Attempted")  # yesterday's sheet, closed today
    found = roster(app)
    assert (found["asha"]["stops_open"], found["asha"]["stops_done"]) == (3, 1)
    assert (found["bala"]["stops_open"], found["bala"]["stops_done"]) == (0, 1)


def test_cod_collected_is_todays_sum_as_a_decimal_string(app, create_shipment):
    asha, bala = make_courier(app, "asha"), make_courier(app, "bala")
    ids = [create_shipment() for _ in range(4)]
    collect(app, asha, ids[0], "1000.50", DAY_STARTS)
    collect(app, asha, ids[1], "250.25", NOW - timedelta(minutes=5))
    collect(app, asha, ids[2], "99.00", DAY_STARTS - timedelta(seconds=1))  # yesterday, local
    collect(app, bala, ids[3], "10.00", NOW)
    found = roster(app)
    assert (found["asha"]["cod_collected"], found["bala"]["cod_collected"]) == ("1250.75", "10.00")


def test_the_roster_takes_the_same_few_queries_for_any_number_of_couriers(app_ctx):
    def statements_for_roster() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731 - the statement text
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            courier_roster(NOW, TIMEZONE)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen)

    make_courier(app_ctx, "asha")
    one = statements_for_roster()
    for name in ("bala", "chitra", "dev", "esha"):
        make_courier(app_ctx, name)
    assert statements_for_roster() == one == 3


def test_the_json_answer_lists_the_couriers(app, client, auth):
    now = utcnow()
    make_courier(app, "asha", last_lat=12.97, last_lon=77.59, last_accuracy=6.0,
                 last_seen_at=now - timedelta(seconds=20), anchor_lat=12.97, anchor_lon=77.59,
                 moved_at=now - timedelta(minutes=1))
    auth.login("op1", role="operator")
    response = client.get("/admin/couriers", headers=JSON)
    assert response.status_code == 200
    (entry,) = response.get_json()["couriers"]
    assert (entry["username"], entry["state"], entry["position"]) == (
        "asha", "active", {"lat": 12.97, "lon": 77.59, "accuracy": 6.0})
    assert entry["last_seen_at"] == isoformat_z(now - timedelta(seconds=20))


def test_the_page_shows_a_table_with_each_state_as_a_badge_in_words(app, client, auth):
    make_courier(app, "asha", last_lat=12.97161, last_lon=77.59461, last_accuracy=6.4,
                 last_seen_at=utcnow() - timedelta(seconds=20), moved_at=utcnow() - timedelta(seconds=20))
    make_courier(app, "dev", shift=(time(0, 0), time(0, 0)))  # an empty shift: always off
    auth.login("admin1", role="admin")
    response = client.get("/admin/couriers", headers={"Accept": "text/html"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<table class="data-table data-table--stack" id="couriers">' in page
    assert '<span class="badge badge-active">Active</span>' in page
    assert '<span class="badge badge-off_shift">Off shift</span>' in page
    assert "12.97161, 77.59461" in page and "(± 6 m)" in page
    assert "Two-wheeler, 40 parcels" in page
    assert 'href="/admin/couriers/asha/trail"' in page
    assert "<script>" not in page and "style=" not in page


def test_the_page_says_so_when_there_are_no_couriers(client, auth):
    auth.login("op1", role="operator")
    page = client.get("/admin/couriers", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "No active couriers." in page


# --- the trail ---------------------------------------------------------------------------------------------------

DAY = date(2026, 11, 20)  # in Kolkata: 19 Nov 18:30 to 20 Nov 18:30 UTC


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def trail(client, username: str, **query):
    return client.get(f"/admin/couriers/{username}/trail", query_string=query, headers=JSON)


@pytest.fixture
def operator(auth):
    auth.login("op1", role="operator")


def test_a_day_is_a_line_of_its_positions_in_time_order_and_its_closed_stops(app, client, create_shipment,
                                                                             operator):
    ravi = make_courier(app, "ravi")
    other = make_courier(app, "sita")
    day_points = [(at("2026-11-20T04:00:00"), 12.95, 77.55), (at("2026-11-20T04:30:00"), 12.96, 77.56),
                  (at("2026-11-20T05:00:00"), 12.97, 77.57)]
    add_positions(app, ravi, [day_points[2], (at("2026-11-19T18:20:00"), 12.90, 77.50), day_points[0],
                              (at("2026-11-20T18:35:00"), 12.99, 77.59), day_points[1]])
    add_positions(app, other, [(at("2026-11-20T04:10:00"), 13.1, 77.7)])
    ids = [create_shipment() for _ in range(6)]
    run_sheet(app, ravi, [(ids[0], "done"), (ids[1], "done"), (ids[2], "open"), (ids[3], "done")], day=DAY,
              closed_at={ids[0]: at("2026-11-20T04:33:00"),  # 3 min after a position: placed there
                         ids[1]: at("2026-11-20T04:14:30"),  # 14.5 min from the nearest: left off
                         ids[3]: at("2026-11-20T05:09:00")},  # 9 min after the last: placed
              outcome="Delivered")
    run_sheet(app, ravi, [(ids[4], "done")], day=DAY - timedelta(days=1),
              closed_at={ids[4]: at("2026-11-20T04:31:00")}, outcome="Delivered")  # another day's sheet
    run_sheet(app, other, [(ids[5], "done")], day=DAY, closed_at={ids[5]: at("2026-11-20T04:10:00")},
              outcome="Delivered")

    response = trail(client, "ravi", date="2026-11-20")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    line, *stops = response.get_json()["features"]
    assert response.get_json()["type"] == "FeatureCollection"
    assert line["geometry"] == {"type": "LineString",
                                "coordinates": [[77.55, 12.95], [77.56, 12.96], [77.57, 12.97]]}
    distance = path_length_m([(lat, lon) for _, lat, lon in day_points]) / 1000
    assert line["properties"] == {"username": "ravi", "date": "2026-11-20", "points": 3,
                                  "distance_km": f"{distance:.2f}", "started_at": "2026-11-20T04:00:00Z",
                                  "ended_at": "2026-11-20T05:00:00Z"}
    assert 2.0 < distance < 4.0
    assert stops == [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [77.56, 12.96]},
         "properties": {"tracking_id": ids[0], "sequence": 1, "outcome": "Delivered"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [77.57, 12.97]},
         "properties": {"tracking_id": ids[3], "sequence": 4, "outcome": "Delivered"}}]


def test_a_stop_closed_near_midnight_may_be_placed_by_a_position_of_the_next_day(app, client, create_shipment,
                                                                                 operator):
    ravi = make_courier(app, "ravi")
    add_positions(app, ravi, [(at("2026-11-20T18:33:00"), 12.99, 77.59)])  # 00:03 on the 21st, local
    tracking_id = create_shipment()
    run_sheet(app, ravi, [(tracking_id, "done")], day=DAY, closed_at={tracking_id: at("2026-11-20T18:28:00")},
              outcome="Delivery Attempted")
    line, stop = trail(client, "ravi", date="2026-11-20").get_json()["features"]
    assert line["properties"]["points"] == 0
    assert stop["geometry"]["coordinates"] == [77.59, 12.99]
    assert stop["properties"]["outcome"] == "Delivery Attempted"


@pytest.mark.parametrize("count", [0, 1])
def test_under_two_positions_make_no_line(app, client, operator, count):
    ravi = make_courier(app, "ravi")
    add_positions(app, ravi, [(at("2026-11-20T04:00:00"), 12.95, 77.55)][:count])
    (line,) = trail(client, "ravi", date="2026-11-20").get_json()["features"]
    assert line["geometry"] is None
    assert (line["properties"]["points"], line["properties"]["distance_km"]) == (count, "0.00")
    assert line["properties"]["started_at"] == ("2026-11-20T04:00:00Z" if count else None)


def test_the_day_is_today_unless_given_and_the_username_is_matched_in_any_case(app, client, operator):
    ravi = make_courier(app, "ravi")
    now = utcnow().replace(microsecond=0)
    add_positions(app, ravi, [(now - timedelta(seconds=20), 12.95, 77.55), (now - timedelta(seconds=10), 12.96, 77.56)])
    today = to_local(now - timedelta(seconds=10), TIMEZONE).date().isoformat()
    for query in ({}, {"date": ""}):
        line = trail(client, "RAVI", **query).get_json()["features"][0]
        assert (line["properties"]["date"], line["properties"]["username"]) == (today, "ravi")
        assert line["properties"]["points"] == 2  # (unless the test ran across local midnight)


@pytest.mark.parametrize("typed", ["2026-13-01", "2026-02-30", "yesterday", "20-11-2026", "1969-12-31"])
def test_a_date_that_is_not_a_day_is_400(app, client, operator, typed):
    make_courier(app, "ravi")
    response = trail(client, "ravi", date=typed)
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"date"}


@pytest.mark.parametrize("username", ["nobody", "op1"])
def test_the_trail_of_someone_who_is_not_a_courier_is_404(app, client, operator, username):
    assert trail(client, username).status_code == 404


# --- who may see ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/admin/couriers", "/admin/couriers/ravi/trail"])
def test_couriers_and_viewers_get_403_and_the_signed_out_401(app, client, auth, url):
    assert client.get(url, headers=JSON).status_code == 401
    make_courier(app, "ravi")
    sign_in(client, "ravi")
    assert client.get(url, headers=JSON).status_code == 403
    auth.login("viewer1", role="viewer")
    assert client.get(url, headers=JSON).status_code == 403
