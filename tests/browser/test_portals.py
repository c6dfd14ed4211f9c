"""The customer and operator portals in headless Chromium: real forms, real HTTP, axe-core on every page."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.conftest import VALID_BOOKING

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-1"


def sign_in(page, username: str = "operator1", password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def timeline_items(page):
    return page.locator("ol.timeline > li")


def assert_no_private_contact_details(page) -> None:
    html = page.content()
    assert VALID_BOOKING["email"] not in html
    assert "98765" not in html and "9876543210" not in html


def test_book_a_shipment_through_the_form_and_land_on_its_page(page):
    page.goto("/")
    expect(page.get_by_role("heading", name="Book a shipment")).to_be_visible()
    audit(page, "landing")

    # Keyboard: the skip link comes first and lands in the main content; focus is always drawn.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    sender = page.get_by_label("Sender's name")
    expect(sender).to_be_focused()
    assert sender.evaluate("e => getComputedStyle(e).outlineStyle") != "none"

    # Errors come back inline, next to their fields, with what was typed kept.
    page.get_by_label("Sender's name").fill("Asha Rao")
    page.get_by_label("Receiver's name").fill("Vikram Nair")
    page.get_by_label("Receiver's mobile").fill("12")
    page.get_by_label("Destination address").fill("Kochi")
    page.get_by_role("button", name="Book shipment").click()
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")
    expect(page.locator("#mobile-error")).to_be_visible()
    expect(page.locator("#email-error")).to_have_count(0)  # the receiver's email is optional
    expect(page.get_by_label("Receiver's mobile")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Sender's name")).to_have_value("Asha Rao")
    expect(page.get_by_label("Destination address")).to_have_value("Kochi")
    expect(page.locator(".error-summary")).to_be_focused()
    audit(page, "landing-errors")

    page.get_by_label("Receiver's mobile").fill("+91 98765 43210")
    page.get_by_label("Receiver's email").fill(VALID_BOOKING["email"])
    page.get_by_role("button", name="Book shipment").click()

    expect(page).to_have_url(re.compile(r"/track/[0-9A-F]{8}\?booked=1$"))
    tracking_id = page.url.split("/track/")[1][:8]
    expect(page.locator("#new-tracking-id")).to_have_text(tracking_id)
    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)
    expect(timeline_items(page)).to_have_count(1)
    expect(timeline_items(page).first).to_contain_text("Origin Facility")
    expect(page.locator(".progress [aria-current=step]")).to_contain_text("Booked")
    expect(page.locator(".last-updated")).to_contain_text("Last updated")
    assert_no_private_contact_details(page)

    copy = page.get_by_role("button", name="Copy tracking ID")
    expect(copy).to_be_visible()
    copy.click()
    expect(page.locator("[data-copy-status]")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == tracking_id
    audit(page, "track-booked")


def test_track_by_id_and_by_mobile_from_the_landing_page(page, create_shipment):
    tracking_id = create_shipment()
    other_id = create_shipment(mobile="+91 91234 56789", receiver_name="Someone Else")

    page.goto("/")
    page.get_by_label("Tracking ID").fill(f"  {tracking_id.lower()} ")
    page.get_by_role("button", name="Track", exact=True).click()
    expect(page).to_have_url(re.compile(f"/track/{tracking_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)
    expect(page.locator("[data-copy-target]")).to_have_count(0)  # the "just booked" banner only after booking
    expect(page.get_by_text("Updates automatically")).to_be_visible()

    page.goto("/")
    page.get_by_label("Mobile number").fill("098765 43210")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("•••3210")
    links = page.locator(".card-list a")
    expect(links).to_have_count(1)
    expect(links.first).to_contain_text(tracking_id)
    assert other_id not in page.content()
    assert "/search" in page.url and "98765" not in page.url  # the number stays out of the address bar
    assert_no_private_contact_details(page)
    audit(page, "search-results")
    links.first.click()
    expect(page).to_have_url(re.compile(f"/track/{tracking_id}$"))

    # An unknown ID: a friendly 404 with the search box, which works.
    page.goto("/")
    page.get_by_label("Tracking ID").fill("ABCDEF12")
    page.get_by_role("button", name="Track", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("We can't find that shipment")
    audit(page, "not-found")
    page.get_by_label("Tracking ID").fill(tracking_id)
    page.get_by_role("button", name="Track", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)

    # A bad number on the find-by-mobile form is an inline error, number kept.
    page.goto("/")
    page.get_by_label("Mobile number").fill("12ab")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#search-mobile-error")).to_be_visible()
    expect(page.get_by_label("Mobile number")).to_have_value("12ab")


def test_operator_signs_in_updates_twice_and_signs_out(page, make_user, create_shipment):
    make_user("operator1", PASSWORD, "operator")
    tracking_id = create_shipment()

    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/login\?next=/admin$"))
    expect(page.get_by_label("Keep me signed in for 7 days")).not_to_be_checked()
    audit(page, "login")
    sign_in(page, password="not-the-password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value("operator1")
    audit(page, "login-error")

    sign_in(page)
    expect(page).to_have_url(re.compile(r"/admin$"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_contain_text("operator1")
    expect(nav).to_contain_text("operator")
    expect(page.locator(".tile--booked .tile__count")).to_have_text("1")
    page.get_by_role("link", name=tracking_id).click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)
    expect(page.get_by_text(VALID_BOOKING["email"])).to_be_visible()  # staff see the contact details
    expect(page.get_by_text("+919876543210")).to_be_visible()
    status = page.get_by_label("New status")
    expect(status.locator("option")).to_have_text(["Choose a status", "Picked Up", "Cancelled", "On Hold"])
    audit(page, "admin-shipment")

    # A missing location is an inline error; the chosen status is kept.
    status.select_option("Picked Up")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator("#location-error")).to_have_text(re.compile("Enter the location"))
    expect(page.get_by_label("New status")).to_have_value("Picked Up")
    audit(page, "admin-shipment-errors")

    page.get_by_label("Location").fill("Hyderabad Hub")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator(".flash--success")).to_have_text("Status updated: Picked Up at Hyderabad Hub.")
    expect(timeline_items(page)).to_have_count(2)
    expect(timeline_items(page).first).to_contain_text("Hyderabad Hub")
    expect(page.locator("#recent-locations option[value='Hyderabad Hub']")).to_have_count(1)

    page.get_by_label("New status").select_option("In Transit")
    page.get_by_label("Location").fill("Chennai Hub")
    page.get_by_label("Note").fill("Left the sorting centre.")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator(".flash--success")).to_contain_text("In Transit at Chennai Hub")
    expect(timeline_items(page)).to_have_count(3)
    expect(timeline_items(page).first).to_contain_text("Left the sorting centre.")
    expect(timeline_items(page).nth(1)).to_contain_text("Hyderabad Hub")
    expect(page.get_by_label("New status").locator("option")).to_have_text(
        ["Choose a status", "In Transit", "Out for Delivery", "On Hold"])

    page.goto(f"/track/{tracking_id}")
    expect(page.locator(".progress [aria-current=step]")).to_contain_text("In Transit")
    expect(timeline_items(page).first).to_contain_text("Chennai Hub")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    page.goto("/admin")
    expect(page).to_have_url(re.compile(r"/login\?next=/admin$"))


def test_tracking_page_picks_up_a_change_made_elsewhere_without_reloading(app, page, create_shipment, auth):
    """The polling path: this server refuses streams (as the web service does in production), so the page asks
    every second. The stream's own path is tests/browser/test_live_map.py's."""
    app.config.update(SSE_MAX_STREAMS=0)
    tracking_id = create_shipment()
    page.goto(f"/track/{tracking_id}")
    expect(timeline_items(page)).to_have_count(1)
    page.evaluate("() => { window.stillTheSamePage = true; }")

    # While nothing changes, the page asks with If-None-Match and gets an empty 304.
    with page.expect_response(lambda r: "fragment=timeline" in r.url and r.status == 304):
        pass

    auth.login()
    response = auth.client.post(f"/update/{tracking_id}", headers=auth.headers(),
                                json={"status": "Picked Up", "location": "Vijayawada", "note": "Collected"})
    assert response.status_code == 200

    expect(page.locator(".status-line .badge")).to_have_text("Picked Up")
    expect(timeline_items(page)).to_have_count(2)
    expect(timeline_items(page).first).to_contain_text("Vijayawada")
    expect(page.locator(".progress [aria-current=step]")).to_contain_text("Picked Up")
    expect(page.locator("[data-live-announcer]")).to_have_text("Status updated: Picked Up")
    assert page.evaluate("() => window.stillTheSamePage") is True


def test_exceptions_are_said_plainly_on_the_tracking_page(page, create_shipment, auth):
    tracking_id = create_shipment()
    auth.login()
    for status in ("Picked Up", "On Hold"):
        response = auth.client.post(f"/update/{tracking_id}", headers=auth.headers(),
                                    json={"status": status, "location": "Guntur Hub"})
        assert response.status_code == 200, response.get_json()
    page.goto(f"/track/{tracking_id}")
    expect(page.locator(".notice")).to_contain_text("On Hold")
    expect(page.locator(".progress [aria-current=step]")).to_contain_text("Picked Up")
    audit(page, "track-on-hold")


def test_admin_search_filter_and_pagination(page, make_user, create_shipment, auth):
    make_user("operator1", PASSWORD, "operator")
    ids = [create_shipment(receiver_name=f"Receiver {n:02d}", mobile=f"+91 98000 000{n:02d}") for n in range(27)]
    special = create_shipment(receiver_name="Meera Iyer", mobile="+91 91234 56789")
    auth.login(create=False)
    assert auth.client.post(f"/update/{special}", headers=auth.headers(),
                            json={"status": "Picked Up", "location": "Kochi"}).status_code == 200

    sign_in(page)
    rows = page.locator("table.data-table tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(special)  # the most recently updated first
    expect(page.locator(".result-count")).to_contain_text("Showing 1–25 of 28")
    audit(page, "dashboard")

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(3)
    expect(page.locator(".result-count")).to_contain_text("Showing 26–28 of 28")
    expect(page.locator("nav.pagination [aria-current=page]")).to_have_text("Page 2")

    page.get_by_label("Sort by").select_option("oldest")
    page.get_by_role("button", name="Apply").click()
    expect(rows.first).to_contain_text(ids[0])

    page.get_by_label("Search").fill("meera")
    page.get_by_label("Sort by").select_option("recent")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(special)

    page.get_by_label("Search").fill("91234 56789")  # a mobile in another format
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(special)

    page.get_by_label("Search").fill(ids[5].lower())
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(ids[5])

    page.get_by_label("Search").fill("")
    page.get_by_label("Status", exact=True).select_option("Picked Up")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(page.locator(".tile--picked-up")).to_have_attribute("aria-current", "true")
    audit(page, "dashboard-filtered")

    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(25)


def test_core_flows_work_with_javascript_off(open_tab, make_user):
    make_user("operator1", PASSWORD, "operator")
    page = open_tab(javascript=False).page

    page.goto("/")
    page.get_by_label("Sender's name").fill("Asha Rao")
    page.get_by_label("Receiver's name").fill("Vikram Nair")
    page.get_by_label("Receiver's mobile").fill("9876543210")
    page.get_by_label("Receiver's email").fill("bad-address")
    page.get_by_label("Destination address").fill("Kochi")
    page.get_by_role("button", name="Book shipment").click()
    expect(page.locator("#email-error")).to_be_visible()
    page.get_by_label("Receiver's email").fill(VALID_BOOKING["email"])
    page.get_by_role("button", name="Book shipment").click()
    expect(page.locator("#new-tracking-id")).to_be_visible()
    tracking_id = page.locator("#new-tracking-id").inner_text()
    expect(page.locator("[data-copy-target]")).to_be_hidden()  # needs JS; the ID is there to select

    page.goto("/")
    page.get_by_label("Tracking ID").fill(tracking_id)
    page.get_by_role("button", name="Track", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(tracking_id)

    page.goto("/")
    page.get_by_label("Mobile number").fill("+91 98765 43210")
    page.get_by_role("button", name="Find").click()
    expect(page.locator(".card-list a")).to_contain_text(tracking_id)

    sign_in(page)
    page.get_by_role("link", name=tracking_id).click()
    page.get_by_label("New status").select_option("Picked Up")
    page.get_by_label("Location").fill("Hyderabad Hub")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator(".flash--success")).to_contain_text("Picked Up at Hyderabad Hub")
    expect(timeline_items(page)).to_have_count(2)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def test_outbox_page_shares_the_look(page, make_user, create_shipment):
    make_user("operator1", PASSWORD, "operator")
    create_shipment()  # queues one email, so the outbox has a row
    sign_in(page)
    response = page.goto("/admin/notifications")
    if "text/html" not in (response.headers.get("content-type") or ""):
        pytest.skip("the outbox page (notifications issue) does not render HTML yet")
    expect(page.locator("link[rel=stylesheet][href*='/css/waybill.']")).to_have_count(1)  # by fingerprint
    audit(page, "outbox")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_on_a_phone_tracking_comes_first_and_a_form_error_is_in_view_and_focused(open_tab, javascript):
    from tests.browser.conftest import WIDTHS

    page = open_tab(javascript=javascript).page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/")
    track = page.locator("#track-by-id").bounding_box()
    book = page.locator(".panel--book").bounding_box()
    assert track["y"] < book["y"], "on a phone the track panel comes before the booking form"

    page.get_by_label("Mobile number").fill("080 2222 3333")  # a landline
    page.get_by_role("button", name="Find").click()
    error = page.locator("#search-mobile-error")
    expect(error).to_contain_text("not a mobile number")
    expect(page.locator("#search-mobile")).to_be_focused()
    box = error.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= WIDTHS["phone"]["height"], box

    # On a desktop (a tab of its own: a viewport set back on a tab is not always applied to its next page)
    # booking comes first again, beside tracking.
    desktop = open_tab(javascript=javascript).page
    desktop.goto("/")
    assert desktop.locator(".panel--book").bounding_box()["x"] < desktop.locator("#track-by-id").bounding_box()["x"]
