"""/admin/zones in headless Chromium: an admin pastes a zone's GeoJSON, sees it drawn with its hub, corrects a
refused outline, renames the zone and deletes it after the question; the pages fit a phone and pass axe."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in
from tests.test_zones import WEST

pytestmark = pytest.mark.browser


def test_admin_draws_renames_and_deletes_a_zone(page, make_user):
    make_user("chief", PASSWORD, "admin")
    sign_in(page, "chief")
    page.get_by_role("link", name="Zones").click()
    expect(page.get_by_role("heading", name="Delivery zones", level=1)).to_be_visible()
    expect(page.get_by_text("No zones yet.")).to_be_visible()

    page.get_by_label("Name").fill("Fort Kochi")
    page.get_by_label("Outline (GeoJSON Polygon or MultiPolygon)").fill('{"type": "Point", "coordinates": [76.2, 9.9]}')
    page.get_by_role("button", name="Add zone").click()
    expect(page.get_by_role("alert")).to_contain_text("A Point has no area")
    page.get_by_label("Outline (GeoJSON Polygon or MultiPolygon)").fill(json.dumps(WEST, indent=2))
    page.get_by_label("Hub latitude").fill("9.96")
    page.get_by_label("Hub longitude").fill("76.24")
    page.get_by_role("button", name="Add zone").click()
    expect(page.locator(".flash--success")).to_contain_text("Zone Fort Kochi added")
    expect(page.get_by_role("img", name="Map of the delivery zones")).to_be_visible()
    expect(page.locator(".zone-map__hub")).to_have_count(2)  # the overview's and the zone's own
    audit(page, "admin-zones")

    page.get_by_role("link", name="Fort Kochi").click()
    expect(page.get_by_role("img", name="Outline of Fort Kochi")).to_be_visible()
    page.get_by_label("Name").fill("Mattancherry")
    page.get_by_role("button", name="Save zone").click()
    expect(page.get_by_role("heading", name="Zone Mattancherry", level=1)).to_be_visible()
    audit(page, "admin-zone")

    page.get_by_role("button", name="Delete zone").click()
    expect(page.get_by_text(re.compile("Are you sure you want to delete zone Mattancherry?"))).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    expect(page.locator(".flash--success")).to_contain_text("Zone Mattancherry deleted.")
    expect(page.get_by_text("No zones yet.")).to_be_visible()
