"""The tracking page in Hindi, in headless Chromium: the switcher (links, so JavaScript is not needed), the
remembered choice, the estimated delivery, a phone-width page that never scrolls sideways, and the page's own
refresh staying in Hindi."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Shipment
from app.services.shipments.status_changes import record_status_change
from tests.browser.conftest import audit

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def move(app, tracking_id: str, status: str, location: str) -> None:
    with app.app_context():
        record_status_change(tracking_id, status, location, None, actor="operator1")
        db.session.commit()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_switching_the_tracking_page_to_hindi(open_tab, create_shipment, app, javascript):
    tracking_id = create_shipment()
    move(app, tracking_id, "Picked Up", "Mumbai Hub")
    page = open_tab(javascript=javascript).page
    page.goto(f"/track/{tracking_id}")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#estimated-delivery")).to_contain_text("Estimated delivery")

    page.locator(".language-switch").get_by_role("link", name="हिन्दी").click()
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    expect(page).to_have_url(re.compile(rf"/track/{tracking_id}\?lang=hi$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"शिपमेंट {tracking_id}")
    expect(page.locator(".status-line__value .badge").first).to_have_text("पिकअप हुआ")
    estimate = page.locator("#estimated-delivery")
    expect(estimate).to_contain_text("अनुमानित डिलीवरी")
    expect(estimate.locator("time")).to_contain_text("तक")
    expect(page.locator(".timeline")).to_contain_text("बुक हुआ")
    expect(page.locator(".language-switch [aria-current]")).to_have_text("हिन्दी")

    # The choice is remembered: the same page without ?lang stays in Hindi.
    page.goto(f"/track/{tracking_id}")
    expect(page.locator("html")).to_have_attribute("lang", "hi")
    if javascript:
        audit(page, "track-hindi")
    else:
        page.set_viewport_size(PHONE)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    page.locator(".language-switch").get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#estimated-delivery")).to_contain_text("Estimated delivery")


def test_the_live_refresh_stays_in_hindi(open_tab, create_shipment, app):
    tracking_id = create_shipment()
    page = open_tab().page
    page.set_viewport_size(PHONE)
    page.goto(f"/track/{tracking_id}?lang=hi")
    expect(page.locator(".status-line__value .badge").first).to_have_text("बुक हुआ")
    move(app, tracking_id, "Picked Up", "Mumbai Hub")
    expect(page.locator(".status-line__value .badge").first).to_have_text("पिकअप हुआ", timeout=15_000)
    expect(page.locator("#estimated-delivery")).to_contain_text("अनुमानित डिलीवरी")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_the_landing_page_in_hindi_books_a_hindi_shipment(open_tab, app):
    page = open_tab(javascript=False).page
    page.set_viewport_size(PHONE)
    page.goto("/?lang=hi")
    expect(page.get_by_role("heading", level=1)).to_have_text("शिपमेंट बुक और ट्रैक करें")
    page.get_by_label("भेजने वाले का नाम").fill("Asha Rao")
    page.get_by_label("पाने वाले का नाम").fill("Vikram Nair")
    page.get_by_label("पाने वाले का मोबाइल").fill("98765 43210")
    page.get_by_label("पाने वाले का ईमेल").fill("vikram@example.com")
    page.get_by_label("गंतव्य पता").fill("Kochi")
    page.get_by_role("button", name="शिपमेंट बुक करें").click()
    expect(page.locator("#booked-h")).to_have_text("बुक हो गया। आपकी ट्रैकिंग आईडी है")
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    with app.app_context():
        assert db.session.scalars(select(Shipment.language)).all() == ["hi"]


def test_hindi_text_is_set_in_the_self_hosted_devanagari_poppins(open_tab, create_shipment):
    """Hindi does not depend on the device's fonts: the page loads Poppins' Devanagari subset from this app, the
    font it uses for the heading's Hindi, and nothing from elsewhere."""
    tracking_id = create_shipment()
    page = open_tab().page
    page.goto(f"/track/{tracking_id}?lang=hi")
    expect(page.get_by_role("heading", level=1)).to_contain_text("शिपमेंट")
    page.wait_for_function(
        "() => [...document.fonts].some(f => f.status === 'loaded' && f.family.includes('Poppins')"
        " && f.unicodeRange.toUpperCase().includes('U+900-97F'))")
    assert page.evaluate("() => document.fonts.check('600 16px Poppins', 'शिपमेंट')")
    fonts = page.evaluate("() => performance.getEntriesByType('resource').map(e => e.name)"
                          ".filter(name => name.endsWith('.woff2'))")
    origin = page.evaluate("() => location.origin")
    assert any(name.startswith(f"{origin}/static/fonts/poppins-devanagari-") for name in fonts), fonts
    assert all(name.startswith(f"{origin}/static/fonts/") for name in fonts), fonts
