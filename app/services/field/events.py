"""The actions the courier app sends from the door (POST /courier/events): Delivered, Delivery Attempted and
Picked Up, each recorded offline first, with the app's own id and the time it happened, and sent (perhaps again
and again) when the phone has a connection.

Rules:
- At most once (DESIGN rule 12): each action's id is claimed for the courier first, by inserting its receipt
  (unique on courier and id: the database is the arbiter, also between two replays sent at once). An id already
  claimed answers from its receipt and applies nothing: `duplicate` when it was applied, `refused` again with
  the same error when it was refused. An action that lost a race in the status-change core (`retry`) leaves no
  receipt: the app sends it again.
- Each action is its own unit: a refused one writes nothing but its receipt (and a wrong delivery code's count),
  and never stops the others. A failure of the file store fails the whole request (503) and nothing is kept, so
  the app sends every action again.
- An action applies only to a parcel with an open stop on one of this courier's run sheets (of a day up to
  today); anything else is `not_assigned`, whether the parcel exists or not. Its status must fit the stop: Picked
  Up for a pickup, Delivered or Delivery Attempted for a delivery.
- `at` is when it happened (the event's time) if it lies within the last 7 days and at most 5 minutes ahead.
- Delivered takes the proof the field settings ask for (`required` missing: refused, naming each field; `warn`:
  applied); Delivery Attempted needs a reason from the attempt reason codes. A cash-on-delivery parcel's
  Delivered needs what was collected (`cod_collected`, a decimal string, 0 or more: a shortfall or surplus is
  flagged by the cash ledger, not here) and how (`method`; `upi` needs `upi_reference`), recorded as a
  CodCollection with the event; any other action or parcel refuses them. A shortfall also raises a
  `cod_shortfall` alert with it (app.services.operations.watch).
- With the delivery code on, Delivered needs the recipient's code (app.services.field.delivery_codes), checked
  after every other rule passed, so a refused action never counts as a try.
- Applied through the status-change core (apply_status_changes) in bulk, with the courier as the actor: one
  event, its messages, webhooks and audit row per applied action.
- A Delivered moves the parcel's point on the map to where the courier was (their kept position nearest in time,
  when fresh and accurate enough: app.services.planning.points), and the next parcel to the address starts there.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Row, bindparam, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from app.domain.field import COD_METHODS, OTP_DIGITS, ProofLevel, event_time_problem
from app.domain.privacy import destination_area
from app.domain.status import Status, canonical_status
from app.domain.timeutil import as_utc, isoformat_z, utcnow
from app.domain.tracking_ids import normalise_tracking_id
from app.extensions import db
from app.models import CodCollection, CourierEventReceipt, RunSheetStop, Shipment, User
from app.models.field_records import CLIENT_ID_MAX, ERROR_MAX, REFERENCE_MAX
from app.services.field import delivery_codes
from app.services.field.courier_app import DELIVERY, PICKUP, courier_today, kind_of, proof_asked, stops_query
from app.services.field.delivery_codes import CodeCheck
from app.services.field.settings import get_settings, otp_on
from app.services.operations.watch import raise_cod_shortfalls
from app.services.planning.points import Delivery, record_delivered_points
from app.services.shipments.proofs import ATTEMPT_REASONS, image_from_base64
from app.services.shipments.status_changes import ChangeOutcome, Refusal, StatusChange, apply_status_changes

log = logging.getLogger(__name__)

MAX_EVENTS = 100  # actions in one request
ACTION_STATUSES: dict[str, str] = {Status.DELIVERED: DELIVERY, Status.DELIVERY_ATTEMPTED: DELIVERY,
                                   Status.PICKED_UP: PICKUP}
FIELDS = frozenset({"id", "tracking_id", "status", "at", "received_by", "signature", "photo", "attempt_reason",
                    "cod_collected", "method", "upi_reference", "otp"})
COD_FIELDS = ("cod_collected", "method", "upi_reference")
COLLECTED_MAX = Decimal("9999999.99")  # the column's range (Numeric(9, 2))
_CLIENT_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{CLIENT_ID_MAX}}}")
_UPI_REFERENCE = re.compile(rf"[A-Za-z0-9./_-]{{1,{REFERENCE_MAX}}}")
_AMOUNT = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,2})?")
_OTP = re.compile(rf"[0-9]{{{OTP_DIGITS}}}")
_PRINTABLE_ONLY = re.compile(r"[^\x20-\x7e]")  # a name we did not ask for is stored with the refusal: ASCII only
ECHOED_ID_MAX = 256
_PHOTO_PREFIXES = ("data:image/jpeg;base64,", "data:image/jpg;base64,", "data:image/png;base64,")
_RECEIPTS = CourierEventReceipt.__table__
_CLAIM = {name: insert(_RECEIPTS).on_conflict_do_nothing(index_elements=["courier_id", "client_id"])
          .returning(_RECEIPTS.c.client_id) for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_SETTLE = (update(_RECEIPTS)
           .where(_RECEIPTS.c.courier_id == bindparam("courier"), _RECEIPTS.c.client_id == bindparam("client"))
           .values(outcome=bindparam("settled_outcome"), error=bindparam("settled_error"),
                   event_id=bindparam("settled_event")))


class Outcome:
    """What became of an action: `retry` means nothing was kept, send it again."""
    APPLIED, DUPLICATE, REFUSED, RETRY = "applied", "duplicate", "refused", "retry"


class Error:
    """Why an action was refused (or must be sent again): what the app switches on. `message` says it to people."""
    INVALID = "invalid"  # `fields` names each field and why
    NOT_ASSIGNED = "not_assigned"
    NOT_ALLOWED = "not_allowed"  # the parcel's status does not allow it (e.g. not handed out yet)
    OTP_WRONG = "otp_wrong"
    LOCKED = "locked"
    BUSY = "busy"  # outcome `retry`


NOT_ASSIGNED_MESSAGE = "This parcel is not on your run sheet."


@dataclass(frozen=True)
class EventResult:
    """What became of one action, in the answer's order."""
    client_id: str | None
    outcome: str
    error: str | None = None
    message: str | None = None
    fields: dict[str, str] | None = None
    locked_until: datetime | None = None

    def to_dict(self) -> dict:
        body: dict = {"id": self.client_id, "outcome": self.outcome}
        if self.error is not None:
            body["error"] = self.error
            body["message"] = self.message
        if self.fields:
            body["fields"] = self.fields
        if self.locked_until is not None:
            body["locked_until"] = isoformat_z(self.locked_until)
        return body

    @property
    def refused_for_code(self) -> bool:
        """Refused for the delivery code: none given, a wrong one, or the stop locked after too many."""
        return self.outcome == Outcome.REFUSED and (self.error in (Error.OTP_WRONG, Error.LOCKED)
                                                     or bool(self.fields and "otp" in self.fields))


def _refused(client_id: str | None, error: str, message: str, fields: dict[str, str] | None = None,
             **extra) -> EventResult:
    return EventResult(client_id, Outcome.REFUSED, error, message, fields or None, **extra)


def _invalid(client_id: str | None, fields: dict[str, str]) -> EventResult:
    return _refused(client_id, Error.INVALID, " ".join(f"{name}: {text}" for name, text in fields.items()), fields)


# --- reading one action ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CourierAction:
    """One action as sent, checked for form (not yet against the parcel). Absent optional values are None."""
    client_id: str | None  # None when the id is missing or not one (such an action cannot have a receipt)
    sent_id: str | None  # the id as sent, to echo in the answer (when it is a string of reasonable length)
    tracking_id: str | None  # canonical; None when it is not a tracking ID at all (not on any run sheet)
    status: str | None
    at: datetime | None
    received_by: str | None = None
    signature: str | None = None
    photo: bytes | None = None
    attempt_reason: str | None = None
    cod_collected: Decimal | None = None
    method: str | None = None
    upi_reference: str | None = None
    otp: str | None = None
    problems: dict[str, str] = field(default_factory=dict)

    def sent(self, name: str) -> bool:
        return getattr(self, name) is not None


def read_action(raw: Mapping[str, object]) -> CourierAction:
    """An action from its JSON object, every problem of form named by field (`problems`). Empty strings count
    as not sent."""
    problems: dict[str, str] = {}
    for name in raw:
        if name not in FIELDS:
            problems[_PRINTABLE_ONLY.sub("?", str(name))[:40]] = "Unknown field."
    text = {name: _text(raw.get(name), name, problems) for name in FIELDS - {"cod_collected"}}
    client_id = text["id"]
    if client_id is None:
        problems.setdefault("id", "Required: the action's own id.")
    elif not _CLIENT_ID.fullmatch(client_id):
        problems["id"] = f"At most {CLIENT_ID_MAX} letters, digits and . _ : -"
        client_id = None
    if text["tracking_id"] is None:
        problems.setdefault("tracking_id", "Required.")
    status = canonical_status(text["status"] or "")
    if status not in ACTION_STATUSES:
        problems.setdefault("status", f"Must be one of: {', '.join(ACTION_STATUSES)}.")
        status = None
    return CourierAction(
        client_id=client_id, sent_id=_echoed(raw.get("id")),
        tracking_id=normalise_tracking_id(text["tracking_id"] or ""), status=status, at=_time(text["at"], problems),
        received_by=text["received_by"], signature=text["signature"], photo=_photo(text["photo"], problems),
        attempt_reason=text["attempt_reason"].lower() if text["attempt_reason"] else None,
        cod_collected=_amount(raw.get("cod_collected"), problems),
        method=_checked(text["method"], "method", COD_METHODS, problems),
        upi_reference=_matching(text["upi_reference"], "upi_reference", _UPI_REFERENCE, problems,
                                f"At most {REFERENCE_MAX} letters, digits and . / _ -"),
        otp=_matching(text["otp"], "otp", _OTP, problems, f"The {OTP_DIGITS} digits the recipient received."),
        problems=problems)


def _echoed(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= ECHOED_ID_MAX else None


def _text(value: object, name: str, problems: dict[str, str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        problems[name] = "Must be a string."
        return None
    return value.strip() or None


def _time(value: str | None, problems: dict[str, str]) -> datetime | None:
    if value is None:
        problems.setdefault("at", "Required: when it happened (ISO 8601 with its offset).")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems["at"] = "Must be ISO 8601 with its offset, e.g. 2026-03-01T10:15:00+05:30."
        return None
    return as_utc(parsed)


def _photo(value: str | None, problems: dict[str, str]) -> bytes | None:
    """A JPEG or PNG as a data URL or bare base64 (checked and re-encoded by the proof check)."""
    if value is None:
        return None
    encoded = next((value[len(p):] for p in _PHOTO_PREFIXES if value.startswith(p)), value)
    return image_from_base64(encoded, "photo", problems, "Must be a JPEG or PNG image (a data URL or base64).")


def _amount(value: object, problems: dict[str, str]) -> Decimal | None:
    """Money as a decimal string (or a whole number): 0 or more, to the paisa."""
    if value is None or value == "":
        return None
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or not _AMOUNT.fullmatch(text):
        problems["cod_collected"] = "Must be an amount in rupees, 0 or more, as a string such as \"1250.00\"."
        return None
    amount = Decimal(text).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if amount > COLLECTED_MAX:
        problems["cod_collected"] = f"At most {COLLECTED_MAX}."
        return None
    return amount


def _checked(value: str | None, name: str, allowed: Sequence[str], problems: dict[str, str]) -> str | None:
    if value is not None and value.lower() not in allowed:
        problems[name] = f"Must be one of: {', '.join(allowed)}."
        return None
    return value.lower() if value is not None else None


def _matching(value: str | None, name: str, pattern: re.Pattern, problems: dict[str, str],
              message: str) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        problems[name] = message
        return None
    return value


# --- recording a batch -----------------------------------------------------------------------------------------

def record_events(raw_events: Sequence[Mapping[str, object]], courier: User,
                  now: datetime | None = None) -> list[EventResult]:
    """Record the courier app's actions, in the caller's transaction; one result per action, in order.

    Rules: see the module. `raw_events` are the JSON objects as sent (at most MAX_EVENTS; the caller checks).
    """
    now = now or utcnow()
    actions = [read_action(raw) for raw in raw_events]
    results: list[EventResult | None] = [None] * len(actions)
    first_of: dict[str, int] = {}
    repeats: dict[int, int] = {}
    for index, action in enumerate(actions):
        if action.client_id is None:
            results[index] = _invalid(action.sent_id, action.problems)
        elif action.client_id in first_of:
            repeats[index] = first_of[action.client_id]
        else:
            first_of[action.client_id] = index
    replays = _claim(courier.id, [actions[i] for i in first_of.values()], now)
    todo: list[int] = []
    for client_id, index in first_of.items():
        if client_id in replays:
            results[index] = _replayed(replays[client_id])
        elif actions[index].problems:
            results[index] = _invalid(client_id, actions[index].problems)
        else:
            todo.append(index)
    applied_events: dict[int, int] = {}
    _apply(courier, actions, todo, results, applied_events, now)
    for index, first in repeats.items():
        results[index] = _repeated(results[first])
    _settle([(actions[i].client_id, results[i], applied_events.get(i)) for i in first_of.values()
             if actions[i].client_id not in replays], courier.id)
    return results


def _claim(courier_id: int, actions: list[CourierAction], now: datetime) -> dict[str, CourierEventReceipt]:
    """Insert a receipt for each action's id (sorted: concurrent batches take the rows in one order); the
    receipts of ids claimed before (replays) are returned by id. A receipt says `refused` until it is settled."""
    if not actions:
        return {}
    rows = [{"courier_id": courier_id, "client_id": a.client_id, "tracking_id": a.tracking_id or "",
             "status": a.status or "", "happened_at": a.at, "received_at": now, "outcome": Outcome.REFUSED}
            for a in sorted(actions, key=lambda a: a.client_id)]
    claimed = set(db.session.scalars(_CLAIM[db.session.get_bind().dialect.name], rows))
    replayed = [a.client_id for a in actions if a.client_id not in claimed]
    if not replayed:
        return {}
    return {receipt.client_id: receipt for receipt in db.session.scalars(select(CourierEventReceipt).where(
        CourierEventReceipt.courier_id == courier_id, CourierEventReceipt.client_id.in_(replayed)))}


def _replayed(receipt: CourierEventReceipt) -> EventResult:
    if receipt.outcome == Outcome.APPLIED:
        return EventResult(receipt.client_id, Outcome.DUPLICATE)
    error, _, message = (receipt.error or Error.INVALID).partition(": ")
    return _refused(receipt.client_id, error, message or "Refused when first sent.")


def _repeated(first: EventResult) -> EventResult:
    """The answer to an id sent twice in one batch: what its first copy came to, as a replay."""
    return EventResult(first.client_id, Outcome.DUPLICATE) if first.outcome == Outcome.APPLIED else first


def _settle(settled: list[tuple[str, EventResult, int | None]], courier_id: int) -> None:
    """Write each claimed receipt's outcome; the receipts of actions to be sent again are removed."""
    final = [{"courier": courier_id, "client": client_id, "settled_outcome": result.outcome,
              "settled_error": f"{result.error}: {result.message}"[:ERROR_MAX] if result.error else None,
              "settled_event": event_id}
             for client_id, result, event_id in settled if result.outcome != Outcome.RETRY]
    if final:
        db.session.connection().execute(_SETTLE, final)
    retry = [client_id for client_id, result, _ in settled if result.outcome == Outcome.RETRY]
    if retry:
        db.session.execute(delete(_RECEIPTS).where(_RECEIPTS.c.courier_id == courier_id,
                                                   _RECEIPTS.c.client_id.in_(retry)))


def _apply(courier: User, actions: list[CourierAction], todo: list[int], results: list[EventResult | None],
           applied_events: dict[int, int], now: datetime) -> None:
    """Check and apply the actions at `todo`, in rounds of one action a parcel (a later action on the same
    parcel is checked against what the earlier one left: its stop is closed once it applied)."""
    settings = get_settings()
    today = courier_today(now)
    while todo:
        this_round: dict[str, int] = {}
        later: list[int] = []
        for index in todo:
            key = actions[index].tracking_id or f"?{index}"  # not a tracking ID: refused alone, in the first round
            if key in this_round:
                later.append(index)
            else:
                this_round[key] = index
        _apply_round(courier, actions, list(this_round.values()), results, applied_events, settings, today, now)
        todo = later


@dataclass(frozen=True)
class _Ready:
    index: int
    change: StatusChange
    stop: Row


def _apply_round(courier: User, actions: list[CourierAction], indexes: list[int], results: list[EventResult | None],
                 applied_events: dict[int, int], settings: dict[str, str], today: date, now: datetime) -> None:
    tracking_ids = [actions[i].tracking_id for i in indexes if actions[i].tracking_id]
    # Locked until the request ends (PostgreSQL), so the stop cannot be moved to another courier meanwhile.
    stops = {row.tracking_id: row for row in db.session.execute(
        stops_query(courier.id, today).where(Shipment.tracking_id.in_(tracking_ids))
        .with_for_update(of=RunSheetStop))} if tracking_ids else {}
    ready: list[_Ready] = []
    for index in indexes:
        action = actions[index]
        stop = stops.get(action.tracking_id)
        refusal = _check(action, stop, settings, now)
        if refusal is None and action.status == Status.DELIVERED and otp_on(settings):
            refusal = _check_code(action, stop, now)
        if refusal is not None:
            results[index] = refusal
            continue
        ready.append(_Ready(index, StatusChange(
            action.tracking_id, action.status, _location(stop), received_by=action.received_by,
            attempt_reason=action.attempt_reason, signature=action.signature, photo=action.photo,
            occurred_at=action.at), stop))
    if not ready:
        return
    outcomes = apply_status_changes([item.change for item in ready], courier.username, refuse_same_place=False)
    collections, delivered, places = [], [], []
    for item, outcome in zip(ready, outcomes, strict=True):
        action = actions[item.index]
        results[item.index] = _result_of(action.client_id, outcome)
        if not outcome.ok:
            continue
        applied_events[item.index] = outcome.event.id
        if action.status == Status.DELIVERED:
            delivered.append(item.stop.shipment_id)
            places.append(Delivery(item.stop.shipment_id, courier.id, action.at))
        if action.cod_collected is not None:
            collections.append({"shipment_id": item.stop.shipment_id, "event_id": outcome.event.id,
                                "courier_id": courier.id, "expected": item.stop.cod_amount or Decimal("0.00"),
                                "collected": action.cod_collected, "method": action.method,
                                "upi_reference": action.upi_reference, "collected_at": action.at})
    if collections:
        db.session.execute(CodCollection.__table__.insert(), collections)
        raise_cod_shortfalls(collections, now)  # with the collection that shows it, in its transaction
    delivery_codes.mark_used(delivered, now)
    _keep_delivery_points(places, now)


def _keep_delivery_points(places: list[Delivery], now: datetime) -> None:
    """Where the couriers delivered, for the next parcels there: a refinement, so a failure to keep it is logged
    and never refuses the deliveries themselves (its savepoint is rolled back alone)."""
    if not places:
        return
    try:
        with db.session.begin_nested():
            record_delivered_points(places, now)
    except SQLAlchemyError as error:
        log.warning("Delivery points not kept for %d parcel(s): %s", len(places), type(error).__name__)


def _check(action: CourierAction, stop: Row | None, settings: dict[str, str], now: datetime) -> EventResult | None:
    """Why this action cannot be applied to its stop (None: it can, but for the delivery code)."""
    if stop is None:
        return _refused(action.client_id, Error.NOT_ASSIGNED, NOT_ASSIGNED_MESSAGE)
    problems: dict[str, str] = {}
    late = event_time_problem(action.at, now)
    if late:
        problems["at"] = late
    kind = kind_of(stop)
    if ACTION_STATUSES[action.status] != kind:
        problems["status"] = ("A pickup is recorded as Picked Up." if kind == PICKUP
                              else "Picked Up is for pickups; a delivery is Delivered or Delivery Attempted.")
    elif action.status == Status.DELIVERED:
        problems.update({name: "Required for a delivery." for name, level in proof_asked(kind, settings).items()
                         if level == ProofLevel.REQUIRED and not action.sent(name)})
    elif action.status == Status.DELIVERY_ATTEMPTED:
        if action.attempt_reason is None:
            problems["attempt_reason"] = "Choose why the delivery could not be made."
        elif action.attempt_reason not in ATTEMPT_REASONS:
            problems["attempt_reason"] = f"Must be one of: {', '.join(ATTEMPT_REASONS)}."
    problems.update(_cod_problems(action, stop))
    return _invalid(action.client_id, problems) if problems else None


def _cod_problems(action: CourierAction, stop: Row) -> dict[str, str]:
    collects = stop.payment == "cod" and action.status == Status.DELIVERED
    if not collects:
        return {name: "Only a cash-on-delivery parcel's delivery collects money." for name in COD_FIELDS
                if action.sent(name)}
    problems = {}
    if action.cod_collected is None:
        problems["cod_collected"] = "Enter the amount collected."
    if action.method is None:
        problems["method"] = f"Choose how it was paid: {', '.join(COD_METHODS)}."
    elif action.method == "upi" and action.upi_reference is None:
        problems["upi_reference"] = "Enter the UPI transaction reference."
    elif action.method != "upi" and action.upi_reference is not None:
        problems["upi_reference"] = "Only a UPI payment has a reference."
    return problems


def _check_code(action: CourierAction, stop: Row, now: datetime) -> EventResult | None:
    answer = delivery_codes.check_code(stop.shipment_id, action.otp, now)
    if answer.check in (CodeCheck.NOT_NEEDED, CodeCheck.RIGHT):
        return None
    if answer.check == CodeCheck.MISSING:
        return _invalid(action.client_id, {"otp": "Enter the delivery code the recipient received."})
    if answer.check == CodeCheck.LOCKED:
        return _refused(action.client_id, Error.LOCKED,
                        f"Too many wrong codes: try again after {isoformat_z(answer.locked_until)}.",
                        locked_until=answer.locked_until)
    return _refused(action.client_id, Error.OTP_WRONG, "That is not the recipient's delivery code.",
                    {"otp": f"Wrong code: {answer.tries_left} tries left."})


def _location(stop: Row) -> str:
    """Where the event happened, as the public may see it: the area of the address the courier went to."""
    if kind_of(stop) == PICKUP:
        return destination_area(stop.sender_address or "") or "Pickup address"
    return destination_area(stop.destination) or "Delivery address"


def _result_of(client_id: str, outcome: ChangeOutcome) -> EventResult:
    if outcome.ok:
        return EventResult(client_id, Outcome.APPLIED)
    if outcome.refusal == Refusal.PROOF_MISSING:
        return _invalid(client_id, outcome.fields or {})
    if outcome.refusal == Refusal.NOT_ALLOWED:
        return _refused(client_id, Error.NOT_ALLOWED, outcome.error)
    if outcome.refusal == Refusal.BUSY:
        return EventResult(client_id, Outcome.RETRY, Error.BUSY, "Being updated by someone else: send it again.")
    return _refused(client_id, Error.NOT_ASSIGNED, NOT_ASSIGNED_MESSAGE)
