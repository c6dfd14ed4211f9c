"""Log lines: plain text or one JSON object per line (LOG_FORMAT), each tagged with the request it belongs to,
and no full mobile number in any of them.

Used by `create_app` for the app's own loggers and by gunicorn.conf.py for Gunicorn's error and access logs, so
both read alike. Standard library and python-json-logger only (gunicorn.conf.py loads this file on its own,
without the app package): importing it opens nothing and starts nothing.
"""
from __future__ import annotations

import logging
import re
import sys
from urllib.parse import quote, unquote

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Request fields every line of a request carries (JSON: as keys; text: the request id only).
REQUEST_FIELDS = ("request_id", "method", "path")
# Set only by lines that end a request (Gunicorn's access line).
RESPONSE_FIELDS = ("status", "duration_ms")

# ---------------------------------------------------------------------------------------------------------------
# Masking: GET /search/<mobile> carries a mobile number in its path, and forms may put one in a query string.

# The path form also matches an escaped slash (/search%2F…), in any case: Gunicorn logs the URI as it was sent.
_SEARCH_PATH = re.compile(r"(/search(?:/|%2F))([^/?#\s\"]+)", re.IGNORECASE)
_PHONE_QUERY = re.compile(r"([?&](?:mobile|phone|q)=)([^&#\s\"]*)", re.IGNORECASE)
KEEP_DIGITS = 4


def mask_digits(value: str, keep: int = KEEP_DIGITS) -> str:
    """Every digit but the last `keep` replaced by '*' (separators and '+' kept, so the shape stays readable)."""
    total = sum(ch.isdigit() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def _mask_match(match: re.Match) -> str:
    # Decode first, so digits written as %3X are masked too, then quote again so nothing odd lands in the log.
    return match.group(1) + quote(mask_digits(unquote(match.group(2))), safe="+*-().")


def mask_mobiles(text: str) -> str:
    """`text` with the mobile number in any /search/<mobile> path or mobile/phone/q query value masked."""
    if "/search" in text.lower():
        text = _SEARCH_PATH.sub(_mask_match, text)
    if "=" in text:
        text = _PHONE_QUERY.sub(_mask_match, text)
    return text


# ---------------------------------------------------------------------------------------------------------------
# The request a line belongs to.

class RequestContextFilter(logging.Filter):
    """Adds request_id, method and path (masked) of the request being served to every record; None outside a
    request. A filter on handlers, so it tags records of every logger (the app's, libraries', Gunicorn's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Looked up, not imported: Gunicorn's master loads this file without the app (and serves no request).
        context = sys.modules.get("app.request_context")
        info = context.current_request() if context is not None else None
        if not hasattr(record, "request_id"):  # an access line brings its own
            record.request_id = info.request_id if info else None
            record.method = info.method if info else None
            record.path = mask_mobiles(info.path) if info else None
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with ` [request <id>]` appended inside a request; masked."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id and getattr(record, "status", None) is None:
            line = f"{line} [request {request_id}]"
        return mask_mobiles(line)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then the request fields and, on
    lines that end a request, status and duration_ms. Fields that do not apply are left out; masked."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            json_ensure_ascii=False,
        )

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        fields: dict = {}
        super().add_fields(fields, record, message_dict)
        log_data["time"] = fields.pop("time")  # first, for people reading raw lines
        for name in REQUEST_FIELDS + RESPONSE_FIELDS:
            fields.pop(name, None)
        log_data.update(fields)
        log_data["process"] = record.process
        for name in REQUEST_FIELDS + RESPONSE_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                log_data[name] = value

    def format(self, record: logging.LogRecord) -> str:
        return mask_mobiles(super().format(record))


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLineFormatter()
    return TextFormatter(TEXT_FORMAT)


def tag_handler(handler: logging.Handler, log_format: str) -> logging.Handler:
    """Give a handler the format and the request filter (once)."""
    handler.setFormatter(make_formatter(log_format))
    if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
        handler.addFilter(RequestContextFilter())
    return handler
