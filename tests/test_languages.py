"""English and Hindi: how a request's language is chosen, what a booking remembers, emails in the booking's
language, dates per locale, complete catalogues, no unmarked text in templates, and the estimated delivery in
the tracking JSON (cached and invalidated with it)."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.dates import format_datetime
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask_babel import force_locale
from jinja2 import Environment, nodes
from sqlalchemy import select

from app import create_app
from app.domain.status import ALL_STATUSES
from app.domain.timeutil import to_local
from app.extensions import db
from app.i18n.locales import current_language, format_estimate, format_local_time, speaking, status_label
from app.models import Shipment, TrackingEvent
from app.notifier.worker import OutboxWorker
from app.services.shipments.demo import seed_demo
from app.services.shipments.estimates import DEFAULT_REMAINING_HOURS, refresh_estimates
from app.services.shipments.status_changes import record_status_change
from app.services.shipments.tracking_cache import stop_tracking_cache
from tests.conftest import VALID_BOOKING
from tests.notifications.conftest import MailSink, SMTPServer, free_port

# Rendering, translations and logs: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "app" / "templates"
CATALOGUE = ROOT / "translations" / "hi" / "LC_MESSAGES" / "messages.po"
TEMPLATE_CATALOGUE = ROOT / "translations" / "messages.pot"
HTML = {"Accept": "text/html"}
# Messages that are only placeholders and punctuation: the same in every language.
PLACEHOLDERS_ONLY = ("Error %(code)s", "%(zone)s, %(service)s: %(part)s")
DEVANAGARI = re.compile("[\u0900-\u097f]")

# What customers and recipients see: every string in these must be marked, and translated into Hindi. The shared
# macros in _ui/ are on customer pages as well as staff ones.
CUSTOMER_TEMPLATES = ["base.html", "errors/error.html", "_ui/*.html", "tracking/*.html", "email/*.*",
                      "email/status/*.*", "email/sender/*.*", "sms/*.txt", "sms/sender/*.txt",
                      "notifications/choices.html"]
CUSTOMER_CODE = ["app/i18n/locales.py", "app/web/templating.py", "app/services/shipments/contacts.py",
                 "app/services/shipments/booking.py", "app/shipments/forms.py", "app/tracking/forms.py",
                 "app/tracking/routes.py", "app/services/outbox/messages.py", "app/services/outbox/preferences.py",
                 "app/services/shipments/proofs.py", "app/notifications/choices.py"]
# Staff pages need not be translated, but their text must be marked all the same.
STAFF_TEMPLATES = ["admin/*.html", "auth/*.html", "notifications/*.html"]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}


def template_paths(patterns: list[str]) -> list[Path]:
    return sorted({path for pattern in patterns for path in TEMPLATES.glob(pattern) if path.is_file()})


# --- the unmarked-string checker ---------------------------------------------------------------------------

# Attributes whose values people read (or hear, with a screen reader).
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "data-label"}
WORD = re.compile(r"[^\W\d_]{2,}")
# Text that is the same in every language: the product's name, and language names in their own language
# (marked translate="no" in the page, which the checker honours).
UNTRANSLATED = {"Waybill"}
HOLE = "\x00"  # where an expression's output goes


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0  # inside <script>, <style> or translate="no"
        self._stack: list[bool] = []

    def handle_starttag(self, tag, attrs):
        skip = tag in ("script", "style") or ("translate", "no") in attrs
        if tag not in ("br", "img", "input", "meta", "link", "hr", "wbr", "source"):
            self._stack.append(skip)
            self._skip += skip
        if self._skip or skip:
            return
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value:
                self._check(value)

    def handle_endtag(self, tag):
        if self._stack and tag not in ("br", "img", "input", "meta", "link", "hr", "wbr", "source"):
            self._skip -= self._stack.pop()

    def handle_data(self, data):
        if not self._skip:
            self._check(data)

    def _check(self, value: str) -> None:
        words = " ".join(value.replace(HOLE, " ").split())
        rest = words
        for name in UNTRANSLATED:
            rest = rest.replace(name, " ")
        if WORD.search(rest):
            self.found.append(words)


def _looks_like_prose(value: str) -> bool:
    """A string constant in an expression that reads as words for people: two or more words, the first
    capitalised ("Page not found"); not class lists, endpoints, paths, field names or status values."""
    parts = value.split()
    return (len(parts) >= 2 and parts[0][:1].isupper() and WORD.search(parts[0]) is not None
            and value not in ALL_STATUSES and not any(mark in value for mark in "_/#{}<>="))


def unmarked_strings(source: str) -> list[str]:
    """Text a template shows that no gettext call wraps: text between tags, readable attribute values, and
    prose string constants in expressions (macro arguments such as hint="…", {% set heading = "…" %})."""
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)  # parsed only, never rendered
    tree = env.parse(source)
    marked: set[int] = set()
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in ("_", "gettext", "ngettext"):
            marked.update(id(c) for arg in call.args for c in [arg, *arg.find_all(nodes.Const)])
    found = [const.value for const in tree.find_all(nodes.Const)
             if isinstance(const.value, str) and id(const) not in marked and _looks_like_prose(const.value)]
    # The page as the browser would get it, with a hole for each expression: then an HTML parser finds the
    # text nodes and attribute values, however the template interleaves them with tags and expressions.
    pieces: list[str] = []
    for output in tree.find_all(nodes.Output):
        for child in output.nodes:
            pieces.append(child.data if isinstance(child, nodes.TemplateData) else HOLE)
    collector = _TextCollector()
    collector.feed("".join(pieces))
    collector.close()
    return found + collector.found


@pytest.mark.parametrize("source, found", [
    ("<p>Hello there</p>", ["Hello there"]),
    ('<p>{{ _("Hello there") }}</p>', []),
    ('<a href="/x" title="Open the page">{{ _("Open") }}</a>', ["Open the page"]),
    ('<a href="/x"{% if y %} aria-current="page"{% endif %}>Track &amp; book</a>', ["Track & book"]),
    ('{{ ui.field(f, hint="Lets you find it later.", class_="input input--code") }}', ["Lets you find it later."]),
    ('{{ ui.field(f, hint=_("Lets you find it later.")) }}', []),
    ('{% set heading = "Page not found" if x else _("Gone") %}', ["Page not found"]),
    ('<span translate="no">Some brand</span><p>{{ x }} · {{ y }}</p><style>p { color: red }</style>', []),
    ("<script>var a = 'hello world';</script><span>Waybill</span>", []),
    ('{% if status == "Out for Delivery" %}{{ _("Soon") }}{% endif %}', []),
])
def test_the_checker_finds_unmarked_text(source, found):
    assert unmarked_strings(source) == found


@pytest.mark.parametrize("path", template_paths(CUSTOMER_TEMPLATES + STAFF_TEMPLATES),
                         ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_no_unmarked_text(path):
    assert unmarked_strings(path.read_text()) == []


# --- the catalogues ----------------------------------------------------------------------------------------

def not_hidden(directory: str) -> bool:
    """As `--ignore-dirs ".*"`: without it, Babel also skips folders starting with "_", such as templates/_ui."""
    return not Path(directory).name.startswith(".")


def extracted() -> dict[object, set[str]]:
    """msgid → the files it comes from, as the README's `pybabel extract -F babel.cfg --ignore-dirs ".*" ...` finds
    them."""
    method_map = [("app/**.py", "python"), ("app/templates/**.html", "jinja2"), ("app/templates/**.txt", "jinja2")]
    found: dict[object, set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, keywords=KEYWORDS, options_map={}, directory_filter=not_hidden):
        if filename.startswith(("app/", "app\\")):
            found.setdefault(message if isinstance(message, str) else tuple(message), set()).add(filename)
    return found


def is_customer_facing(files: set[str]) -> bool:
    customer = {str(p.relative_to(ROOT)) for p in template_paths(CUSTOMER_TEMPLATES)} | set(CUSTOMER_CODE)
    return bool(files & customer)


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)[sd]", text))


def test_the_template_catalogue_is_up_to_date():
    with TEMPLATE_CATALOGUE.open("rb") as source:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(source) if m.id}
    assert template == set(extracted()), "run pybabel extract (README, Languages)"


def test_the_hindi_catalogue_is_complete_correct_and_not_fuzzy():
    with CATALOGUE.open("rb") as source:
        catalogue = read_po(source, locale="hi")
    entries = {m.id if isinstance(m.id, str) else tuple(m.id): m for m in catalogue if m.id}
    strings = extracted()
    assert set(strings) - set(entries) == set(), "missing from the catalogue: run pybabel update"
    assert [m.id for m in entries.values() if m.fuzzy] == []
    assert not catalogue.fuzzy
    for msgid, files in strings.items():
        message = entries[msgid]
        translations = [message.string] if isinstance(msgid, str) else list(message.string)
        if not is_customer_facing(files) and not any(translations):
            continue  # a staff-only string, not translated yet: English is shown
        ids = [msgid] if isinstance(msgid, str) else list(msgid)
        for translated in translations:
            assert translated, f"no Hindi for {msgid!r}"
            assert DEVANAGARI.search(translated) or msgid in PLACEHOLDERS_ONLY, f"not Hindi: {translated!r}"
            assert placeholders(translated) == placeholders(ids[0]), f"placeholders differ: {msgid!r}"


def test_status_names_are_translated_one_way_everywhere():
    with CATALOGUE.open("rb") as source:
        catalogue = read_po(source, locale="hi")
    by_id = {m.id: m.string for m in catalogue if isinstance(m.id, str)}
    names = [by_id[status] for status in ALL_STATUSES]
    assert len(set(names)) == len(names) and all(DEVANAGARI.search(name) for name in names)
    # The email headlines say the same status in sentence case: the same Hindi words.
    for headline, status in [("Picked up", "Picked Up"), ("Out for delivery", "Out for Delivery"),
                             ("On hold", "On Hold"), ("Delivery attempted", "Delivery Attempted"),
                             ("Returned to sender", "Returned to Sender")]:
        assert by_id[headline] == by_id[status]



def test_status_labels_come_from_the_catalogue_in_pages_and_in_messages(app_ctx):
    """status_label reads the catalogue with the status as msgid: the same Hindi as the catalogue's entry, in a
    page's forced locale and in a message's (speaking), and the English name itself in English."""
    with CATALOGUE.open("rb") as source:
        by_id = {m.id: m.string for m in read_po(source, locale="hi") if isinstance(m.id, str)}
    with force_locale("en"):
        assert [status_label(s) for s in ALL_STATUSES] == list(ALL_STATUSES)
        with speaking("hi"):
            assert current_language() == "hi"
            assert [status_label(s) for s in ALL_STATUSES] == [by_id[s] for s in ALL_STATUSES]
        assert current_language() == "en"
    with force_locale("hi"):
        assert [status_label(s) for s in ALL_STATUSES] == [by_id[s] for s in ALL_STATUSES]
        assert status_label("Lost in Space") == "Lost in Space"  # an unknown name is shown as it is


def test_template_underscore_translates_escapes_and_formats(app_ctx):
    """`_()` in a template: the translation is text (escaped in HTML, never markup), placeholders are filled
    with escaped values, and the string is always a format string (%% is a percent sign)."""
    html = app_ctx.jinja_env.from_string('{{ _("Hello %(name)s,", name=who) }}|{{ _("100%% & done") }}|'
                                         '{{ _("%(message)s", message=who) }}')
    text = app_ctx.jinja_env.overlay(autoescape=False).from_string('{{ _("Hello %(name)s,", name=who) }}')
    with speaking("en"):
        assert html.render(who="<b>Ravi</b>") == ("Hello &lt;b&gt;Ravi&lt;/b&gt;,|100% &amp; done|"
                                                  "&lt;b&gt;Ravi&lt;/b&gt;")
        assert text.render(who="<b>Ravi</b>") == "Hello <b>Ravi</b>,"
    with CATALOGUE.open("rb") as source:
        hindi = next(m.string for m in read_po(source, locale="hi") if m.id == "Hello %(name)s,")
    with speaking("hi"):
        assert text.render(who="Ravi") == hindi % {"name": "Ravi"}

# --- choosing the language ---------------------------------------------------------------------------------

def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


def lang_cookie(response) -> str | None:
    return next((c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang=")), None)


def test_lang_parameter_wins_and_is_remembered_in_a_cookie(client):
    first = client.get("/?lang=hi", headers=HTML)
    assert first.status_code == 200 and html_lang(first) == "hi"
    assert "शिपमेंट बुक करें" in first.get_data(as_text=True)
    cookie = lang_cookie(first)
    assert cookie.startswith("lang=hi;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    again = client.get("/", headers={**HTML, "Accept-Language": "en"})  # the cookie beats the browser
    assert html_lang(again) == "hi" and lang_cookie(again) is None
    back = client.get("/?lang=en", headers=HTML)
    assert html_lang(back) == "en" and "Book a shipment" in back.get_data(as_text=True)
    assert html_lang(client.get("/", headers=HTML)) == "en"


@pytest.mark.parametrize("accept, language", [
    ("hi-IN,hi;q=0.9,en;q=0.8", "hi"), ("en-GB,en;q=0.9", "en"), ("fr-FR,fr;q=0.9", "en"), (None, "en"),
    ("de;q=0.9,hi;q=0.5", "hi"),
])
def test_accept_language_decides_without_a_choice(client, accept, language):
    headers = {**HTML, **({"Accept-Language": accept} if accept else {})}
    assert html_lang(client.get("/", headers=headers)) == language


def test_an_unknown_language_is_ignored(client):
    response = client.get("/?lang=fr", headers={**HTML, "Accept-Language": "hi"})
    assert response.status_code == 200 and html_lang(response) == "hi" and lang_cookie(response) is None
    response = client.get("/?lang=%3Cscript%3E", headers=HTML)
    assert response.status_code == 200 and "<script>" not in response.get_data(as_text=True)


def test_the_switcher_links_to_this_page_in_each_language(client, create_shipment):
    tracking_id = create_shipment()
    page = client.get(f"/track/{tracking_id}?booked=1", headers=HTML).get_data(as_text=True)
    switcher = re.search(r'<nav class="language-switch".*?</nav>', page, re.S).group(0)
    assert 'href="?booked=1&amp;lang=hi" lang="hi" hreflang="hi">हिन्दी</a>' in switcher
    assert 'href="?booked=1&amp;lang=en" lang="en" hreflang="en" aria-current="true">English</a>' in switcher
    # A number in the path is not written into the page again (the links are query-only).
    search = client.get("/search/9876543210?lang=hi", headers=HTML).get_data(as_text=True)
    assert "9876543210" not in search and 'href="?lang=en"' in search


def test_pages_in_hindi_have_their_own_etag(client, create_shipment):
    tracking_id = create_shipment()
    english = client.get(f"/track/{tracking_id}", headers=HTML)
    hindi = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML)
    assert english.headers["ETag"] != hindi.headers["ETag"]
    assert "Accept-Language" in hindi.headers["Vary"]
    # The cookie now says Hindi: the English ETag is not "still fresh" for it.
    assert client.get(f"/track/{tracking_id}", headers={**HTML, "If-None-Match": english.headers["ETag"]}
                      ).status_code == 200


def test_hindi_tracking_page_shows_status_stages_and_estimate(client, create_shipment):
    tracking_id = create_shipment()
    page = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert html_lang_text(page) == "hi"
    for words in ("बुक हुआ", "वर्तमान स्थिति", "ट्रैकिंग इतिहास", "अनुमानित डिलीवरी", "डिलीवरी के लिए निकला", "तक"):
        assert words in page
    fragment = client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).get_data(as_text=True)
    assert "अनुमानित डिलीवरी" in fragment  # the page's own refresh speaks the remembered language


def html_lang_text(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def test_form_errors_are_in_the_page_language(client):
    page = client.get("/?lang=hi", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/create", headers=HTML, data={"csrf_token": token, **VALID_BOOKING,
                                                          "receiver_name": "", "mobile": "12"})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "पाने वाले का नाम दर्ज करें।" in body and "यह फ़ोन नंबर नहीं है।" in body or "मान्य" in body
    assert "एक समस्या है" in body


def test_json_errors_stay_english_for_api_clients(client):
    assert client.get("/track/ABCDEF12").get_json() == {"error": "No shipment has the tracking ID 'ABCDEF12'."}
    hindi = client.get("/track/ABCDEF12", headers={"Accept-Language": "hi"}).get_json()["error"]
    assert hindi == "ट्रैकिंग आईडी 'ABCDEF12' वाला कोई शिपमेंट नहीं है।"


# --- what a booking remembers --------------------------------------------------------------------------------

def languages(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Shipment.language).order_by(Shipment.id)))


def test_a_booking_remembers_the_language_it_was_made_in(app, client):
    page = client.get("/?lang=hi", headers=HTML).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    booked = client.post("/create", headers=HTML, data={"csrf_token": token, **VALID_BOOKING})
    assert booked.status_code == 302
    other = app.test_client()
    assert other.post("/create", json=VALID_BOOKING, headers={"Accept-Language": "hi-IN"}).status_code == 201
    assert other.post("/create", json=VALID_BOOKING).status_code == 201
    assert other.post("/create?lang=en", json=VALID_BOOKING, headers={"Accept-Language": "hi"}).status_code == 201
    assert languages(app) == ["hi", "hi", "en", "en"]


# --- emails in the booking's language ------------------------------------------------------------------------

@pytest.fixture
def mail_app(app, make_config):
    sink = MailSink()
    server = SMTPServer("plain", free_port(), sink).start()
    application = create_app(make_config(**server.settings(MAIL_DEFAULT_SENDER="Waybill <dispatch@waybill.test>")))
    yield application, sink
    server.stop()
    with application.app_context():
        db.engine.dispose()


def test_a_hindi_booking_gets_its_emails_in_hindi_from_the_worker(mail_app, make_user):
    application, sink = mail_app
    client = application.test_client()
    hindi = client.post("/create?lang=hi", json=VALID_BOOKING).get_json()["tracking_id"]
    english = application.test_client().post("/create", json=VALID_BOOKING).get_json()["tracking_id"]
    with application.app_context():
        record_status_change(hindi, "Picked Up", "Mumbai Hub", None, actor="operator1")
        db.session.commit()

    report = OutboxWorker(application).drain()  # the worker's own path: claim, render, send

    assert report.sent == 3
    messages = {m["Subject"]: m for m in sink.received()}
    assert set(messages) == {f"शिपमेंट {hindi}: बुक हुआ", f"शिपमेंट {hindi}: पिकअप हुआ",
                             f"Shipment {english}: Booked"}
    picked_up = messages[f"शिपमेंट {hindi}: पिकअप हुआ"]
    text = picked_up.get_body(("plain",)).get_content()
    page = picked_up.get_body(("html",)).get_content()
    with application.app_context():
        occurred = db.session.scalar(select(TrackingEvent.occurred_at).join(Shipment)
                                     .where(Shipment.tracking_id == hindi).order_by(TrackingEvent.id.desc()))
    local = to_local(occurred, "Asia/Kolkata")
    hindi_time = format_datetime(local, "dd MMM y, HH:mm", locale="hi") + " IST"
    for body in (text, page):
        assert "नमस्ते Vikram Nair," in body
        assert f"हमने आपका शिपमेंट {hindi} Asha Rao से पिकअप कर लिया है।" in body
        assert "अनुमानित डिलीवरी" in body and "तक" in body
        assert hindi_time in body
        assert "Recent updates" not in body and "हाल के अपडेट" in body
    assert '<html lang="hi">' in page
    english_text = messages[f"Shipment {english}: Booked"].get_body(("plain",)).get_content()
    assert "Hello Vikram Nair," in english_text and "Estimated delivery:" in english_text


# --- dates, times and numbers per locale -------------------------------------------------------------------

def test_dates_and_estimates_are_formatted_per_locale(app_ctx):
    expected, latest = datetime(2026, 11, 26, 10, 0, tzinfo=UTC), datetime(2026, 11, 26, 12, 10, tzinfo=UTC)
    next_day = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
    with force_locale("en"):
        assert format_local_time(expected, "Asia/Kolkata") == "26 Nov 2026, 15:30 IST"
        assert format_estimate(expected, latest, "Asia/Kolkata") == "Thu 26 Nov, by 6 PM"  # 17:40 → by 6 pm
        assert format_estimate(expected, next_day, "Asia/Kolkata") == "Thu 26 Nov, by Fri 27 Nov, 9 AM"
    with force_locale("hi"):
        assert format_local_time(expected, "Asia/Kolkata") == "26 नव॰ 2026, 15:30 IST"
        assert format_estimate(expected, latest, "Asia/Kolkata") == "गुरु 26 नव॰, 6 pm तक"
    assert format_local_time(expected, "UTC") == "26 Nov 2026, 10:00 UTC"


def test_a_day_is_written_as_times_are_in_the_locale_or_the_documents_own_language(app_ctx):
    from app.i18n.locales import format_local_date

    late_evening = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)  # already the 27th in India
    with force_locale("en"):
        assert format_local_date(late_evening, "Asia/Kolkata") == "27 Nov 2026"
        assert format_local_date(late_evening, "Asia/Kolkata", language="hi") == "27 नव॰ 2026"
        assert format_local_time(late_evening, "Asia/Kolkata").startswith(format_local_date(late_evening,
                                                                                            "Asia/Kolkata"))
    with force_locale("hi"):
        assert format_local_date(late_evening, "Asia/Kolkata") == "27 नव॰ 2026"
        assert format_local_date(late_evening, "UTC") == "26 नव॰ 2026"
        assert format_local_date(late_evening, "Asia/Kolkata", language="en") == "27 Nov 2026"
    assert format_local_date(None, "Asia/Kolkata") == ""


def test_search_page_counts_and_dates_in_hindi(client, create_shipment):
    create_shipment()
    create_shipment()
    page = client.get("/search/9876543210?lang=hi", headers=HTML).get_data(as_text=True)
    assert "2 शिपमेंट, सबसे नए पहले।" in page and "आख़िरी अपडेट" in page and "Kochi के लिए" in page
    month = format_datetime(datetime.now(UTC), "MMM", locale="hi")
    assert month in page


# --- the estimated delivery in the tracking JSON -------------------------------------------------------------

def iso(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.dialect  # the estimates' SQL and the PostgreSQL tracking cache
def test_tracking_json_carries_the_estimated_delivery(client, create_shipment, app):
    tracking_id = create_shipment()
    body = client.get(f"/track/{tracking_id}").get_json()
    estimate = body["estimated_delivery"]
    assert set(estimate) == {"earliest", "expected", "latest", "basis"}
    assert estimate["basis"] == "default"  # no delivery history yet
    booked = iso(body["events"][-1]["occurred_at"])
    p05, p50, p90 = DEFAULT_REMAINING_HOURS["Booked"]
    assert iso(estimate["earliest"]) - booked == timedelta(hours=p05)
    assert iso(estimate["expected"]) - booked == timedelta(hours=p50)
    assert iso(estimate["latest"]) - booked == timedelta(hours=p90)

    with app.app_context():
        for status in ("Picked Up", "In Transit", "Out for Delivery"):
            record_status_change(tracking_id, status, "Kochi Depot", None, actor="operator1")
        db.session.commit()
    body = client.get(f"/track/{tracking_id}").get_json()
    out = iso(body["events"][-1]["occurred_at"])
    assert iso(body["estimated_delivery"]["latest"]) - out == timedelta(
        hours=DEFAULT_REMAINING_HOURS["Out for Delivery"][2])
    with app.app_context():
        record_status_change(tracking_id, "Delivered", "Kochi", None, actor="operator1")
        db.session.commit()
    assert client.get(f"/track/{tracking_id}").get_json()["estimated_delivery"] is None


@pytest.fixture
def cached_app(app, make_config):
    """An app whose tracking cache is on (PostgreSQL only: on SQLite it stays off and every read is fresh)."""
    application = create_app(make_config(TRACK_CACHE_ENABLED=True))
    listener = application.extensions.get("waybill_tracking_listener")
    if listener is not None:
        assert listener.connected.wait(10), "listener did not connect"
    yield application
    stop_tracking_cache(application)
    with application.app_context():
        db.engine.dispose()


@pytest.mark.dialect  # the estimates' SQL and the PostgreSQL tracking cache
def test_the_estimate_is_cached_with_the_document_and_invalidated_by_a_refresh(cached_app, create_shipment):
    tracking_id = create_shipment(destination="Hyderabad")
    client = cached_app.test_client()
    cache = cached_app.extensions["waybill_tracking_cache"]
    before = client.get(f"/track/{tracking_id}")
    assert before.get_json()["estimated_delivery"]["basis"] == "default"
    if cache.enabled:
        assert cache.get(tracking_id) is not None  # the estimate is part of the cached document
    with cached_app.app_context():
        seed_demo(600, 5, seed=7)
        assert refresh_estimates(window_days=90, min_samples=20) > 0
        db.session.commit()
    assert cache.get(tracking_id) is None  # the rebuild dropped every cached document
    after = client.get(f"/track/{tracking_id}", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert after.get_json()["estimated_delivery"]["basis"] in ("area", "network")
    # The page shows the same estimate as the JSON.
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    latest = after.get_json()["estimated_delivery"]["latest"]
    assert f'<time datetime="{latest}">' in page
