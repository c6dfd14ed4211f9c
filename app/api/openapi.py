"""The OpenAPI 3.1 document of /api/v1, generated from the routes' contracts (app.api.contract) and their
pydantic models: what is validated is what is published. Also the plain view of it that /api/docs renders."""
from __future__ import annotations

import copy
import re

from flask import current_app
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.api.contract import JSON, ApiBlueprint, Operation
from app.api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPES, problem_type
from app.api.schemas import MOBILE_MARK, MULTI_LINE, Problem
from app.domain.roles import roles_with
from app.services.shipments.contacts import mobile_pattern

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"
COMPONENTS = "#/components/schemas/{model}"
SECURITY_SCHEME = "apiKey"
TRACKING_ID_PARAMETER = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": MULTI_LINE,
                         "description": "The shipment's tracking ID (any case; spaces and hyphens are ignored)."}
_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def build_document(api: ApiBlueprint, phone_region: str) -> dict:
    """The whole document: paths, schemas, problem responses and the Bearer security scheme. Mobile numbers are
    described by `phone_region`'s numbering plan (the app's DEFAULT_PHONE_REGION)."""
    models = _models(api.operations)
    refs, definitions = models_json_schema([(model, mode) for model, mode in models], ref_template=COMPONENTS)
    paths: dict[str, dict] = {}
    for operation in api.operations:
        path = _ARGUMENT.sub(r"{\1}", operation.path)
        paths.setdefault(path, {})[operation.method.lower()] = _operation(operation, refs)
    return _with_mobile_pattern({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Waybill API",
            "version": API_VERSION,
            "description": ("Book shipments, follow them and record their status changes. Authenticate with an "
                            "API key from /admin/api-keys: `Authorization: Bearer wb_live_…`. Errors are RFC 9457 "
                            "problem details (application/problem+json)."),
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {SECURITY_SCHEME: {
                "type": "http", "scheme": "bearer", "bearerFormat": "wb_live_…",
                "description": "An API key, created by an admin at /admin/api-keys. It acts as its staff "
                               "account, with that account's role."}},
        },
    }, mobile_pattern(phone_region))


def _with_mobile_pattern(document: dict, pattern: str) -> dict:
    """Every field marked as a mobile number (schemas.MOBILE_MARK) gets the region's pattern, in place."""
    pending: list[object] = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            if item.pop(MOBILE_MARK, False):
                item["pattern"] = pattern
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return document


def _models(operations: list[Operation]) -> list[tuple[type[BaseModel], str]]:
    seen: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    for operation in operations:
        if operation.body is not None:
            seen.append((operation.body, "validation"))
        if operation.response.model is not None:
            seen.append((operation.response.model, "serialization"))
    return list(dict.fromkeys(seen))


def _operation(operation: Operation, refs: dict) -> dict:
    document: dict = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": _parameters(operation),
        "responses": _responses(operation, refs),
        "security": [{SECURITY_SCHEME: []}] if operation.permission else [],
    }
    description = operation.description
    if operation.permission:
        roles = ", ".join(sorted(roles_with(operation.permission)))
        description = f"{description}\n\nRoles: {roles}.".strip()
    if description:
        document["description"] = description
    if operation.body is not None:
        document["requestBody"] = {"required": True, "content": {
            JSON: {"schema": refs[(operation.body, "validation")]}}}
    if not document["parameters"]:
        del document["parameters"]
    return document


ID_PARAMETER = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1,
                "description": "The record's number, as the API gave it (`id`)."}


def _parameters(operation: Operation) -> list[dict]:
    integers = set(re.findall(r"<int:([^<>]+)>", operation.path))
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": dict(ID_PARAMETER if name in integers else TRACKING_ID_PARAMETER)}
                  for name in operation.path_parameters]
    for header in operation.headers:
        parameters.append({"name": header.name, "in": "header", "required": False,
                           "description": header.description,
                           "schema": {"type": "string", "minLength": 1, "maxLength": header.max_length,
                                      "pattern": header.pattern}})
    if operation.query is not None:
        schema = operation.query.model_json_schema(ref_template=COMPONENTS)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            prop = {k: v for k, v in prop.items() if k not in ("title", "default", "description")}
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "description": schema["properties"][name].get("description", ""),
                               "schema": _query_schema(prop)})
    return parameters


def _query_schema(prop: dict) -> dict:
    """A query parameter's schema: an optional value is simply left out of the query, never `null`."""
    options = prop.get("anyOf")
    if options:
        rest = [option for option in options if option.get("type") != "null"]
        if len(rest) == 1:
            return {**{k: v for k, v in prop.items() if k != "anyOf"}, **rest[0]}
    return prop


def _responses(operation: Operation, refs: dict) -> dict:
    success = operation.response
    responses: dict[str, dict] = {str(success.status): {"description": success.description}}
    if success.media_type is not None:  # None: no body at all (a 204)
        schema = refs[(success.model, "serialization")] if success.model else {"type": "string"}
        responses[str(success.status)]["content"] = {success.media_type: {"schema": schema}}
    if success.headers:
        responses[str(success.status)]["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in success.headers.items()}
    problem_schema = refs[(Problem, "serialization")]
    for status in sorted(_error_statuses(operation)):
        entry = {"description": PROBLEM_TYPES[status][1],
                 "content": {PROBLEM_MEDIA_TYPE: {"schema": problem_schema}}}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"description": "`Bearer`", "required": True,
                                                     "schema": {"type": "string"}}}
        if status == 429:
            entry["headers"] = {"Retry-After": {"description": "Seconds to wait.", "required": True,
                                                "schema": {"type": "string"}}}
        responses[str(status)] = entry
    return responses


def _error_statuses(operation: Operation) -> set[int]:
    statuses = set(operation.errors)
    if operation.permission:
        statuses |= {401, 403, 429}
    if operation.path_parameters:
        statuses |= {400, 404}
    if operation.query is not None or operation.headers:
        statuses.add(400)
    for header in operation.headers:
        statuses.update(header.errors)
    if operation.body is not None:
        statuses |= {400, 413, 415}
    return statuses


def document_for(app_api: ApiBlueprint) -> dict:
    """This app's document, built once per app (it does not change while the app runs)."""
    cache = current_app.extensions.setdefault("waybill_openapi", {})
    if "document" not in cache:
        cache["document"] = build_document(app_api, current_app.config["DEFAULT_PHONE_REGION"])
    return cache["document"]


# --- the readable view (/api/docs) -------------------------------------------------------------------------------

def docs_view(document: dict) -> dict:
    """What /api/docs shows: each operation with its parameters, body fields and responses in words."""
    schemas = document["components"]["schemas"]
    operations = []
    for path, methods in document["paths"].items():
        for method, spec in methods.items():
            body_ref = spec.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema")
            operations.append({
                "id": spec["operationId"], "method": method.upper(), "path": path, "summary": spec["summary"],
                "description": spec.get("description", ""), "secured": bool(spec["security"]),
                "parameters": [{"name": p["name"], "in": p["in"], "required": p["required"],
                                "type": describe_type(p["schema"], schemas),
                                "description": p.get("description") or p["schema"].get("description", "")}
                               for p in spec.get("parameters", [])],
                "body": _schema_name(body_ref), "responses": [
                    {"status": status, "description": response["description"],
                     "schema": _schema_name(next(iter(response.get("content", {}).values()), {}).get("schema"))}
                    for status, response in spec["responses"].items()],
            })
    models = [{"name": name, "description": schema.get("description", ""), "fields": _fields(schema, schemas)}
              for name, schema in sorted(schemas.items())]
    problems = [{"status": status, "slug": slug, "description": text, "type": problem_type(status)}
                for status, (slug, text) in sorted(PROBLEM_TYPES.items())]
    return {"info": document["info"], "operations": operations, "models": models, "problems": problems}


def _schema_name(schema: dict | None) -> str | None:
    if not schema or "$ref" not in schema:
        return None
    return schema["$ref"].rsplit("/", 1)[-1]


def _fields(schema: dict, schemas: dict) -> list[dict]:
    required = set(schema.get("required", ()))
    return [{"name": name, "required": name in required, "type": describe_type(prop, schemas),
             "description": prop.get("description", "")}
            for name, prop in schema.get("properties", {}).items()]


def describe_type(schema: dict, schemas: dict) -> str:
    """A schema in a few words: `string, 1–100 characters`, `one of: Booked, …`, `list of Event`."""
    schema = copy.deepcopy(schema)
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        kinds = [describe_type(option, schemas) for option in schema["anyOf"]]
        return " or ".join(kinds)
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {describe_type(schema.get('items', {}), schemas)}"
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return f"object of {describe_type(schema['additionalProperties'], schemas)}"
    words = [str(kind)]
    if schema.get("format"):
        words.append(schema["format"])
    if "minLength" in schema or "maxLength" in schema:
        words.append(f"{schema.get('minLength', 0)}–{schema.get('maxLength', '…')} characters")
    if "minimum" in schema or "maximum" in schema:
        words.append(f"{schema.get('minimum', '…')}–{schema.get('maximum', '…')}")
    if schema.get("pattern"):
        words.append(f"matching {schema['pattern']}")
    return ", ".join(words)
