"""The Content-Security-Policy as Chromium enforces it: injected inline script and style are refused, the
refusal is reported (which is what makes every other browser test fail on a violation), and the app's own
script still runs."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_injected_inline_script_and_style_are_refused_and_reported(open_tab, create_shipment):
    tab = open_tab()
    page = tab.page
    page.goto(f"/track/{create_shipment()}")
    page.wait_for_selector("[data-live-url]")
    assert tab.policy_violations == []
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.injected = true";
        document.body.appendChild(script);
        document.body.insertAdjacentHTML("beforeend", '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
    }""")
    assert page.evaluate("() => window.injected === undefined")
    assert page.evaluate("() => getComputedStyle(document.getElementById('styled')).color") != "rgb(255, 0, 0)"
    page.wait_for_function("() => true")  # let the console events arrive
    assert any("script-src" in v for v in tab.policy_violations), tab.policy_violations
    assert any("style-src" in v for v in tab.policy_violations), tab.policy_violations
    tab.policy_violations.clear()  # seen and expected: the tab's own check at the end stays meaningful


def test_the_apps_own_script_runs_under_the_policy(open_tab, create_shipment):
    tab = open_tab()
    page = tab.page
    page.goto(f"/track/{create_shipment()}")
    # waybill.js reveals the "updates itself" note only when it runs.
    note = page.locator("[data-live-note]")
    note.wait_for(state="visible")
    assert tab.policy_violations == [] and tab.script_errors == []
