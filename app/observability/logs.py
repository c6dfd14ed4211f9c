"""Log lines: plain text or one JSON object per line (LOG_FORMAT), each tagged with the request it belongs to,
and no email or full mobile number in any of them: every value is masked (`mask_contacts`) before the line is
put together, and a JSON line is a dict of masked values serialised once.

Used by `create_app` for the app's own loggers and by gunicorn.conf.py for Gunicorn's error and access logs, so
both read alike. Standard library and python-json-logger only (gunicorn.conf.py loads this file on its own,
without the app package): importing it opens nothing and starts nothing.
"""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Request fields every line of a request carries (JSON: as keys; text: the request id only).
REQUEST_FIELDS = ("request_id", "method", "path")
# Set only by lines that end a request (Gunicorn's access line).
RESPONSE_FIELDS = ("status", "duration_ms")

# ---------------------------------------------------------------------------------------------------------------
# Masking: one function, `mask_contacts`, for every value a log line shows (message arguments, request paths,
# whole URIs, header values), whatever the route or the status. People type their mobile or email into any box.

KEEP_DIGITS = 4
# A phone number: at least PHONE_DIGITS digits, perhaps with separators (a tracking ID has 8 characters at most).
PHONE_DIGITS = 9
_DIGIT_RUN = re.compile(r"\d[\d\s().+-]{7,}\d")
# Digit runs that are not phone numbers: an IPv4 address (the client's, in the access log), a date and hour.
_NOT_A_PHONE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}|\d{4}-\d\d-\d\d(?:[ T]\d\d)?")
# Where a mobile is expected every digit but the last four is masked, however short the number.
_SEARCH_PATH = re.compile(r"/search/([^/?#\s\"]+)", re.IGNORECASE)
_MOBILE_QUERY = re.compile(r"[?&;](?:mobile|phone|q)=([^&#\s\"]*)", re.IGNORECASE)
_EMAIL = re.compile(r"([^\s@/?&=:;,<>()\[\]\"']+)@[^\s@/?&=]+")
# An escape, or an escaped escape (%2540 is a '@' written twice over), read as the character it stands for.
_ESCAPE = re.compile(r"%(?:25)*([0-9A-Fa-f]{2})")
HIDDEN = "***"


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


def _units(text: str) -> tuple[str, list[str]]:
    """`text` read once as a URL would be (each %XX escape one character) and the pieces it was written with,
    one per character of the reading: a match in the reading is masked in the writing, the rest left as sent."""
    decoded, pieces = [], []
    position = 0
    for escape in _ESCAPE.finditer(text):
        for ch in text[position:escape.start()]:
            decoded.append(ch)
            pieces.append(ch)
        decoded.append(chr(int(escape.group(1), 16)))
        pieces.append(escape.group())
        position = escape.end()
    for ch in text[position:]:
        decoded.append(ch)
        pieces.append(ch)
    return "".join(decoded), pieces


def _mask_span(decoded: str, pieces: list[str], start: int, end: int) -> None:
    digits = [index for index in range(start, end) if decoded[index].isdigit()]
    for count, index in enumerate(digits, start=1):
        pieces[index] = "*" if count <= len(digits) - KEEP_DIGITS else decoded[index]


def mask_contacts(text: str) -> str:
    """`text` (a message, a path, a URI, a header value; percent-escaped or not) with what looks like contact
    data masked: a phone number (nine digits or more, any separators) or a value where a mobile is expected
    (/search/<mobile>, ?mobile=, ?phone=, ?q=) to its last four digits, an email address to its first
    character and its domain. The rest is left as it was written; masking twice changes nothing more."""
    if not isinstance(text, str) or not text:
        return text
    decoded, pieces = _units(text)
    for pattern in (_SEARCH_PATH, _MOBILE_QUERY):
        for match in pattern.finditer(decoded):
            _mask_span(decoded, pieces, *match.span(1))
    for match in _DIGIT_RUN.finditer(decoded):
        digits = sum(ch.isdigit() for ch in match.group())
        if digits >= PHONE_DIGITS and not _NOT_A_PHONE.fullmatch(match.group()):
            _mask_span(decoded, pieces, *match.span())
    for match in _EMAIL.finditer(decoded):
        start, end = match.span(1)
        if decoded[start + 1:end] != HIDDEN:  # already masked
            first = decoded[start]
            pieces[start] = (first if first.isascii() and first.isalnum() else "") + HIDDEN
            pieces[start + 1:end] = [""] * (end - start - 1)
    return "".join(pieces)


def _masked_argument(value):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return mask_contacts(value if isinstance(value, str) else str(value))


class _MaskedArguments(Mapping):
    """A record's mapping of arguments (Gunicorn's access atoms, which answer "-" for a missing header), read
    masked, key by key."""

    def __init__(self, arguments: Mapping) -> None:
        self.arguments = arguments

    def __getitem__(self, key):
        return _masked_argument(self.arguments[key])

    def __iter__(self):
        return iter(self.arguments)

    def __len__(self) -> int:
        return len(self.arguments)


def masked_record(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of `record` whose message is built from masked values: the format string and each argument are
    masked before they are put together (masking the finished text could cut through what a formatter adds)."""
    masked = logging.makeLogRecord(record.__dict__)
    message = mask_contacts(str(record.msg))
    args = record.args
    if args:
        masked_args = (_MaskedArguments(args) if isinstance(args, Mapping)
                       else tuple(_masked_argument(value) for value in args))
        try:
            message = message % masked_args
        except (TypeError, ValueError, KeyError):  # logging itself would fail; the line is kept, masked
            message = f"{message} {tuple(masked_args.values()) if isinstance(args, Mapping) else masked_args!r}"
    masked.msg, masked.args, masked.message = message, None, message
    masked.exc_text = None
    return masked


# ---------------------------------------------------------------------------------------------------------------
# The request a line belongs to.

class RequestContextFilter(logging.Filter):
    """Adds request_id, method and path (masked) of the request being served to every record; None outside a
    request. A filter on handlers, so it tags records of every logger (the app's, libraries', Gunicorn's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Looked up, not imported: Gunicorn's master loads this file without the app (and serves no request).
        context = sys.modules.get("app.observability.request_context")
        info = context.current_request() if context is not None else None
        if not hasattr(record, "request_id"):  # an access line brings its own
            record.request_id = info.request_id if info else None
            record.method = info.method if info else None
            record.path = mask_contacts(info.path) if info else None
        return True


class _MaskingFormatter(logging.Formatter):
    """Formats a masked copy of the record (masked_record, above), its traceback and stack masked too."""

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return mask_contacts(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return mask_contacts(super().formatStack(stack_info))


class TextFormatter(_MaskingFormatter):
    """The classic one-line format, with ` [request <id>]` appended inside a request; values masked."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(masked_record(record))
        request_id = getattr(record, "request_id", None)
        if request_id and getattr(record, "status", None) is None:
            line = f"{line} [request {mask_contacts(request_id)}]"
        return line


class JsonLineFormatter(_MaskingFormatter, JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, then the request fields and, on
    lines that end a request, status and duration_ms. Fields that do not apply are left out. The line is built
    as a dict of masked values and serialised once, so it is always valid JSON."""

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

    def process_log_record(self, log_data: dict) -> dict:
        return {name: mask_contacts(value) if isinstance(value, str) else value for name, value in log_data.items()}

    def format(self, record: logging.LogRecord) -> str:
        return super().format(masked_record(record))


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
