"""The one place that reads request data: path parameters, query strings, form posts and JSON bodies.

One form class serves both the browser form and the JSON body of the same request. Whatever the source, text
that cannot be stored or shown faithfully is refused with a 400 naming the field, before any view sees it:
control characters (a NUL cannot be stored in PostgreSQL, the others only hide things from the people who read
the data) except tab and line breaks in multi-line fields, and lone surrogates (not Unicode text: they cannot be
encoded, so they could be neither stored nor sent back). JSON values must also have the type their field expects.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, TextAreaField

from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db

NOT_A_STRING = "Must be a string."
NOT_A_BOOLEAN = "Must be true or false."
CONTROL_CHARACTER = "Control characters (such as NUL) are not allowed here."
NOT_UNICODE = "Not valid Unicode text (it holds a lone surrogate)."
UNKNOWN_FIELD = "Unknown field."

# The refused characters as regular-expression ranges, also published in the API's schemas (app.api.schemas).
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"  # C0, DEL and C1
CONTROL_CHARACTERS_BUT_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"  # the same, but tab, LF and CR
_SURROGATES = r"\ud800-\udfff"
_SINGLE_LINE_BAD = re.compile(f"[{CONTROL_CHARACTERS}{_SURROGATES}]")
_MULTI_LINE_BAD = re.compile(f"[{CONTROL_CHARACTERS_BUT_LINES}{_SURROGATES}]")
_FIELD_NAME_MAX = 40
# Names of the fields that accept several lines (TextAreaFields of any RequestForm), filled as forms are defined.
MULTILINE_FIELDS: set[str] = set()
# Tracking IDs are copied from labels, emails and spreadsheets with spaces, hyphens and tabs in them; every
# whitespace in one is ignored when it is read, so a tab or line break there is harmless and allowed.
MULTILINE_FIELDS.add("tracking_id")
_FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def strip(value):
    return value.strip() if isinstance(value, str) else value


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why `value` cannot be accepted as text (None when it can)."""
    match = (_MULTI_LINE_BAD if multiline else _SINGLE_LINE_BAD).search(value)
    if match is None:
        return None
    return NOT_UNICODE if "\ud800" <= match.group() <= "\udfff" else CONTROL_CHARACTER


def field_label(name: str) -> str:
    """A field name fit to be sent back in an error: a name that is itself bad text is shown without its bad
    characters (and shortened), so the error can always be encoded and displayed."""
    clean = _SINGLE_LINE_BAD.sub("\N{REPLACEMENT CHARACTER}", name)
    return clean if len(clean) <= _FIELD_NAME_MAX else clean[:_FIELD_NAME_MAX] + "…"


def _text_errors(items: Iterable[tuple[str, object]]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        problem = text_problem(name) or text_problem(value, multiline=name in MULTILINE_FIELDS)
        if problem:
            errors.setdefault(field_label(name), problem)
    return errors


def refuse_bad_text() -> None:
    """before_request: path parameters, query string and form fields hold only text we can store and show."""
    errors = _text_errors((request.view_args or {}).items())
    errors.update(_text_errors(request.args.items(multi=True)))
    if request.mimetype in _FORM_MIMETYPES:
        errors.update(_text_errors(request.form.items(multi=True)))
    if errors:
        raise ValidationError(fields=errors)


def _strings_within(value: object, multiline: bool) -> Iterator[tuple[str, bool]]:
    """Every string in a JSON value (object keys included), each with whether it may hold line breaks: the
    innermost field holding it decides (a note in a list of changes is a note). Without recursion: nesting depth
    is the client's."""
    pending: list[tuple[object, bool]] = [(value, multiline)]
    while pending:
        item, lines = pending.pop()
        if isinstance(item, str):
            yield item, lines
        elif isinstance(item, dict):
            for key, inner in item.items():
                pending.append((key, False))
                pending.append((inner, key in MULTILINE_FIELDS))
        elif isinstance(item, list):
            pending.extend((inner, lines) for inner in item)


def json_object_body() -> dict:
    """The request's JSON body, which must be an object holding only valid text; ValidationError (400) otherwise."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting deep enough to exhaust the decoder is not JSON we accept
        body = None
    if body is None:
        raise ValidationError("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.")
    errors: dict[str, str] = {}
    for name, value in body.items():
        problem = text_problem(name) or next(
            (p for text, lines in _strings_within(value, name in MULTILINE_FIELDS) if (p := text_problem(text, lines))),
            None)
        if problem:
            errors[field_label(name)] = problem
    if errors:
        raise ValidationError(fields=errors)
    return body


class RequestForm(FlaskForm):
    """A form filled from the browser's form fields or from a JSON object with string values."""

    class Meta:
        # CSRF is enforced once for every unsafe request, by app.auth.guard, after authentication.
        csrf = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        MULTILINE_FIELDS.update(name for name, field_class in cls._field_classes().items()
                                if issubclass(field_class, TextAreaField))

    @classmethod
    def from_request(cls, **kwargs):
        if not request.is_json:
            return cls(**kwargs)
        body = json_object_body()
        field_classes = cls._field_classes()
        fields = {}
        for name, value in body.items():
            field_class = field_classes.get(name)
            if field_class is None:
                fields[field_label(name)] = UNKNOWN_FIELD
            elif value is None:
                continue
            elif issubclass(field_class, BooleanField):
                if not isinstance(value, bool):
                    fields[name] = NOT_A_BOOLEAN
            elif not isinstance(value, str):
                fields[name] = NOT_A_STRING
        if fields:
            raise ValidationError(fields=fields)
        data = MultiDict({k: v for k, v in body.items() if v is not None and v is not False})
        return cls(formdata=data, **kwargs)

    @classmethod
    def _field_classes(cls) -> dict[str, type]:
        """The form's fields by name: their classes, read from the class before any instance exists (once per
        class: every JSON request checks its body against them)."""
        cached = cls.__dict__.get("_waybill_field_classes")
        if cached is None:
            cached = {name: getattr(cls, name).field_class for name in dir(cls)
                      if not name.startswith("_") and hasattr(getattr(cls, name), "field_class")}
            cls._waybill_field_classes = cached
        return cached

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}

    def validate_or_raise(self) -> None:
        if not self.validate():
            raise ValidationError(fields=self.field_errors())


def refused_on_page(error: DomainError, form: FlaskForm | None = None) -> str | None:
    """A staff form post the service refused, for the view that shows its page again. An API client's request
    (JSON, or not asking for HTML) gets the error raised again: its JSON answer. For a browser the session is
    rolled back, each field's message goes on `form`'s field, and the text for above the form is returned: the
    error's message, none when the fields carry it (without a form, the fields' messages joined)."""
    if request.is_json or not wants_html():
        raise error
    db.session.rollback()
    fields = getattr(error, "fields", None) or {}
    if form is None:
        return "; ".join(fields.values()) if fields else error.message
    for name, message in fields.items():
        getattr(form, name).errors = [message]
    return None if fields else error.message
