"""/admin/reports in headless Chromium: a viewer picks the days and sees each daily series drawn as SVG beside
its table, with no Content-Security-Policy violation (listened for in the page, and in the console by the Tab),
at desktop and phone widths, passing axe."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import audit
from tests.browser.test_staff_accounts import PASSWORD, sign_in
from tests.test_reports import Events, write_fixed_set

pytestmark = pytest.mark.browser

# Recorded from the first script that runs in every document: the page's own policy cannot refuse it (it comes
# through the DevTools protocol), and it hears every refusal the policy makes.
LISTEN_FOR_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (event) => window.__violations.push(event.violatedDirective + " " + event.blockedURI));
"""
SERIES = {"parcels": 2, "exceptions": 2, "cod": 1}  # bar charts: bars per day


def charts_drawn(page) -> dict[str, dict[str, int]]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll("svg[data-chart]")].map(svg =>
        [svg.dataset.chart, {bars: svg.querySelectorAll(".chart__bar").length,
                             points: svg.querySelectorAll(".chart__point").length,
                             width: Math.round(svg.getBoundingClientRect().width),
                             room: Math.round(Math.min(svg.parentElement.clientWidth,
                                                       parseFloat(getComputedStyle(svg).maxWidth)))}]))""")


def test_the_report_draws_its_charts_under_the_policy(open_tab, app, make_user):
    write_fixed_set(Events(app, make_user))
    make_user("support1", PASSWORD, "viewer")
    tab = open_tab()
    page = tab.page
    page.add_init_script(LISTEN_FOR_VIOLATIONS)
    sign_in(page, "support1")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Operations report", level=1)).to_be_visible()
    page.get_by_label("From", exact=True).fill("2026-03-10")
    page.get_by_label("To", exact=True).fill("2026-03-11")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", name="2026-03-10 to 2026-03-11")).to_be_visible()

    drawn = charts_drawn(page)
    assert {name: chart["bars"] for name, chart in drawn.items() if name in SERIES} == {
        name: 2 * per_day for name, per_day in SERIES.items()}
    assert drawn["rates"]["points"] == 2 * 2  # on time and first attempt, on both days
    # Each chart takes all the room its figure gives it (up to its maximum width), at whatever width the page is
    # being measured (the tab checks every page it loads at phone width too).
    assert all(abs(chart["width"] - chart["room"]) <= 1 and chart["width"] > 250 for chart in drawn.values()), drawn
    expect(page.get_by_role("img", name="Parcels booked and delivered each day")).to_be_visible()

    page.get_by_text("Table: On-time and first-attempt rates each day").click()
    rates = page.locator("#rates-table")
    expect(rates).to_be_visible()
    expect(rates.locator("tbody tr")).to_have_count(2)
    expect(rates.locator("tbody tr").nth(1)).to_contain_text("66.7%")
    expect(page.locator("#couriers-table tbody tr")).to_have_count(2)
    audit(page, "admin-reports")

    # A quarter of a year: one bar a day and series, still drawn under the policy.
    page.goto("/admin/reports?from=2026-01-01&to=2026-04-02")
    drawn = charts_drawn(page)
    assert {name: chart["bars"] for name, chart in drawn.items() if name in SERIES} == {
        name: 92 * per_day for name, per_day in SERIES.items()}
    assert page.evaluate("() => window.__violations") == []
    assert tab.policy_violations == [] and tab.script_errors == []
