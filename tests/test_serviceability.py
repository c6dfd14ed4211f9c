"""Serviceability: the PIN codes served (an empty list serves everything), the booking check's 422s, and the
list replaced whole or not at all (audited)."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from app import create_app
from app.errors import Unprocessable, ValidationError
from app.extensions import db
from app.models import AuditEntry, ServedPincode
from app.services.shipments.serviceability import (
    ServiceabilityRejected,
    ServiceabilityRow,
    check,
    check_booking,
    replace_all,
    serviceability_counts,
)

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def rows(*lines: tuple[str, str, str]) -> list[ServiceabilityRow]:
    return [ServiceabilityRow(number, dict(zip(("pincode", "cod", "express"), line, strict=True)))
            for number, line in enumerate(lines, start=2)]


def stored(app) -> dict[str, tuple[bool, bool]]:
    with app.app_context():
        return {row.pincode: (row.cod, row.express) for row in db.session.scalars(select(ServedPincode))}


def audit_rows(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "serviceability_replaced")
                                       .order_by(AuditEntry.id)))


# --- the service --------------------------------------------------------------------------------------------------

def test_an_empty_list_serves_every_pincode_of_the_directory_with_both_options(app_ctx):
    assert serviceability_counts().everything_served
    kochi = check("682001")
    assert kochi.to_dict() == {"pincode": "682001", "served": True, "cod": True, "express": True,
                               "city": "Ernakulam", "state": "Kerala"}
    assert check("110001").city == "New Delhi"
    assert check_booking("682001", payment="cod", service="express") == kochi


def test_a_pincode_unknown_to_the_directory_is_never_served(app_ctx):
    assert check("999999").to_dict() == {"pincode": "999999", "served": False, "cod": False, "express": False,
                                         "city": None, "state": None}
    with pytest.raises(Unprocessable) as refused:
        check_booking("999999")
    assert refused.value.status_code == 422
    assert "not a PIN code in India Post's directory" in refused.value.fields["destination_pincode"]


def test_a_pincode_of_the_directory_without_a_district_is_served_and_said_so(app_ctx):
    import indian_pincode

    pin = next(pin for pin in indian_pincode.get_pincodes() if not indian_pincode.get_state(pin))
    offer = check(pin)
    assert offer.to_dict() == {"pincode": pin, "served": True, "cod": True, "express": True, "city": None,
                               "state": None}
    replace_all(rows(("682016", "yes", "yes")), actor="chief")
    with pytest.raises(Unprocessable) as refused:
        check_booking(pin)
    assert refused.value.message == f"We do not deliver to PIN code {pin} yet."
    db.session.rollback()


@pytest.mark.parametrize("pin", ["000000", "68201", "Kochi", "", None, "682-016"])
def test_a_malformed_pincode_is_a_400_naming_the_field(app_ctx, pin):
    with pytest.raises(ValidationError) as refused:
        check(pin)
    assert refused.value.status_code == 400 and "pincode" in refused.value.fields
    with pytest.raises(ValidationError) as refused:
        check_booking(pin)
    assert refused.value.status_code == 400 and set(refused.value.fields) == {"destination_pincode"}


def test_once_listed_only_the_list_is_served_with_its_own_options(app_ctx):
    replace_all(rows(("682016", "yes", "yes"), ("110001", "no", "yes"), ("560001", "true", "false")), actor="chief")
    db.session.commit()
    assert serviceability_counts().to_dict() == {"served": 3, "cod": 2, "express": 2}
    assert (check("682016").served, check("682016").cod, check("682016").express) == (True, True, True)
    assert (check("110001").cod, check("110001").express) == (False, True)
    assert (check("560001").cod, check("560001").express) == (True, False)
    ernakulam = check("682001")  # in the directory, not on the list
    assert (ernakulam.served, ernakulam.cod, ernakulam.express, ernakulam.city) == (False, False, False, "Ernakulam")


def test_the_booking_check_refuses_each_option_where_it_is_not_offered_with_422(app_ctx):
    replace_all(rows(("682016", "yes", "yes"), ("110001", "no", "yes"), ("560001", "yes", "no"),
                     ("600001", "n", "n")), actor="chief")
    db.session.commit()
    assert check_booking("682 016", payment="cod", service="express").served
    assert check_booking("110001", payment="prepaid", service="express").served
    assert check_booking("560001", payment="COD", service="standard").cod
    cases = {
        ("682001", None, None): {"destination_pincode"},
        ("682001", "cod", "express"): {"destination_pincode"},  # not served: the options are moot
        ("110001", "cod", None): {"payment"},
        ("560001", None, "express"): {"service"},
        ("600001", " Cod ", "EXPRESS"): {"payment", "service"},
    }
    for (pin, payment, service), fields in cases.items():
        with pytest.raises(Unprocessable) as refused:
            check_booking(pin, payment=payment, service=service)
        assert refused.value.status_code == 422
        assert set(refused.value.fields) == fields, (pin, payment, service)
        assert refused.value.to_dict()["fields"] == refused.value.fields
    with pytest.raises(Unprocessable) as refused:
        check_booking("682001")
    assert refused.value.fields["destination_pincode"] == "We do not deliver to PIN code 682001 yet."


def test_a_bad_row_refuses_the_whole_list_and_writes_nothing(app_ctx):
    replace_all(rows(("682016", "yes", "yes")), actor="chief")
    db.session.commit()
    bad = rows(("110001", "yes", "yes"), ("999999", "yes", "yes"), ("682016", "maybe", ""),
               ("110001", "no", "no"), ("06820", "y", "n"))
    with pytest.raises(ServiceabilityRejected) as refused:
        replace_all(bad, actor="chief")
    db.session.rollback()
    problems = {row["line"]: row["fields"] for row in refused.value.rows}
    assert sorted(problems) == [3, 4, 5, 6]
    assert "directory" in problems[3]["pincode"]
    assert set(problems[4]) == {"cod", "express"}
    assert problems[5]["pincode"] == "Listed already, on line 2."
    assert "6 digits" in problems[6]["pincode"]
    assert refused.value.fields["file"].startswith("4 of 5 rows are not valid")
    assert serviceability_counts().to_dict() == {"served": 1, "cod": 1, "express": 1}


@pytest.mark.parametrize("word, value", [("true", True), ("TRUE", True), ("Yes", True), ("1", True), ("y", True),
                                         ("Y", True), (" yes ", True), ("false", False), ("No", False),
                                         ("0", False), ("n", False), ("N", False)])
def test_booleans_are_true_false_yes_no_1_0_y_n_in_any_case(app_ctx, word, value):
    replace_all(rows(("682016", word, word)), actor="chief")
    assert (check("682016").cod, check("682016").express) == (value, value)
    db.session.rollback()


def test_two_replacements_at_once_are_applied_one_after_the_other(app):
    """The second waits for the first to commit, then replaces its list: no clash on the first's new rows."""
    results: dict[str, object] = {}
    first_wrote, second_started = threading.Event(), threading.Event()

    def replace(name: str, listing: list[ServiceabilityRow], before_commit=None, after_start=None) -> None:
        with app.app_context():
            try:
                if after_start:
                    after_start()
                replace_all(listing, actor=name)
                if before_commit:
                    before_commit()
                db.session.commit()
                results[name] = "ok"
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions
                db.session.rollback()
                results[name] = exc
            finally:
                first_wrote.set()
                db.session.remove()

    def hold_open():
        first_wrote.set()
        second_started.wait(5)
        threading.Event().wait(0.3)  # let the second reach the list and wait on it

    def start_second():
        first_wrote.wait(5)
        second_started.set()

    first = threading.Thread(target=replace, args=("first", rows(("682016", "y", "y"), ("110001", "y", "y"))),
                             kwargs={"before_commit": hold_open})
    second = threading.Thread(target=replace, args=("second", rows(("110001", "n", "n"), ("560001", "n", "y"))),
                              kwargs={"after_start": start_second})
    first.start()
    second.start()
    first.join(20)
    second.join(20)
    assert results == {"first": "ok", "second": "ok"}
    assert stored(app) == {"110001": (False, False), "560001": (False, True)}
    assert [row.details["before"]["served"] for row in audit_rows(app)] == [0, 2]


# --- the 422 through the one error handler ------------------------------------------------------------------------

def test_a_refused_booking_check_is_a_422_with_fields_in_json_and_a_page(make_config, made_apps):
    application = create_app(make_config())
    made_apps.append(application)

    def book_to(pincode):  # what the booking side does: check, then book
        from flask import request
        check_booking(pincode, payment=request.args.get("payment"))
        return {"ok": True}

    application.add_url_rule("/test-only/book-to/<pincode>", view_func=book_to)
    with application.app_context():
        replace_all(rows(("110001", "no", "yes")), actor="chief")
        db.session.commit()
    client = application.test_client()
    assert client.get("/test-only/book-to/110001").get_json() == {"ok": True}
    refused = client.get("/test-only/book-to/110001?payment=cod")
    assert refused.status_code == 422
    assert refused.get_json() == {"error": "Cash on delivery is not available at PIN code 110001.",
                                  "fields": {"payment": "Cash on delivery is not available at PIN code 110001."}}
    page = client.get("/test-only/book-to/682001", headers=HTML)
    assert page.status_code == 422 and "We do not deliver to PIN code 682001 yet." in page.get_data(as_text=True)
    assert client.get("/test-only/book-to/68200").status_code == 400
