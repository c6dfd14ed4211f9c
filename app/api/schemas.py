"""The /api/v1 request and response schemas. Requests are validated against these models and the OpenAPI
document is generated from them (app/api/openapi.py): one source of truth, so the document cannot drift.

Request bodies are strict (no type coercion: "1" is not a number) and refuse unknown fields. Query strings are
text, so their models convert ("50" is a limit of 50) but still refuse unknown parameters.

The published schemas say everything the API checks, so a request that matches them is never refused for its
form: text fields carry the control-character rule of app.web.forms as a `pattern` (and, where the value is stripped
and required, that it is not blank), mobiles the default region's numbering plan (set when the document is built),
attempt reasons their codes, and a status that needs a proof the field it needs.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from app.domain import parcels, points
from app.domain.promises import GIVEN_DAYS_AHEAD
from app.domain.status import ALL_STATUSES, Status
from app.models.api_key import KEY_NAME_MAX
from app.models.shipment import DESTINATION_MAX, EMAIL_MAX, NAME_MAX
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.contacts import MOBILE_INPUT_MAX
from app.services.shipments.feed import CURSOR_PATTERN
from app.services.shipments.proofs import ATTEMPT_REASONS, HIDDEN_FORMAT_CHARACTERS
from app.web.forms import CONTROL_CHARACTERS, CONTROL_CHARACTERS_BUT_LINES

PAGE_MAX = 100
PAGE_DEFAULT = 50
RECEIVED_BY_MAX = 100
CURSOR_MAX = 36  # CURSOR_PATTERN at its longest

StatusName = Literal[ALL_STATUSES]  # type: ignore[valid-type]
AttemptReason = Literal[tuple(ATTEMPT_REASONS)]  # type: ignore[valid-type]

# Patterns (ECMA-262 and Python alike) for text: what app.web.forms refuses, said in the schema.
SINGLE_LINE = rf"^[^{CONTROL_CHARACTERS}]*$"
MULTI_LINE = rf"^[^{CONTROL_CHARACTERS_BUT_LINES}]*$"
# What str.strip() removes beyond the control characters: a stripped, required value needs one other character.
_SPACES = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[{_SPACES}]*[^{CONTROL_CHARACTERS}{_SPACES}][^{CONTROL_CHARACTERS}]*$"
# Who took a parcel: no control characters and no invisible formatting ones either (app.services.shipments.proofs).
NAME = rf"^[^{CONTROL_CHARACTERS}{HIDDEN_FORMAT_CHARACTERS}]*$"
NOT_BLANK_NAME = (rf"^[{_SPACES}]*[^{CONTROL_CHARACTERS}{HIDDEN_FORMAT_CHARACTERS}{_SPACES}]"
                  rf"[^{CONTROL_CHARACTERS}{HIDDEN_FORMAT_CHARACTERS}]*$")
# Replaced by the default region's mobile pattern when the document is built (app.api.openapi).
MOBILE_MARK = "x-waybill-mobile"

_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DIGITS = re.compile(r"[0-9]{1,6}")


def _iso_only(value: object) -> object:
    """Instants are ISO 8601 text: pydantic alone would also read "0.5" or "1700000000" as Unix times."""
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("Must be an ISO 8601 date and time with an offset, such as 2026-12-01T09:30:00+05:30")


def _date_only(value: object) -> object:
    """A day is "YYYY-MM-DD" text and nothing else (not a time, not a number of days)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("Must be a date written YYYY-MM-DD, such as 2026-12-09")


def _digits_only(value: object) -> object:
    """A whole number in a query string is digits only (not "1.0", " 5" or "1_0")."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("Must be a whole number")
    return value


Instant = Annotated[AwareDatetime, BeforeValidator(_iso_only)]
Day = Annotated[date, BeforeValidator(_date_only)]
QueryInt = Annotated[int, BeforeValidator(_digits_only)]


def text(max_length: int, description: str, min_length: int = 1, pattern: str = NOT_BLANK):
    """A required text field, stripped when it is read: not blank, no control characters."""
    return Field(min_length=min_length, max_length=max_length, description=description,
                 json_schema_extra={"pattern": pattern})


def optional_text(max_length: int, description: str, pattern: str = SINGLE_LINE, min_length: int | None = None):
    """An optional text field (null or left out: not given)."""
    return Field(default=None, min_length=min_length, max_length=max_length, description=description,
                 json_schema_extra={"pattern": pattern})


def pincode(description: str):
    return Field(default=None, description=description, pattern=r"^[1-9][0-9]{5}$")


def measure(low, high, description: str):
    """An optional number within [low, high] (rounded by the rules, never refused for its decimals)."""
    return Field(default=None, ge=float(low), le=float(high), description=description)


def money(low, high, description: str):
    """An optional amount in INR within [low, high], to the paisa."""
    return Field(default=None, ge=float(low), le=float(high), description=description,
                 json_schema_extra={"multipleOf": 0.01})


def mobile_text(description: str, **kwargs):
    return Field(min_length=1, max_length=MOBILE_INPUT_MAX, description=description,
                 json_schema_extra={MOBILE_MARK: True}, **kwargs)


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class QueryParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """A response body: what the API promises to send back (checked on the way out too)."""
    model_config = ConfigDict(extra="forbid")


# --- shipments ---------------------------------------------------------------------------------------------------

# Addresses email_validator always accepts: no quoting, no "--" label, no special-use top-level domain (.test,
# .local, .arpa…: all longer than three letters), within its length limits.
EMAIL_PATTERN = (r"^[A-Za-z0-9_%+-]{1,32}(?:\.[A-Za-z0-9_%+-]{1,31})?"
                 r"@(?:[A-Za-z0-9]{1,20}(?:-[A-Za-z0-9]{1,20})?\.){1,4}[a-z]{2,3}$")
MOBILE_DESCRIPTION = ("The receiver's mobile, in any common format (`+91 98765 43210`, `098765 43210`, "
                      "`9876543210`) or any country's in international form. The pattern describes the default "
                      "region's mobiles written without spaces: those are always accepted.")

class DeliveryWindow(RequestBody):
    """When the recipient wants the parcel (README, "Delivery windows")."""
    model_config = ConfigDict(json_schema_extra={"examples": [{"from": "2026-12-08T10:00:00+05:30",
                                                               "to": "2026-12-08T13:00:00+05:30"}]})
    start: Instant = Field(alias="from", description="From this instant (ISO 8601 with an offset).")
    end: Instant = Field(alias="to", description=f"Until this instant: after `from`, in the future and at most "
                                                 f"{points.WINDOW_DAYS_AHEAD} days ahead.")


class NewShipment(RequestBody):
    """A booking: the same fields and rules as `POST /create`."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sender_name": "Meera Iyer", "receiver_name": "Arjun Menon", "mobile": "+91 9447012345",
        "email": "arjun.menon@example.org", "destination": "12 MG Road, Kochi"}]})
    sender_name: Annotated[str, text(NAME_MAX, "The sender's full name.")]
    receiver_name: Annotated[str, text(NAME_MAX, "The receiver's full name.")]
    mobile: Annotated[str, mobile_text(MOBILE_DESCRIPTION)]
    email: Annotated[str | None, Field(
        default=None, min_length=1, max_length=EMAIL_MAX, json_schema_extra={"pattern": EMAIL_PATTERN},
        description="The recipient's email: status emails go there. Optional: a recipient with only a mobile gets "
                    "SMS only. The pattern describes addresses that are always accepted.")]
    destination: Annotated[str, text(DESTINATION_MAX, "The delivery address, ending with the city.")]
    # The parcel, its sender and its payment: optional, the rules of app.domain.parcels (README, "Parcel details").
    sender_mobile: Annotated[str | None, mobile_text("The sender's mobile (for the return leg's messages).",
                                                     default=None)]
    sender_email: Annotated[str | None, optional_text(EMAIL_MAX, "The sender's email.", pattern=EMAIL_PATTERN,
                                                      min_length=1)]
    sender_address: Annotated[str | None, optional_text(parcels.ADDRESS_MAX, "Where to collect it (pickup).")]
    sender_pincode: Annotated[str | None, pincode("The sender's PIN code (prices the zone).")]
    pickup: bool | None = Field(default=None, description="Collect the parcel from the sender's address.")
    destination_pincode: Annotated[str | None, pincode(
        "The destination's PIN code; when left out, the last PIN code in `destination`.")]
    weight_kg: Annotated[float | None, measure(parcels.WEIGHT_MIN, parcels.WEIGHT_MAX,
                                               "Actual weight in kg (rounded to the gram).")]
    length_cm: Annotated[float | None, measure(parcels.SIDE_MIN, parcels.SIDE_MAX, "Sides in cm (rounded to the "
                                               "millimetre): all three, or none.")]
    width_cm: Annotated[float | None, measure(parcels.SIDE_MIN, parcels.SIDE_MAX, "See `length_cm`.")]
    height_cm: Annotated[float | None, measure(parcels.SIDE_MIN, parcels.SIDE_MAX, "See `length_cm`.")]
    pieces: int | None = Field(default=None, ge=parcels.PIECES_MIN, le=parcels.PIECES_MAX,
                               description="Pieces (one label each); 1 when left out.")
    declared_value: Annotated[float | None, money(0, parcels.DECLARED_VALUE_MAX, "The contents' value in INR.")]
    contents: Annotated[str | None, optional_text(parcels.CONTENTS_MAX, "What is inside.")]
    service: Literal[parcels.SERVICES] | None = Field(  # type: ignore[valid-type]
        default=None, description="`standard` when left out.")
    payment: Literal[parcels.PAYMENTS] | None = Field(  # type: ignore[valid-type]
        default=None, description="`prepaid` when left out; `cod`: collect `cod_amount` on delivery.")
    cod_amount: Annotated[float | None, money(
        parcels.PAISA, parcels.COD_MAX_DEFAULT,
        "Required with `cod`, refused without; at most COD_MAX (50,000 unless set) and not above "
        "`declared_value`.")]
    # Where it goes on the map, and when (app.domain.points): optional.
    destination_lat: float | None = Field(
        default=None, ge=points.LAT_RANGE[0], le=points.LAT_RANGE[1],
        description="The destination's latitude (WGS 84), with `destination_lon`: both or neither. Without them "
                    "the parcel is placed at its PIN code's centroid.")
    destination_lon: float | None = Field(
        default=None, ge=points.LON_RANGE[0], le=points.LON_RANGE[1],
        description="The destination's longitude (WGS 84), with `destination_lat`.")
    delivery_window: DeliveryWindow | None = Field(
        default=None, description="When the recipient wants the parcel; a window that has ended or lies more than "
                                  f"{points.WINDOW_DAYS_AHEAD} days ahead is a 400 naming `delivery_window`.")
    promised_by: Day | None = Field(
        default=None, json_schema_extra={"format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
        description="The day you promised delivery by (`YYYY-MM-DD`, the end of that day in Waybill's display "
                    f"time zone): today or later, at most {GIVEN_DAYS_AHEAD} days ahead, else a 400 naming "
                    "`promised_by`. Left out: from the promise table (service and zone).")


class Event(Answer):
    status: StatusName
    location: str
    customer_message: str | None = Field(description="What the customer sees with this step.")
    note: str | None = Field(description="Internal note (staff only).")
    actor: str = Field(description="Who recorded it: a staff username, `customer` or `system`.")
    occurred_at: datetime


class Charges(Answer):
    """Money as decimal text to the paisa (`"123.00"`), computed with decimals, never floats."""
    zone: Literal["local", "state", "national"]
    chargeable_weight_kg: Decimal
    freight: Decimal
    cod_fee: Decimal
    tax: Decimal
    total: Decimal
    currency: Literal["INR"]
    rate_card_version: int


class DestinationPoint(Answer):
    lat: float
    lon: float
    precision: Literal[tuple(p.value for p in points.Precision)] = Field(  # type: ignore[valid-type]
        description="`exact`: given at booking or by staff; `pincode`: the PIN code's centroid; `geocoded`: a "
                    "geocoder's answer for the address; `delivered`: where a courier last delivered to it.")


class ZoneRef(Answer):
    id: int
    name: str


class Window(Answer):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")


class Shipment(Answer):
    """A shipment as staff see it, with the contact details."""
    tracking_id: str = Field(pattern=r"^[0-9A-F]{8}$")
    status: StatusName
    sender_name: str
    receiver_name: str
    destination: str
    mobile: str = Field(description="E.164, e.g. `+919876543210`.")
    email: str | None = Field(description="Null when the recipient has only a mobile.")
    sender_mobile: str | None
    sender_email: str | None
    sender_address: str | None
    sender_pincode: str | None
    pickup: bool
    destination_pincode: str | None
    weight_kg: Decimal | None = Field(description="Decimal text, e.g. `\"1.250\"`.")
    length_cm: Decimal | None
    width_cm: Decimal | None
    height_cm: Decimal | None
    pieces: int
    declared_value: Decimal | None = Field(description="INR, decimal text, e.g. `\"1250.00\"`.")
    contents: str | None
    service: Literal[parcels.SERVICES]  # type: ignore[valid-type]
    payment: Literal[parcels.PAYMENTS]  # type: ignore[valid-type]
    cod_amount: Decimal | None = Field(description="INR to collect on delivery, decimal text.")
    charges: Charges | None = Field(description="What the booking was priced at (null if it never was).")
    destination_point: DestinationPoint | None = Field(description="Where the parcel goes on the map (null when "
                                                                   "neither given nor found).")
    zone: ZoneRef | None = Field(description="The delivery zone holding the point (null: none).")
    delivery_window: Window | None = Field(description="When the recipient wants it (null: any time).")
    promised_by: datetime | None = Field(description="The end of the day delivery was promised by (null: booked "
                                                     "before promises were kept).")
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
    mobile: str | None = mobile_text("Only shipments for this mobile, in any common format (see the booking's "
                                     "`mobile`).", default=None)
    limit: QueryInt = Field(default=PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="Shipments per page.")
    cursor: str | None = optional_text(CURSOR_MAX, "Where the page starts: take it from the previous page's "
                                                   "`next`.", CURSOR_PATTERN, min_length=1)


class LabelOptions(QueryParameters):
    size: Literal["a6", "4x6"] | None = Field(default=None, description="Label size (default A6).")


# --- tracking events ---------------------------------------------------------------------------------------------

# The proof a status needs (app.services.shipments.proofs, as staff record it): Delivered names who took the parcel,
# Delivery Attempted says why it failed. Returned to Sender names who took it back only at the end of the return
# leg: that depends on the shipment's current status, which a request's schema cannot see, so the rule is said in
# words (a request without the name is then a 400 naming `received_by`). Other statuses ignore both fields.
PROOF_RULES = [
    {"if": {"properties": {"status": {"const": str(Status.DELIVERED)}}, "required": ["status"]},
     "then": {"required": ["received_by"],
              "properties": {"received_by": {"type": "string", "pattern": NOT_BLANK_NAME}}}},
    {"if": {"properties": {"status": {"const": str(Status.DELIVERY_ATTEMPTED)}}, "required": ["status"]},
     "then": {"required": ["attempt_reason"],
              "properties": {"attempt_reason": {"type": "string", "enum": list(ATTEMPT_REASONS)}}}},
    {"if": {"properties": {"status": {"const": str(Status.RETURNED_TO_SENDER)}}, "required": ["status"]},
     "then": {"description": "`received_by` (who took the parcel back at the sender's) is needed when the "
                             "shipment is RTO In Transit, at the end of the return leg; without it the answer is a "
                             "400 naming the field. Straight after Delivery Attempted it is optional."}},
]


class NewEvent(RequestBody):
    """A status change. Whether it is allowed now is the state machine's call: 409 names the allowed ones.
    Delivered needs `received_by`, Delivery Attempted an `attempt_reason`, Returned to Sender from RTO In Transit
    a `received_by`."""
    model_config = ConfigDict(json_schema_extra={"allOf": PROOF_RULES, "examples": [{
        "status": "Picked Up", "location": "Kochi Hub", "customer_message": "Your parcel is on its way."}]})
    status: StatusName
    location: Annotated[str, text(LOCATION_MAX, "Where it happened (a hub, a city).")]
    note: Annotated[str | None, optional_text(NOTE_MAX, "Internal note, staff only.", MULTI_LINE)]
    customer_message: Annotated[str | None, optional_text(NOTE_MAX, "What the customer sees (tracking page, "
                                                                    "email).", MULTI_LINE)]
    occurred_at: Instant | None = Field(
        default=None, description="When the scan happened by the scanner's clock (ISO 8601 with an offset). The "
                                  "event is ordered by the time the server records it.")
    received_by: Annotated[str | None, optional_text(RECEIVED_BY_MAX, "Who took the parcel (needed with "
                                                                      "Delivered, and with Returned to Sender from "
                                                                      "RTO In Transit).", NAME, min_length=1)]
    attempt_reason: AttemptReason | None = Field(
        default=None, description="Why delivery failed, as a code (needed with Delivery Attempted).")


MAX_CHANGES = 1000  # per bulk call, as scan mode


class NewBulkEvent(NewEvent):
    """One change of a bulk call: a status change, for the shipment it names. A change without the proof its
    status needs is refused on its own (`reason`: `proof_missing`), not the whole call."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "tracking_id": "3EE0AFAD", "status": "Delivered", "location": "Kochi", "received_by": "Ravi"}]})
    tracking_id: Annotated[str, text(32, "The shipment's tracking ID (spaces, hyphens and case ignored).",
                                     pattern=MULTI_LINE)]


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


# --- failed deliveries (app.services.ndr) -------------------------------------------------------------------------

NdrAction = Literal["reattempt", "pickup_at_hub", "return"]


class NdrAnswer(RequestBody):
    """An answer to the parcel's open non-delivery report, as the recipient gives it on /r/<token>. The latest
    answer counts. With `reattempt` only: `date` (today to NDR_MAX_DAYS_AHEAD days ahead, DISPLAY_TIMEZONE),
    `instructions`, `landmark`, `corrected_address`, `alternate_mobile`. What the attempt's reason needs (a 400
    names the field): `address_not_found` a landmark or the corrected address, `rescheduled` a date. A 409 when
    the parcel has no open report, or for a reattempt once NDR_MAX_ATTEMPTS attempts failed."""
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "action": "reattempt", "date": "2026-12-02", "instructions": "Leave it with the guard at gate 2.",
        "landmark": "Opposite the temple"}]})
    action: NdrAction
    date: Annotated[str | None, Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
                                      json_schema_extra={"format": "date"},
                                      description="The day of the next attempt (YYYY-MM-DD).")]
    instructions: Annotated[str | None, optional_text(200, "For the courier's stop.")]
    landmark: Annotated[str | None, optional_text(120, "Something near the address.")]
    corrected_address: Annotated[str | None, optional_text(parcels.ADDRESS_MAX, "The address as it should be.")]
    alternate_mobile: Annotated[str | None, mobile_text("Another number the courier may call.", default=None)]


class NdrReport(Answer):
    """A non-delivery report as staff see it."""
    id: int
    tracking_id: str = Field(pattern=r"^[0-9A-F]{8}$")
    attempt: int
    attempts_left: int
    reason: AttemptReason | None
    reason_label: str | None
    state: Literal["open", "closed"]
    opened_at: datetime
    deadline: datetime | None = Field(description="When the next step happens on its own (none after an answer).")
    reattempt_due_at: datetime | None = Field(description="From then the parcel may be dispatched again.")
    escalated_at: datetime | None
    action: NdrAction | None
    date: str | None
    instructions: str | None
    landmark: str | None
    corrected_address: str | None
    alternate_mobile: str | None
    answered_by: str | None
    answered_at: datetime | None
    outcome: Literal["reattempted", "delivered", "rto", "returned", "cancelled"] | None
    closed_at: datetime | None


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
