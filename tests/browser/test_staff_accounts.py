"""Staff accounts in headless Chromium: an admin creates an operator and a viewer, each signs in with its role."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-1"


def sign_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def create_account(page, username: str, role: str, password: str) -> None:
    page.get_by_label("Username").fill(username)
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Initial password").fill(password)
    page.get_by_role("button", name="Create account").click()


def test_admin_creates_an_operator_and_a_viewer_in_the_browser(page, make_user):
    make_user("chief", PASSWORD, "admin")
    sign_in(page, "chief")
    page.get_by_role("link", name="Staff").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    expect(page.get_by_role("heading", name="Staff accounts", level=1)).to_be_visible()

    create_account(page, "ravi", "viewer", "password")  # too short and too common: refused inline
    expect(page.get_by_role("alert")).to_contain_text("at least 12 characters")
    expect(page.get_by_label("Username")).to_have_value("ravi")

    create_account(page, "ravi", "operator", "ravi-desk-password-1")
    expect(page.locator(".flash--success")).to_have_text("Created operator ravi.")
    create_account(page, "mina", "viewer", "mina-support-password-1")
    expect(page.locator(".flash--success")).to_have_text("Created viewer mina.")
    rows = page.locator("table.data-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="mina")).to_contain_text("viewer")
    expect(rows.filter(has_text="ravi")).to_contain_text("operator")
    audit(page, "admin-users")

    page.get_by_role("link", name="mina").click()
    expect(page.get_by_role("heading", name=re.compile("Staff account"))).to_contain_text("mina")
    audit(page, "admin-user")
    sign_out(page)

    sign_in(page, "ravi", "ravi-desk-password-1")
    expect(page).to_have_url(re.compile(r"/admin$"))
    expect(page.locator(".role-tag").first).to_have_text("operator")
    expect(page.get_by_role("link", name="Staff")).to_have_count(0)
    page.goto("/admin/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("You don't have access to this")
    sign_out(page)

    sign_in(page, "mina", "mina-support-password-1")
    expect(page.locator(".role-tag").first).to_have_text("viewer")
    page.goto("/admin/notifications")
    expect(page.get_by_role("heading", level=1)).to_have_text("You don't have access to this")


def test_account_page_changes_the_password_and_lists_sessions(page, make_user):
    make_user("operator1", PASSWORD, "operator")
    sign_in(page, "operator1")
    page.get_by_role("link", name=re.compile("operator1")).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.locator("table.data-table")).to_contain_text("(this session)")
    audit(page, "account")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill("a-new-long-password-2")
    page.get_by_label("New password again").fill("a-new-long-password-2")
    page.get_by_role("button", name="Change password").click()
    expect(page.locator(".flash--success")).to_contain_text("Your password is changed.")
    sign_out(page)
    sign_in(page, "operator1", "a-new-long-password-2")
    expect(page).to_have_url(re.compile(r"/admin$"))
