"""The /api/v1 request and response schemas. Requests are validated against these models and the OpenAPI
document is generated from them (app/api/openapi.py): one source of truth, so the document cannot drift.

Request bodies are strict (no type coercion: "1" is not a number) and refuse unknown fields. Query strings are
text, so their models convert ("50" is a limit of 50) but still refuse unknown parameters.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from app.models.api_key import KEY_NAME_MAX
from app.models.shipment import DESTINATION_MAX, EMAIL_MAX, NAME_MAX
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.contacts import MOBILE_INPUT_MAX
from app.services.status import ALL_STATUSES

PAGE_MAX = 100
PAGE_DEFAULT = 50
RECEIVED_BY_MAX = 100
ATTEMPT_REASON_MAX = 200
CURSOR_MAX = 200

StatusName = Literal[ALL_STATUSES]  # type: ignore[valid-type]

_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_DIGITS = re.compile(r"[0-9]{1,6}")


def _iso_only(value: object) -> object:
    """Instants are ISO 8601 text: pydantic alone would also read "0.5" or "1700000000" as Unix times."""
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("Must be an ISO 8601 date and time with an offset, such as 2026-12-01T09:30:00+05:30")


def _digits_only(value: object) -> object:
    """A whole number in a query string is digits only (not "1.0", " 5" or "1_0")."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("Must be a whole number")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
QueryInt = Annotated[int, BeforeValidator(_digits_only)]


def text(max_length: int, description: str, min_length: int = 1):
    return Field(min_length=min_length, max_length=max_length, description=description)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class QueryParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """A response body: what the API promises to send back (checked on the way out too)."""
    model_config = ConfigDict(extra="forbid")


# --- shipments ---------------------------------------------------------------------------------------------------

class NewShipment(RequestBody):
    """A booking: the same fields and rules as `POST /create`."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sender_name": "Meera Iyer", "receiver_name": "Arjun Menon", "mobile": "+91 94470 12345",
        "email": "arjun.menon@example.org", "destination": "12 MG Road, Kochi"}]})
    sender_name: Annotated[str, text(NAME_MAX, "The sender's full name.")]
    receiver_name: Annotated[str, text(NAME_MAX, "The receiver's full name.")]
    mobile: Annotated[str, text(MOBILE_INPUT_MAX, "The receiver's mobile, in any common format "
                                                  "(`+91 98765 43210`, `098765 43210`, `9876543210`).")]
    email: Annotated[str, text(EMAIL_MAX, "The recipient's email: status emails go there."),
                     WithJsonSchema({"type": "string", "format": "email", "minLength": 1, "maxLength": EMAIL_MAX,
                                     "description": "The recipient's email: status emails go there."})]
    destination: Annotated[str, text(DESTINATION_MAX, "The delivery address, ending with the city.")]


class Event(Answer):
    status: StatusName
    location: str
    customer_message: str | None = Field(description="What the customer sees with this step.")
    note: str | None = Field(description="Internal note (staff only).")
    actor: str = Field(description="Who recorded it: a staff username, `customer` or `system`.")
    occurred_at: datetime


class Shipment(Answer):
    """A shipment as staff see it, with the contact details."""
    tracking_id: str = Field(pattern=r"^[0-9A-F]{8}$")
    status: StatusName
    sender_name: str
    receiver_name: str
    destination: str
    mobile: str = Field(description="E.164, e.g. `+919876543210`.")
    email: str
    created_at: datetime
    updated_at: datetime
    tracking_url: str = Field(description="The public tracking page.")
    label_url: str = Field(description="The printable label (PDF) for this shipment, with this API key.")


class ShipmentWithEvents(Shipment):
    events: list[Event] = Field(description="The timeline, oldest first.")


class ShipmentList(Answer):
    shipments: list[Shipment] = Field(description="Oldest change first (by `updated_at`, then booking order).")
    next: str | None = Field(description="The URL of the next page, or null on the last page.")


class ShipmentFilters(QueryParameters):
    status: StatusName | None = Field(default=None, description="Only shipments in this status.")
    updated_since: Instant | None = Field(
        default=None, description="Only shipments changed at or after this instant (ISO 8601 with an offset).")
    mobile: str | None = Field(default=None, min_length=1, max_length=MOBILE_INPUT_MAX,
                               description="Only shipments for this mobile, in any common format.")
    limit: QueryInt = Field(default=PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="Shipments per page.")
    cursor: str | None = Field(default=None, min_length=1, max_length=CURSOR_MAX,
                               description="Where the page starts: take it from the previous page's `next`.")


class LabelOptions(QueryParameters):
    size: Literal["a6", "4x6"] | None = Field(default=None, description="Label size (default A6).")


# --- tracking events ---------------------------------------------------------------------------------------------

class NewEvent(RequestBody):
    """A status change. Whether it is allowed now is the state machine's call: 409 names the allowed ones."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "Picked Up", "location": "Kochi Hub", "customer_message": "Your parcel is on its way."}]})
    status: StatusName
    location: Annotated[str, text(LOCATION_MAX, "Where it happened (a hub, a city).")]
    note: Annotated[str | None, Field(default=None, max_length=NOTE_MAX, description="Internal note, staff only.")]
    customer_message: Annotated[str | None, Field(default=None, max_length=NOTE_MAX,
                                                  description="What the customer sees (tracking page, email).")]
    occurred_at: Instant | None = Field(
        default=None, description="When the scan happened by the scanner's clock (ISO 8601 with an offset). The "
                                  "event is ordered by the time the server records it.")
    received_by: Annotated[str | None, Field(default=None, min_length=1, max_length=RECEIVED_BY_MAX,
                                             description="Who took the parcel (with Delivered).")]
    attempt_reason: Annotated[str | None, Field(default=None, min_length=1, max_length=ATTEMPT_REASON_MAX,
                                                description="Why delivery failed (with Delivery Attempted).")]


MAX_CHANGES = 1000  # per bulk call, as scan mode


class NewBulkEvent(NewEvent):
    """One change of a bulk call: a status change, for the shipment it names."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tracking_id": "3EE0AFAD", "status": "Delivered", "location": "Kochi", "received_by": "Ravi"}]})
    tracking_id: Annotated[str, text(32, "The shipment's tracking ID (spaces, hyphens and case ignored).")]


class NewEvents(RequestBody):
    """Many status changes, each accepted or refused on its own."""
    changes: Annotated[list[NewBulkEvent], Field(min_length=1, max_length=MAX_CHANGES)]


class ChangeResult(Answer):
    tracking_id: str
    ok: bool
    status: StatusName | None = Field(default=None, description="The shipment's status after this change (or "
                                                               "its current status, when refused).")
    error: str | None = Field(default=None, description="Why the change was refused.")
    reason: Literal["unknown_id", "not_allowed", "already_there", "repeated_in_batch", "busy",
                    "proof_missing"] | None = None
    allowed: list[StatusName] | None = Field(default=None, description="The statuses allowed next (refused).")


class RecordedEvents(Answer):
    results: list[ChangeResult]
    accepted: int
    refused: int


class RecordedEvent(Answer):
    tracking_id: str = Field(pattern=r"^[0-9A-F]{8}$")
    status: StatusName
    event: Event
    allowed_next_statuses: list[StatusName]


# --- errors ------------------------------------------------------------------------------------------------------

class Problem(BaseModel):
    """RFC 9457 problem details (application/problem+json). Some problems carry more members: a 409 has
    `current_status` and `allowed`, a 429 `retry_after`."""
    model_config = ConfigDict(extra="allow")
    type: str = Field(description="A link to this problem type's description on /api/docs.")
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = Field(default=None, description="Per field: what is wrong with it.")


# --- API keys (the admin pages' JSON, documented alongside) ------------------------------------------------------

class NewApiKey(RequestBody):
    name: Annotated[str, text(KEY_NAME_MAX, "What the key is for.")]
    username: Annotated[str, text(64, "The staff account the key acts as.")]
    expires_at: Instant | None = None
