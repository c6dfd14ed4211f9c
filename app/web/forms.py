"""The one place that reads request data: path parameters, query strings, form posts and JSON bodies.

One form class serves both the browser form and the JSON body of the same request: `RequestForm.from_request`
(or `read_form`, which also validates) is the only place that tells the two apart, `field_errors` the only one
that turns a form's errors into the `fields` of a 400, and `refused_on_page` the only one that decides whether a
refusal goes back on the page or out as JSON (`answers_json`). Whatever the source, text that cannot be stored or
shown faithfully is refused with a 400 naming the field, before any view sees it: control characters (a NUL
cannot be stored in PostgreSQL, the others only hide things from the people who read the data) except tab and
line breaks in multi-line fields, and lone surrogates (not Unicode text: they cannot be encoded, so they could be
neither stored nor sent back). JSON values must also have the type their field expects.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TypeVar

from babel.support import Translations
from flask import request
from flask_babel import get_locale
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, DecimalField, Field, FloatField, IntegerField, SelectMultipleField, TextAreaField
from wtforms.i18n import messages_path
from wtforms.validators import StopValidation
from wtforms.widgets import HiddenInput

from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db

NOT_A_STRING = "Must be a string."
NOT_A_BOOLEAN = "Must be true or false."
NOT_A_NUMBER = "Must be a number."
NOT_A_LIST = "Must be a list of strings."
NOT_A_LIST_OF_OBJECTS = "Must be a list of objects."
NOT_AN_OBJECT = "Must be a JSON object."
REQUIRED_IN_JSON = "Required (an empty list for none)."
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


def _json_object() -> dict:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting deep enough to exhaust the decoder is not JSON we accept
        body = None
    if body is None:
        raise ValidationError("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.")
    return body


def json_object_body() -> dict:
    """The request's JSON body, which must be an object holding only valid text; ValidationError (400) otherwise."""
    body = _json_object()
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


def json_object_as_sent() -> dict:
    """The request's JSON object, its values as sent and their text unchecked; ValidationError (400) when the
    request sends none, with the answers read_form(..., json_only=True) gives. For a reader that checks every value
    of the body itself and refuses any string that is not what it expects, where building a form for each request
    costs more than the reading (the courier app's batches of positions, app.courier.location_forms)."""
    if not request.is_json:
        raise ValidationError("Send a JSON object (Content-Type: application/json).")
    return _json_object()


def json_object_list(name: str, max_items: int) -> list[dict]:
    """The objects of the request's JSON body `{name: [{...}, ...]}` (nothing else in it, at most `max_items`),
    as sent; ValidationError (400) for any other shape. For a queue of independent items, such as the courier
    app's actions sent when the phone is back online: their text is not checked here but by the service, item
    by item, so that one bad item (a control character in a name) is refused alone and never holds up the rest."""
    if not request.is_json:
        raise ValidationError("Send a JSON object (Content-Type: application/json).")
    body = _json_object()
    unknown = {field_label(key): UNKNOWN_FIELD for key in body if key != name}
    if unknown:
        raise ValidationError(fields=unknown)
    items = body.get(name)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValidationError(fields={name: "Required: a list of JSON objects."})
    if len(items) > max_items:
        raise ValidationError(fields={name: f"At most {max_items} in one request: send the rest in another."})
    return items


class TextListField(Field):
    """Several texts under one name: a JSON array of strings, or a form field sent several times (checkboxes)."""

    widget = HiddenInput()

    def process_data(self, value) -> None:
        self.data = list(value or [])

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = list(valuelist)


class TrueFalseField(Field):
    """A yes or no that may be left out: "true" or "false" from a form, true or false in JSON; None when not
    sent (a BooleanField is a checkbox: left out means no)."""

    widget = HiddenInput()

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        if valuelist[0] not in ("true", "false"):
            raise ValueError(NOT_A_BOOLEAN)
        self.data = valuelist[0] == "true"

    def _value(self) -> str:
        return "" if self.data is None else str(self.data).lower()


class ObjectListField(Field):
    """A batch of records under one name: a JSON array of objects, handed to the form as sent (their text already
    checked) for its own checks of each record. A browser form cannot send one: from a form post it holds strings,
    which the form refuses."""

    widget = HiddenInput()

    def process_data(self, value) -> None:
        self.data = list(value or [])

    def process_formdata(self, valuelist: list) -> None:
        self.data = list(valuelist)


class ObjectField(Field):
    """One record under one name: a JSON object, handed to the form as sent (its text already checked) for its
    own checks. A browser form cannot send one: from a form post it holds text, which the form refuses."""

    widget = HiddenInput()

    def process_formdata(self, valuelist: list) -> None:
        self.data = valuelist[0] if valuelist else None

    def _value(self) -> str:
        return ""


class RequiredInJson:
    """A field a JSON body must send (a list: an empty one for none). A browser form may leave it out, as it
    leaves out a list whose boxes are all unchecked."""

    def __init__(self, message: str = REQUIRED_IN_JSON) -> None:
        self.message = message

    def __call__(self, form, field) -> None:
        sent = getattr(form, "json_fields", None)
        if sent is not None and field.name not in sent:
            raise StopValidation(self.message)


_LIST_FIELDS = (TextListField, SelectMultipleField)
_NUMBER_FIELDS = (IntegerField, FloatField, DecimalField)

Form = TypeVar("Form", bound="RequestForm")


@lru_cache(maxsize=8)
def _wtforms_messages(locale: str) -> Translations:
    return Translations.load(messages_path(), [locale], domain="wtforms")


class AppForm(FlaskForm):
    """Every form of the app: WTForms' own messages ("Not a valid integer value.") in the request's language, read
    from their catalogue once a process and language. Flask-WTF reads that file again for every request that
    builds a form: a position batch from the courier app spent 0.8 ms of its 11 doing it."""

    class Meta:
        def get_translations(self, form) -> Translations:
            return _wtforms_messages(str(get_locale()))


class RequestForm(AppForm):
    """A form filled from the browser's form fields or from a JSON object: strings, true/false for yes-or-no
    fields, numbers (or their text) for number fields, arrays of strings for list fields, arrays of objects for
    ObjectListFields, an object for ObjectFields, and any value for a field class whose `json_as_sent` is true
    (its service checks it)."""

    class Meta(AppForm.Meta):
        # CSRF is enforced once for every unsafe request, by app.auth.guard, after authentication.
        csrf = False

    # The names a JSON body sent (None: the form came from the browser's form fields).
    json_fields: frozenset[str] | None = None
    # True: the JSON body may nest objects, read as dotted field names ({"cod": {"min": 40}} fills "cod.min").
    nested_json: bool = False
    # False: the form reads every string of its JSON body itself, refusing any that is not what it expects, so
    # the general check for bad text (control characters, lone surrogates) in every string is left out.
    checks_json_text: bool = True

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        MULTILINE_FIELDS.update(name for name, field_class in cls._field_classes().items()
                                if issubclass(field_class, TextAreaField))

    @classmethod
    def from_request(cls: type[Form], **kwargs) -> Form:
        """The form filled from this request: its JSON object when it sends one, else its form fields. A JSON
        value of the wrong type, or a name the form does not have, is a ValidationError naming it."""
        if not request.is_json:
            return cls(**kwargs)
        body = json_object_body() if cls.checks_json_text else _json_object()
        if cls.nested_json:
            body = _dotted_names(body)
        field_classes = cls._field_classes()
        fields: dict[str, str] = {}
        values: list[tuple[str, object]] = []
        for name, value in body.items():
            field_class = field_classes.get(name)
            if field_class is None:
                fields[field_label(name)] = UNKNOWN_FIELD
            elif value is None:
                continue
            elif getattr(field_class, "json_as_sent", False):
                values.append((name, value))  # any JSON value: the service checks it (a GeoJSON outline)
            elif issubclass(field_class, ObjectField):
                if isinstance(value, dict):
                    values.append((name, value))
                else:
                    fields[name] = NOT_AN_OBJECT
            elif issubclass(field_class, ObjectListField):
                if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                    values.extend((name, item) for item in value)
                else:
                    fields[name] = NOT_A_LIST_OF_OBJECTS
            elif issubclass(field_class, _LIST_FIELDS):
                if isinstance(value, list) and all(isinstance(item, str) for item in value):
                    values.extend((name, item) for item in value)
                else:
                    fields[name] = NOT_A_LIST
            elif issubclass(field_class, BooleanField | TrueFalseField):
                if not isinstance(value, bool):
                    fields[name] = NOT_A_BOOLEAN
                elif issubclass(field_class, TrueFalseField):
                    values.append((name, "true" if value else "false"))
                elif value:
                    values.append((name, value))
            elif issubclass(field_class, _NUMBER_FIELDS):
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    fields[name] = NOT_A_NUMBER
                else:
                    values.append((name, str(value)))
            elif not isinstance(value, str):
                fields[name] = NOT_A_STRING
            else:
                values.append((name, value))
        if fields:
            raise ValidationError(fields=fields)
        form = cls(formdata=MultiDict(values), **kwargs)
        form.json_fields = frozenset(body)
        return form

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

    def validate_or_raise(self) -> None:
        """Validate; ValidationError with each bad field's first message otherwise (the form keeps its errors, so
        a page can show them beside the fields: see refused_on_page)."""
        if not self.validate():
            raise ValidationError(fields=field_errors(self))


def _dotted_names(body: dict) -> dict[str, object]:
    """{"cod": {"min": 40}} → {"cod.min": 40}: nested objects as dotted names (an empty object gives none).
    Without recursion: nesting depth is the client's."""
    flat: dict[str, object] = {}
    pending: list[tuple[str, dict]] = [("", body)]
    while pending:
        prefix, item = pending.pop()
        for name, value in item.items():
            if isinstance(value, dict):
                pending.append((f"{prefix}{name}.", value))
            else:
                flat[f"{prefix}{name}"] = value
    return flat


def read_form(form_class: type[Form], *, json_only: bool = False, **kwargs) -> Form:
    """The request's form of `form_class`, from its form fields or its JSON object, validated; ValidationError
    (400, `fields`) otherwise. For views with no page to show again: the others call from_request, then
    validate_or_raise inside the try that hands a refusal to refused_on_page. `json_only`: a route for scripts,
    which takes a JSON object and nothing else (a 400 saying so)."""
    if json_only and not request.is_json:
        raise ValidationError("Send a JSON object (Content-Type: application/json).")
    form = form_class.from_request(**kwargs)
    form.validate_or_raise()
    return form


def field_errors(form: FlaskForm) -> dict[str, str]:
    """The `fields` of a 400: each bad field's first message, by field name (the query-string forms' too)."""
    return {name: messages[0] for name, messages in form.errors.items() if messages}


def answers_json() -> bool:
    """Whether this request is answered with JSON rather than a page: it sent a JSON body, or its Accept prefers
    JSON (an API client, or curl's bodiless POST with -H 'Accept: application/json')."""
    return request.is_json or not wants_html()


def refused_on_page(error: DomainError, form: FlaskForm | None = None) -> str | None:
    """A form post that was refused (by its form or by the service), for the view that shows its page again. A
    JSON client (answers_json) gets the error raised again: its JSON answer. For a browser the session is rolled
    back, each field's message goes on `form`'s field, and the text for above the form is returned: the error's
    message, none when the fields carry it (the messages of fields the form does not show, joined; without a form,
    all of them)."""
    if answers_json():
        raise error
    db.session.rollback()
    fields = getattr(error, "fields", None) or {}
    if not fields:
        return error.message
    elsewhere = []
    for name, message in fields.items():
        if form is not None and name in form:
            form[name].errors = [message]
        else:
            elsewhere.append(message)
    return "; ".join(elsewhere) or None
