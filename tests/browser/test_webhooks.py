"""/admin/webhooks in headless Chromium, with JavaScript on and off: an admin subscribes a receiver, sees the
signing secret once, rotates it, disables and deletes the subscription; the page fits a phone and passes axe."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in

pytestmark = pytest.mark.browser

URL = "https://hooks.example.com/waybill/events"


@pytest.mark.parametrize("javascript", [True, False])
def test_admin_manages_a_webhook_in_the_browser(open_tab, make_user, javascript):
    page = open_tab(javascript=javascript).page
    make_user("chief", PASSWORD, "admin")
    sign_in(page, "chief")
    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()

    page.get_by_label("URL").fill("http://hooks.example.com/plain")
    page.get_by_role("button", name="Create webhook").click()
    expect(page.get_by_role("alert")).to_contain_text("only https:// URLs are allowed")

    page.get_by_label("URL").fill(URL)
    page.get_by_label("shipment.status_changed").uncheck()
    page.get_by_label("Description (optional)").fill("Warehouse system")
    page.get_by_role("button", name="Create webhook").click()
    secret = page.locator("#webhook-secret")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    first_secret = secret.inner_text()
    expect(page.locator("h2", has_text=URL)).to_be_visible()
    expect(page.locator(".meta-line").first).to_contain_text("shipment.created, shipment.delivered")
    if javascript:  # axe-core runs in the page (widths are checked on every load either way)
        audit(page, "admin-webhooks")

    page.get_by_role("button", name="Rotate secret").click()
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    assert secret.inner_text() != first_secret
    expect(page.get_by_text(re.compile("previous secret also signs until"))).to_be_visible()

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Disable webhook #\d+\?$"), level=1)).to_be_visible()
    page.get_by_role("button", name="Disable").click()  # "Are you sure …?" asked on its own page: yes
    expect(page.locator(".flash--success")).to_contain_text("disabled")
    expect(page.locator("#webhook-secret")).to_have_count(0)  # shown once, never again
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text(re.compile(r"Are you sure you want to delete webhook #\d+\?"))).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No webhook subscriptions yet.")).to_be_visible()
