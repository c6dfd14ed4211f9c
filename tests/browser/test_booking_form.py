"""The public booking form in headless Chromium: as the visitor types, whether we deliver to the destination's
PIN code and what the booking will cost, at phone width (360 px) and on a desktop; the booked charges on the
confirmation; a PIN code off the served list; the same in Hindi; and booking with every detail and JavaScript off.
The PIN codes are India Post's real directory: 682031 is Ernakulam, Kerala."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import Shipment
from app.services.shipments.serviceability import ServiceabilityRow, replace_all
from tests.browser.conftest import WIDTHS, audit

pytestmark = pytest.mark.browser

KOCHI_SERVED = "We deliver to Ernakulam, Kerala · cash on delivery available · express available"
# From the office (ORIGIN_PINCODE 560001) to Kochi: national. Nothing but the PIN code: the first 0.5 kg, prepaid.
FIRST_SLAB = "Estimated charges: ₹88.50 (freight ₹75.00, tax ₹13.50)"
# 2 kg in a 40 × 30 × 20 cm box is charged as 5.0 kg; ₹1,500 to collect.
WORKED_EXAMPLE = "Estimated charges: ₹613.60 (freight ₹480.00, COD fee ₹40.00, tax ₹93.60)"


def fill_the_five(page, destination: str = "14 Marine Drive, Kochi") -> None:
    page.get_by_label("Sender's name").fill("Asha Rao")
    page.get_by_label("Receiver's name").fill("Vikram Nair")
    page.get_by_label("Receiver's mobile").fill("98765 43210")
    page.get_by_label("Destination address").fill(destination)


def fill_the_parcel(page, cod_amount: str = "1500") -> None:
    page.get_by_label("Weight (kg)").fill("2")
    page.get_by_label("Length (cm)").fill("40")
    page.get_by_label("Width (cm)").fill("30")
    page.get_by_label("Height (cm)").fill("20")
    page.get_by_label("Contents").fill("Books")
    page.get_by_label("Payment").select_option("cod")
    page.get_by_label("Amount to collect (₹)").fill(cod_amount)


def fill_the_sender(page) -> None:
    page.locator("#sender-section > summary").click()
    page.get_by_label("Sender's mobile").fill("91234 56789")
    page.get_by_label("Sender's address", exact=True).fill("1 MG Road, Bengaluru")
    page.get_by_label("Sender's PIN code").fill("560001")
    page.get_by_label("Collect from the sender's address").check()


def booked(app) -> Shipment:
    with app.app_context():
        [shipment] = db.session.scalars(select(Shipment)).all()
        db.session.expunge(shipment)
        return shipment


def serve_only(app, *rows: tuple[str, str, str]) -> None:
    with app.app_context():
        replace_all([ServiceabilityRow(line, dict(zip(("pincode", "cod", "express"), row, strict=True)))
                     for line, row in enumerate(rows, start=2)], actor="chief")
        db.session.commit()


@pytest.mark.parametrize("width", ["phone", "desktop"])
def test_the_form_answers_for_the_pincode_and_prices_the_booking_as_you_type(open_tab, app, width):
    page = open_tab().page
    page.set_viewport_size(WIDTHS[width])
    page.goto("/")
    answer = page.locator("#destination_pincode-answer")
    estimate = page.locator("[data-booking-estimate]")
    expect(answer).to_have_attribute("aria-live", "polite")
    expect(estimate).to_have_attribute("aria-live", "polite")

    fill_the_five(page)
    expect(page.get_by_label("Weight (kg)")).to_be_hidden()  # the optional groups start closed
    page.get_by_label("Destination PIN code").press_sequentially("682031")
    expect(answer).to_have_text(KOCHI_SERVED)
    expect(estimate).to_have_text(FIRST_SLAB)

    page.locator("#parcel-section > summary").click()
    expect(page.get_by_label("Amount to collect (₹)")).to_be_hidden()  # shown for cash on delivery only
    fill_the_parcel(page)
    expect(page.get_by_label("Amount to collect (₹)")).to_be_visible()
    expect(estimate).to_have_text(WORKED_EXAMPLE)
    if width == "phone":
        audit(page, "booking-form-estimate")

    # Back to prepaid: the amount is hidden (and not sent), the COD fee goes; COD again brings both back.
    page.get_by_label("Payment").select_option("prepaid")
    expect(page.get_by_label("Amount to collect (₹)")).to_be_hidden()
    expect(estimate).to_have_text("Estimated charges: ₹566.40 (freight ₹480.00, tax ₹86.40)")
    page.get_by_label("Payment").select_option("cod")
    expect(estimate).to_have_text(WORKED_EXAMPLE)

    page.get_by_role("button", name="Book shipment").click()
    expect(page).to_have_url(re.compile(r"/track/[0-9A-F]{8}\?booked=1$"))
    tracking_id = page.url.split("/track/")[1][:8]
    expect(page.locator("#new-tracking-id")).to_have_text(tracking_id)
    expect(page.locator("#booked-charges")).to_contain_text("₹613.60")
    expect(page.locator("#booked-charges")).to_contain_text("₹40.00")
    shipment = booked(app)
    assert (shipment.tracking_id, shipment.destination_pincode, shipment.payment, shipment.cod_amount,
            shipment.weight_kg, shipment.contents) == (tracking_id, "682031", "cod", Decimal("1500.00"),
                                                       Decimal("2.000"), "Books")
    assert shipment.email is None  # the receiver's email is optional
    if width == "phone":
        audit(page, "booking-form-booked")


def test_a_pincode_at_the_end_of_the_address_is_answered_too(open_tab):
    page = open_tab().page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/")
    page.get_by_label("Destination address").press_sequentially("14 Marine Drive, Kochi 682 031")
    expect(page.locator("#destination_pincode-answer")).to_have_text(KOCHI_SERVED)
    expect(page.locator("[data-booking-estimate]")).to_have_text(FIRST_SLAB)
    # The sender's PIN code prices from there: Ernakulam to Ernakulam is local.
    page.locator("#sender-section > summary").click()
    page.get_by_label("Sender's PIN code").fill("682016")
    expect(page.locator("[data-booking-estimate]")).to_have_text(
        "Estimated charges: ₹47.20 (freight ₹40.00, tax ₹7.20)")


def test_a_pincode_off_the_served_list_is_said_and_what_it_lacks_is_disabled(open_tab, app):
    serve_only(app, ("680001", "no", "no"), ("110001", "yes", "no"))
    page = open_tab().page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/")
    answer = page.locator("#destination_pincode-answer")
    estimate = page.locator("[data-booking-estimate]")
    pincode = page.get_by_label("Destination PIN code")
    cod = page.locator("#payment option[value=cod]")
    express = page.locator("#service option[value=express]")

    pincode.fill("682031")
    expect(answer).to_have_text("We do not deliver to PIN code 682031 yet.")
    expect(estimate).to_have_text("")  # no price for a booking we would refuse
    audit(page, "booking-form-not-served")

    pincode.fill("680001")
    expect(answer).to_have_text("We deliver to Thrissur, Kerala · no cash on delivery · no express")
    expect(cod).to_be_disabled()
    expect(express).to_be_disabled()
    expect(estimate).to_have_text(FIRST_SLAB)
    pincode.fill("110001")
    expect(answer).to_have_text("We deliver to New Delhi, Delhi · cash on delivery available · no express")
    expect(cod).to_be_enabled()
    expect(express).to_be_disabled()

    pincode.fill("999999")
    expect(answer).to_have_text("999999 is not a PIN code in India Post's directory.")
    pincode.fill("082031")
    expect(answer).to_have_text("A PIN code is 6 digits, the first not 0 (such as 682016).")
    expect(cod).to_be_enabled()  # no answer about a PIN code: nothing is ruled out
    expect(express).to_be_enabled()
    pincode.fill("6820")
    expect(answer).to_have_text("")  # still typing: nothing to say yet


def test_the_answers_are_in_the_pages_language(open_tab):
    page = open_tab().page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/?lang=hi")
    page.get_by_label("गंतव्य पिन कोड").fill("682031")
    expect(page.locator("#destination_pincode-answer")).to_have_text(
        "हम Ernakulam, Kerala में डिलीवरी करते हैं · कैश ऑन डिलीवरी उपलब्ध · एक्सप्रेस उपलब्ध")
    expect(page.locator("[data-booking-estimate]")).to_have_text("अनुमानित शुल्क: ₹88.50 (भाड़ा ₹75.00, कर ₹13.50)")
    audit(page, "booking-form-hindi")


def test_a_network_failure_says_nothing(open_tab):
    tab = open_tab()
    page = tab.page
    page.route(re.compile(r".*/(serviceability|quote)\b.*"), lambda route: route.abort())
    page.goto("/")
    page.get_by_label("Destination PIN code").fill("682031")
    page.wait_for_timeout(1000)  # the debounce, then the failed requests
    expect(page.locator("#destination_pincode-answer")).to_have_text("")
    expect(page.locator("[data-booking-estimate]")).to_have_text("")
    # Failed fetches are logged by Chromium as errors on the page's console, not as JavaScript errors.
    assert tab.script_errors == []


def test_an_error_in_a_group_comes_back_with_the_group_open(open_tab):
    page = open_tab().page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/")
    fill_the_five(page)
    page.locator("#parcel-section > summary").click()
    page.get_by_label("Weight (kg)").fill("250")
    page.get_by_label("Length (cm)").fill("40")
    page.get_by_role("button", name="Book shipment").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("link")).to_have_count(3)  # the weight, and the two sides not given
    expect(page.locator("#parcel-section")).to_have_attribute("open", "")
    expect(page.locator("#sender-section")).not_to_have_attribute("open", "")
    expect(page.locator("#weight_kg-error")).to_contain_text("Must be from 0.01 to 100.")
    expect(page.get_by_label("Amount to collect (₹)")).to_be_hidden()
    summary.get_by_role("link").first.click()
    expect(page.get_by_label("Weight (kg)")).to_be_in_viewport()
    audit(page, "booking-form-errors")


def test_without_javascript_the_form_books_with_every_detail(open_tab, app):
    page = open_tab(javascript=False).page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto("/")
    fill_the_five(page)
    page.get_by_label("Destination PIN code").fill("682031")
    page.locator("#parcel-section > summary").click()
    expect(page.get_by_label("Amount to collect (₹)")).to_be_visible()  # always there without JavaScript
    fill_the_parcel(page, cod_amount="fifteen hundred")
    fill_the_sender(page)
    page.get_by_role("button", name="Book shipment").click()

    # The page comes back with the error on its field, the group holding it open, and what was typed kept.
    expect(page.locator(".error-summary")).to_contain_text("Enter the amount to collect in rupees as a number.")
    expect(page.locator("#parcel-section")).to_have_attribute("open", "")
    expect(page.locator("#cod_amount-error")).to_be_visible()
    expect(page.get_by_label("Amount to collect (₹)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Weight (kg)")).to_have_value("2")
    expect(page.get_by_label("Collect from the sender's address")).to_be_checked()

    page.get_by_label("Amount to collect (₹)").fill("1,500")
    page.get_by_role("button", name="Book shipment").click()
    expect(page).to_have_url(re.compile(r"/track/[0-9A-F]{8}\?booked=1$"))
    expect(page.locator("#booked-charges")).to_contain_text("₹613.60")
    shipment = booked(app)
    assert (shipment.pickup, shipment.sender_pincode, shipment.sender_address, shipment.sender_mobile,
            shipment.cod_amount, shipment.length_cm) == (True, "560001", "1 MG Road, Bengaluru", "+919123456789",
                                                         Decimal("1500.00"), Decimal("40.0"))
