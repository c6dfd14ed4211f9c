"""Printing labels for a selection on the dashboard, in headless Chromium."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_portals import PASSWORD, sign_in
from tests.test_labels_export import _decode_codes, _require_tools

pytestmark = pytest.mark.browser


def test_print_labels_for_a_selection_from_the_dashboard(page, make_user, create_shipment, tmp_path):
    _require_tools()
    make_user("operator1", PASSWORD, "operator")
    ids = [create_shipment(receiver_name=f"Receiver {n}") for n in range(3)]
    sign_in(page)
    expect(page.locator("table.data-table tbody tr")).to_have_count(3)
    audit(page, "dashboard-with-selection")
    page.get_by_label(f"Select {ids[0]} for labels").check()
    page.get_by_label(f"Select {ids[2]} for labels").check()
    page.get_by_label("Label size").select_option("a6")
    printed = []

    def keep_pdf(route):  # the browser's PDF viewer takes the body: keep a copy on its way through
        response = route.fetch()
        printed.append((response.status, response.headers["content-type"], response.body()))
        route.fulfill(response=response)

    page.context.route("**/admin/labels.pdf", keep_pdf)
    with page.context.expect_page() as tab:
        page.get_by_role("button", name="Print labels for the selected").click()
    tab.value.wait_for_load_state()
    status, content_type, pdf = printed[0]
    assert (status, content_type) == (200, "application/pdf")
    assert sorted(_decode_codes(pdf, tmp_path)["CODE-128"]) == sorted([ids[0], ids[2]])
