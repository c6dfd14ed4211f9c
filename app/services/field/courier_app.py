"""A courier's own stops, as the courier app shows them (GET /courier/stops) and as the actions it sends find them
(app.services.field.events).

Rules:
- A courier sees only the stops of their own run sheets: the open ones of any day up to today (a stop left open
  yesterday is still to be done), then the ones done today (the day's progress), by run sheet date and sequence.
  A run sheet of a later day is not theirs to act on yet.
- They are staff for their stops: full names, mobiles and addresses. For a pickup the place to go is the
  sender's (`visit`), for a delivery the recipient's.
- Each stop says what its actions need: the proof asked for (the field settings; a pickup takes none) and
  whether Delivered needs the recipient's delivery code.
- An open delivery stop shows the recipient's answer to the last failed attempt, when it asked for a reattempt
  (`instructions`: their instructions, landmark, corrected address and another number to call, in one line).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from flask import current_app
from sqlalchemy import Select, select

from app.domain.field import PROOF_KINDS, ProofLevel, StopState, stop_kind
from app.domain.pricing import money_text
from app.domain.status import Status
from app.domain.timeutil import local_day_start, to_local
from app.extensions import db
from app.models import RunSheet, RunSheetStop, Shipment, User
from app.services.field import delivery_codes
from app.services.field.settings import get_settings, otp_on
from app.services.ndr.queries import StopAnswer, stop_answers
from app.services.shipments.proofs import ATTEMPT_REASONS

PICKUP, DELIVERY = "pickup", "delivery"
# The outcomes that end a pickup stop: the parcel was collected, or the booking was called off at the sender's.
_PICKUP_OUTCOMES = frozenset({Status.PICKED_UP, Status.CANCELLED})
_STOP_COLUMNS = (RunSheetStop.sequence, RunSheetStop.state, RunSheetStop.outcome, RunSheet.date.label("sheet_date"),
                 Shipment.id.label("shipment_id"), Shipment.tracking_id, Shipment.status, Shipment.pickup,
                 Shipment.receiver_name, Shipment.mobile, Shipment.destination, Shipment.destination_pincode,
                 Shipment.sender_name, Shipment.sender_mobile, Shipment.sender_address, Shipment.sender_pincode,
                 Shipment.pieces, Shipment.payment, Shipment.cod_amount)


def courier_today(now: datetime) -> date:
    """The courier's day (DISPLAY_TIMEZONE): run sheets are dated by it."""
    return to_local(now, current_app.config["DISPLAY_TIMEZONE"]).date()


def stops_query(courier_id: int, today: date) -> Select:
    """The courier's open stops of any day up to `today`, with their parcels (at most one a parcel: a parcel
    has one open stop anywhere), in run sheet date and sequence order."""
    return _stops_of(courier_id).where(RunSheet.date <= today, RunSheetStop.state == StopState.OPEN.value)


def _stops_of(courier_id: int) -> Select:
    return (select(*_STOP_COLUMNS)
            .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
            .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
            .where(RunSheet.courier_id == courier_id)
            .order_by(RunSheet.date, RunSheetStop.sequence, RunSheetStop.id))


def kind_of(stop) -> str:
    """`pickup` or `delivery`: an open stop by its parcel's status, a done one by the status that ended it."""
    if stop.state == StopState.OPEN:
        return stop_kind(stop.status, stop.pickup) or DELIVERY
    return PICKUP if stop.pickup and stop.outcome in _PICKUP_OUTCOMES else DELIVERY


@dataclass(frozen=True)
class CourierStop:
    tracking_id: str
    sequence: int
    sheet_date: date
    status: str
    state: str
    kind: str
    receiver_name: str
    mobile: str
    destination: str
    destination_pincode: str | None
    visit: dict[str, str | None]
    pieces: int
    payment: str
    cod_amount: Decimal | None
    otp_required: bool
    proof: dict[str, str]
    # The recipient's answer to the last failed attempt (app.services.ndr): instructions, landmark, address and
    # another number to call, in one line.
    instructions: str | None = None

    def to_dict(self) -> dict:
        return {"tracking_id": self.tracking_id, "sequence": self.sequence, "date": self.sheet_date.isoformat(),
                "status": self.status, "state": self.state, "kind": self.kind, "receiver_name": self.receiver_name,
                "mobile": self.mobile, "destination": self.destination,
                "destination_pincode": self.destination_pincode, "visit": self.visit, "pieces": self.pieces,
                "payment": self.payment,
                "cod_amount": money_text(self.cod_amount) if self.cod_amount is not None else None,
                "instructions": self.instructions, "otp_required": self.otp_required, "proof": self.proof}


@dataclass(frozen=True)
class CourierDay:
    courier: str
    day: date
    stops: list[CourierStop]

    def to_dict(self) -> dict:
        return {"courier": self.courier, "date": self.day.isoformat(),
                "stops": [stop.to_dict() for stop in self.stops],
                "attempt_reasons": [{"code": code, "label": str(label)} for code, label in ATTEMPT_REASONS.items()]}


def courier_stops(courier: User, now: datetime) -> CourierDay:
    """The courier's stops: open ones up to today, then today's done ones (rules: see the module)."""
    today = courier_today(now)
    rows = list(db.session.execute(stops_query(courier.id, today)))
    rows += list(db.session.execute(_stops_of(courier.id).where(
        RunSheetStop.state == StopState.DONE.value,
        RunSheetStop.closed_at >= local_day_start(today, current_app.config["DISPLAY_TIMEZONE"]))))
    settings = get_settings()
    with_codes = delivery_codes.pending_codes(row.shipment_id for row in rows if row.state == StopState.OPEN) \
        if otp_on(settings) else set()
    answers = stop_answers(row.shipment_id for row in rows if row.state == StopState.OPEN)
    return CourierDay(courier.username, today, [_stop(row, settings, row.shipment_id in with_codes,
                                                      answers.get(row.shipment_id)) for row in rows])


def proof_asked(kind: str, settings: dict[str, str]) -> dict[str, str]:
    """What proof each kind of stop asks for: a delivery's per the settings, a pickup's none."""
    return {proof: settings[proof] if kind == DELIVERY else ProofLevel.OFF.value for proof in PROOF_KINDS}


def _stop(row, settings: dict[str, str], has_code: bool, answer: StopAnswer | None = None) -> CourierStop:
    kind = kind_of(row)
    visit = ({"name": row.sender_name, "mobile": row.sender_mobile, "address": row.sender_address,
              "pincode": row.sender_pincode} if kind == PICKUP else
             {"name": row.receiver_name, "mobile": row.mobile, "address": row.destination,
              "pincode": row.destination_pincode})
    return CourierStop(
        tracking_id=row.tracking_id, sequence=row.sequence, sheet_date=row.sheet_date, status=row.status,
        state=row.state, kind=kind, receiver_name=row.receiver_name, mobile=row.mobile, destination=row.destination,
        destination_pincode=row.destination_pincode, visit=visit, pieces=row.pieces, payment=row.payment,
        cod_amount=row.cod_amount, otp_required=has_code and kind == DELIVERY and row.state == StopState.OPEN,
        proof=proof_asked(kind, settings), instructions=answer.text() if answer and kind == DELIVERY else None)

