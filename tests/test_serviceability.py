"""Serviceability: the PIN codes served (an empty list serves everything), the booking check's 422s, the list
replaced whole from a CSV file or not at all (audited), who may read and change it, and the public pre-check."""
from __future__ import annotations

import csv
import io
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
JSON = {"Accept": "application/json"}
HEADER = "pincode,cod,express"
# Kochi with both options, New Delhi without cash on delivery, Bengaluru without express.
LIST = "\n".join([HEADER, "682016,yes,yes", "110001,no,yes", "560001,true,false"]) + "\n"


def rows(*lines: tuple[str, str, str]) -> list[ServiceabilityRow]:
    return [ServiceabilityRow(number, dict(zip(("pincode", "cod", "express"), line, strict=True)))
            for number, line in enumerate(lines, start=2)]


def upload(client, auth, content: bytes | str, *, html: bool = False, filename: str = "pincodes.csv"):
    data = content.encode() if isinstance(content, str) else content
    headers = {**auth.headers(), **(HTML if html else JSON)}
    return client.post("/admin/serviceability", data={"file": (io.BytesIO(data), filename)}, headers=headers,
                       content_type="multipart/form-data")


def stored(app) -> dict[str, tuple[bool, bool]]:
    with app.app_context():
        return {row.pincode: (row.cod, row.express) for row in db.session.scalars(select(ServedPincode))}


def audit_rows(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "serviceability_replaced")
                                       .order_by(AuditEntry.id)))


@pytest.fixture
def admin(auth):
    auth.login("chief", role="admin")
    return auth


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


# --- the admin page and its upload --------------------------------------------------------------------------------

def test_an_upload_replaces_the_list_and_one_audit_row_keeps_counts_only(client, admin, app):
    response = upload(client, admin, LIST)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"served": 3, "cod": 2, "express": 2}
    assert stored(app) == {"682016": (True, True), "110001": (False, True), "560001": (True, False)}
    response = upload(client, admin, f"{HEADER}\n400001,y,n\n")
    assert response.get_json() == {"served": 1, "cod": 1, "express": 0}
    assert stored(app) == {"400001": (True, False)}
    first, second = audit_rows(app)
    assert (first.actor, first.target_type, first.target_id) == ("chief", "serviceability", "3 PIN codes")
    assert first.details == {"before": {"served": 0, "cod": 0, "express": 0},
                             "after": {"served": 3, "cod": 2, "express": 2}}
    assert second.details["before"] == first.details["after"]
    assert "682016" not in str(first.details) and "682016" not in str(second.details)  # never the list itself


def test_a_header_alone_empties_the_list_and_everything_is_served_again(client, admin, app):
    assert upload(client, admin, LIST).status_code == 200
    assert client.get("/admin/serviceability?pincode=682001", headers=JSON).get_json()["served"] is False
    response = upload(client, admin, HEADER + "\r\n")
    assert response.status_code == 200 and response.get_json() == {"served": 0, "cod": 0, "express": 0}
    assert stored(app) == {}
    assert client.get("/admin/serviceability?pincode=682001", headers=JSON).get_json()["served"] is True
    assert client.get("/admin/serviceability", headers=JSON).get_json()["everything_served"] is True
    assert [row.details["after"]["served"] for row in audit_rows(app)] == [3, 0]


def test_a_file_with_bad_rows_is_a_400_listing_them_and_nothing_changes(client, admin, app):
    assert upload(client, admin, LIST).status_code == 200
    before = stored(app)
    content = "\n".join([HEADER, "682001,yes,yes", "999999,yes,yes", "682001,no,no", "400001,sometimes,no",
                         "400002,yes", "", "110001,y,y"])
    response = upload(client, admin, content)
    assert response.status_code == 400
    body = response.get_json()
    assert body["fields"] and "file" in body["fields"]
    assert [row["line"] for row in body["rows"]] == [6]  # the row of the wrong width is found while reading
    response = upload(client, admin, "\n".join([HEADER, "682001,yes,yes", "999999,yes,yes", "682001,no,no",
                                                 "400001,sometimes,no", "", "110001,y,y"]))
    assert response.status_code == 400
    body = response.get_json()
    assert [row["line"] for row in body["rows"]] == [3, 4, 5]
    assert body["rows"][0]["fields"] == {"pincode": "999999 is not a PIN code in India Post's directory."}
    assert body["rows"][1]["fields"] == {"pincode": "Listed already, on line 2."}
    assert set(body["rows"][2]["fields"]) == {"cod"}
    assert body["error"] == body["fields"]["file"] == "3 of 5 rows are not valid: nothing was changed."
    assert stored(app) == before
    assert len(audit_rows(app)) == 1  # the first, good upload only


@pytest.mark.parametrize("content, message", [
    ("", "header"),
    ("pincode,cod\n682016,yes\n", "header"),
    ("pincode,cod,express,notes\n682016,yes,yes,x\n", "header"),
    ("pin,cod,express\n682016,yes,yes\n", "header"),
    (b"\xff\xfe" + HEADER.encode("utf-16-le"), "UTF-8"),
    (HEADER + '\n"682016,yes,yes\n', "CSV"),
    (HEADER + "\n682016\x00,yes,yes\n", "not a text"),
    (HEADER + "\n" + "682016,yes,yes\n" * 30_001, "30000"),
    (HEADER + "\n" + "6" * (1024 * 1024), "larger"),
])
def test_files_that_are_not_a_list_of_pincodes_are_400(client, admin, app, content, message):
    response = upload(client, admin, content)
    assert response.status_code == 400
    body = response.get_json()
    assert body["fields"]
    assert message.lower() in (body["error"] + " " + " ".join(body["fields"].values())).lower()
    assert stored(app) == {} and audit_rows(app) == []


def test_semicolons_a_bom_and_columns_in_any_order(client, admin, app):
    response = upload(client, admin, "\ufeffExpress;PINCODE;Cod\r\nno;682 016;YES\r\n\r\n".encode())
    assert response.status_code == 200, response.get_json()
    assert stored(app) == {"682016": (True, False)}


def test_no_file_or_a_json_body_is_a_400_naming_the_file(client, admin, app):
    response = client.post("/admin/serviceability", json={"file": "682016,yes,yes"}, headers=admin.headers())
    assert response.status_code == 400 and "file" in response.get_json()["fields"]
    response = client.post("/admin/serviceability", data={}, headers={**admin.headers(), **JSON},
                           content_type="multipart/form-data")
    assert response.status_code == 400 and "file" in response.get_json()["fields"]
    assert stored(app) == {}


def test_the_list_downloads_as_the_csv_the_upload_takes(client, admin, app):
    empty = client.get("/admin/serviceability.csv")
    assert empty.status_code == 200 and empty.mimetype == "text/csv"
    assert empty.get_data(as_text=True) == HEADER + "\r\n"
    upload(client, admin, LIST)
    download = client.get("/admin/serviceability.csv").get_data(as_text=True)
    assert list(csv.reader(io.StringIO(download))) == [
        ["pincode", "cod", "express"], ["110001", "no", "yes"], ["560001", "yes", "no"], ["682016", "yes", "yes"]]
    assert upload(client, admin, download).get_json() == {"served": 3, "cod": 2, "express": 2}


def test_the_staff_json_gives_counts_and_one_pincode(client, admin):
    upload(client, admin, LIST)
    body = client.get("/admin/serviceability", headers=JSON).get_json()
    assert {k: body[k] for k in ("served", "cod", "express", "everything_served")} == {
        "served": 3, "cod": 2, "express": 2, "everything_served": False}
    assert body["directory"]["version"] == "2025.10.03" and body["directory"]["pincodes"] > 19_000
    assert client.get("/admin/serviceability?pincode=110001", headers=JSON).get_json() == {
        "pincode": "110001", "served": True, "cod": False, "express": True, "city": "New Delhi", "state": "Delhi"}
    for bad in ("11000", "", "abc", "0110001"):
        response = client.get(f"/admin/serviceability?pincode={bad}", headers=JSON)
        assert response.status_code == 400 and "pincode" in response.get_json()["fields"], bad


def test_the_page_shows_counts_a_lookup_and_the_upload_form_to_admins(client, admin, app):
    page = client.get("/admin/serviceability", headers=HTML)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "every PIN code in the directory is served" in html
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html
    done = upload(client, admin, LIST, html=True)
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/serviceability")
    html = client.get("/admin/serviceability?pincode=560001", headers=HTML).get_data(as_text=True)
    assert "Replaced the list: 3 PIN codes served, 2 with cash on delivery, 2 with express." in html
    assert "Bengaluru Urban" in html and "Karnataka" in html
    bad = client.get("/admin/serviceability?pincode=12", headers=HTML)
    assert bad.status_code == 400 and "6 digits" in bad.get_data(as_text=True)
    unknown = client.get("/admin/serviceability?pincode=999999", headers=HTML).get_data(as_text=True)
    assert "not in India Post&#39;s directory" in unknown
    refused = upload(client, admin, HEADER + "\n999999,yes,yes\n", html=True)
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert "Nothing was changed" in html and '<th scope="row" data-label="Line">2</th>' in html
    assert len(stored(app)) == 3


# --- who may ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_read_but_may_not_replace_the_list(client, auth, app, role):
    auth.login(f"{role}1", role=role)
    assert client.get("/admin/serviceability", headers=JSON).status_code == 200
    assert client.get("/admin/serviceability?pincode=682016", headers=JSON).get_json()["served"] is True
    assert client.get("/admin/serviceability.csv").status_code == 200
    page = client.get("/admin/serviceability", headers=HTML).get_data(as_text=True)
    assert "Only admins can replace the list." in page and 'enctype="multipart/form-data"' not in page
    assert upload(client, auth, LIST).status_code == 403
    assert stored(app) == {} and audit_rows(app) == []


def test_a_visitor_is_asked_to_sign_in(client, app):
    assert client.get("/admin/serviceability", headers=JSON).status_code == 401
    page = client.get("/admin/serviceability", headers=HTML)
    assert page.status_code == 302 and "/login?next=" in page.headers["Location"]
    assert client.get("/admin/serviceability.csv", headers=JSON).status_code == 401
    response = client.post("/admin/serviceability", data={"file": (io.BytesIO(LIST.encode()), "p.csv")},
                           content_type="multipart/form-data", headers=JSON)
    assert response.status_code == 401
    assert stored(app) == {}


def test_an_upload_without_the_csrf_token_changes_nothing(client, admin, app):
    response = client.post("/admin/serviceability", data={"file": (io.BytesIO(LIST.encode()), "p.csv")},
                           content_type="multipart/form-data", headers=JSON)
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert stored(app) == {}


# --- the public pre-check -------------------------------------------------------------------------------------

def test_the_public_check_answers_json_with_nothing_personal(client, admin, app):
    upload(client, admin, LIST)
    admin.logout()
    response = client.get("/serviceability/110001")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"pincode": "110001", "served": True, "cod": False, "express": True,
                                   "city": "New Delhi", "state": "Delhi"}
    assert client.get("/serviceability/682%20016").get_json()["served"] is True
    assert client.get("/serviceability/682001").get_json() == {
        "pincode": "682001", "served": False, "cod": False, "express": False, "city": "Ernakulam", "state": "Kerala"}
    assert client.get("/serviceability/999999").get_json() == {
        "pincode": "999999", "served": False, "cod": False, "express": False, "city": None, "state": None}


@pytest.mark.parametrize("path", ["/serviceability/68201", "/serviceability/000000", "/serviceability/Kochi",
                                  "/serviceability/6820166", "/serviceability/%E0%A5%AC%E0%A5%AE%E0%A5%A8"])
def test_the_public_check_says_what_a_pincode_is_when_given_something_else(client, path):
    response = client.get(path)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "A PIN code is 6 digits, the first not 0 (such as 682016)."
    assert body["fields"] == {"pincode": body["error"]}


@pytest.fixture
def limited(make_config, made_apps):
    def make(**overrides):
        made_apps.append(create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_SERVICEABILITY="3 per minute",
                                                **overrides)))
        return made_apps[-1]
    return make


def test_the_public_check_is_rate_limited_per_client(limited):
    client = limited().test_client()
    assert [client.get(f"/serviceability/{pin}").status_code for pin in ("682001", "12", "110001")] == [200, 400, 200]
    refused = client.get("/serviceability/560001")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many PIN code checks" in refused.get_json()["error"]
    assert client.get("/serviceability/560001", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200


def test_the_public_check_has_a_budget_of_its_own(limited):
    client = limited(RATELIMIT_SEARCH="1 per minute").test_client()
    assert client.get("/search/9876543210").status_code == 200
    assert client.get("/search/9876543210").status_code == 429
    assert client.get("/serviceability/682001").status_code == 200

