"""The language of each request: `?lang=hi|en` (then remembered in a cookie), else the cookie, else the browser's
Accept-Language, else English. Flask-Babel is set up here; what is said in each language is in app/i18n/locales.py."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask, Response, current_app, has_request_context, request, url_for
from flask_babel import Babel
from jinja2 import pass_eval_context
from markupsafe import escape

from app.i18n.locales import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    current_language,
    format_estimate,
    location_label,
    status_label,
    translations,
)

LANG_PARAM = "lang"
LANG_COOKIE = "lang"
LANG_COOKIE_DAYS = 365

babel = Babel()


def select_locale() -> str:
    """The request's language (outside requests: the default; the worker forces the shipment's own)."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    chosen = request.args.get(LANG_PARAM)
    if chosen in LANGUAGES:
        return chosen
    remembered = request.cookies.get(LANG_COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(tuple(LANGUAGES)) or DEFAULT_LANGUAGE


def remember_language(response: Response) -> Response:
    """after_request: a language chosen with ?lang= is kept in a cookie, so the next pages (and the tracking
    page's own refresh) speak it too. An unknown value changes nothing."""
    chosen = request.args.get(LANG_PARAM)
    if chosen in LANGUAGES and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(LANG_COOKIE, chosen, max_age=LANG_COOKIE_DAYS * 24 * 3600, httponly=True,
                            samesite="Lax", secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))
    return response


@dataclass(frozen=True)
class LanguageLink:
    code: str
    name: str
    url: str
    current: bool


def language_links() -> list[LanguageLink]:
    """The switcher's links: this page again in each language. They are query-only relative links ("?lang=hi"),
    so a path holding a mobile number (/search/<mobile>) is not written into the page again. A page answering a
    POST, such as a search, links to the start page instead: it cannot be fetched again by a link."""
    active = current_language()
    links = []
    for code, name in LANGUAGES.items():
        if request.method == "GET":
            args = [(k, v) for k, v in request.args.items(multi=True) if k != LANG_PARAM]
            url = f"?{urlencode([*args, (LANG_PARAM, code)])}"
        else:
            url = url_for("tracking.landing", **{LANG_PARAM: code})
        links.append(LanguageLink(code, name, url, code == active))
    return links


def estimate_text(estimate) -> str:
    """An estimated delivery (anything with `expected` and `latest`), said in the active language."""
    return format_estimate(estimate.expected, estimate.latest, current_app.config["DISPLAY_TIMEZONE"])


def _escaped(eval_ctx, text: str) -> str:
    return escape(text) if eval_ctx.autoescape else text


# Translations are text, not HTML: in HTML templates they are escaped like any other value ("Track & book",
# "can't"), so a catalogue can never inject markup. Placeholders are escaped too (Jinja's newstyle gettext).
@pass_eval_context
def _template_gettext(eval_ctx, message: str) -> str:
    return _escaped(eval_ctx, translations().ugettext(message))


@pass_eval_context
def _template_underscore(eval_ctx, message: str, /, **variables) -> str:
    """`_()` in templates: what Jinja's newstyle gettext does with _template_gettext (the translation escaped in
    HTML, then always formatted with the escaped variables), in one call instead of three. Emails and pages call
    `_()` a few dozen times each. Positional-only, so any placeholder name (even `message`) can be passed."""
    return _escaped(eval_ctx, translations().ugettext(message)) % variables


@pass_eval_context
def _template_ngettext(eval_ctx, singular: str, plural: str, number: int) -> str:
    return _escaped(eval_ctx, translations().ungettext(singular, plural, number))


def init_i18n(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.install_gettext_callables(gettext=_template_gettext, ngettext=_template_ngettext, newstyle=True)
    app.jinja_env.globals["_"] = _template_underscore
    app.after_request(remember_language)
    app.jinja_env.filters["status_label"] = status_label
    app.jinja_env.filters["location_label"] = location_label
    app.jinja_env.filters["estimate_text"] = estimate_text
    app.jinja_env.globals.update(current_language=current_language, language_links=language_links)
