"""The server-rendered pages through the test client: conditional GETs, dashboard parameters, error pages,
forms, and what a public page must never show."""
from __future__ import annotations

import re

import pytest
from flask import render_template
from sqlalchemy import select

from app.extensions import db
from app.models import Shipment
from app.services.shipments.dashboard import ShipmentFilter, list_shipments, recent_locations, status_tally
from app.shipments.forms import BookingForm
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PASSWORD = "correct-horse-1"


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def update(auth, tracking_id: str, status: str, location: str = "Hyderabad Hub"):
    response = auth.client.post(f"/update/{tracking_id}", json={"status": status, "location": location},
                                headers=auth.headers())
    assert response.status_code == 200, response.get_json()
    return response


@pytest.fixture
def staff_page(client, make_user):
    """Sign in through the HTML form; returns the CSRF token of the signed-in session."""
    make_user("operator1", PASSWORD, "operator")
    token = csrf_from(client.get("/login", headers=HTML))
    response = client.post("/login", data={"csrf_token": token, "username": "operator1", "password": PASSWORD},
                           headers=HTML)
    assert response.status_code == 302
    return csrf_from(client.get("/admin", headers=HTML))


# --- GET /track/<id>: ETag, 304, Vary, Cache-Control -------------------------------------------------------------

@pytest.mark.parametrize("query, headers", [("", {}), ("", HTML), ("?fragment=timeline", HTML)],
                         ids=["json", "html", "fragment"])
def test_tracking_answers_conditional_requests(client, create_shipment, auth, query, headers):
    tracking_id = create_shipment()
    first = client.get(f"/track/{tracking_id}{query}", headers=headers)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert "Accept" in first.headers["Vary"]
    assert "no-cache" in first.headers["Cache-Control"]

    again = client.get(f"/track/{tracking_id}{query}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag

    auth.login()
    update(auth, tracking_id, "Picked Up")
    changed = client.get(f"/track/{tracking_id}{query}", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert "Picked Up" in changed.get_data(as_text=True)


def test_each_representation_has_its_own_etag(client, create_shipment):
    tracking_id = create_shipment()
    etags = {client.get(f"/track/{tracking_id}").headers["ETag"],
             client.get(f"/track/{tracking_id}", headers=HTML).headers["ETag"],
             client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).headers["ETag"],
             client.get(f"/track/{tracking_id}?booked=1", headers=HTML).headers["ETag"]}
    assert len(etags) == 4


def test_the_json_answer_is_unchanged_by_the_page_work(client, create_shipment):
    tracking_id = create_shipment()
    body = client.get(f"/track/{tracking_id}").get_json()
    assert body["tracking_id"] == tracking_id and body["status"] == "Booked"
    assert [e["status"] for e in body["events"]] == ["Booked"]
    assert "email" not in body


def test_the_page_carries_its_refresh_settings(make_config, create_shipment):
    from app import create_app

    app = create_app(make_config(TRACK_REFRESH_SECONDS=7))
    tracking_id = create_shipment()
    page = app.test_client().get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert 'data-refresh-seconds="7"' in page
    assert f'data-live-url="/track/{tracking_id}?fragment=timeline"' in page


def test_the_fragment_is_only_the_live_part(client, create_shipment):
    tracking_id = create_shipment()
    fragment = client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).get_data(as_text=True)
    assert "<html" not in fragment and "<nav" not in fragment
    assert 'class="timeline"' in fragment and "Last updated" in fragment


# --- Public pages show no email and no full mobile number --------------------------------------------------------

def test_public_pages_show_neither_email_nor_full_mobile(client, create_shipment):
    tracking_id = create_shipment()
    token = csrf_from(client.get("/", headers=HTML))
    pages = [
        client.get(f"/track/{tracking_id}?booked=1", headers=HTML),
        client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML),
        client.get("/search/9876543210", headers=HTML),
        client.post("/search", data={"csrf_token": token, "mobile": "+91 98765 43210"}, headers=HTML),
    ]
    for response in pages:
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert VALID_BOOKING["email"] not in text
        assert "9876543210" not in text and "98765" not in text
    assert tracking_id in pages[2].get_data(as_text=True)
    assert "+91 ••••••3210" in pages[3].get_data(as_text=True)


def test_staff_see_email_and_mobile(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert VALID_BOOKING["email"] in page and "+919876543210" in page


# --- Landing page forms ------------------------------------------------------------------------------------------

def test_booking_errors_are_inline_with_values_kept(client):
    token = csrf_from(client.get("/", headers=HTML))
    response = client.post("/create", headers=HTML, data={
        "csrf_token": token, "sender_name": "Asha Rao", "receiver_name": "", "mobile": "12",
        "email": "vikram@example.com", "destination": "Kochi"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="receiver_name-error"' in page and 'id="mobile-error"' in page
    assert 'value="Asha Rao"' in page and 'value="Kochi"' in page
    assert 'aria-invalid="true"' in page
    assert "There is a problem" in page


def test_booking_from_the_form_redirects_to_the_page_with_the_new_id(client):
    token = csrf_from(client.get("/", headers=HTML))
    response = client.post("/create", headers=HTML, data={"csrf_token": token, **VALID_BOOKING})
    assert response.status_code == 302
    assert re.fullmatch(r"/track/[0-9A-F]{8}\?booked=1", response.headers["Location"])
    page = client.get(response.headers["Location"], headers=HTML).get_data(as_text=True)
    assert 'id="new-tracking-id"' in page and "Copy tracking ID" in page


def test_the_booking_form_keeps_the_quick_five_first_and_the_details_in_closed_groups(client):
    page = client.get("/", headers=HTML).get_data(as_text=True)
    assert re.search(r'<details class="form-section" id="parcel-section">', page)
    assert re.search(r'<details class="form-section" id="sender-section">', page)
    assert page.index('id="destination"') < page.index('id="destination_pincode"') < page.index('id="weight_kg"')
    assert page.index('id="weight_kg"') < page.index('id="sender_mobile"')
    for field, mode in (("destination_pincode", "numeric"), ("weight_kg", "decimal"), ("length_cm", "decimal"),
                        ("pieces", "numeric"), ("cod_amount", "decimal"), ("sender_pincode", "numeric")):
        [tag] = re.findall(rf'<input[^>]*id="{field}"[^>]*>', page)
        assert f'inputmode="{mode}"' in tag and 'type="text"' in tag, tag
    [pickup] = re.findall(r'<input[^>]*id="pickup"[^>]*>', page)
    assert 'type="checkbox"' in pickup and 'value="true"' in pickup and "checked" not in pickup
    # The enhancement's URLs and words come from the page; its script is the app's own file.
    assert 'data-quote-url="/quote"' in page and 'data-serviceability-url="/serviceability/PINCODE"' in page
    assert re.search(r'<script src="/static/js/booking\.[0-9a-f]{12}\.js" defer></script>', page)
    hindi = client.get("/?lang=hi", headers=HTML).get_data(as_text=True)
    assert 'data-text-cod-yes="कैश ऑन डिलीवरी उपलब्ध"' in hindi


def test_the_booking_form_books_every_detail_and_a_ticked_pickup(client, app):
    token = csrf_from(client.get("/", headers=HTML))
    response = client.post("/create", headers=HTML, data={
        "csrf_token": token, **VALID_BOOKING, "email": "", "destination_pincode": "682031", "weight_kg": "2",
        "length_cm": "40", "width_cm": "30", "height_cm": "20", "pieces": "", "declared_value": "",
        "contents": "Books", "service": "standard", "payment": "cod", "cod_amount": "1,500",
        "sender_mobile": "91234 56789", "sender_email": "", "sender_address": "1 MG Road, Bengaluru",
        "sender_pincode": "560001", "pickup": "true"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        shipment = db.session.scalars(select(Shipment)).one()
        assert (shipment.pickup, shipment.email, shipment.cod_amount, shipment.charges["total"]) == (
            True, None, 1500, "613.60")


def test_a_refused_detail_comes_back_in_its_open_group_with_what_was_typed(client):
    token = csrf_from(client.get("/", headers=HTML))
    response = client.post("/create", headers=HTML, data={
        "csrf_token": token, **VALID_BOOKING, "weight_kg": "two", "payment": "prepaid", "pickup": "true"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert '<details class="form-section" id="parcel-section" open>' in page
    assert '<details class="form-section" id="sender-section" open>' in page  # the ticked pickup was kept
    assert 'id="weight_kg-error"' in page and 'value="two"' in page and '<a href="#weight_kg">' in page
    [pickup] = re.findall(r'<input[^>]*id="pickup"[^>]*>', page)
    assert "checked" in pickup


def test_a_refusal_no_field_explains_is_said_above_the_form(app):
    with app.test_request_context("/create", method="POST"):
        page = render_template("tracking/landing.html", booking_form=BookingForm(formdata=None),
                               booking_problem="We cannot book this right now.")
    assert re.search(r'class="error-summary"[^>]*>.*We cannot book this right now\.', page, re.DOTALL)


@pytest.mark.parametrize("status", ["Picked Up", "Cancelled", "On Hold"])
def test_the_booked_banner_is_gone_once_the_shipment_has_moved_on(client, create_shipment, auth, status):
    tracking_id = create_shipment()
    assert "Booked. Your tracking ID is" in client.get(f"/track/{tracking_id}?booked=1", headers=HTML).get_data(
        as_text=True)
    auth.login()
    update(auth, tracking_id, status)
    page = client.get(f"/track/{tracking_id}?booked=1", headers=HTML).get_data(as_text=True)
    assert "Booked. Your tracking ID is" not in page and 'id="new-tracking-id"' not in page
    assert status in page


def test_track_form_goes_to_the_canonical_id(client, create_shipment):
    tracking_id = create_shipment()
    response = client.get(f"/track?tracking_id=+{tracking_id.lower()}+", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/track/{tracking_id}"


def test_track_form_accepts_the_id_as_printed_on_a_label(client, create_shipment):
    tracking_id = create_shipment()
    typed = f"{tracking_id[:4]} {tracking_id[4:]}".lower().replace("0", "o")
    response = client.get("/track", query_string={"tracking_id": typed}, headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/track/{tracking_id}"
    assert client.get(response.headers["Location"], headers=HTML).status_code == 200


def test_empty_track_form_is_an_inline_error(client):
    response = client.get("/track?tracking_id=", headers=HTML)
    assert response.status_code == 400
    assert 'id="track-id-error"' in response.get_data(as_text=True)
    assert client.get("/track?tracking_id=").get_json()["fields"] == {"tracking_id": "Enter a tracking ID."}


def test_bad_mobile_on_the_search_form_is_an_inline_error(client):
    token = csrf_from(client.get("/", headers=HTML))
    response = client.post("/search", data={"csrf_token": token, "mobile": "12ab"}, headers=HTML)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="search-mobile-error"' in page and 'value="12ab"' in page


def test_landing_forms_bring_their_errors_into_view_without_javascript(client):
    """The answer to a form comes back with the invalid field autofocused (the browser focuses it and scrolls it
    into view), so a phone does not show the top of the page with the only error far below."""
    landing = client.get("/", headers=HTML).get_data(as_text=True)
    assert "autofocus" not in landing
    token = csrf_from(client.get("/", headers=HTML))
    page = client.post("/search", data={"csrf_token": token, "mobile": "080 2222 3333"},
                       headers=HTML).get_data(as_text=True)
    [field] = re.findall(r'<input[^>]*id="search-mobile"[^>]*>', page)
    assert "autofocus" in field and 'aria-invalid="true"' in field
    assert page.count("autofocus") == 1
    page = client.get("/track?tracking_id=", headers=HTML).get_data(as_text=True)
    [field] = re.findall(r'<input[^>]*id="track-id"[^>]*>', page)
    assert "autofocus" in field and page.count("autofocus") == 1


# --- Error pages -------------------------------------------------------------------------------------------------

def test_unknown_tracking_id_gets_a_friendly_404_with_the_search_box(client):
    response = client.get("/track/ABCDEF12", headers=HTML)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "find that shipment" in page and "ABCDEF12" in page
    assert 'action="/track"' in page and 'name="tracking_id"' in page
    assert client.get("/track/ABCDEF12").get_json() == {"error": "No shipment has the tracking ID 'ABCDEF12'."}


def test_unknown_page_404_also_offers_the_search_box(client):
    response = client.get("/no-such-page", headers=HTML)
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "Page not found" in page and 'action="/track"' in page


def test_the_403_page_explains_and_points_back(app):
    # Every staff page is open to both roles today, so no request can reach a 403: render the page directly.
    with app.test_request_context("/admin"):
        page = render_template("errors/error.html", status=403, message="Your role may not do this.", fields=None)
    assert "You don&#39;t have access to this" in page or "You don't have access to this" in page
    assert "Your role may not do this." in page


# --- Sign-in -----------------------------------------------------------------------------------------------------

def test_login_page_has_remember_me_and_a_generic_error(client, make_user):
    make_user("operator1", PASSWORD, "operator")
    page = client.get("/login", headers=HTML).get_data(as_text=True)
    assert 'name="remember"' in page and "Keep me signed in for 7 days" in page
    token = csrf_from(client.get("/login", headers=HTML))
    for username in ("operator1", "nobody"):
        response = client.post("/login", data={"csrf_token": token, "username": username, "password": "wrong"},
                               headers=HTML)
        assert response.status_code == 401
        assert "Wrong username or password." in response.get_data(as_text=True)


def test_navigation_shows_name_and_role(client, staff_page):
    page = client.get("/admin", headers=HTML).get_data(as_text=True)
    assert "operator1" in page and 'class="role-tag">operator<' in page and "Sign out" in page


# --- Dashboard list parameters -----------------------------------------------------------------------------------

@pytest.fixture
def many_shipments(create_shipment):
    ids = [create_shipment(receiver_name=f"Receiver {n:02d}", mobile=f"+91 98000 000{n:02d}") for n in range(30)]
    special = create_shipment(receiver_name="Meera Iyer", sender_name="Ravi Kumar", mobile="+91 91234 56789")
    return ids, special


def rows_of(response) -> list[str]:
    return re.findall(r'<a class="code" href="/admin/shipments/([0-9A-F]{8})">', response.get_data(as_text=True))


def test_dashboard_lists_25_per_page_newest_update_first(client, many_shipments, staff_page, auth):
    ids, special = many_shipments
    first = client.get("/admin", headers=HTML)
    assert first.status_code == 200
    assert rows_of(first) == [special, *reversed(ids[-24:])]
    second = rows_of(client.get("/admin?page=2", headers=HTML))
    assert second == list(reversed(ids[:6]))
    oldest = rows_of(client.get("/admin?sort=oldest", headers=HTML))
    assert oldest[:3] == ids[:3]


def test_dashboard_page_past_the_end_is_clamped_to_the_last(client, many_shipments, staff_page):
    ids, _special = many_shipments
    response = client.get("/admin?page=99", headers=HTML)
    assert response.status_code == 200
    assert rows_of(response) == list(reversed(ids[:6]))
    assert 'aria-current="page"><span class="visually-hidden">Page </span>2<' in response.get_data(as_text=True)


@pytest.mark.parametrize("query", ["page=0", "page=-1", "page=abc", "status=Lost", "sort=sideways",
                                   "q=" + "x" * 101, "booked_from=0001-01-01", "booked_to=9999-12-31"])
def test_invalid_dashboard_parameters_are_400(client, staff_page, query):
    response = client.get(f"/admin?{query}", headers=HTML)
    assert response.status_code == 400
    assert "The search options are not valid." in response.get_data(as_text=True)


@pytest.mark.parametrize("q", ["meera", "IYER", "ravi", "91234 56789", "+919123456789", "09123456789"])
def test_dashboard_search_by_name_or_mobile(client, many_shipments, staff_page, q):
    _ids, special = many_shipments
    assert rows_of(client.get("/admin", query_string={"q": q}, headers=HTML)) == [special]


def test_dashboard_search_by_tracking_id_and_filter_by_status(client, many_shipments, staff_page, auth):
    ids, special = many_shipments
    assert rows_of(client.get("/admin", query_string={"q": f" {ids[3].lower()} "}, headers=HTML)) == [ids[3]]
    auth.login("operator2")
    update(auth, ids[7], "Picked Up")
    response = client.get("/admin", query_string={"status": "Picked Up"}, headers=HTML)
    assert rows_of(response) == [ids[7]]
    assert "Showing 1–1 of 1" in response.get_data(as_text=True)
    assert rows_of(client.get("/admin", query_string={"status": "Delivered"}, headers=HTML)) == []


def test_dashboard_search_reads_tracking_ids_as_public_tracking_does(client, many_shipments, staff_page):
    ids, _special = many_shipments
    wanted = ids[5]
    typed = [f"{wanted[:4].lower()}-{wanted[4:].lower()}", f"{wanted[:4]} {wanted[4:]}", wanted.replace("0", "O"),
             f"{wanted[:3]}-{wanted[3:6].lower()}"]
    for q in typed:
        assert wanted in rows_of(client.get("/admin", query_string={"q": q}, headers=HTML)), q


@pytest.mark.parametrize("q", ["mysuru", "570001", "Mysuru 5700"])
def test_dashboard_search_by_city_or_pin_code(client, many_shipments, create_shipment, staff_page, q):
    in_mysuru = create_shipment(destination="12 Temple Road, Mysuru 570001")
    assert rows_of(client.get("/admin", query_string={"q": q}, headers=HTML)) == [in_mysuru]


def test_dashboard_search_box_has_a_translated_placeholder(client, staff_page):
    page = client.get("/admin", headers=HTML).get_data(as_text=True)
    assert "{{" not in page and "_(" not in page
    assert 'placeholder="Tracking ID, mobile, name, city or PIN code"' in page
    hindi = client.get("/admin?lang=hi", headers=HTML).get_data(as_text=True)
    assert 'placeholder="ट्रैकिंग आईडी, मोबाइल, नाम, शहर या पिन कोड"' in hindi


def test_dashboard_json_is_still_the_counts(client, create_shipment, auth):
    create_shipment()
    auth.login()
    assert client.get("/admin").get_json() == {"counts": {"Booked": 1}}


def test_dashboard_services(app_ctx, create_shipment, auth):
    tracking_id = create_shipment()
    create_shipment(receiver_name="100% Real_Name")
    auth.login()
    update(auth, tracking_id, "Picked Up", "Chennai Hub")
    update(auth, tracking_id, "In Transit", "Kochi Hub")
    db.session.remove()
    tally = status_tally()
    assert tally.total == 2 and dict(tally.by_status)["Booked"] == 1 and dict(tally.by_status)["Cancelled"] == 0
    assert recent_locations() == ["Kochi Hub", "Chennai Hub", "Origin Facility"]
    # LIKE wildcards in the search text are taken literally.
    assert [s.receiver_name for s in list_shipments(ShipmentFilter(text="0% r"), "IN").shipments] == \
        ["100% Real_Name"]
    assert list_shipments(ShipmentFilter(text="l%n"), "IN").total == 0
    page = list_shipments(ShipmentFilter(page=5), "IN", per_page=1)
    assert (page.page, page.pages, page.has_prev, page.has_next) == (2, 2, True, False)


def test_page_window_marks_gaps():
    from app.services.shipments.dashboard import ShipmentPage

    page = ShipmentPage(shipments=[], total=250, page=5, per_page=25)
    assert page.page_window() == [1, None, 3, 4, 5, 6, 7, None, 10]


# --- Shipment page and its update form ---------------------------------------------------------------------------

def test_update_form_offers_only_allowed_statuses_and_recent_locations(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    options = re.findall(r'<option value="([^"]*)"', page.split('id="status"')[1].split("</select>")[0])
    assert options == ["", "Picked Up", "Cancelled", "On Hold"]
    assert '<datalist id="recent-locations">' in page and '<option value="Origin Facility">' in page
    assert 'list="recent-locations"' in page


def test_update_form_success_redirects_back_with_a_flash(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML, data={
        "csrf_token": staff_page, "status": "Picked Up", "location": "Guntur Hub", "note": "Fragile"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/admin/shipments/{tracking_id}"
    page = client.get(response.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "Status updated: Picked Up at Guntur Hub." in page
    assert page.index("Guntur Hub") < page.index("Origin Facility")  # newest first
    assert "Fragile" in page


def test_update_form_errors_rerender_the_page_with_values_kept(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML, data={
        "csrf_token": staff_page, "status": "Picked Up", "location": "", "note": "Keep me"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="location-error"' in page and "Keep me" in page
    assert '<option selected value="Picked Up">' in page or '<option value="Picked Up" selected>' in page


def test_update_form_conflict_is_shown_on_the_page(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML, data={
        "csrf_token": staff_page, "status": "Delivered", "location": "Kochi", "received_by": "Ravi"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "The update was not recorded" in page and "allowed next statuses" in page


def test_update_form_needs_csrf_and_a_session(client, create_shipment, staff_page):
    tracking_id = create_shipment()
    no_token = client.post(f"/admin/shipments/{tracking_id}", headers=HTML,
                           data={"status": "Picked Up", "location": "Kochi"})
    assert no_token.status_code == 400
    client.post("/logout", data={"csrf_token": staff_page}, headers=HTML)
    assert client.post(f"/admin/shipments/{tracking_id}", data={"status": "Picked Up", "location": "Kochi"},
                       ).status_code == 401
    body = client.get(f"/track/{tracking_id}").get_json()  # neither attempt changed the shipment
    assert body["status"] == "Booked" and [e["status"] for e in body["events"]] == ["Booked"]


def test_final_status_shows_no_update_form(client, create_shipment, staff_page, auth):
    tracking_id = create_shipment()
    auth.login("operator2")
    update(auth, tracking_id, "Cancelled")
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "cannot change any more" in page and "Record update" not in page


# --- Progress bar ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected_states, exception", [
    (["Booked"], ["current", "todo", "todo", "todo", "todo"], None),
    (["Booked", "Picked Up", "In Transit"], ["done", "done", "current", "todo", "todo"], None),
    (["Booked", "Picked Up", "On Hold"], ["done", "paused", "todo", "todo", "todo"], "On Hold"),
    (["Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivery Attempted"],
     ["done", "done", "done", "current", "todo"], "Delivery Attempted"),
    (["Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivery Attempted", "Returned to Sender"],
     ["done", "done", "done", "done", "stopped"], "Returned to Sender"),
    (["Booked", "Cancelled"], ["done", "stopped", "stopped", "stopped", "stopped"], "Cancelled"),
    (["Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivery Attempted", "RTO Initiated"],
     ["done", "done", "done", "done", "stopped"], "RTO Initiated"),
    (["Booked", "Picked Up", "In Transit", "On Hold", "RTO Initiated", "RTO In Transit", "RTO In Transit"],
     ["done", "done", "done", "stopped", "stopped"], "RTO In Transit"),
    (["Booked", "Picked Up", "On Hold", "RTO Initiated", "On Hold"],
     ["done", "done", "stopped", "stopped", "stopped"], "On Hold"),
    (["Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivered"], ["done"] * 5, None),
])
def test_progress_bar_states(path, expected_states, exception):
    from types import SimpleNamespace

    from app.web.templating import shipment_progress

    progress = shipment_progress(path[-1], [SimpleNamespace(status=s) for s in path])
    assert [stage.state for stage in progress.stages] == expected_states
    assert progress.exception == exception
    assert (progress.exception_text is None) == (exception is None)


def test_the_self_hosted_fonts_are_the_pinned_npm_packages_files():
    """Every font under app/static/fonts is byte for byte a file of @fontsource/poppins at the version
    package.json pins (installed by the test command), and every face the stylesheet declares is one of them."""
    import json
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    package = root / "node_modules" / "@fontsource" / "poppins"
    if not package.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("node_modules/@fontsource/poppins is missing: the test command runs npm ci")
        pytest.skip("node_modules/@fontsource/poppins not installed: run npm ci")
    pinned = json.loads((root / "package.json").read_text())["devDependencies"]["@fontsource/poppins"]
    assert json.loads((package / "package.json").read_text())["version"] == pinned
    fonts = sorted((root / "app" / "static" / "fonts").glob("*.woff2"))
    assert {font.name for font in fonts} >= {f"poppins-{subset}-{weight}-normal.woff2"
                                             for subset in ("latin", "devanagari") for weight in (400, 500, 600)}
    for font in fonts:
        assert font.read_bytes() == (package / "files" / font.name).read_bytes(), font.name
    stylesheet = (root / "app" / "static" / "css" / "waybill.css").read_text()
    declared = set(re.findall(r'url\("\.\./fonts/([^"]+)"\)', stylesheet))
    assert declared == {font.name for font in fonts}
