"""Asking "are you sure?" before an action that cannot be taken back with one click (revoking a key, disabling or
deleting a webhook, deactivating an account, ending its sessions).

Without JavaScript: GET on the action's URL shows the question with a CSRF-protected form that POSTs again with
`confirm=yes`; a browser's POST without it (an old one-click form) gets the same page instead of the action. JSON
clients (a JSON body, or an Accept that prefers JSON) have made up their mind: they act at once.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from flask import render_template, request

from app.web.forms import answers_json

CONFIRM_FIELD = "confirm"
CONFIRMED = "yes"


@dataclass(frozen=True)
class Question:
    """What the confirmation page asks, and what its form sends back besides the confirmation."""
    heading: str
    question: str
    button: str
    back_url: str
    fields: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # where the form POSTs: this URL unless given


def needs_confirmation() -> bool:
    """True for a GET, and for a browser's POST that has not said yes yet."""
    if request.method == "GET":
        return True
    if answers_json():
        return False
    return request.form.get(CONFIRM_FIELD) != CONFIRMED


def confirmation_page(question: Question):
    """The question, with a form that POSTs (to this same URL unless the question says) with `confirm=yes`."""
    return render_template("admin/confirm.html", ask=question, action=question.action or request.path,
                           confirm_field=CONFIRM_FIELD,
                           confirmed=CONFIRMED), 200, {"Cache-Control": "no-store"}


def confirm_first(ask: Callable[..., Question]) -> Callable[[Callable], Callable]:
    """Wrap a POST view (routed for GET too): it runs only once confirmed; `ask` gets the view's URL arguments
    and says what to ask."""
    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def confirmed_view(**kwargs):
            if needs_confirmation():
                return confirmation_page(ask(**kwargs))
            return view(**kwargs)
        return confirmed_view
    return wrap
