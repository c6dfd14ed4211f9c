"""The tracking page's "show full details" check in headless Chromium: public by default, the full names and
address after the last 4 digits of the receiver's mobile, for this browser session only, with JavaScript on or
off."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.conftest import VALID_BOOKING

pytestmark = pytest.mark.browser

ADDRESS = "14 Marine Drive, Ernakulam, Kochi 682031"
NOTE = "Courier: Ravi, 98450 12345"


def assert_public_only(page) -> None:
    html = page.locator("body").inner_html()  # not the head, where an accessibility audit injects its script
    for private in (VALID_BOOKING["sender_name"], VALID_BOOKING["receiver_name"], "Marine Drive",
                    VALID_BOOKING["email"], "98765", NOTE):
        assert private not in html, private


@pytest.fixture
def tracking_id(create_shipment, auth):
    tracking_id = create_shipment(destination=ADDRESS)
    auth.login()
    response = auth.client.post(f"/update/{tracking_id}", headers=auth.headers(), json={
        "status": "Picked Up", "location": "Mumbai Hub", "note": NOTE, "customer_message": "Collected today"})
    assert response.status_code == 200, response.get_json()
    return tracking_id


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_last_4_digits_reveal_full_details_for_this_session(open_tab, tracking_id, javascript):
    page = open_tab(javascript=javascript).page
    page.goto(f"/track/{tracking_id}")
    expect(page.locator("#parties")).to_have_text("From Asha R. to Vikram N. · Kochi")
    expect(page.locator(".timeline")).to_contain_text("Collected today")
    assert_public_only(page)

    digits = page.get_by_label("Last 4 digits of the receiver's mobile")
    digits.fill("0000")
    page.get_by_role("button", name="Show full details").click()
    expect(page.locator("#mobile_last4-error")).to_contain_text("Those digits do not match. 4 tries left.")
    expect(digits).to_have_attribute("aria-invalid", "true")
    expect(digits).to_have_value("")  # a wrong answer is not echoed back
    if javascript:
        expect(page.locator("#full-details .error-summary")).to_be_focused()
        audit(page, "track-details-wrong")
    assert_public_only(page)

    digits.fill("3210")
    page.get_by_role("button", name="Show full details").click()
    expect(page).to_have_url(f"{page.url.split('/track/')[0]}/track/{tracking_id}")
    details = page.locator("#full-details")
    expect(details.get_by_role("heading", name="Full details")).to_be_visible()
    expect(details.locator("[data-full=sender]")).to_have_text(VALID_BOOKING["sender_name"])
    expect(details.locator("[data-full=receiver]")).to_have_text(VALID_BOOKING["receiver_name"])
    expect(details.locator("[data-full=destination]")).to_have_text(ADDRESS)
    expect(page.locator("#parties")).to_contain_text("From Asha Rao to Vikram Nair")
    body = page.locator("body").inner_html()
    assert NOTE not in body and VALID_BOOKING["email"] not in body
    if javascript:
        audit(page, "track-details-shown")

    # Still shown after a reload (this session), and not in another browser session.
    page.reload()
    expect(details.locator("[data-full=receiver]")).to_have_text(VALID_BOOKING["receiver_name"])
    stranger = open_tab(javascript=javascript).page
    stranger.goto(f"/track/{tracking_id}")
    expect(stranger.get_by_role("button", name="Show full details")).to_be_visible()
    assert_public_only(stranger)


def test_the_live_refresh_keeps_the_page_public(open_tab, tracking_id, auth):
    """The page refreshes only its live part, which never carries the full details, so nothing leaks into it
    and nothing unlocked is lost from the page around it."""
    page = open_tab().page
    page.goto(f"/track/{tracking_id}")
    page.get_by_label("Last 4 digits of the receiver's mobile").fill("3210")
    page.get_by_role("button", name="Show full details").click()
    expect(page.locator("[data-full=receiver]")).to_have_text(VALID_BOOKING["receiver_name"])
    response = auth.client.post(f"/update/{tracking_id}", headers=auth.headers(),
                                json={"status": "In Transit", "location": "Pune Hub", "note": NOTE})
    assert response.status_code == 200
    expect(page.locator(".status-line .badge")).to_have_text("In Transit")
    expect(page.locator("[data-full=receiver]")).to_have_text(VALID_BOOKING["receiver_name"])
    assert NOTE not in page.locator("body").inner_html()
