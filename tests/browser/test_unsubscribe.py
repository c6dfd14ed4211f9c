"""The recipient's choices page in headless Chromium at phone width (360 px), JavaScript on and off: choosing
"only the delivery day" from the link of a message, and the one-click unsubscribe (RFC 8058) a mail provider
sends, seen afterwards on the same page. No sideways scroll, no CSP violation, no personal data."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import NotificationChoice, Shipment
from app.services.outbox import preferences
from tests.browser.conftest import WIDTHS, audit, page_overflow
from tests.conftest import VALID_BOOKING

pytestmark = pytest.mark.browser


def choices_path(app, tracking_id: str, channel: str = "email") -> str:
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        return f"/n/{preferences.choices_token(shipment_id, channel)}"


def stored_choice(app, channel: str = "email") -> str | None:
    with app.app_context():
        return db.session.scalar(select(NotificationChoice.choice).where(NotificationChoice.channel == channel))


def assert_no_personal_data(page) -> None:
    html = page.locator("body").inner_html()
    for private in (VALID_BOOKING["sender_name"], VALID_BOOKING["receiver_name"], VALID_BOOKING["email"], "98765"):
        assert private not in html, private


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_choosing_delivery_day_only_on_a_phone(app, open_tab, create_shipment, javascript):
    tracking_id = create_shipment()
    tab = open_tab(javascript=javascript)
    page = tab.page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto(choices_path(app, tracking_id))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Email updates for shipment {tracking_id}")
    assert page_overflow(page) is None
    assert_no_personal_data(page)
    if javascript:
        audit(page, "choices")

    page.get_by_role("button", name="Save my choice").click()  # nothing chosen yet
    expect(page.locator(".error-summary")).to_contain_text("Choose one.")
    assert stored_choice(app) is None

    page.get_by_label("Only the delivery day").check()
    page.get_by_role("button", name="Save my choice").click()
    expect(page.get_by_role("status")).to_contain_text("Saved. You will get: Only the delivery day")
    expect(page.get_by_label("Only the delivery day")).to_be_checked()
    assert page_overflow(page) is None
    assert stored_choice(app) == "delivery_day"


def test_the_one_click_link_stops_email_and_the_page_says_so_on_a_phone(app, open_tab, create_shipment):
    tracking_id = create_shipment()
    path = choices_path(app, tracking_id)
    provider = open_tab()  # a fresh context: no cookie, no CSRF token, only the link
    response = provider.context.request.post(f"{provider.base_url}{path}", form={"List-Unsubscribe": "One-Click"})
    assert response.status == 200 and response.json()["choice"] == "none"
    assert stored_choice(app) == "none"

    page = open_tab().page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto(path)
    expect(page.locator(".muted").first).to_contain_text("Your choice: None.")
    expect(page.get_by_label("None", exact=True)).to_be_checked()
    assert page_overflow(page) is None
    audit(page, "choices-unsubscribed")

    page.get_by_label("All updates").check()  # changing one's mind is one click away
    page.get_by_role("button", name="Save my choice").click()
    expect(page.get_by_role("status")).to_contain_text("You will get: All updates")
    assert stored_choice(app) == "all"
