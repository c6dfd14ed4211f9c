"""Scan mode in headless Chromium: a keyboard-wedge scanner types ID after ID (and Enter) into the page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Notification, Shipment, TrackingEvent
from tests.browser.conftest import WIDTHS, audit
from tests.browser.test_portals import PASSWORD, sign_in

pytestmark = pytest.mark.browser


def scan_page(page) -> None:
    page.goto("/admin/scan")
    expect(page.get_by_role("heading", level=1)).to_have_text("Scan mode")
    page.get_by_label("Status to record").select_option("Picked Up")
    page.get_by_label("Location").fill("Kochi Hub")


def wedge(page, typed: str) -> None:
    """What a USB scanner does: types the characters fast, then presses Enter."""
    box = page.get_by_label("Scan or type a tracking ID")
    box.press_sequentially(typed, delay=5)
    box.press("Enter")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_dozen_scans_with_a_keyboard_wedge(open_tab, make_user, create_shipment, app, width):
    make_user("operator1", PASSWORD, "operator")
    booked = [create_shipment(receiver_name=f"Receiver {n}") for n in range(8)]
    tab = open_tab()
    page = tab.page
    page.set_viewport_size(WIDTHS[width])
    sign_in(page)
    scan_page(page)
    # 8 good scans (one typed in lower case with spaces), a repeat, two unknown IDs and one that is not an ID.
    typed = [booked[0], booked[1], f" {booked[2].lower()} ", booked[3], booked[0], "FFFFFFFF", booked[4],
             booked[5], "12345678", booked[6], "not-an-id", booked[7]]
    results = page.locator("[data-scan-results] > li")
    for n, value in enumerate(typed, 1):
        wedge(page, value)
        expect(results).to_have_count(n)  # each scan is answered before the next is typed
        expect(page.get_by_label("Scan or type a tracking ID")).to_be_focused()
        expect(page.get_by_label("Scan or type a tracking ID")).to_have_value("")

    expect(page.locator("[data-scan-accepted]")).to_have_text("8")
    expect(page.locator("[data-scan-refused]")).to_have_text("4")
    # Newest first: the last scan is on top, and the live line repeats it.
    expect(results.first).to_contain_text(booked[7])
    expect(page.locator("[data-scan-last]")).to_have_text(f"Accepted {booked[7]}: Picked Up")
    refused = page.locator(".scan-result--refused")
    expect(refused).to_have_count(4)
    expect(refused.nth(0)).to_contain_text("Unknown ID")  # not-an-id
    expect(refused.nth(1)).to_contain_text("Unknown ID")  # 12345678
    expect(refused.nth(2)).to_contain_text("Unknown ID")  # FFFFFFFF
    expect(refused.nth(3)).to_contain_text("Already Picked Up at Kochi Hub.")  # the repeat of booked[0]
    assert page.locator("[data-scan-results]").get_attribute("aria-live") == "polite"
    audit(page, f"scan-mode-{width}")

    with app.app_context():
        statuses = dict(db.session.execute(select(Shipment.tracking_id, Shipment.status)).all())
        assert statuses == {tid: "Picked Up" for tid in booked}
        assert db.session.scalar(select(func.count()).select_from(TrackingEvent)
                                 .where(TrackingEvent.status == "Picked Up")) == 8
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 16
        # Scan mode audits each batch it posts, never each status change: the batches name the 8 it changed.
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.actor == "operator1")).all()
        assert [row for row in rows if row.action == "status_changed"] == []
        changed = [tid for row in rows if row.action == "scan_batch" for tid in row.details["changed"]]
        assert sorted(tid for tid in changed if tid in booked) == sorted(booked)  # each once
    # The settings stay: the next parcel needs no more than a scan.
    expect(page.get_by_label("Location")).to_have_value("Kochi Hub")


def test_without_javascript_the_page_is_a_plain_form(open_tab, make_user, create_shipment, app):
    make_user("operator1", PASSWORD, "operator")
    first, second, third = create_shipment(), create_shipment(), create_shipment()
    tab = open_tab(javascript=False)
    page = tab.page
    sign_in(page)
    scan_page(page)
    wedge(page, first)
    expect(page.locator("[data-scan-last]")).to_have_text(f"Accepted {first}: Picked Up")
    expect(page.get_by_label("Location")).to_have_value("Kochi Hub")
    page.locator("summary", has_text="Many at once").click()
    page.get_by_label("Many tracking IDs, one a line").fill(f"{second}\nFFFFFFFF\n{third}")
    page.get_by_role("button", name="Record").click()
    expect(page.locator("[data-scan-accepted]")).to_have_text("3")
    expect(page.locator("[data-scan-refused]")).to_have_text("1")
    expect(page.locator(".scan-result--refused")).to_contain_text("Unknown ID")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shipment)
                                 .where(Shipment.status == "Picked Up")) == 3


def test_a_scan_without_a_location_is_not_recorded_and_keeps_the_id(page, make_user, create_shipment, app):
    make_user("operator1", PASSWORD, "operator")
    tid = create_shipment()
    sign_in(page)
    page.goto("/admin/scan")
    page.get_by_label("Status to record").select_option("Picked Up")
    wedge(page, tid)
    expect(page.locator("[data-scan-last]")).to_have_text("Not recorded: Enter the location.")
    expect(page.get_by_label("Scan or type a tracking ID")).to_have_value(tid)
    expect(page.locator("[data-scan-results] > li")).to_have_count(0)
    page.get_by_label("Location").fill("Kochi Hub")
    page.get_by_label("Scan or type a tracking ID").press("Enter")
    expect(page.locator("[data-scan-last]")).to_have_text(f"Accepted {tid}: Picked Up")
    with app.app_context():
        assert db.session.scalar(select(Shipment.status)) == "Picked Up"
