"""A booking corrected from its staff page in headless Chromium, with JavaScript on and off: the operator opens
"Edit", types a weight beyond the limit, sees the error on its field, corrects it and sees the new charges; once
the shipment is out for delivery only the parcel's fields are offered. The page fits a phone and passes axe."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.api_support import book
from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False])
def test_an_operator_corrects_the_weight_and_the_price_follows(open_tab, make_user, app, javascript):
    tracking_id = book(app)
    page = open_tab(javascript=javascript).page
    make_user("desk1", PASSWORD, "operator")
    sign_in(page, "desk1")
    page.goto(f"/admin/shipments/{tracking_id}")
    total = page.locator("#shipment-charges .charges__total td")
    expect(total).to_have_text("₹88.50")
    page.get_by_text("Edit", exact=True).click()
    weight = page.get_by_label("Weight (kg)")
    expect(page.get_by_label("Receiver's name")).to_have_value("Vikram Nair")
    if javascript:
        audit(page, "admin-shipment-edit")

    weight.fill("250")
    page.get_by_role("button", name="Save corrections").click()
    expect(page.get_by_role("alert")).to_contain_text("Must be from 0.01 to 100.")
    expect(weight).to_have_attribute("aria-invalid", "true")
    expect(weight).to_have_value("250")
    if javascript:
        audit(page, "admin-shipment-edit-error")

    weight.fill("4.2")
    page.get_by_role("button", name="Save corrections").click()
    expect(page.locator(".flash--success")).to_contain_text("Booking corrected: Weight (kg).")
    expect(total).not_to_have_text("₹88.50")
    expect(page.get_by_text(re.compile(r"Weight kg: — → 4\.2"))).to_be_visible()


def test_out_for_delivery_only_the_parcel_is_offered(open_tab, make_user, app):
    tracking_id = book(app, "Picked Up", "In Transit", "Out for Delivery")
    page = open_tab().page
    make_user("desk1", PASSWORD, "operator")
    sign_in(page, "desk1")
    page.goto(f"/admin/shipments/{tracking_id}")
    page.get_by_text("Edit", exact=True).click()
    expect(page.get_by_label("Pieces")).to_be_visible()
    expect(page.get_by_label("Receiver's mobile")).to_have_count(0)
    expect(page.get_by_text("fixed once a shipment is Out for Delivery")).to_be_visible()
