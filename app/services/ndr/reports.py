"""Non-delivery reports (NDR): a failed delivery attempt opens one, in the transaction of its Delivery Attempted
event, and what happens to the parcel next is a chain of timer steps (rule 13) until the parcel moves on.

Rules:
- Opened by the status-change core (`on_status_changes`, called from app.services.shipments.status_changes with
  the accepted changes of a batch, in their transaction) for a Delivery Attempted that follows Out for Delivery:
  a real attempt. `attempt` is the parcel's count of reports, this one included. A report still open is closed
  first (outcome `reattempted`): a parcel has at most one open report (a partial unique index says so too).
- Closed by the status that settles the parcel: Delivered → `delivered`, RTO Initiated → `rto`, Returned to
  Sender → `returned`, Cancelled → `cancelled`; its pending steps are cancelled. Out for Delivery does not close
  it (the reattempt is under way; the courier's stop shows the answer's instructions). On Hold pauses it (its
  pending step is cancelled) and the release (Delivery Attempted again, from On Hold) plans the step again.
- The next step (`plan_next_step`), keyed `ndr:<id>:<step>` and kept in `deadline`: for attempt n below
  NDR_MAX_ATTEMPTS and no answer, `ndr.reattempt_due` at opened_at + NDR_REATTEMPT_AFTER[n-1] (the last value
  repeats); from NDR_MAX_ATTEMPTS on, `ndr.escalate` at once, then `ndr.rto` NDR_RTO_AFTER after the escalation.
  An answer of `reattempt` or `pickup_at_hub` leaves no step pending (app.services.ndr.answers).
- Webhooks `shipment.ndr_opened` and `shipment.ndr_resolved` are queued with the change (outbox).
- Locks, on PostgreSQL: the parcel's row, then its open report (FOR UPDATE), by everything that changes a report
  (the status-change core holds the parcel's row from its compare-and-set), so answers, steps and status changes
  of one parcel take turns. Pending steps are cancelled with SKIP LOCKED: a step being run right now is left to
  its handler, which checks again, under those locks, that it still applies.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext
from itsdangerous import BadData, Signer
from sqlalchemy import func, select, update

from app.domain import links
from app.domain.status import Status, is_final
from app.domain.timeutil import as_utc
from app.errors import DomainError, NotFound
from app.extensions import db
from app.models import NonDeliveryReport, Shipment, Timer
from app.services.operations import timers
from app.services.outbox.webhooks import NDR_OPENED, NDR_RESOLVED, queue_ndr_deliveries

REATTEMPT_DUE, ESCALATE, RTO = "ndr.reattempt_due", "ndr.escalate", "ndr.rto"
STEP_KINDS: tuple[str, ...] = (REATTEMPT_DUE, ESCALATE, RTO)
_STEP_KEYS = {REATTEMPT_DUE: "reattempt", ESCALATE: "escalate", RTO: "rto"}
ACTIONS: tuple[str, ...] = ("reattempt", "pickup_at_hub", "return")
# Answers after which nothing happens on its own: the parcel waits for its reattempt or for its collection.
HOLDING_ACTIONS = frozenset({"reattempt", "pickup_at_hub"})
CLOSING_OUTCOMES: dict[str, str] = {Status.DELIVERED: "delivered", Status.RTO_INITIATED: "rto",
                                    Status.RETURNED_TO_SENDER: "returned", Status.CANCELLED: "cancelled"}
REATTEMPTED = "reattempted"
# The recipient's last chance after the last attempt (app.services.ndr.steps): outbox channels of their own.
LAST_CHANCE_EMAIL, LAST_CHANCE_SMS = "ndr_email", "ndr_sms"
RECIPIENT = "recipient"  # the actor of the recipient's answers (audit, events)
TOKEN_SALT = "waybill.ndr-answer"  # noqa: S105 - a salt (public by design), not a secret
_RELEVANT = frozenset({Status.DELIVERY_ATTEMPTED, Status.ON_HOLD, *CLOSING_OUTCOMES})
_TIMERS = Timer.__table__


@dataclass(frozen=True)
class AcceptedChange:
    """One status change the core accepted, as the reports need it."""

    shipment_id: int
    from_status: str
    to_status: str
    event_id: int
    attempt_reason: str | None = None


class LinkExpired(DomainError):
    """The recipient's link of a parcel whose journey is over (Delivered, Returned to Sender, Cancelled)."""

    status_code = 410
    default_message = "This link has expired: the parcel's journey is over."


# --- the status-change core's hook ------------------------------------------------------------------------------

def on_status_changes(changes: Iterable[AcceptedChange], now: datetime) -> None:
    """Open, close, pause or resume the reports of these accepted changes (rules: see the module), in the
    caller's transaction. Nothing at all (not a query) for a batch without a status that concerns a report, and
    one query for the rest (which of their parcels have an open report) before any report is locked: most of a
    courier's batch is deliveries of parcels that never failed."""
    relevant = [change for change in changes if change.to_status in _RELEVANT]
    if not relevant:
        return
    with_report = set(db.session.scalars(
        select(NonDeliveryReport.shipment_id).where(
            NonDeliveryReport.state == "open",
            NonDeliveryReport.shipment_id.in_({change.shipment_id for change in relevant}))))
    for change in relevant:
        if change.to_status == Status.DELIVERY_ATTEMPTED and change.from_status == Status.OUT_FOR_DELIVERY:
            _open(change, now, has_open=change.shipment_id in with_report)
            continue
        if change.shipment_id not in with_report:
            continue
        report = locked_open_report(change.shipment_id, lock_shipment=False)
        if report is None:
            continue
        if change.to_status in CLOSING_OUTCOMES:
            close_report(report, CLOSING_OUTCOMES[change.to_status], now)
        elif change.to_status == Status.ON_HOLD:
            _cancel_steps(report)
        else:  # Delivery Attempted again from On Hold: the hold is released
            plan_next_step(report, now)


def _open(change: AcceptedChange, now: datetime, *, has_open: bool = True) -> NonDeliveryReport:
    previous = locked_open_report(change.shipment_id, lock_shipment=False) if has_open else None
    if previous is not None:
        close_report(previous, REATTEMPTED, now)
        db.session.flush()  # closed before the new one is inserted: one open report per parcel
    attempt = (db.session.scalar(select(func.count()).select_from(NonDeliveryReport)
                                 .where(NonDeliveryReport.shipment_id == change.shipment_id)) or 0) + 1
    report = NonDeliveryReport(shipment_id=change.shipment_id, event_id=change.event_id, attempt=attempt,
                               reason=change.attempt_reason, state="open", opened_at=now)
    db.session.add(report)
    db.session.flush()
    plan_next_step(report, now)
    queue_ndr_deliveries(NDR_OPENED, report.event_id, report.shipment_id, now)
    return report


def close_report(report: NonDeliveryReport, outcome: str, now: datetime) -> None:
    """Close an open report with `outcome`, cancel its pending steps and queue `shipment.ndr_resolved`."""
    _cancel_steps(report)
    report.state, report.outcome, report.closed_at = "closed", outcome, now
    queue_ndr_deliveries(NDR_RESOLVED, report.event_id, report.shipment_id, now)


# --- the steps --------------------------------------------------------------------------------------------------

def step_key(report_id: int, kind: str) -> str:
    return f"ndr:{report_id}:{_STEP_KEYS[kind]}"


def plan_next_step(report: NonDeliveryReport, now: datetime) -> datetime | None:
    """Cancel the report's pending step and schedule the one that applies now (rules: see the module); its due
    time, also kept in `deadline` (None: nothing pending)."""
    _cancel_steps(report)
    if report.state != "open" or report.action in HOLDING_ACTIONS:
        return None
    config = current_app.config
    if report.attempt < int(config["NDR_MAX_ATTEMPTS"]):
        if report.reattempt_due_at is not None:
            return None
        delays: tuple[timedelta, ...] = tuple(config["NDR_REATTEMPT_AFTER"])
        kind, due = REATTEMPT_DUE, as_utc(report.opened_at) + delays[min(report.attempt, len(delays)) - 1]
    elif report.escalated_at is None:
        kind, due = ESCALATE, now
    else:
        kind, due = RTO, as_utc(report.escalated_at) + config["NDR_RTO_AFTER"]
    due = max(due, now)
    timers.schedule(kind, step_key(report.id, kind), due, shipment_id=report.shipment_id, ndr_id=report.id)
    report.deadline = due
    return due


def _cancel_steps(report: NonDeliveryReport) -> None:
    """Cancel the report's pending steps, except one being run at this moment (locked by its handler, which
    checks for itself whether it still applies)."""
    pending = (select(_TIMERS.c.id).where(_TIMERS.c.ndr_id == report.id, _TIMERS.c.state == "pending")
               .with_for_update(skip_locked=True))
    ids = list(db.session.scalars(pending))
    if ids:
        db.session.execute(update(_TIMERS).where(_TIMERS.c.id.in_(ids)).values(state="cancelled"))
    report.deadline = None


# --- reading and locking ----------------------------------------------------------------------------------------

def locked_open_report(shipment_id: int, *, lock_shipment: bool = True) -> NonDeliveryReport | None:
    """The parcel's open report, its row locked (after the parcel's row, unless the caller holds it already)
    and read afresh; None when there is none."""
    if lock_shipment:
        db.session.execute(select(Shipment.id).where(Shipment.id == shipment_id).with_for_update())
    return db.session.scalars(
        select(NonDeliveryReport).where(NonDeliveryReport.shipment_id == shipment_id,
                                        NonDeliveryReport.state == "open")
        .with_for_update().execution_options(populate_existing=True)).first()


def latest_report(shipment_id: int) -> NonDeliveryReport | None:
    """The parcel's latest report, open or closed."""
    return db.session.scalars(select(NonDeliveryReport).where(NonDeliveryReport.shipment_id == shipment_id)
                              .order_by(NonDeliveryReport.attempt.desc(), NonDeliveryReport.id.desc())).first()


def open_report_of(shipment_id: int) -> NonDeliveryReport | None:
    return db.session.scalars(select(NonDeliveryReport).where(NonDeliveryReport.shipment_id == shipment_id,
                                                              NonDeliveryReport.state == "open")).first()


# --- the recipient's link ---------------------------------------------------------------------------------------

def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def answer_token(shipment_id: int) -> str:
    """The signed token of a parcel's answer page (per parcel, no expiry of its own: it expires with the
    parcel's journey)."""
    return _signer().sign(str(shipment_id)).decode()


def answer_url(shipment_id: int, language: str | None = None) -> str:
    """The absolute URL of a parcel's answer page (/r/<token>), for messages; with `language` (the booking's),
    the page opens in it."""
    url = links.ndr_url(current_app.config["PUBLIC_BASE_URL"], answer_token(shipment_id))
    return f"{url}?lang={language}" if language else url


def answer_url_if_open(shipment_id: int) -> str | None:
    """The parcel's answer page while it has an open report, else None (the tracking page's link, for visitors
    who gave the last 4 digits of the mobile)."""
    return answer_url(shipment_id) if open_report_of(shipment_id) is not None else None


def shipment_for_token(token: str) -> Shipment:
    """The parcel a token names. NotFound for anything we did not sign, LinkExpired (410) once the parcel's
    journey is over."""
    try:
        value = _signer().unsign(token.encode("ascii")).decode("ascii")
    except (BadData, UnicodeError, ValueError):
        value = ""
    shipment = db.session.get(Shipment, int(value)) if value.isdigit() and 0 < int(value) < 2**31 else None
    if shipment is None:
        raise NotFound(gettext("This link is not valid. Use the link from your latest message."))
    if is_final(shipment.status):
        raise LinkExpired(gettext("This link has expired: the parcel's journey is over."))
    return shipment
