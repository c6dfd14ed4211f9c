"""Answers to a non-delivery report: the recipient's (through /r/<token>), staff's or an integrator's, all through
`answer_report` with the same body.

Rules:
- `action` is `reattempt`, `pickup_at_hub` or `return`. The latest answer counts: an open report may be answered
  again, and each answer replaces the one before (its fields included). A closed report, or none, is a 409.
- `reattempt`: refused (409, "no attempts left") once the report's attempt reached NDR_MAX_ATTEMPTS. Optional
  `date` (YYYY-MM-DD, from today to NDR_MAX_DAYS_AHEAD days ahead in DISPLAY_TIMEZONE): the parcel is eligible
  for dispatch from the start of that day, else at once. Optional `instructions` (at most 200 characters, shown
  on the courier's stop), `landmark`, `corrected_address`, `alternate_mobile` (normalised to E.164 with the
  DEFAULT_PHONE_REGION, as booking does). What the attempt's reason requires: `address_not_found` a landmark or
  the corrected address; `rescheduled` a date; the others nothing. Fields that go with a reattempt only are
  ignored with the other actions (the page's form always posts them all).
- `pickup_at_hub`: the parcel waits at the hub for its recipient (not dispatched; the hub records Delivered).
- `return`: RTO Initiated now, through the status-change core, by the answer's actor; that closes the report.
- Any problem with the fields is one 400 naming each. An answer cancels the pending step it makes moot (all of
  them: nothing happens on its own after an answer). Every answer writes one `ndr_answered` audit row (action,
  tracking ID, attempt, how it came; never the mobile, the address or the instructions).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from flask_babel import gettext
from sqlalchemy import select

from app.domain.status import Status
from app.domain.timeutil import local_day_start
from app.errors import Conflict, ValidationError
from app.extensions import db
from app.models import NonDeliveryReport, Shipment, TrackingEvent
from app.models.ndr import INSTRUCTIONS_MAX, LANDMARK_MAX
from app.services.ndr.queries import answer_days
from app.services.ndr.reports import ACTIONS, locked_open_report, plan_next_step
from app.services.shipments.contacts import ContactError, normalise_mobile
from app.services.shipments.status_changes import record_status_change
from app.services.staff.audit import record_audit

ADDRESS_MAX = NonDeliveryReport.__table__.c.corrected_address.type.length
ANSWER_FIELDS = ("action", "date", "instructions", "landmark", "corrected_address", "alternate_mobile")
RETURN_NOTE = "Return to origin asked in the answer to the failed delivery."


@dataclass(frozen=True)
class Answer:
    """A checked answer, ready to record."""

    action: str
    day: date | None = None
    instructions: str | None = None
    landmark: str | None = None
    corrected_address: str | None = None
    alternate_mobile: str | None = None


def answer_report(shipment: Shipment, body: Mapping[str, object], *, actor: str, answered_by: str, via: str,
                  now: datetime) -> NonDeliveryReport:
    """Record an answer to the parcel's open report (rules: see the module), in the caller's transaction; the
    report as it now is. Conflict (409) when there is no open report or no attempt is left; ValidationError (400)
    naming each bad field."""
    report = locked_open_report(shipment.id)
    if report is None:
        raise Conflict(gettext("There is no failed delivery waiting for an answer for this parcel."))
    answer = check_answer(body, report.reason, now)
    if answer.action == "reattempt" and report.attempt >= int(current_app.config["NDR_MAX_ATTEMPTS"]):
        raise Conflict(gettext("No attempts left: choose to collect the parcel at the hub or to send it back."))
    report.action, report.answered_by, report.answered_at = answer.action, answered_by[:64], now
    report.answer_date, report.instructions, report.landmark = answer.day, answer.instructions, answer.landmark
    report.corrected_address, report.alternate_mobile = answer.corrected_address, answer.alternate_mobile
    if answer.action == "reattempt":
        report.reattempt_due_at = (max(local_day_start(answer.day, _timezone()), now) if answer.day else now)
    elif answer.action == "pickup_at_hub":
        report.reattempt_due_at = None
    plan_next_step(report, now)  # an answer leaves nothing pending (reports.HOLDING_ACTIONS), or closes it
    record_audit("ndr_answered", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details={"action": answer.action, "tracking_id": shipment.tracking_id, "attempt": report.attempt,
                          "via": via})
    if answer.action == "return":
        location = db.session.scalar(select(TrackingEvent.location).where(TrackingEvent.id == report.event_id))
        record_status_change(shipment.tracking_id, Status.RTO_INITIATED.value, location or "Delivery hub",
                             RETURN_NOTE, actor)
    db.session.flush()
    return report


def check_answer(body: Mapping[str, object], reason: str | None, now: datetime) -> Answer:
    """The answer in `body`, checked against the rules (see the module) for a report of `reason`."""
    problems: dict[str, str] = {}
    unknown = [name for name in body if name not in ANSWER_FIELDS]
    for name in unknown[:5]:
        problems[str(name)[:40]] = gettext("Unknown field.")
    values: dict[str, str | None] = {}
    for name in ANSWER_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            problems[name] = gettext("Must be a string.")
            continue
        values[name] = " ".join(value.split()) if isinstance(value, str) and value.strip() else None
    action = values.get("action")
    if "action" not in problems and action not in ACTIONS:
        problems["action"] = gettext("Choose one of: %(actions)s.", actions=", ".join(ACTIONS))
    if action != "reattempt" or problems.get("action"):
        if problems:
            raise ValidationError(gettext("The answer was not recorded."), fields=problems)
        return Answer(action)  # type: ignore[arg-type]
    day = _checked_day(values.get("date"), now, problems)
    for name, limit in (("instructions", INSTRUCTIONS_MAX), ("landmark", LANDMARK_MAX),
                        ("corrected_address", ADDRESS_MAX)):
        if values.get(name) and len(values[name]) > limit:
            problems[name] = gettext("At most %(max)d characters.", max=limit)
    mobile = None
    if values.get("alternate_mobile"):
        try:
            mobile = normalise_mobile(values["alternate_mobile"], current_app.config["DEFAULT_PHONE_REGION"])
        except ContactError as error:
            problems["alternate_mobile"] = str(error)
    if reason == "address_not_found" and not (values.get("landmark") or values.get("corrected_address")) \
            and "landmark" not in problems:
        problems["landmark"] = gettext("The courier could not find the address: give a landmark or the corrected "
                                       "address.")
    if reason == "rescheduled" and values.get("date") is None and "date" not in problems:
        problems["date"] = gettext("You asked for another day: choose the day.")
    if problems:
        raise ValidationError(gettext("The answer was not recorded."), fields=problems)
    return Answer(action, day, values.get("instructions"), values.get("landmark"), values.get("corrected_address"),
                  mobile)


def _checked_day(text: str | None, now: datetime, problems: dict[str, str]) -> date | None:
    if text is None:
        return None
    days = answer_days(now)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        problems["date"] = gettext("A date as YYYY-MM-DD.")
        return None
    if not days[0] <= day <= days[-1]:
        problems["date"] = gettext("Choose a day from %(first)s to %(last)s.", first=days[0].isoformat(),
                                   last=days[-1].isoformat())
        return None
    return day


def _timezone() -> str:
    return current_app.config["DISPLAY_TIMEZONE"]
