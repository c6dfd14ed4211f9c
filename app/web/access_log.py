"""What the access log may show of a request's URL, decided by the route that matched and its parameters.

The raw request line cannot be trusted to look like the route it reaches: `GET /search%2F9876543211` is served
by `/search/<mobile>`, yet its text holds no `/search/`. So the app writes a log-safe URI into the WSGI environ
(`ENVIRON_KEY`) for every request it answers: the matched route built again with its mobile parameter masked,
and the query string with mobile numbers masked and free-text searches (names, emails, numbers) hidden. Every
value is also masked where it looks like contact data (app.observability.logs.mask_contacts, the one masking
function), since people type their mobile or email into any box (an email where a mobile is expected, a mobile in
the track-by-ID form). Gunicorn's logger (gunicorn.conf.py) logs that URI instead of the raw one.
"""
from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from flask import Flask, Response, request, url_for

from app.observability.logs import HIDDEN, mask_contacts, mask_digits

log = logging.getLogger(__name__)

ENVIRON_KEY = "waybill.log_uri"
MOBILE_VIEW_ARGS = frozenset({"mobile"})
MOBILE_QUERY_ARGS = frozenset({"mobile", "phone"})
HIDDEN_QUERY_ARGS = frozenset({"q"})  # the dashboard's search: a name, an email or a number


def _masked_value(name: str, value):
    if not isinstance(value, str):
        return value
    return mask_contacts(mask_digits(value) if name in MOBILE_VIEW_ARGS else value)


def _masked_path() -> str:
    """The request's path as its route would build it, the mobile masked; with no route (404, 405) nothing is
    known of the path, so whatever looks like contact data is masked."""
    rule, args = request.url_rule, request.view_args
    if request.endpoint == "static":  # url_for would name the fingerprinted file, whichever name was asked for
        return quote(mask_contacts(request.path), safe="/*+-()._~@")
    if rule is not None and args is not None and request.endpoint:
        return url_for(request.endpoint, **{name: _masked_value(name, value) for name, value in args.items()})
    return quote(mask_contacts(request.path), safe="/*+-()._~@")


def _masked_query() -> str:
    pairs = []
    for name, value in request.args.items(multi=True):
        if name in HIDDEN_QUERY_ARGS:
            value = HIDDEN
        elif name in MOBILE_QUERY_ARGS:
            value = mask_contacts(mask_digits(value))
        else:
            value = mask_contacts(value)
        pairs.append((mask_contacts(name), value))
    return urlencode(pairs, safe="*@")


def log_safe_uri() -> str:
    query = _masked_query()
    # Masked once more as a whole: url_for's escaping must not hide an email or a number from the masker.
    return mask_contacts(f"{_masked_path()}?{query}" if query else _masked_path())


def record_log_safe_uri(response: Response) -> Response:
    """after_request (it runs for error responses too): leave the log-safe URI where the access log finds it."""
    try:
        request.environ[ENVIRON_KEY] = log_safe_uri()
    except Exception:  # noqa: BLE001 - logging help must never break a response; the logger then masks by text
        log.warning("Could not build the log-safe URI for endpoint %s", request.endpoint)
    return response


def register_access_log(app: Flask) -> None:
    app.after_request(record_log_safe_uri)
