"""Reading non-delivery reports: staff's list and a parcel's reports, the recipient's public view, and the answer
a courier's stop shows.

Rules:
- Staff see everything about a report (its answer's mobile, address and instructions included).
- The recipient's page (the holder of the link) sees the tracking ID, the status, the attempt and its reason, the
  deadline and which answer was given, when: never the address, a mobile or the instructions (DESIGN rule 9).
- A courier's stop shows the open report's instructions and landmark (and the corrected address), when the
  latest answer was a reattempt.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.domain.timeutil import isoformat_z, to_local
from app.extensions import db
from app.models import NonDeliveryReport, Shipment
from app.services.ndr.reports import ACTIONS, latest_report
from app.services.shipments.proofs import ATTEMPT_REASONS

LIST_LIMIT = 200
STATES = ("open", "closed")


@dataclass(frozen=True)
class ReportRow:
    """A report with its parcel's tracking ID and status, as staff's list shows it."""

    report: NonDeliveryReport
    tracking_id: str
    status: str


def list_reports(state: str, limit: int = LIST_LIMIT) -> list[ReportRow]:
    """Reports in `state` (open: soonest deadline first; closed: latest closed first), at most `limit`."""
    order = ((NonDeliveryReport.deadline.is_(None), NonDeliveryReport.deadline, NonDeliveryReport.id)
             if state == "open" else (NonDeliveryReport.closed_at.desc(), NonDeliveryReport.id.desc()))
    rows = db.session.execute(
        select(NonDeliveryReport, Shipment.tracking_id, Shipment.status)
        .join(Shipment, Shipment.id == NonDeliveryReport.shipment_id)
        .where(NonDeliveryReport.state == state).order_by(*order).limit(limit)).all()
    return [ReportRow(report, tracking_id, status) for report, tracking_id, status in rows]


def reports_of(shipment_id: int) -> list[NonDeliveryReport]:
    """A parcel's reports, latest first."""
    return list(db.session.scalars(select(NonDeliveryReport).where(NonDeliveryReport.shipment_id == shipment_id)
                                   .order_by(NonDeliveryReport.attempt.desc(), NonDeliveryReport.id.desc())))


def reason_label(reason: str | None) -> str | None:
    return str(ATTEMPT_REASONS[reason]) if reason in ATTEMPT_REASONS else None


def attempts_left(report: NonDeliveryReport) -> int:
    return max(int(current_app.config["NDR_MAX_ATTEMPTS"]) - report.attempt, 0)


def report_to_dict(report: NonDeliveryReport, tracking_id: str, *, staff: bool) -> dict:
    """A report as JSON: staff's (everything) or the public one (see the module's rules)."""
    public = {
        "tracking_id": tracking_id, "attempt": report.attempt, "attempts_left": attempts_left(report),
        "reason": report.reason, "reason_label": reason_label(report.reason), "state": report.state,
        "opened_at": isoformat_z(report.opened_at), "deadline": isoformat_z(report.deadline),
        "action": report.action, "date": _day(report.answer_date), "answered_at": isoformat_z(report.answered_at),
        "outcome": report.outcome, "closed_at": isoformat_z(report.closed_at),
    }
    if not staff:
        return public
    return {**public, "id": report.id, "reattempt_due_at": isoformat_z(report.reattempt_due_at),
            "escalated_at": isoformat_z(report.escalated_at), "instructions": report.instructions,
            "landmark": report.landmark, "corrected_address": report.corrected_address,
            "alternate_mobile": report.alternate_mobile, "answered_by": report.answered_by}


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class StopAnswer:
    """What the recipient asked for, on the courier's stop."""

    instructions: str | None
    landmark: str | None
    corrected_address: str | None
    alternate_mobile: str | None

    def text(self) -> str | None:
        """One line for the stop's note: instructions, landmark, corrected address, another number."""
        parts = [part for part in (self.instructions, self.landmark and f"Landmark: {self.landmark}",
                                   self.corrected_address and f"Address: {self.corrected_address}",
                                   self.alternate_mobile and f"Also call {self.alternate_mobile}") if part]
        return " · ".join(parts) or None


def stop_answers(shipment_ids: Iterable[int]) -> dict[int, StopAnswer]:
    """The reattempt answers of these parcels' open reports, by parcel (one query)."""
    ids = list(shipment_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(NonDeliveryReport.shipment_id, NonDeliveryReport.instructions, NonDeliveryReport.landmark,
               NonDeliveryReport.corrected_address, NonDeliveryReport.alternate_mobile)
        .where(NonDeliveryReport.shipment_id.in_(ids), NonDeliveryReport.state == "open",
               NonDeliveryReport.action == "reattempt")).all()
    return {row.shipment_id: StopAnswer(row.instructions, row.landmark, row.corrected_address, row.alternate_mobile)
            for row in rows}


def due_for_dispatch_clause(now: datetime):
    """SQL on Shipment: a Delivery Attempted parcel may be planned again (its open report is due for a reattempt,
    and its recipient is not collecting it at the hub); one without an open report (attempted before reports
    existed) may too."""
    report = NonDeliveryReport
    open_report = select(report.id).where(report.shipment_id == Shipment.id, report.state == "open")
    due = open_report.where(report.reattempt_due_at.is_not(None), report.reattempt_due_at <= now,
                            (report.action.is_(None)) | (report.action != "pickup_at_hub"))
    return ~open_report.exists() | due.exists()


def answer_days(now: datetime) -> list[date]:
    """The days a reattempt may be asked for: today to NDR_MAX_DAYS_AHEAD days ahead (DISPLAY_TIMEZONE)."""
    today = to_local(now, current_app.config["DISPLAY_TIMEZONE"]).date()
    return [today + timedelta(days=n) for n in range(int(current_app.config["NDR_MAX_DAYS_AHEAD"]) + 1)]


@dataclass(frozen=True)
class AnswerPage:
    """What the recipient's page (/r/<token>) shows: the parcel's latest report and the answers it takes now."""

    tracking_id: str
    status: str
    report: NonDeliveryReport | None
    actions: tuple[str, ...]
    days: list[date]

    def to_dict(self) -> dict:
        return {"tracking_id": self.tracking_id, "status": self.status,
                "ndr": report_to_dict(self.report, self.tracking_id, staff=False) if self.report else None,
                "actions": list(self.actions), "days": [day.isoformat() for day in self.days]}


def answer_page(shipment: Shipment, now: datetime) -> AnswerPage:
    """The recipient's page for a parcel: its latest report; the answers an open one takes (a reattempt only
    while attempts are left)."""
    report = latest_report(shipment.id)
    actions: tuple[str, ...] = ()
    if report is not None and report.state == "open":
        actions = tuple(action for action in ACTIONS if action != "reattempt" or attempts_left(report) > 0)
    return AnswerPage(shipment.tracking_id, shipment.status, report, actions, answer_days(now))
