"""The API keys page and the API's documentation page in headless Chromium: an admin creates a key (shown once)
and revokes it; /api/docs reads at phone width with no CSP violation."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in

pytestmark = pytest.mark.browser


def test_an_admin_creates_and_revokes_a_key_in_the_browser(page, make_user, live_server):
    make_user("chief", PASSWORD, "admin")
    sign_in(page, "chief")
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(re.compile(r"/admin/api-keys$"))
    expect(page.get_by_role("heading", name="API keys", level=1)).to_be_visible()

    page.get_by_role("button", name="Create key").click()  # no name: refused inline
    expect(page.get_by_role("alert")).to_contain_text("Give the key a name.")
    page.get_by_label("Name").fill("Warehouse scanner")
    page.get_by_label("Staff account").fill("chief")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#api-key-secret").inner_text()
    assert re.fullmatch(r"wb_live_[A-Za-z0-9_-]{43}", secret)
    audit(page, "admin-api-keys")

    page.goto("/admin/api-keys")
    expect(page.locator("#api-key-secret")).to_have_count(0)  # shown once only
    row = page.locator("table.data-table tbody tr").filter(has_text="Warehouse scanner")
    expect(row).to_contain_text(secret[:14])
    row.get_by_role("button", name=re.compile("Revoke")).click()
    # One click only asks (a page of its own, no JavaScript needed); Cancel goes back, nothing revoked.
    expect(page.get_by_role("heading", name="Revoke the key Warehouse scanner?", level=1)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Are you sure you want to revoke the key wb_live_"))).to_be_visible()
    audit(page, "admin-confirm")
    page.get_by_role("link", name="Cancel").click()
    expect(row).not_to_contain_text("revoked")
    row.get_by_role("button", name=re.compile("Revoke")).click()
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash--success")).to_contain_text("Revoked the key")
    expect(row).to_contain_text("revoked")


def test_the_api_docs_page_reads_at_phone_width(page):
    page.goto("/api/docs")
    expect(page.get_by_role("heading", name=re.compile("Waybill API"), level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="POST /api/v1/shipments", exact=True)).to_be_visible()
    page.get_by_role("link", name="OpenAPI 3.1 document").click()
    expect(page).to_have_url(re.compile(r"/api/v1/openapi.json$"))
    page.goto("/api/docs")
    audit(page, "api-docs")
