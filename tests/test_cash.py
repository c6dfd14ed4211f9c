"""Cash on delivery settled: the couriers' ledger for a day (service, JSON, CSV, page), remittances at the hub, and a
courier's end of day. Parcels are booked through /create, moved through the status-change core with the courier as
the actor, and the courier app's collections are inserted as the courier-events service writes them."""
from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.domain.field import CodFlag, cod_difference, remittance_amount_problem
from app.domain.status import Status
from app.domain.timeutil import local_day_start, to_local, utcnow
from app.extensions import db
from app.models import AuditEntry, CodCollection, CodRemittance, CourierPosition, Shipment, TrackingEvent
from app.services.field.cash import (
    Flag,
    Ledger,
    cod_ledger_csv,
    cod_ledgers,
    courier_day,
    local_day,
    record_remittance,
)
from app.services.shipments.status_changes import StatusChange, apply_status_changes

TZ = "Asia/Kolkata"  # DISPLAY_TIMEZONE in the test settings
DAY = date(2026, 3, 10)
NEXT = DAY + timedelta(days=1)
HTML = {"Accept": "text/html"}


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A local time (DISPLAY_TIMEZONE) on `day`, as UTC."""
    return local_day_start(day, TZ) + timedelta(hours=hour, minutes=minute)


class Field:
    """Couriers, their parcels and their cash, written as the other parts of the product write them."""

    def __init__(self, app, make_user, create_shipment) -> None:
        self.app, self.make_user, self.create_shipment = app, make_user, create_shipment
        self.ids: dict[str, int] = {}

    def courier(self, username: str) -> int:
        self.ids[username] = self.make_user(username, role="courier")
        return self.ids[username]

    def parcels(self, *cod_amounts: str | None) -> list[str]:
        """Parcels out for delivery: COD for an amount, prepaid for None."""
        tracking_ids = [self.create_shipment(**({"payment": "cod", "cod_amount": amount} if amount else {}))
                        for amount in cod_amounts]
        with self.app.app_context():
            for status in (Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY):
                outcomes = apply_status_changes([StatusChange(t, status, "Kochi Hub") for t in tracking_ids],
                                                "operator1")
                assert all(outcome.ok for outcome in outcomes), outcomes
            db.session.commit()
        return tracking_ids

    def deliver(self, tracking_id: str, courier: str, when: datetime, collected: str | None = None,
                method: str = "cash") -> None:
        """Delivered by `courier` at `when`, with the collection the courier app records (none: not recorded)."""
        self._change(tracking_id, Status.DELIVERED, courier, when)
        if collected is None:
            return
        with self.app.app_context():
            shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)).one()
            event_id = db.session.scalar(select(func.max(TrackingEvent.id))
                                         .where(TrackingEvent.shipment_id == shipment.id))
            db.session.add(CodCollection(shipment_id=shipment.id, event_id=event_id, courier_id=self.ids[courier],
                                         expected=shipment.cod_amount or Decimal("0"), collected=Decimal(collected),
                                         method=method, collected_at=when))
            db.session.commit()

    def attempt(self, tracking_id: str, courier: str, when: datetime, reason: str | None) -> None:
        self._change(tracking_id, Status.DELIVERY_ATTEMPTED, courier, when, attempt_reason=reason)

    def _change(self, tracking_id: str, status: str, actor: str, when: datetime, **proof) -> None:
        with self.app.app_context():
            [outcome] = apply_status_changes([StatusChange(tracking_id, status, "Door", occurred_at=when, **proof)],
                                             actor)
            assert outcome.ok, outcome
            db.session.commit()

    def remitted(self, courier: str, amount: str, when: datetime, reference: str = "R-1") -> None:
        with self.app.app_context():
            db.session.add(CodRemittance(courier_id=self.ids[courier], amount=Decimal(amount), reference=reference,
                                         received_at=when, received_by="cashier"))
            db.session.commit()

    def ledgers(self, day: date = DAY) -> dict[str, dict]:
        with self.app.app_context():
            return {ledger.username: ledger.as_dict() for ledger in cod_ledgers(local_day(day, TZ))}


@pytest.fixture
def field(app, make_user, create_shipment):
    return Field(app, make_user, create_shipment)


def stop(tracking_id, kind, expected, collected):
    return {"tracking_id": tracking_id, "kind": kind, "expected": expected, "collected": collected}


# --- the rules as data ---------------------------------------------------------------------------------------------


def test_a_stop_is_a_shortfall_or_a_surplus_only_when_the_amounts_differ():
    assert cod_difference(Decimal("500.00"), Decimal("450.00")) == CodFlag.SHORTFALL
    assert cod_difference(Decimal("500.00"), Decimal("500.01")) == CodFlag.SURPLUS
    assert cod_difference(Decimal("500.00"), Decimal("500")) is None


@pytest.mark.parametrize("amount, ok", [
    (Decimal("0.01"), True), (Decimal("1000000.00"), True), (Decimal("1000000"), True), (Decimal("12.5"), True),
    (Decimal("0"), False), (Decimal("-1"), False), (Decimal("1000000.01"), False), (Decimal("1.005"), False),
    (None, False)])
def test_a_remittance_is_more_than_nothing_to_the_paisa_and_at_most_ten_lakh(amount, ok):
    assert (remittance_amount_problem(amount) is None) is ok


# --- the ledger ----------------------------------------------------------------------------------------------------


def test_the_ledger_sums_a_courier_day_and_carries_the_cash_still_with_them(field):
    field.courier("ravi")
    a, b, c, d = field.parcels("500.00", "300.00", "250.00", "1000.00")
    field.deliver(d, "ravi", at(DAY - timedelta(days=1), 18), collected="1000.00")  # the day before
    field.remitted("ravi", "600.00", at(DAY - timedelta(days=1), 20), reference="R-0")
    field.deliver(a, "ravi", at(DAY, 10), collected="500.00")
    field.deliver(b, "ravi", at(DAY, 11), collected="300.00", method="upi")
    field.deliver(c, "ravi", at(DAY, 12), collected="250.00")
    field.remitted("ravi", "500.00", at(DAY, 19))

    ledger = field.ledgers()["ravi"]
    # 400 carried over + 500 + 250 in cash today - 500 handed in; the 300 by UPI went to the company's account.
    assert ledger == {"username": "ravi", "expected": "1050.00", "collected": "1050.00", "collected_upi": "300.00",
                      "remitted": "500.00", "outstanding": "650.00", "flags": []}
    before = field.ledgers(DAY - timedelta(days=1))["ravi"]
    assert (before["expected"], before["collected"], before["remitted"], before["outstanding"]) == \
        ("1000.00", "1000.00", "600.00", "400.00")
    # A later day with no activity still shows the cash the courier holds.
    later = field.ledgers(DAY + timedelta(days=5))["ravi"]
    assert (later["expected"], later["collected"], later["remitted"], later["outstanding"]) == \
        ("0.00", "0.00", "0.00", "650.00")


def test_each_stop_whose_collection_differs_or_is_missing_is_flagged(field):
    field.courier("ravi")
    short, over, exact, missing = field.parcels("500.00", "300.00", "250.00", "199.99")
    field.deliver(short, "ravi", at(DAY, 10), collected="450.00")
    field.deliver(over, "ravi", at(DAY, 11), collected="300.50", method="upi")
    field.deliver(exact, "ravi", at(DAY, 12), collected="250.00")
    field.deliver(missing, "ravi", at(DAY, 13))  # e.g. staff recorded it for the courier, without the cash

    ledger = field.ledgers()["ravi"]
    assert ledger["flags"] == [stop(short, "shortfall", "500.00", "450.00"), stop(over, "surplus", "300.00", "300.50"),
                               stop(missing, "not_recorded", "199.99", None)]
    assert (ledger["expected"], ledger["collected"], ledger["outstanding"]) == ("1249.99", "1000.50", "700.00")


def test_only_the_couriers_own_cod_deliveries_count_as_expected(field):
    """Deliveries recorded by staff (another actor), prepaid parcels and attempts add nothing to expected."""
    field.courier("ravi")
    field.courier("meena")
    own, by_staff, by_meena, attempted, prepaid = field.parcels("100.00", "200.00", "400.00", "800.00", None)
    field.deliver(own, "ravi", at(DAY, 10), collected="100.00")
    field.deliver(by_staff, "operator1", at(DAY, 10))
    field.deliver(by_meena, "meena", at(DAY, 10), collected="400.00")
    field.attempt(attempted, "ravi", at(DAY, 11), "nobody_home")
    field.deliver(prepaid, "ravi", at(DAY, 12))

    ledgers = field.ledgers()
    assert (ledgers["ravi"]["expected"], ledgers["ravi"]["flags"]) == ("100.00", [])
    assert (ledgers["meena"]["expected"], ledgers["meena"]["outstanding"]) == ("400.00", "400.00")


def test_a_day_is_the_display_time_zone_day(field):
    field.courier("ravi")
    late, early = field.parcels("100.00", "200.00")
    field.deliver(late, "ravi", at(DAY, 23, 59), collected="100.00")  # 18:29 UTC on DAY
    field.deliver(early, "ravi", at(NEXT, 0, 0), collected="200.00")  # 18:30 UTC on DAY: the next local day
    assert at(NEXT, 0).date() == DAY  # the instants fall on one UTC day
    day, next_day = field.ledgers(DAY)["ravi"], field.ledgers(NEXT)["ravi"]
    assert (day["expected"], day["collected"], day["outstanding"]) == ("100.00", "100.00", "100.00")
    assert (next_day["expected"], next_day["collected"], next_day["outstanding"]) == ("200.00", "200.00", "300.00")


def test_amounts_are_summed_exactly_to_the_paisa(field):
    field.courier("ravi")
    tracking_ids = field.parcels("0.10", "0.20", *["0.01"] * 7)
    for tracking_id, amount in zip(tracking_ids, ["0.10", "0.20", *["0.01"] * 7], strict=True):
        field.deliver(tracking_id, "ravi", at(DAY, 10), collected=amount)
    field.remitted("ravi", "0.30", at(DAY, 20))
    ledger = field.ledgers()["ravi"]
    assert (ledger["expected"], ledger["collected"], ledger["remitted"], ledger["outstanding"]) == \
        ("0.37", "0.37", "0.30", "0.07")
    with field.app.app_context():
        [typed] = [x for x in cod_ledgers(local_day(DAY, TZ)) if x.username == "ravi"]
        assert typed.outstanding == Decimal("0.07") and isinstance(typed.collected, Decimal)
        assert str(typed.collected) == "0.37"


def test_the_ledger_lists_couriers_with_activity_or_cash_outstanding_only(field, make_user):
    field.courier("ravi")  # outstanding from an earlier day
    field.courier("meena")  # settled earlier: nothing today, nothing held
    field.courier("arun")  # a remittance today only
    field.courier("idle")
    make_user("operator2")
    a, b = field.parcels("100.00", "50.00")
    field.deliver(a, "ravi", at(DAY - timedelta(days=2), 10), collected="100.00")
    field.deliver(b, "meena", at(DAY - timedelta(days=2), 10), collected="50.00")
    field.remitted("meena", "50.00", at(DAY - timedelta(days=2), 20))
    field.remitted("arun", "10.00", at(DAY, 9))
    ledgers = field.ledgers()
    assert list(ledgers) == ["arun", "ravi"]
    assert ledgers["arun"]["flags"] == [{"kind": "surplus_remitted", "amount": "10.00"}]
    assert ledgers["ravi"]["outstanding"] == "100.00"


def test_more_cash_handed_in_than_collected_is_flagged_until_the_collections_arrive(field):
    field.courier("ravi")
    [parcel] = field.parcels("500.00")
    field.remitted("ravi", "500.00", at(DAY, 9))
    assert field.ledgers()["ravi"]["flags"] == [{"kind": "surplus_remitted", "amount": "500.00"}]
    assert field.ledgers()["ravi"]["outstanding"] == "-500.00"
    field.deliver(parcel, "ravi", at(DAY, 8), collected="500.00")  # replayed from the phone, earlier that day
    assert (field.ledgers()["ravi"]["flags"], field.ledgers()["ravi"]["outstanding"]) == ([], "0.00")


# --- remittances ---------------------------------------------------------------------------------------------------


def test_a_remittance_is_recorded_and_audited_with_the_new_outstanding(field, client, auth, app):
    field.courier("ravi")
    a, b = field.parcels("1250.00", "500.00")
    now = utcnow()
    field.deliver(a, "ravi", now - timedelta(hours=2), collected="1250.00")
    field.deliver(b, "ravi", now - timedelta(hours=1), collected="500.00")
    auth.login("cashier1", role="operator")
    response = client.post("/admin/couriers/RAVI/remittances", json={"amount": "1000.50", "reference": " HUB-R-0042 "},
                           headers=auth.headers())
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["received_at"].endswith("Z")
    del body["received_at"]
    assert body == {"id": 1, "courier": "ravi", "amount": "1000.50", "reference": "HUB-R-0042",
                    "received_by": "cashier1", "outstanding": "749.50", "surplus_remitted": None}
    with app.app_context():
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cod_remitted")).one()
        assert (row.actor, row.target_type, row.target_id) == ("cashier1", "courier", "ravi")
        assert row.details == {"amount": "1000.50", "reference": "HUB-R-0042"}
        assert db.session.scalars(select(CodRemittance)).one().amount == Decimal("1000.50")
    today = to_local(utcnow(), TZ).date().isoformat()
    ledger = client.get(f"/admin/cod?date={today}").get_json()["couriers"]
    assert [(x["username"], x["remitted"], x["outstanding"]) for x in ledger] == [("ravi", "1000.50", "749.50")]


def test_a_remittance_larger_than_the_cash_held_is_recorded_and_flagged(field, client, auth, app):
    field.courier("ravi")
    [parcel] = field.parcels("300.00")
    field.deliver(parcel, "ravi", utcnow() - timedelta(hours=1), collected="300.00")
    auth.login("cashier1", role="admin")
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": 500, "reference": "R-7"},
                           headers=auth.headers())
    assert response.status_code == 201
    assert (response.get_json()["outstanding"], response.get_json()["surplus_remitted"]) == ("-200.00", "200.00")
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": 50, "reference": "R-8"},
                           headers=auth.headers())
    assert (response.get_json()["outstanding"], response.get_json()["surplus_remitted"]) == ("-250.00", "50.00")
    with app.app_context():
        details = [row.details for row in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "cod_remitted").order_by(AuditEntry.id))]
    assert details == [{"amount": "500.00", "reference": "R-7", "surplus_remitted": "200.00"},
                       {"amount": "50.00", "reference": "R-8", "surplus_remitted": "50.00"}]


@pytest.mark.parametrize("amount", [-5, 0, "0", "0.00", "-0.01", "12.345", 12.345, "abc", "", "1000000.01", 10**12,
                                    "1e3", "NaN", "Infinity", "1,000", True, ["100"], {"value": 1}])
def test_an_amount_that_is_not_a_positive_sum_to_the_paisa_up_to_ten_lakh_is_a_400(field, client, auth, app, amount):
    field.courier("ravi")
    auth.login()
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": amount, "reference": "R-1"},
                           headers=auth.headers())
    assert response.status_code == 400
    assert "amount" in response.get_json()["fields"]
    assert _nothing_written(app)


@pytest.mark.parametrize("body, field_name", [
    ({"reference": "R-1"}, "amount"), ({"amount": "10.00"}, "reference"),
    ({"amount": "10.00", "reference": " "}, "reference"), ({"amount": "10.00", "reference": "R" * 65}, "reference"),
    ({"amount": "10.00", "reference": "R\u00a01"}, "reference"),
    ({"amount": "10.00", "reference": "R\x07"}, "reference"), ({"amount": "10.00", "reference": 42}, "reference"),
    ({"amount": "10.00", "reference": "R-1", "note": "x"}, "note"),
])
def test_a_missing_or_bad_reference_or_an_unknown_field_is_a_400(field, client, auth, app, body, field_name):
    field.courier("ravi")
    auth.login()
    response = client.post("/admin/couriers/ravi/remittances", json=body, headers=auth.headers())
    assert response.status_code == 400
    assert field_name in response.get_json()["fields"]
    assert _nothing_written(app)


def test_the_longest_reference_is_accepted(field, client, auth):
    field.courier("ravi")
    auth.login()
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": "1000000", "reference": "R" * 64},
                           headers=auth.headers())
    assert response.status_code == 201 and response.get_json()["amount"] == "1000000.00"


@pytest.mark.parametrize("username", ["nobody", "operator1", "viewer1"])
def test_a_remittance_for_someone_who_is_not_a_courier_is_a_404(client, auth, make_user, app, username):
    make_user("viewer1", role="viewer")
    auth.login()
    response = client.post(f"/admin/couriers/{username}/remittances", json={"amount": "10", "reference": "R-1"},
                           headers=auth.headers())
    assert response.status_code == 404
    assert _nothing_written(app)


def test_a_reference_used_before_for_the_courier_is_a_409(field, client, auth, app):
    field.courier("ravi")
    field.courier("meena")
    auth.login()
    first = client.post("/admin/couriers/ravi/remittances", json={"amount": "10", "reference": "R-1"},
                        headers=auth.headers())
    assert first.status_code == 201
    again = client.post("/admin/couriers/ravi/remittances", json={"amount": "10", "reference": "r-1"},
                        headers=auth.headers())
    assert again.status_code == 409 and again.get_json()["fields"] == {"reference": "Already used for this courier."}
    other = client.post("/admin/couriers/meena/remittances", json={"amount": "10", "reference": "R-1"},
                        headers=auth.headers())
    assert other.status_code == 201
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CodRemittance)) == 2
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "cod_remitted")) == 2


def test_a_remittance_without_the_csrf_token_writes_nothing(field, client, auth, app):
    field.courier("ravi")
    auth.login()
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": "10", "reference": "R-1"})
    assert response.status_code == 400
    assert _nothing_written(app)


def test_the_ledger_page_records_cash_from_its_form_and_shows_a_refusal_in_the_row(field, client, auth, app):
    field.courier("ravi")
    [parcel] = field.parcels("750.00")
    field.deliver(parcel, "ravi", utcnow() - timedelta(minutes=30), collected="750.00")
    token = auth.login()
    page = client.get("/admin/cod", headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "/admin/couriers/ravi/remittances" in text and "₹750.00" in text

    refused = client.post("/admin/couriers/ravi/remittances", headers=HTML,
                          data={"amount": "12.345", "reference": "R-9", "csrf_token": token})
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "At most 2 decimal places" in text and 'value="12.345"' in text and 'aria-invalid="true"' in text
    assert "There is a problem" in text and "ravi: At most 2 decimal places" in text
    assert _nothing_written(app)

    done = client.post("/admin/couriers/ravi/remittances", headers=HTML,
                       data={"amount": "700", "reference": "R-9", "csrf_token": token})
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/cod")
    text = client.get("/admin/cod", headers=HTML).get_data(as_text=True)
    assert "Received ₹700.00 from ravi (R-9)" in text and "₹50.00" in text

    unknown = client.post("/admin/couriers/nobody/remittances", headers=HTML,
                          data={"amount": "700", "reference": "R-10", "csrf_token": token})
    assert unknown.status_code == 404 and "No such courier." in unknown.get_data(as_text=True)


# --- the ledger over HTTP ------------------------------------------------------------------------------------------


def test_the_ledger_as_json_defaults_to_today(field, client, auth):
    field.courier("ravi")
    [parcel] = field.parcels("99.99")
    field.deliver(parcel, "ravi", utcnow() - timedelta(minutes=5), collected="90.00")
    auth.login()
    body = client.get("/admin/cod").get_json()
    assert body == {"date": to_local(utcnow(), TZ).date().isoformat(), "couriers": [
        {"username": "ravi", "expected": "99.99", "collected": "90.00", "collected_upi": "0.00", "remitted": "0.00",
         "outstanding": "90.00", "flags": [stop(parcel, "shortfall", "99.99", "90.00")]}]}
    assert client.get("/admin/cod?date=2001-01-01").get_json() == {"date": "2001-01-01", "couriers": []}


@pytest.mark.parametrize("url", ["/admin/cod", "/admin/cod.csv", "/admin/couriers/ravi/day"])
@pytest.mark.parametrize("bad", ["2026-02-30", "yesterday", "10/03/2026", "0001-01-01", "2026-03-10T00:00"])
def test_a_bad_date_is_a_400(field, client, auth, url, bad):
    field.courier("ravi")
    auth.login()
    response = client.get(f"{url}?date={bad}")
    assert response.status_code == 400
    assert "date" in response.get_json()["fields"]
    assert client.get(f"{url}?date={bad}", headers=HTML).status_code == 400


def test_the_ledger_as_csv(field, client, auth):
    field.courier("ravi")
    field.courier("meena")
    a, b = field.parcels("500.00", "300.00")
    field.deliver(a, "ravi", at(DAY, 10), collected="450.00")
    field.deliver(b, "ravi", at(DAY, 11))
    field.remitted("meena", "200.00", at(DAY, 12))
    auth.login()
    response = client.get(f"/admin/cod.csv?date={DAY.isoformat()}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="cod-2026-03-10.csv"'
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows == [
        ["date", "courier", "expected", "collected", "collected_upi", "remitted", "outstanding", "flags"],
        ["2026-03-10", "meena", "0.00", "0.00", "0.00", "200.00", "-200.00", "surplus_remitted 200.00"],
        ["2026-03-10", "ravi", "800.00", "450.00", "0.00", "0.00", "450.00",
         f"shortfall {a} expected 500.00 collected 450.00; not_recorded {b} expected 300.00"]]


def test_the_csv_neutralises_text_a_spreadsheet_would_run_as_a_formula():
    ledger = Ledger(username="=HYPERLINK(\"http://x\")", expected=Decimal("1"), collected=Decimal("0"),
                    collected_upi=Decimal("0"), remitted=Decimal("3"), outstanding=Decimal("-3"),
                    flags=(Flag(CodFlag.SURPLUS_REMITTED, amount=Decimal("3")),), active=True)
    day = local_day(DAY, TZ)
    [_, row] = list(csv.reader(io.StringIO(cod_ledger_csv(day, [ledger]))))
    assert row[1] == "'=HYPERLINK(\"http://x\")" and row[6] == "-3.00"


def test_only_today_s_ledger_page_offers_the_remittance_forms(field, client, auth):
    field.courier("ravi")
    [parcel] = field.parcels("10.00")
    field.deliver(parcel, "ravi", at(DAY, 10), collected="10.00")
    auth.login()
    text = client.get(f"/admin/cod?date={DAY.isoformat()}", headers=HTML).get_data(as_text=True)
    assert "₹10.00" in text and "/admin/couriers/ravi/remittances" not in text
    assert 'value="2026-03-10"' in text
    assert "/admin/couriers/ravi/day?date=2026-03-10" in text
    assert "/admin/couriers/ravi/remittances" in client.get("/admin/cod", headers=HTML).get_data(as_text=True)
    auth.logout()
    auth.login("viewer2", role="viewer")
    assert client.get("/admin/cod", headers=HTML).status_code == 403


# --- a courier's day -----------------------------------------------------------------------------------------------


def test_a_courier_day_counts_deliveries_attempts_by_reason_pickups_cash_and_distance(field, client, auth, app):
    field.courier("ravi")
    field.courier("meena")
    cod, prepaid, home, home2, closed, unexplained, other_day = field.parcels(
        "500.00", None, "100.00", "100.00", "100.00", "100.00", "100.00")
    field.deliver(cod, "ravi", at(DAY, 10), collected="500.00")
    field.deliver(prepaid, "ravi", at(DAY, 10, 30))
    field.attempt(home, "ravi", at(DAY, 11), "nobody_home")
    field.attempt(home2, "ravi", at(DAY, 11, 30), "nobody_home")
    field.attempt(closed, "ravi", at(DAY, 12), "business_closed")
    field.attempt(unexplained, "ravi", at(DAY, 12, 30), None)
    field.attempt(other_day, "ravi", at(NEXT, 9), "refused")
    [pickup] = [field.create_shipment(pickup=True)]
    field._change(pickup, Status.PICKED_UP, "ravi", at(DAY, 14))
    field.remitted("ravi", "200.00", at(DAY, 18), reference="HUB-1")
    # Along a meridian: 0.03 degrees of latitude is 0.03 × π / 180 × 6,371,008.8 m = 3,335.85 m.
    points = [(10.00, 76.0), (10.01, 76.0), (10.03, 76.0)]
    with app.app_context():
        for minute, (lat, lon) in enumerate(points):
            db.session.add(CourierPosition(courier_id=field.ids["ravi"], at=at(DAY, 10, minute), lat=lat, lon=lon,
                                           accuracy=10))
        db.session.add(CourierPosition(courier_id=field.ids["ravi"], at=at(NEXT, 10), lat=10.5, lon=77.0, accuracy=5))
        db.session.add(CourierPosition(courier_id=field.ids["meena"], at=at(DAY, 10), lat=12.0, lon=77.0, accuracy=5))
        db.session.commit()

    auth.login()
    response = client.get(f"/admin/couriers/Ravi/day?date={DAY.isoformat()}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["remittances"][0]["received_at"].endswith("Z")
    del body["remittances"][0]["received_at"]
    assert body == {
        "username": "ravi", "date": "2026-03-10", "delivered": 2,
        "attempted": {"business_closed": 1, "nobody_home": 2, "unspecified": 1}, "picked_up": 1,
        "cod": {"expected": "500.00", "collected": "500.00", "collected_upi": "0.00", "remitted": "200.00",
                "outstanding": "300.00", "flags": []},
        "distance_km": "3.34",
        "remittances": [{"id": 1, "amount": "200.00", "reference": "HUB-1", "received_by": "cashier"}]}

    page = client.get(f"/admin/couriers/ravi/day?date={DAY.isoformat()}", headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Nobody home" in text and "No reason given" in text and "3.34 km" in text and "HUB-1" in text
    assert "/admin/couriers/ravi/remittances" not in text  # cash is received now: today's page only
    assert "/admin/couriers/ravi/remittances" in client.get("/admin/couriers/ravi/day", headers=HTML).get_data(
        as_text=True)


def test_a_quiet_day_is_all_zeros(field, app):
    field.courier("ravi")
    with app.app_context():
        report = courier_day("ravi", local_day(DAY, TZ)).as_dict()
    assert report == {"username": "ravi", "date": "2026-03-10", "delivered": 0, "attempted": {}, "picked_up": 0,
                      "cod": {"expected": "0.00", "collected": "0.00", "collected_upi": "0.00", "remitted": "0.00",
                              "outstanding": "0.00", "flags": []}, "distance_km": "0.00", "remittances": []}


@pytest.mark.parametrize("username", ["nobody", "operator1"])
def test_the_day_of_someone_who_is_not_a_courier_is_a_404(client, auth, username):
    auth.login()
    assert client.get(f"/admin/couriers/{username}/day").status_code == 404
    assert client.get(f"/admin/couriers/{username}/day", headers=HTML).status_code == 404


# --- who may ---------------------------------------------------------------------------------------------------------

READS = ["/admin/cod", "/admin/cod.csv", "/admin/couriers/ravi/day"]


@pytest.mark.parametrize("role, reads, writes", [("viewer", 403, 403), ("courier", 403, 403),
                                                 ("operator", 200, 201), ("admin", 200, 201)])
def test_who_may_see_the_ledger_and_record_cash(field, client, auth, app, role, reads, writes):
    field.courier("ravi")
    auth.login(f"someone-{role}", role=role)
    for url in READS:
        assert client.get(url).status_code == reads, url
        assert client.get(url, headers=HTML).status_code == reads, url
    response = client.post("/admin/couriers/ravi/remittances", json={"amount": "10", "reference": "R-1"},
                           headers=auth.headers())
    assert response.status_code == writes
    if writes == 403:
        assert _nothing_written(app)
        page = client.post("/admin/couriers/ravi/remittances", headers=HTML,
                           data={"amount": "10", "reference": "R-1", "csrf_token": auth.csrf_token})
        assert page.status_code == 403 and _nothing_written(app)


def test_signed_out_is_a_401(client):
    for url in READS:
        assert client.get(url).status_code == 401
    assert client.post("/admin/couriers/ravi/remittances", json={"amount": "10", "reference": "R-1"}).status_code == 401


def test_the_service_serialises_nothing_it_should_not(field, app):
    """The service alone (no request): the audit row names the courier and the amount, and nothing else."""
    field.courier("ravi")
    with app.app_context():
        receipt = record_remittance("ravi", "25", "R 1", actor="system")
        db.session.commit()
        assert receipt.as_dict()["outstanding"] == "-25.00"
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "cod_remitted")).one()
        assert (row.actor, row.details) == ("system", {"amount": "25.00", "reference": "R 1",
                                                       "surplus_remitted": "25.00"})
        assert row.request_id is None and row.at <= datetime.now(UTC)


def _nothing_written(app) -> bool:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(CodRemittance)) == 0
                and db.session.scalar(select(func.count()).select_from(AuditEntry)
                                      .where(AuditEntry.action == "cod_remitted")) == 0)
