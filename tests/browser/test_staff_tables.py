"""The staff tables (staff accounts, outbox, audit trail, an import's rows to correct) in headless Chromium: at
360 px each row is a card whose cells stay on the screen, at 1366 px short values such as a role keep their words
whole. The test sets the widths itself, in a context of its own (a Tab measures every page it loads at its own
two widths, which would race with this test's resizing)."""
from __future__ import annotations

import pytest

from tests.browser.test_portals import PASSWORD, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1366, "height": 768}
BAD_IMPORT = ("sender_name,receiver_name,mobile,email,destination\n"
              "Asha Rao,Vikram Nair,12,not-an-address-at-all.example.com,Kochi\n"
              "Asha Rao,,+91 98765 43210,vikram@example.com,\n")


def cells_off_screen(page) -> list[str]:
    """The body cells of the page's tables that stick out of the viewport or clip their own content."""
    return page.evaluate("""() => [...document.querySelectorAll(
            'table.data-table tbody th, table.data-table tbody td')]
        .filter(cell => {
            const box = cell.getBoundingClientRect();
            return box.left < -1 || box.right > window.innerWidth + 1 || cell.scrollWidth > cell.clientWidth + 1;
        })
        .map(cell => (cell.dataset.label || '?') + ': ' + cell.textContent.trim().slice(0, 40))""")


def lines_of(page, selector: str) -> list[int]:
    """For each element matching `selector`, how many lines its text takes."""
    return page.evaluate("""(selector) => [...document.querySelectorAll(selector)].map(element => {
        const range = document.createRange();
        range.selectNodeContents(element);
        return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size;
    })""", selector)


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def test_staff_tables_stack_on_phones_and_keep_words_whole_on_laptops(page, app, make_user, create_shipment,
                                                                        auth):
    for n in range(3):
        create_shipment(email=f"recipient.with.a.rather.long.address.{n}@deliveries.example.com")
    make_user("operations.supervisor.kochi", PASSWORD, "viewer")
    auth.login("ravi", role="operator")
    make_user("admin", PASSWORD, "admin")
    sign_in(page, "admin")
    page.goto("/admin/imports")
    page.set_input_files("input[name=file]", files=[{"name": "bookings.csv", "mimeType": "text/csv",
                                                       "buffer": BAD_IMPORT.encode()}])
    page.get_by_role("button", name="Check and import").click()
    page.wait_for_selector("table.data-table")

    assert cells_off_screen(page) == [], "/admin/imports (rows to correct)"
    for path in ("/admin/users", "/admin/notifications", "/admin/audit"):
        page.goto(path)
        page.wait_for_selector("table.data-table")
        assert cells_off_screen(page) == [], path

    page.set_viewport_size(LAPTOP)
    page.goto("/admin/users")
    roles = lines_of(page, "table.data-table td .role-tag")
    assert len(roles) == 3 and set(roles) == {1}
    page.goto("/admin/audit")
    actors = lines_of(page, "table.data-table td[data-label=Who]")
    assert actors and set(actors) == {1}
    assert set(lines_of(page, ".site-nav .role-tag")) == {1}
