"""/admin/rates in headless Chromium, with JavaScript on and off: an admin mistypes a price, sees the error on its
field, saves a new version and finds the old one in the history; an operator reads the card without a form. The
page fits a phone and passes axe."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False])
def test_admin_saves_a_new_rate_card_version(open_tab, make_user, javascript):
    page = open_tab(javascript=javascript).page
    make_user("chief", PASSWORD, "admin")
    sign_in(page, "chief")
    page.goto("/admin/rates")
    expect(page.get_by_role("heading", name="Rate card", level=1)).to_be_visible()
    expect(page.locator(".lead")).to_contain_text(re.compile(r"Version 1[,:]"))
    if javascript:
        audit(page, "admin-rates")

    price = page.get_by_label("National, Express: First slab price")
    expect(price).to_have_value("120.00")
    price.fill("-130")
    page.get_by_role("button", name="Save as version 2").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("An amount in rupees: 0 or more")
    expect(price).to_have_attribute("aria-invalid", "true")
    expect(price).to_have_value("-130")
    if javascript:
        audit(page, "admin-rates-error")

    price.fill("130.00")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.locator(".flash--success")).to_contain_text("Saved the rate card as version 2.")
    expect(page.get_by_label("National, Express: First slab price")).to_have_value("130.00")
    page.get_by_role("link", name="1", exact=True).click()
    expect(page.get_by_role("heading", name="Rate card version 1", level=1)).to_be_visible()
    expect(page.get_by_text(re.compile("Version 2 is in force"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Save"))).to_have_count(0)


def test_an_operator_reads_the_card_without_a_form(open_tab, make_user):
    page = open_tab().page
    make_user("desk1", PASSWORD, "operator")
    sign_in(page, "desk1")
    page.goto("/admin/rates")
    row = page.get_by_role("row", name=re.compile("^Local Standard"))
    expect(row).to_contain_text("40.00")
    expect(page.locator("form[action='/admin/rates']")).to_have_count(0)
