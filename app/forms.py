"""One form class serves both the browser form and the JSON body of the same request."""
from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from app.errors import ValidationError


def strip(value):
    return value.strip() if isinstance(value, str) else value


def json_object_body() -> dict:
    """The request's JSON body, which must be an object; ValidationError (400) otherwise."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nesting deep enough to exhaust the decoder is not JSON we accept
        body = None
    if body is None:
        raise ValidationError("The request body is not valid JSON.")
    if not isinstance(body, dict):
        raise ValidationError("The request body must be a JSON object.")
    return body


class RequestForm(FlaskForm):
    """A form filled from the browser's form fields or from a JSON object with string values."""

    class Meta:
        # CSRF is enforced once for every unsafe request, by app.auth.guard, after authentication.
        csrf = False

    @classmethod
    def from_request(cls, **kwargs):
        if not request.is_json:
            return cls(**kwargs)
        body = json_object_body()
        known = {name for name in cls._unbound_field_names()}
        fields = {}
        for name, value in body.items():
            if name not in known:
                fields[name] = "Unknown field."
            elif value is not None and not isinstance(value, str | bool):
                fields[name] = "Must be a string."
        if fields:
            raise ValidationError(fields=fields)
        data = MultiDict({k: v for k, v in body.items() if v is not None and v is not False})
        return cls(formdata=data, **kwargs)

    @classmethod
    def _unbound_field_names(cls) -> list[str]:
        return [name for name in dir(cls) if not name.startswith("_")
                and hasattr(getattr(cls, name), "field_class")]

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}

    def validate_or_raise(self) -> None:
        if not self.validate():
            raise ValidationError(fields=self.field_errors())
