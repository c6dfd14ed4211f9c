"""The shared page macros in app/templates/_ui/, rendered through the app's Jinja environment, and a guard that their
markup is not copied back into the pages."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask_wtf import FlaskForm
from wtforms import StringField

from app.domain.pagination import Pagination

# Rendering only: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

TEMPLATES = Path(__file__).resolve().parents[1] / "app" / "templates"


@pytest.fixture
def ui(app):
    """ui("forms") → the macros of _ui/forms.html, callable inside a request (they build URLs and translate)."""
    with app.test_request_context("/"):
        yield lambda name: app.jinja_env.get_template(f"_ui/{name}.html").module


class ParcelForm(FlaskForm):
    class Meta:
        csrf = False

    sender = StringField("Sender")
    receiver = StringField("Receiver")


def parcel_form(**errors: list[str]) -> ParcelForm:
    form = ParcelForm(formdata=None)
    for name, messages in errors.items():
        form[name].errors = messages
    return form


# --- forms: a field's error, the labelled field, the error summary ---------------------------------------------------

def test_a_field_error_is_escaped_and_says_error_to_screen_readers(ui):
    html = str(ui("forms").field_error("<b>Too short</b>", "mobile-error"))
    assert html == ('<p class="field__error" id="mobile-error"><span class="visually-hidden">Error: </span>'
                    "&lt;b&gt;Too short&lt;/b&gt;</p>")
    assert 'id=' not in str(ui("forms").field_error("Choose one."))


def test_a_wtforms_field_shows_its_first_error_under_the_id_its_input_points_to(ui):
    forms = ui("forms")
    assert str(forms.field_errors(parcel_form().receiver)).strip() == ""
    form = parcel_form(receiver=["Enter a name.", "Second"])
    assert str(forms.field_errors(form.receiver)) == str(forms.field_error("Enter a name.", "receiver-error"))
    field = str(forms.field(form.receiver, hint="As on the ID card"))
    assert 'aria-describedby="receiver-hint receiver-error"' in field and 'aria-invalid="true"' in field
    assert 'id="receiver-error"' in field and "Second" not in field and "field--error" in field


def test_no_error_summary_without_errors(ui):
    form = parcel_form()
    assert str(ui("forms").error_summary(form, [form.sender, form.receiver])).strip() == ""
    assert str(ui("forms").error_summary(problem=None)).strip() == ""


def test_the_error_summary_links_each_field_error_in_page_order_escaped(ui):
    form = parcel_form(receiver=["<i>Enter a name.</i>"], sender=["Enter your name."])
    html = str(ui("forms").error_summary(form, [form.sender, form.receiver]))
    assert 'class="error-summary" role="alert" tabindex="-1" data-focus-on-load' in html
    assert '<h3 class="error-summary__title">There is a problem</h3>' in html
    assert re.findall(r'<li><a href="#(\w+)">([^<]*)</a></li>', html) == [
        ("sender", "Enter your name."), ("receiver", "&lt;i&gt;Enter a name.&lt;/i&gt;")]


def test_the_error_summary_says_a_refusal_and_errors_without_a_field(ui):
    html = str(ui("forms").error_summary(problem="Sign-in <locked>", messages=["url: only https://"],
                                         title="Nothing was changed", level=2))
    assert '<h2 class="error-summary__title">Nothing was changed</h2>' in html
    assert "<p>Sign-in &lt;locked&gt;</p>" in html and "<li>url: only https://</li>" in html
    assert "<a " not in html and 'role="alert"' in html


# --- pagination -------------------------------------------------------------------------------------------------------

@dataclass
class Listing(Pagination):
    page: int
    total: int
    per_page: int = 10


def page_links(html: str) -> list[tuple[str, str]]:
    """(href, the link's visible text or page number) for every link, in order."""
    return [(href, re.sub(r"<[^>]+>", "", text).replace("page", "").replace("Page", "").strip())
            for href, text in re.findall(r'<a href="([^"]+)"[^>]*>(.*?)</a>', html)]


def test_one_page_needs_no_page_links(ui):
    assert str(ui("pagination").pagination(Listing(page=1, total=10), "admin.dashboard")).strip() == ""


def test_page_links_carry_the_page_number_and_keep_the_filters(ui):
    html = str(ui("pagination").pagination(Listing(page=5, total=100), "admin.dashboard",
                                           {"q": "Kochi & co", "status": None, "sort": "oldest"}))
    assert '<nav class="pagination" aria-label="Pages">' in html
    assert page_links(html) == [
        ("/admin?page=4&amp;q=Kochi+%26+co&amp;sort=oldest", "Previous"),
        ("/admin?page=1&amp;q=Kochi+%26+co&amp;sort=oldest", "1"),
        ("/admin?page=3&amp;q=Kochi+%26+co&amp;sort=oldest", "3"),
        ("/admin?page=4&amp;q=Kochi+%26+co&amp;sort=oldest", "4"),
        ("/admin?page=5&amp;q=Kochi+%26+co&amp;sort=oldest", "5"),
        ("/admin?page=6&amp;q=Kochi+%26+co&amp;sort=oldest", "6"),
        ("/admin?page=7&amp;q=Kochi+%26+co&amp;sort=oldest", "7"),
        ("/admin?page=10&amp;q=Kochi+%26+co&amp;sort=oldest", "10"),
        ("/admin?page=6&amp;q=Kochi+%26+co&amp;sort=oldest", "Next"),
    ]
    assert "status=" not in html  # a filter that is not set stays out of the URL
    assert html.count('aria-current="page"') == 1 and re.search(r'page=5[^"]*" aria-current="page">', html)
    assert html.count('<span class="pagination__gap" aria-hidden="true">…</span>') == 2
    assert 'rel="prev"' in html and 'rel="next"' in html
    assert '<span class="visually-hidden">Page </span>5</a>' in html  # "Page 5" to a screen reader


def test_the_first_and_last_pages_say_previous_and_next_are_not_there(ui):
    first = str(ui("pagination").pagination(Listing(page=1, total=20), "notifications.outbox", {"state": "dead"}))
    assert '<span class="pagination__disabled" aria-hidden="true">Previous</span>' in first
    assert 'rel="prev"' not in first
    assert page_links(first)[-1] == ("/admin/notifications?page=2&amp;state=dead", "Next")
    last = str(ui("pagination").pagination(Listing(page=2, total=20), "notifications.outbox", {"state": "dead"}))
    assert '<span class="pagination__disabled" aria-hidden="true">Next</span>' in last and 'rel="next"' not in last


# --- a secret shown once ----------------------------------------------------------------------------------------------

def test_a_secret_is_shown_once_escaped_under_its_id(ui):
    html = str(ui("secret").secret_once("wb_live_<x>&y", "Your new key", "Copy it now: it is shown only this once.",
                                        id="api-key-secret"))
    assert html.count("wb_live_") == 1
    assert '<code class="secret-once__value" id="api-key-secret">wb_live_&lt;x&gt;&amp;y</code>' in html
    assert 'class="panel secret-once" aria-labelledby="api-key-secret-h" role="status"' in html
    assert '<h2 id="api-key-secret-h" class="secret-once__title">Your new key</h2>' in html


def test_both_pages_show_a_new_secret_in_the_one_panel_and_say_it_will_not_be_shown_again(client, auth):
    auth.login("chief", role="admin")
    headers = {"Accept": "text/html", **auth.headers()}
    key = client.post("/admin/api-keys", headers=headers, data={"name": "Scanner", "username": "chief"})
    hook = client.post("/admin/webhooks", headers=headers,
                       data={"url": "https://receiver.example/hook", "events": ["shipment.created"]})
    for response, value_id, prefix in [(key, "api-key-secret", "wb_live_"), (hook, "webhook-secret", "whsec_")]:
        page = response.get_data(as_text=True)
        panel = page[page.index('<section class="panel secret-once"'):]
        panel = panel[:panel.index("</section>")]
        secret = re.search(rf'<code class="secret-once__value" id="{value_id}">({prefix}[\w-]+)</code>', panel)[1]
        assert response.status_code == 201 and page.count(secret) == 1
        assert "it is shown only this once" in panel
    assert "secret-once" not in client.get("/admin/webhooks", headers=headers).get_data(as_text=True)
    assert "secret-once" not in client.get("/admin/api-keys", headers=headers).get_data(as_text=True)


# --- a status badge and the timeline --------------------------------------------------------------------------------

def test_a_badge_is_coloured_by_status_and_says_it_in_words(ui):
    assert str(ui("badge").badge("Out for Delivery")) == (
        '<span class="badge badge-out-for-delivery">Out for Delivery</span>')


def event(status: str, hour: int, **extra) -> SimpleNamespace:
    fields = {"status": status, "location": "Kochi Hub", "occurred_at": datetime(2026, 3, 2, hour, tzinfo=UTC),
              "actor": "operator1", "hold_released": False, "attempt_reason_label": None, "customer_message": None,
              "note": None}
    return SimpleNamespace(**{**fields, **extra})


EVENTS = [event("Booked", 8), event("On Hold", 9, note="Address <unclear>"),
          event("Picked Up", 10, hold_released=True, customer_message="Back <b>on</b> its way")]


def test_the_timeline_lists_events_newest_first_and_marks_the_latest(ui):
    html = str(ui("timeline").timeline(EVENTS))
    items = re.findall(r'<li class="(timeline__item[^"]*)">.*?<span class="badge ([^"]+)">', html, re.S)
    assert items == [("timeline__item timeline__item--latest", "badge-hold-released"),
                     ("timeline__item", "badge-on-hold"), ("timeline__item", "badge-booked")]
    assert html.count("timeline__latest") == 1 and 'aria-label="Tracking history, newest first"' in html
    assert re.findall(r'<time datetime="([^"]+)"', html) == [
        "2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-02T08:00:00Z"]


def test_only_staff_see_who_recorded_an_event_and_its_internal_note(ui):
    public = str(ui("timeline").timeline(EVENTS))
    staff = str(ui("timeline").timeline(EVENTS, staff=True))
    assert "operator1" not in public and "unclear" not in public and "To the customer:" not in public
    assert '<p class="timeline__note">Back &lt;b&gt;on&lt;/b&gt; its way</p>' in public
    assert "by operator1" in staff and "Internal note:</span> Address &lt;unclear&gt;" in staff
    assert "To the customer:</span> Back &lt;b&gt;on&lt;/b&gt; its way" in staff


# --- no copies in the pages ------------------------------------------------------------------------------------------

def page_templates() -> list[Path]:
    """Every page template that should call the macros rather than copy them (emails have their own markup)."""
    return sorted(path for path in TEMPLATES.rglob("*.html")
                  if path.relative_to(TEMPLATES).parts[0] not in ("_ui", "email"))


@pytest.mark.parametrize("markup, home", [
    ('class="field__error"', "_ui/forms.html: field_error"),
    ('class="error-summary"', "_ui/forms.html: error_summary"),
    ('class="timeline"', "_ui/timeline.html: timeline"),
    ("timeline__item", "_ui/timeline.html: timeline"),
    ('class="pagination"', "_ui/pagination.html: pagination"),
    ("pagination__", "_ui/pagination.html: pagination"),
    ("secret-once", "_ui/secret.html: secret_once"),
    ("-secret__value", "_ui/secret.html: secret_once"),
])
def test_shared_markup_lives_only_in_its_macro(markup, home):
    copies = [str(path.relative_to(TEMPLATES)) for path in page_templates() if markup in path.read_text()]
    assert copies == [], f"{markup} is {home}'s; call the macro instead"
