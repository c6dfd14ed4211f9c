"""The delivery code (delivery OTP): 4 digits the recipient gets when their parcel goes Out for Delivery, and
gives the courier at the door, when the field setting `delivery_otp` is on.

Rules:
- Issued by the status-change core for every Out for Delivery it writes, whatever the path (`issue_for`): a new
  code each time (a new attempt gets a new code; wrong tries and any lock start again).
- The code itself is never stored. It is derived from the Out for Delivery event with a key made from SECRET_KEY
  (HMAC-SHA256), so the outbox worker derives it again when it writes the message (`code_for`), and the
  database keeps only a keyed hash of it to check against. A code has only 10,000 values: any hash without a
  key, slow password hashes included, is undone by trying them all; with the key, a copy of the database alone
  tells no code. The code never enters a log line, the audit trail or an outbox row.
- Sent to the recipient by SMS, and by email when the shipment has an address (outbox channels `code_sms` and
  `code_email`), whatever the recipient chose for status updates: the parcel cannot be had without it.
- Checked at Delivered (`check_code`): a parcel without an unused code needs none (it went out before the
  setting was turned on); a locked code refuses even the right one until the lock ends; a wrong one counts, and
  the OTP_MAX_FAILURES-th wrong one locks the stop for OTP_LOCK_FOR (each wrong one after that locks it again).
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flask import current_app
from sqlalchemy import case, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.domain.field import OTP_DIGITS, OTP_LOCK_FOR, OTP_MAX_FAILURES
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import DeliveryCode, Notification, Shipment, TrackingEvent
from app.services.field.settings import get_settings, otp_on
from app.services.outbox.queueing import mark_outbox_changed

CODE_EMAIL, CODE_SMS = "code_email", "code_sms"
_CODES = DeliveryCode.__table__
_UPSERT = {name: insert(_CODES) for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_KEY_PURPOSE = b"waybill.delivery-code"


def _key() -> bytes:
    """This deployment's key for delivery codes, kept apart from SECRET_KEY's other uses."""
    return hmac.new(current_app.config["SECRET_KEY"].encode(), _KEY_PURPOSE, hashlib.sha256).digest()


def code_for(shipment_id: int, event_id: int) -> str:
    """The code sent for this Out for Delivery event of this shipment (the outbox worker's only way to know it)."""
    digest = hmac.new(_key(), f"code:{shipment_id}:{event_id}".encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest, "big") % 10**OTP_DIGITS).zfill(OTP_DIGITS)


def _code_hash(shipment_id: int, code: str) -> str:
    return hmac.new(_key(), f"check:{shipment_id}:{code}".encode(), hashlib.sha256).hexdigest()


def issue_for(event_ids: Iterable[int]) -> None:
    """Issue a new code for the shipment of each of these Out for Delivery events and queue its messages, in the
    caller's transaction; nothing when the setting is off. Three statements whatever the number of events."""
    event_ids = list(event_ids)
    if not event_ids or not otp_on(get_settings()):
        return
    rows = db.session.execute(
        select(TrackingEvent.id, TrackingEvent.shipment_id, Shipment.tracking_id, Shipment.email, Shipment.mobile)
        .join(Shipment, Shipment.id == TrackingEvent.shipment_id).where(TrackingEvent.id.in_(event_ids))).all()
    now = utcnow()
    statement = _UPSERT[db.session.get_bind().dialect.name]
    db.session.execute(statement.on_conflict_do_update(index_elements=["shipment_id"], set_={
        name: statement.excluded[name] for name in ("code_hash", "issued_at", "failures", "locked_until", "used_at")}),
        [{"shipment_id": row.shipment_id, "code_hash": _code_hash(row.shipment_id, code_for(row.shipment_id, row.id)),
          "issued_at": now, "failures": 0, "locked_until": None, "used_at": None} for row in rows])
    messages = [{"shipment_id": row.shipment_id, "event_id": row.id, "channel": channel, "recipient": recipient,
                 "subject": f"Delivery code for shipment {row.tracking_id}", "state": "pending", "attempts": 0,
                 "next_attempt_at": now, "created_at": now}
                for row in rows for channel, recipient in ((CODE_SMS, row.mobile), (CODE_EMAIL, row.email))
                if recipient]
    if messages:
        db.session.execute(Notification.__table__.insert(), messages)
        mark_outbox_changed(db.session)


class CodeCheck(StrEnum):
    NOT_NEEDED = "not_needed"  # no unused code: nothing to check
    MISSING = "missing"
    RIGHT = "right"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True)
class CodeAnswer:
    check: CodeCheck
    tries_left: int = 0
    locked_until: datetime | None = None


def pending_codes(shipment_ids: Iterable[int]) -> set[int]:
    """Which of these shipments have an issued code not used yet (a delivery that needs it)."""
    ids = list(shipment_ids)
    if not ids:
        return set()
    return set(db.session.scalars(select(DeliveryCode.shipment_id).where(DeliveryCode.shipment_id.in_(ids),
                                                                         DeliveryCode.used_at.is_(None))))


def check_code(shipment_id: int, code: str | None, now: datetime) -> CodeAnswer:
    """The code given for a delivery of this shipment, checked (rules: see the module). A wrong code is counted
    in the caller's transaction, by one UPDATE (so concurrent tries each count)."""
    current = db.session.execute(select(DeliveryCode.code_hash, DeliveryCode.locked_until).where(
        DeliveryCode.shipment_id == shipment_id, DeliveryCode.used_at.is_(None))).first()
    if current is None:
        return CodeAnswer(CodeCheck.NOT_NEEDED)
    if current.locked_until is not None and current.locked_until > now:
        return CodeAnswer(CodeCheck.LOCKED, locked_until=current.locked_until)
    if code is None:
        return CodeAnswer(CodeCheck.MISSING)
    if hmac.compare_digest(current.code_hash, _code_hash(shipment_id, code)):
        return CodeAnswer(CodeCheck.RIGHT)
    failures, locked_until = db.session.execute(
        update(_CODES).where(_CODES.c.shipment_id == shipment_id)
        .values(failures=_CODES.c.failures + 1,
                locked_until=case((_CODES.c.failures + 1 >= OTP_MAX_FAILURES,
                                   literal(now + OTP_LOCK_FOR, _CODES.c.locked_until.type)),
                                  else_=_CODES.c.locked_until))
        .returning(_CODES.c.failures, _CODES.c.locked_until)).one()
    if failures >= OTP_MAX_FAILURES:
        return CodeAnswer(CodeCheck.LOCKED, locked_until=locked_until)
    return CodeAnswer(CodeCheck.WRONG, tries_left=OTP_MAX_FAILURES - failures)


def mark_used(shipment_ids: Iterable[int], now: datetime) -> None:
    """The codes of these delivered shipments are spent."""
    ids = list(shipment_ids)
    if ids:
        db.session.execute(update(_CODES).where(_CODES.c.shipment_id.in_(ids), _CODES.c.used_at.is_(None))
                           .values(used_at=now))
