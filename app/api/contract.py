"""How a /api/v1 route is declared: one decorator registers the URL rule, its permission, the schemas its
request is validated against, and what it answers — and the same record feeds the OpenAPI document.

A new route and its schemas are a few lines:

    @api.operation("POST", "/events", summary="Record many scans", permission=Permission.CHANGE_SHIPMENTS,
                   body=ScanBatch, response=Success(ScanResults, status=201), errors=(409,))
    def record_scans(body: ScanBatch):
        ...
        return answer(ScanResults, result, 201)
"""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, jsonify, request
from pydantic import BaseModel
from pydantic import ValidationError as SchemaError

from app.auth.guard import staff_required
from app.errors import DomainError, ValidationError
from app.web.forms import UNKNOWN_FIELD, field_label, json_object_body

JSON = "application/json"
PDF = "application/pdf"


class UnsupportedMediaType(DomainError):
    status_code = 415
    default_message = "Send the request body as JSON (Content-Type: application/json)."


@dataclass(frozen=True)
class Success:
    """A successful answer: its status, body schema (None for a non-JSON body) and media type (None: no body,
    as for a 204)."""
    model: type[BaseModel] | None
    status: int = 200
    description: str = "OK"
    media_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)  # name: description


@dataclass(frozen=True)
class HeaderParameter:
    name: str
    description: str
    max_length: int
    pattern: str
    errors: tuple[int, ...] = ()  # the statuses an operation can answer because of this header


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the Flask rule, e.g. /api/v1/shipments/<tracking_id>
    operation_id: str
    summary: str
    description: str
    tag: str
    permission: str | None  # None: public, no key needed
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: Success
    errors: tuple[int, ...]
    headers: tuple[HeaderParameter, ...]

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", self.path)


class ApiBlueprint:
    """The blueprint's routes, each with its contract (read by app.api.openapi)."""

    def __init__(self, bp: Blueprint, prefix: str) -> None:
        self.bp = bp
        self.prefix = prefix
        self.operations: list[Operation] = []

    def operation(self, method: str, path: str, *, summary: str, permission: str | None, tag: str = "shipments",
                  body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
                  response: Success, errors: tuple[int, ...] = (),
                  headers: tuple[HeaderParameter, ...] = ()) -> Callable[[Callable], Callable]:
        full_path = self.prefix + path

        def decorate(view: Callable) -> Callable:
            @functools.wraps(view)
            def handler(**path_args):
                arguments = dict(path_args)
                if query is not None:
                    arguments["query"] = parse_query(query)
                if body is not None:
                    arguments["body"] = parse_body(body)
                return view(**arguments)

            if permission is not None:
                staff_required(permission)(handler)
                handler.api_key_auth = True
            self.bp.add_url_rule(full_path, endpoint=view.__name__, view_func=handler, methods=[method])
            self.operations.append(Operation(
                method=method, path=full_path, operation_id=view.__name__, summary=summary,
                description=inspect.cleandoc(view.__doc__ or ""), tag=tag, permission=permission, body=body,
                query=query, response=response, errors=tuple(errors), headers=tuple(headers)))
            return handler
        return decorate


def parse_body(model: type[BaseModel]) -> BaseModel:
    """The JSON body, validated strictly against `model`: 415 if it is not JSON, 400 naming every bad field."""
    if not request.is_json:
        raise UnsupportedMediaType()
    json_object_body()  # valid JSON, an object, only text we can store (400 otherwise)
    try:
        return model.model_validate_json(request.get_data(cache=True))
    except SchemaError as error:
        raise ValidationError("The request body does not match its schema.", fields=schema_errors(error)) from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string, validated against `model` (each parameter at most once)."""
    values = request.args.to_dict(flat=False)
    repeated = {field_label(name): "Give this parameter once." for name, items in values.items() if len(items) > 1}
    if repeated:
        raise ValidationError(fields=repeated)
    try:
        return model.model_validate({name: items[0] for name, items in values.items()})
    except SchemaError as error:
        raise ValidationError("The query string is not valid.", fields=schema_errors(error)) from None


def schema_errors(error: SchemaError) -> dict[str, str]:
    """Per field (dotted path), the first thing wrong with it, in plain words."""
    fields: dict[str, str] = {}
    for problem in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in problem["loc"]) or "body"
        message = {"extra_forbidden": UNKNOWN_FIELD, "missing": "Required."}.get(problem["type"], problem["msg"])
        if problem["type"] == "value_error" and "error" in problem.get("ctx", {}):
            message = str(problem["ctx"]["error"])  # our own validator's words, without pydantic's prefix
        fields.setdefault(field_label(location), message.rstrip(".") + ".")
    return fields


def answer(model: type[BaseModel], data: dict, status: int = 200, headers: dict | None = None):
    """A JSON answer, checked against the schema the document promises (a mismatch is our bug: a 500)."""
    body = model.model_validate(data).model_dump(mode="json")
    return jsonify(body), status, headers or {}
