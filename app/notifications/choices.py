"""The recipient's choices, public: GET /n/<token> shows them, POST saves them (the page's form, with CSRF), and a
POST of `List-Unsubscribe=One-Click` (RFC 8058, what mail providers send for the List-Unsubscribe header) stops
the channel at once with no cookie and no CSRF token: the signed token in the URL is the credential.

On the `notifications` blueprint: these pages are about the outbox's messages and share its service, while the
`tracking` blueprint serves the cached public tracking documents. The page shows the tracking ID, the channel and
the choice only (DESIGN rule 9: no names, contacts or address for a link's holder).
"""
from __future__ import annotations

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext

from app.auth.guard import one_click_without_csrf
from app.domain.links import CHOICES_PATH
from app.errors import DomainError, wants_html
from app.extensions import db, limiter
from app.notifications import bp
from app.notifications.forms import ChoicesForm
from app.services.outbox.preferences import (
    CHANNEL_LABELS,
    CHOICE_LABELS,
    RecipientChoice,
    choice_for_token,
    choose_by_token,
    unsubscribe_by_token,
)
from app.web.forms import refused_on_page

choices_limit = limiter.limit(lambda: current_app.config["RATELIMIT_CHOICES"],
                              error_message=lambda: gettext("Too many requests from your address; try again shortly."))


@bp.route(f"{CHOICES_PATH}<token>", methods=["GET", "POST"])  # the links in messages are built from it too
@choices_limit
@one_click_without_csrf
def choices(token: str):
    if request.method == "GET":
        return _answer(choice_for_token(token), saved=request.args.get("saved") == "1")
    if request.form.get("List-Unsubscribe") == "One-Click":
        unsubscribe_by_token(token)
        db.session.commit()
        return _answer(choice_for_token(token), saved=True)
    form = ChoicesForm.from_request()
    try:
        form.validate_or_raise()
        choose_by_token(token, form.choice.data)
    except DomainError as error:
        if not getattr(error, "fields", None):
            raise
        refused_on_page(error, form)
        return _page(choice_for_token(token), form, saved=False), error.status_code
    db.session.commit()
    if not wants_html():
        return jsonify(_to_dict(choice_for_token(token)))
    return redirect(url_for(".choices", token=token, saved=1), code=303)


def _answer(choice: RecipientChoice, saved: bool):
    if not wants_html():
        return jsonify(_to_dict(choice))
    return _page(choice, ChoicesForm(formdata=None, choice=choice.choice), saved)


def _page(choice: RecipientChoice, form: ChoicesForm, saved: bool) -> str:
    return render_template("notifications/choices.html", choice=choice, form=form, saved=saved,
                           channel_label=CHANNEL_LABELS[choice.channel], choice_labels=CHOICE_LABELS)


def _to_dict(choice: RecipientChoice) -> dict:
    return {"tracking_id": choice.tracking_id, "channel": choice.channel, "choice": choice.choice or "default"}
