"""The recipient's answer to a failed delivery: GET /r/<token> shows the parcel's latest non-delivery report and
the answers it takes, POST records one (the page's form, with CSRF; or a JSON body, which needs no CSRF token: a
browser cannot send one cross-site without a preflight this app never grants). The signed token in the URL is the
credential (per parcel, valid until the parcel's journey is over: then 410). Public: the tracking ID, status,
attempt, reason, deadline and which answer was given, never the address, a mobile or the instructions (rule 9).
"""
from __future__ import annotations

from contextlib import nullcontext

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import force_locale, format_date, gettext

from app.auth.guard import json_without_csrf
from app.domain.links import NDR_PATH
from app.domain.timeutil import utcnow
from app.errors import DomainError
from app.extensions import db, limiter
from app.i18n.babel import LANG_COOKIE, LANG_PARAM
from app.i18n.locales import LANGUAGES, language_or_default
from app.services.ndr.answers import answer_report
from app.services.ndr.queries import AnswerPage, answer_page, reason_label
from app.services.ndr.reports import RECIPIENT, shipment_for_token
from app.tracking import bp
from app.tracking.forms import ANSWER_LABELS, NdrAnswerForm
from app.web.forms import answers_json, refused_on_page

DAY_FORMAT = "EEEE d MMMM"  # "Wednesday 2 December", in the page's language
# The recipient's signed-link pages share one limit (the choices page's, RATELIMIT_CHOICES).
answer_limit = limiter.limit(lambda: current_app.config["RATELIMIT_CHOICES"],
                             error_message=lambda: gettext("Too many requests from your address; try again shortly."))


@bp.route(f"{NDR_PATH}<token>", methods=["GET", "POST"])  # the links in messages are built from it too
@answer_limit
@json_without_csrf
def ndr_answer(token: str):
    shipment = shipment_for_token(token)
    with _booking_language(shipment.language):
        return _answer(token, shipment)


def _booking_language(language: str):
    """The page speaks the booking's language unless the visitor chose one (?lang=, or its cookie)."""
    chosen = request.args.get(LANG_PARAM) or request.cookies.get(LANG_COOKIE)
    return nullcontext() if chosen in LANGUAGES else force_locale(language_or_default(language))


def _answer(token: str, shipment):
    if request.method == "GET":
        page = answer_page(shipment, utcnow())
        if answers_json():
            return jsonify(page.to_dict())
        return _page(token, page, NdrAnswerForm(formdata=None), saved=request.args.get("saved") == "1")
    form = NdrAnswerForm.from_request()
    try:
        answer_report(shipment, form.answer(), actor=RECIPIENT, answered_by=RECIPIENT, via="link", now=utcnow())
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _page(token, answer_page(shipment, utcnow()), form, saved=False, problem=problem), error.status_code
    db.session.commit()
    if answers_json():
        return jsonify(answer_page(shipment, utcnow()).to_dict())
    return redirect(url_for(".ndr_answer", token=token, saved=1), code=303)


def _page(token: str, page: AnswerPage, form: NdrAnswerForm, saved: bool, problem: str | None = None) -> str:
    form.date.choices = [("", gettext("As soon as possible"))] + [
        (day.isoformat(), format_date(day, DAY_FORMAT)) for day in page.days]
    form.action.choices = [(action, ANSWER_LABELS[action]) for action in page.actions]
    if form.action.data is None and page.report is not None and page.report.action in page.actions:
        form.action.data = page.report.action
    return render_template("tracking/ndr.html", token=token, page=page, form=form, saved=saved, problem=problem,
                           reason=reason_label(page.report.reason) if page.report else None,
                           answer_day=format_date(page.report.answer_date, DAY_FORMAT)
                           if page.report and page.report.answer_date else None,
                           answer_labels=ANSWER_LABELS)
