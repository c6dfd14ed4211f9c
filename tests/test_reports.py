"""The operations report: every figure checked exactly on a fixed set of parcels and events (written as rows, at
chosen times), on both databases; the JSON, the CSV tables, the page; bad ranges (400 with `fields`) and who may
read it. The rules themselves (a timeline's facts, rates, percentiles, shifts) are tested without an app."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from app.domain.reports import (
    Event,
    per_hour,
    percentile_hours,
    rate,
    read_timeline,
    shift_hours,
)
from app.domain.status import Status
from app.domain.timeutil import local_day_start, to_local, utcnow
from app.extensions import db
from app.models import CodCollection, CourierProfile, Shipment, TrackingEvent
from app.services.operations.reports import operations_report, report_csv, report_range
from app.web.charts import Series, axis_top, bar_chart, line_chart

TZ = "Asia/Kolkata"  # DISPLAY_TIMEZONE in the test settings
D0, D1, D2, D3 = date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)
HTML = {"Accept": "text/html"}
RANGE = {"from": D1.isoformat(), "to": D2.isoformat()}

BOOKED, PICKED_UP, IN_TRANSIT, OUT, DELIVERED, ATTEMPTED, ON_HOLD, RTO, RETURNED = (
    Status.BOOKED, Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED,
    Status.DELIVERY_ATTEMPTED, Status.ON_HOLD, Status.RTO_INITIATED, Status.RETURNED_TO_SENDER)
HUB, HUB2, ORIGIN, DOOR = "Kochi Hub", "Ernakulam Hub", "Origin Facility", "Door"


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time (DISPLAY_TIMEZONE) on `day`, as UTC."""
    return local_day_start(day, TZ) + timedelta(hours=hour, minutes=minute)


def on_the_way(day: date, hub: str = HUB, hub_at: tuple[date, int] | None = None) -> list[tuple]:
    """Booked at 07:00 and picked up at 08:00 on `day`, scanned in at `hub` (at 09:00 that day unless said)."""
    hub_day, hub_hour = hub_at or (day, 9)
    return [(BOOKED, ORIGIN, "customer", at(day, 7)), (PICKED_UP, ORIGIN, "operator1", at(day, 8)),
            (IN_TRANSIT, hub, "operator1", at(hub_day, hub_hour))]


class Events:
    """Parcels and their timelines, written as rows with chosen times (the services stamp the time of the call)."""

    def __init__(self, app, make_user) -> None:
        self.app, self.make_user = app, make_user
        self.couriers: dict[str, int] = {}
        self.count = 0

    def courier(self, username: str, shift: tuple[time, time] | None = None) -> None:
        self.couriers[username] = self.make_user(username, role="courier")
        if shift:
            with self.app.app_context():
                db.session.execute(update(CourierProfile).where(CourierProfile.user_id == self.couriers[username])
                                   .values(shift_start=shift[0], shift_end=shift[1]))
                db.session.commit()

    def parcel(self, events: list[tuple], promised_by: datetime | None = None,
               collected: tuple[str, str, str] | None = None) -> str:
        """A parcel with `events` (status, location, actor, time); `collected`: (due, collected, method) recorded
        with its Delivered event by that event's courier."""
        self.count += 1
        tracking_id = f"AB{self.count:06X}"
        with self.app.app_context():
            shipment = Shipment(tracking_id=tracking_id, sender_name="Asha Rao", receiver_name="Vikram Nair",
                                mobile="+919876543210", destination="Kochi", status=events[-1][0],
                                created_at=events[0][3], updated_at=events[-1][3], promised_by=promised_by,
                                payment="cod" if collected else "prepaid",
                                cod_amount=Decimal(collected[0]) if collected else None)
            db.session.add(shipment)
            db.session.flush()
            rows = [TrackingEvent(shipment_id=shipment.id, status=status, location=location, actor=actor,
                                  occurred_at=when) for status, location, actor, when in events]
            db.session.add_all(rows)
            db.session.flush()
            if collected:
                delivered = next(row for row in rows if row.status == DELIVERED)
                db.session.add(CodCollection(
                    shipment_id=shipment.id, event_id=delivered.id, courier_id=self.couriers[delivered.actor],
                    expected=Decimal(collected[0]), collected=Decimal(collected[1]), method=collected[2],
                    collected_at=delivered.occurred_at))
            db.session.commit()
        return tracking_id

    def report(self, first: date = D1, last: date = D2) -> dict:
        with self.app.app_context():
            return operations_report(report_range(first, last, TZ)).as_dict()


@pytest.fixture
def events(app, make_user):
    return Events(app, make_user)


@pytest.fixture
def fixed_set(events):
    return write_fixed_set(events)


def write_fixed_set(events: Events) -> Events:
    """The fixed set: the figures it must give are in EXPECTED_DAYS, EXPECTED_COURIERS and EXPECTED_DWELL."""
    events.courier("ravi")  # the default shift, 09:00-18:00: 9 hours
    events.courier("meena", (time(22, 0), time(6, 0)))  # a night shift: 8 hours
    events.courier("idle")  # nothing in the range: not listed
    # P1: at the hub from D0 20:00 to D1 09:10 (13 h 10 min); delivered by ravi on D1, on time, first attempt,
    # COD collected in full.
    events.parcel([*on_the_way(D0, hub_at=(D0, 20)), (OUT, HUB, "ravi", at(D1, 9, 10)),
                   (DELIVERED, DOOR, "ravi", at(D1, 11))], promised_by=at(D2, 0),
                  collected=("500.00", "500.00", "cash"))
    # P2: booked D1; held at the hub and released (the repeated In Transit is the same stay: 6 h 20 min); a
    # failed attempt by ravi on D1; delivered by meena on D2, late, not at the first attempt; 20 short.
    events.parcel([(BOOKED, ORIGIN, "customer", at(D1, 8)), (PICKED_UP, ORIGIN, "operator1", at(D1, 9)),
                   (IN_TRANSIT, HUB, "operator1", at(D1, 12)), (ON_HOLD, HUB, "operator1", at(D1, 14)),
                   (IN_TRANSIT, HUB, "operator1", at(D1, 16)), (OUT, HUB, "ravi", at(D1, 18, 20)),
                   (ATTEMPTED, DOOR, "ravi", at(D1, 19)), (OUT, HUB, "meena", at(D2, 9)),
                   (DELIVERED, DOOR, "meena", at(D2, 10, 30))], promised_by=at(D2, 0),
                  collected=("300.00", "280.00", "cash"))
    # P3: booked at 23:30 on D1 (18:00 UTC): D1's. P10 below is booked at 00:15 on D2 (18:45 UTC on D1): D2's.
    events.parcel([(BOOKED, ORIGIN, "customer", at(D1, 23, 30))])
    # P4: two hubs (18 h at the first: the road to the second included; 14 h at the second); delivered by meena
    # at 23:30 on D1 with no promise; COD by UPI.
    events.parcel([*on_the_way(D0, hub=HUB2, hub_at=(D0, 12)), (IN_TRANSIT, " kochi hub", "operator1", at(D1, 6)),
                   (OUT, HUB, "meena", at(D1, 20)), (DELIVERED, DOOR, "meena", at(D1, 23, 30))],
                  collected=("1250.50", "1250.50", "upi"))
    # P5: 25 h at the hub; a failed attempt by ravi on D1, held and released (the repeated attempt is no new
    # one); return to origin on D2.
    events.parcel([*on_the_way(D0), (OUT, HUB, "ravi", at(D1, 10)), (ATTEMPTED, DOOR, "ravi", at(D1, 12)),
                   (ON_HOLD, HUB, "operator1", at(D1, 13)), (ATTEMPTED, DOOR, "operator1", at(D1, 14)),
                   (RTO, HUB, "operator1", at(D2, 9))])
    # P6: 10 h at the hub; a failed attempt by meena on D2, then straight back to the sender (the short way).
    events.parcel([*on_the_way(D0, hub_at=(D1, 22)), (OUT, HUB, "meena", at(D2, 8)),
                   (ATTEMPTED, DOOR, "meena", at(D2, 9)), (RETURNED, ORIGIN, "operator1", at(D2, 15))])
    # P7: all of it after the range. P8: all of it before (ravi's delivery on D0 is not his in the range).
    events.parcel([*on_the_way(D3), (OUT, HUB, "ravi", at(D3, 10)), (DELIVERED, DOOR, "ravi", at(D3, 12))])
    events.parcel([*on_the_way(D0), (OUT, HUB, "ravi", at(D0, 12)), (DELIVERED, DOOR, "ravi", at(D0, 18))])
    # P9: 47 h at the hub; delivered by staff on D2 before its promise (not a courier's delivery).
    events.parcel([*on_the_way(D0, hub_at=(D0, 10)), (OUT, HUB, "operator1", at(D2, 9)),
                   (DELIVERED, DOOR, "operator1", at(D2, 11))], promised_by=at(D2, 12))
    events.parcel([(BOOKED, ORIGIN, "customer", at(D2, 0, 15))])  # P10
    # P11: at the hub from D2 10:00 and out on D3: the stay ends after the range, so it is not counted.
    events.parcel([*on_the_way(D0, hub_at=(D2, 10)), (OUT, HUB, "ravi", at(D3, 9))])
    # P12: 10 h at the hub; delivered by ravi on D2 at the first attempt, on time.
    events.parcel([*on_the_way(D0, hub_at=(D1, 21)), (OUT, HUB, "ravi", at(D2, 7)),
                   (DELIVERED, DOOR, "ravi", at(D2, 13))], promised_by=at(D3, 0))
    return events


EXPECTED_DAYS = [
    {"date": "2026-03-10", "booked": 2, "delivered": 2, "on_time_rate": 1.0, "first_attempt_rate": 1.0,
     "attempts": 2, "rto": 0, "cod_collected": "1750.50"},
    {"date": "2026-03-11", "booked": 1, "delivered": 3, "on_time_rate": 0.6667, "first_attempt_rate": 0.6667,
     "attempts": 1, "rto": 2, "cod_collected": "280.00"},
]
EXPECTED_COURIERS = [
    # 2 deliveries over 2 night shifts of 8 h: 0.125, rounded half up.
    {"username": "meena", "delivered": 2, "per_hour": 0.13, "first_attempt_rate": 0.5},
    # 2 deliveries over 2 days of 9 h (an attempt on D1, deliveries on D1 and D2).
    {"username": "ravi", "delivered": 2, "per_hour": 0.11, "first_attempt_rate": 1.0},
]
# Stays that ended in the range, in hours: 6.33, 10, 10, 13.17, 14, 18, 25, 47.
EXPECTED_DWELL = {"p50_hours": 13.17, "p90_hours": 47.0, "stays": 8}


def test_the_report_gives_exact_figures_for_a_fixed_set_of_events(fixed_set):
    report = fixed_set.report()
    assert report == {"from": "2026-03-10", "to": "2026-03-11", "timezone": TZ, "days": EXPECTED_DAYS,
                      "couriers": EXPECTED_COURIERS, "hub_dwell": EXPECTED_DWELL}


def test_an_event_at_2330_ist_counts_on_that_local_day(events):
    events.courier("ravi")
    events.parcel([(BOOKED, ORIGIN, "customer", at(D1, 23, 30)), (PICKED_UP, ORIGIN, "ravi", at(D2, 0, 30))])
    assert at(D1, 23, 30) == datetime(2026, 3, 10, 18, 0, tzinfo=UTC)
    assert [day["booked"] for day in events.report(D1, D1)["days"]] == [1]
    assert [day["booked"] for day in events.report(D2, D2)["days"]] == [0]
    assert [day["booked"] for day in events.report(D0, D3)["days"]] == [0, 1, 0, 0]


def test_days_without_events_are_listed_with_zeros_and_null_rates(events):
    report = events.report(D1, D1)
    assert report["days"] == [{"date": "2026-03-10", "booked": 0, "delivered": 0, "on_time_rate": None,
                               "first_attempt_rate": None, "attempts": 0, "rto": 0, "cod_collected": "0.00"}]
    assert report["couriers"] == []
    assert report["hub_dwell"] == {"p50_hours": None, "p90_hours": None, "stays": 0}


def test_the_json_report_for_staff_who_view_operations(fixed_set, client, auth):
    auth.login("support1", role="viewer")
    response = client.get("/admin/reports", query_string=RANGE)
    assert response.status_code == 200
    assert response.get_json() == {"from": "2026-03-10", "to": "2026-03-11", "timezone": TZ,
                                   "days": EXPECTED_DAYS, "couriers": EXPECTED_COURIERS, "hub_dwell": EXPECTED_DWELL}


def read_csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_each_table_downloads_as_csv(fixed_set, client, auth):
    auth.login("support1", role="viewer")
    days = read_csv(client.get("/admin/reports.csv", query_string={**RANGE, "table": "days"}))
    assert days == [
        ["date", "booked", "delivered", "on_time_rate", "first_attempt_rate", "attempts", "rto", "cod_collected"],
        ["2026-03-10", "2", "2", "1.0", "1.0", "2", "0", "1750.50"],
        ["2026-03-11", "1", "3", "0.6667", "0.6667", "1", "2", "280.00"]]
    couriers = read_csv(client.get("/admin/reports.csv", query_string={**RANGE, "table": "couriers"}))
    assert couriers == [["username", "delivered", "per_hour", "first_attempt_rate"],
                        ["meena", "2", "0.13", "0.5"], ["ravi", "2", "0.11", "1.0"]]
    dwell = read_csv(client.get("/admin/reports.csv", query_string={**RANGE, "table": "hub_dwell"}))
    assert dwell == [["stays", "p50_hours", "p90_hours"], ["8", "13.17", "47.0"]]


@pytest.mark.one_database
def test_a_rate_with_nothing_to_divide_by_is_an_empty_cell(app):
    with app.app_context():
        text = report_csv(operations_report(report_range(D1, D1, TZ)), "days")
    assert text.splitlines()[1] == "2026-03-10,0,0,,,0,0,0.00"


@pytest.mark.one_database
def test_the_page_draws_a_chart_of_each_series_beside_its_table(fixed_set, client, auth):
    auth.login("support1", role="viewer")
    html = client.get("/admin/reports", query_string=RANGE, headers=HTML).get_data(as_text=True)
    assert html.count("<svg class=\"chart\"") == 4
    assert 'style="' not in html and "<style" not in html and "<script>" not in html
    for chart in ("parcels", "rates", "exceptions", "cod"):
        assert f'aria-labelledby="{chart}-title" aria-describedby="{chart}-desc"' in html
        assert f'id="{chart}-table"' in html
    assert html.count('class="chart__bar chart__bar--booked"') == 2
    assert html.count('class="chart__point chart__bar--on-time"') == 2
    assert "₹1,750.50" in html and "66.7%" in html and "13.17" in html
    assert 'href="/admin/reports.csv?table=days&amp;from=2026-03-10&amp;to=2026-03-11"' in html
    assert '<a href="/admin/reports" aria-current="page">Reports</a>' in html


@pytest.mark.one_database
def test_without_dates_the_report_is_the_last_seven_days(client, auth):
    auth.login("boss", role="admin")
    body = client.get("/admin/reports").get_json()
    today = to_local(utcnow(), TZ).date()
    assert (body["from"], body["to"]) == ((today - timedelta(days=6)).isoformat(), today.isoformat())
    assert len(body["days"]) == 7
    body = client.get("/admin/reports", query_string={"to": "2026-03-11"}).get_json()
    assert (body["from"], body["to"], len(body["days"])) == ("2026-03-05", "2026-03-11", 7)


@pytest.mark.one_database
def test_92_days_are_allowed(client, auth):
    auth.login("boss", role="admin")
    body = client.get("/admin/reports", query_string={"from": "2026-01-01", "to": "2026-04-02"}).get_json()
    assert len(body["days"]) == 92 and body["days"][-1]["date"] == "2026-04-02"
    html = client.get("/admin/reports", query_string={"from": "2026-01-01", "to": "2026-04-02"},
                      headers=HTML).get_data(as_text=True)
    assert html.count('class="chart__bar chart__bar--cod"') == 92


@pytest.mark.one_database
@pytest.mark.parametrize("query, fields", [
    ({"from": "2026-13-01"}, {"from"}),
    ({"from": "10/03/2026", "to": "yesterday"}, {"from", "to"}),
    ({"from": "2026-03-11", "to": "2026-03-10"}, {"to"}),
    ({"from": "2026-01-01", "to": "2026-04-03"}, {"to"}),  # 93 days
    ({"from": "0001-01-01", "to": "0001-01-02"}, {"from", "to"}),
])
def test_a_bad_range_is_a_400_naming_the_fields(client, auth, query, fields):
    auth.login("boss", role="admin")
    for url in ("/admin/reports", "/admin/reports.csv"):
        response = client.get(url, query_string={**query, "table": "days"})
        assert response.status_code == 400, url
        assert set(response.get_json()["fields"]) == fields, url
    page = client.get("/admin/reports", query_string=query, headers=HTML)
    assert page.status_code == 400
    assert 'class="error-summary"' in page.get_data(as_text=True)


@pytest.mark.one_database
@pytest.mark.parametrize("table", [None, "shipments", ""])
def test_the_csv_needs_one_of_the_tables(client, auth, table):
    auth.login("boss", role="admin")
    query = {**RANGE, **({"table": table} if table is not None else {})}
    response = client.get("/admin/reports.csv", query_string=query)
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {"table"}


@pytest.mark.one_database
def test_couriers_may_not_read_the_report_and_visitors_sign_in_first(client, auth):
    for url in ("/admin/reports", "/admin/reports.csv?table=days"):
        assert client.get(url).status_code == 401
        response = client.get(url, headers=HTML)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    auth.login("rider", role="courier")
    for url in ("/admin/reports", "/admin/reports.csv?table=days"):
        assert client.get(url).status_code == 403
        assert client.get(url, headers=HTML).status_code == 403


# --- the rules, without an app -----------------------------------------------------------------------------------


def timeline(*steps: tuple) -> list[Event]:
    return [Event(status, location, actor, when) for status, location, actor, when in steps]


def test_a_released_hold_repeats_a_status_and_is_no_new_fact():
    t = datetime(2026, 3, 10, tzinfo=UTC)
    facts = read_timeline(timeline(
        (BOOKED, ORIGIN, "c", t), (ON_HOLD, ORIGIN, "o", t + timedelta(hours=1)),
        (BOOKED, ORIGIN, "o", t + timedelta(hours=2)), (PICKED_UP, ORIGIN, "o", t + timedelta(hours=3)),
        (IN_TRANSIT, HUB, "o", t + timedelta(hours=4)), (OUT, HUB, "r", t + timedelta(hours=5)),
        (ATTEMPTED, DOOR, "r", t + timedelta(hours=6)), (ON_HOLD, HUB, "o", t + timedelta(hours=7)),
        (RTO, HUB, "o", t + timedelta(hours=8))), promised_by=None)
    assert facts.booked == [t]
    assert [a.at for a in facts.attempts] == [t + timedelta(hours=6)]
    assert facts.returns == [t + timedelta(hours=8)]  # a hold's exit is a new fact


def test_a_delivery_after_an_earlier_attempt_is_not_a_first_attempt_and_promises_are_inclusive():
    t = datetime(2026, 3, 10, tzinfo=UTC)
    facts = read_timeline(timeline((OUT, HUB, "r", t), (ATTEMPTED, DOOR, "r", t + timedelta(hours=1)),
                                   (OUT, HUB, "r", t + timedelta(days=1)),
                                   (DELIVERED, DOOR, "r", t + timedelta(days=1, hours=2))),
                          promised_by=t + timedelta(days=1, hours=2))
    [delivery] = facts.deliveries
    assert (delivery.first_attempt, delivery.on_time, delivery.actor) == (False, True, "r")


def test_a_hub_stay_ends_at_another_place_or_on_leaving_with_a_courier():
    t = datetime(2026, 3, 10, tzinfo=UTC)
    facts = read_timeline(timeline(
        (IN_TRANSIT, HUB, "o", t), (IN_TRANSIT, "KOCHI  hub", "o", t + timedelta(hours=1)),
        (ON_HOLD, "Elsewhere", "o", t + timedelta(hours=2)), (IN_TRANSIT, HUB2, "o", t + timedelta(hours=3)),
        (OUT, HUB2, "r", t + timedelta(hours=5))), promised_by=None)
    assert [(s.location, s.began, s.ended) for s in facts.hub_stays] == [
        (HUB, t, t + timedelta(hours=3)), (HUB2, t + timedelta(hours=3), t + timedelta(hours=5))]


def test_rates_percentiles_and_shifts():
    assert rate(2, 3) == 0.6667 and rate(1, 8) == 0.125 and rate(0, 0) is None
    assert per_hour(1, 8) == 0.13 and per_hour(3, 0) is None
    assert shift_hours(time(9), time(18)) == 9 and shift_hours(time(22), time(6)) == 8
    assert shift_hours(time(6), time(6)) == 24
    assert percentile_hours([3600 * h for h in (1, 2, 3, 4)], 50) == 2.0
    assert percentile_hours([3600 * h for h in (1, 2, 3, 4)], 90) == 4.0
    assert percentile_hours([1800], 90) == 0.5 and percentile_hours([], 50) is None


def test_charts_draw_a_bar_per_label_and_series_and_a_point_per_value():
    labels = ["1 Mar", "2 Mar", "3 Mar"]
    bars = bar_chart(labels, [Series("A", "a", [0, 5, 12]), Series("B", "b", [1, 0, 3])], "{:g}".format)
    assert len(bars.bars) == 6 and [tick.text for tick in bars.grid] == ["0", "5", "10", "15", "20"]
    assert [bar.height for bar in bars.bars[:3]][0] == 0
    lines = line_chart(labels, [Series("R", "r", [0.5, None, 1.0])], str, top=1)
    assert len(lines.points) == 2 and lines.lines[0].d.count("M") == 2  # the gap lifts the pen
    assert [axis_top(n) for n in (0, 3, 4, 5, 7, 9, 1750.5, 60_000)] == [4, 4, 4, 8, 8, 20, 2000, 80_000]
