"""The timer steps of a non-delivery report (app.services.ndr.reports), run by the job runner's `timers.run`: each
handler applies its step's effect in the transaction that completes the step (app.services.operations.timers),
so a step happens exactly once, or not at all when the process dies first.

Rules:
- Each handler takes the parcel's and the report's locks, then checks that its step still applies: the report is
  still open, not answered in a way that makes the step moot, and the parcel is still Delivery Attempted. If not,
  it does nothing (completing the step is the whole effect).
- `ndr.reattempt_due`: the parcel becomes eligible for dispatch again (`reattempt_due_at`).
- `ndr.escalate`: the alert `ndr_escalated` (which is the email to ADMIN_ALERT_EMAILS, in the alerts' digest),
  `escalated_at`, the recipient's last-chance message (outbox channels `ndr_email` and `ndr_sms`, sent whatever
  they chose for status updates: it is about losing the parcel) and the `ndr.rto` step.
- `ndr.rto`: RTO Initiated through the status-change core (actor `system`), so the event, the sender's notice,
  the webhooks and the audit row all happen as for any change; the core closes the report (outcome `rto`).
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from app.domain.status import Status
from app.extensions import db
from app.models import NonDeliveryReport, Notification, Shipment, Timer, TrackingEvent
from app.services.ndr.reports import (
    HOLDING_ACTIONS,
    LAST_CHANCE_EMAIL,
    LAST_CHANCE_SMS,
    locked_open_report,
    plan_next_step,
)
from app.services.operations.alerts import raise_alert
from app.services.outbox.queueing import mark_outbox_changed
from app.services.shipments.status_changes import StatusChange, apply_status_changes
from app.services.staff.audit import SYSTEM

log = logging.getLogger(__name__)

RTO_NOTE = "No answer after the last delivery attempt: returned to origin."


def _report_for(timer: Timer) -> tuple[Shipment, NonDeliveryReport] | None:
    """The step's parcel and open report, locked, when the step still applies to them (see the module)."""
    if timer.shipment_id is None or timer.ndr_id is None:
        return None
    report = locked_open_report(timer.shipment_id)
    if report is None or report.id != timer.ndr_id or report.action in HOLDING_ACTIONS:
        return None
    shipment = db.session.get(Shipment, timer.shipment_id, populate_existing=True)
    if shipment is None or shipment.status != Status.DELIVERY_ATTEMPTED:
        return None
    return shipment, report


def reattempt_due(timer: Timer, now: datetime) -> None:
    """The parcel may be planned again: no answer came within NDR_REATTEMPT_AFTER."""
    found = _report_for(timer)
    if found is None or found[1].reattempt_due_at is not None:
        return
    _, report = found
    report.reattempt_due_at, report.deadline = now, None


def escalate(timer: Timer, now: datetime) -> None:
    """The last attempt failed: alert the supervisors, give the recipient a last chance, schedule the return."""
    found = _report_for(timer)
    if found is None or found[1].escalated_at is not None:
        return
    shipment, report = found
    raise_alert("ndr_escalated", f"ndr:{report.id}", shipment_id=shipment.id, now=now,
                details={"tracking_id": shipment.tracking_id, "attempt": report.attempt, "reason": report.reason})
    report.escalated_at = now
    plan_next_step(report, now)
    messages = [{"shipment_id": shipment.id, "event_id": report.event_id, "channel": channel, "recipient": recipient,
                 "subject": f"Last chance to answer for shipment {shipment.tracking_id}", "state": "pending",
                 "attempts": 0, "next_attempt_at": now, "created_at": now}
                for channel, recipient in ((LAST_CHANCE_SMS, shipment.mobile), (LAST_CHANCE_EMAIL, shipment.email))
                if recipient]
    if messages:
        db.session.execute(Notification.__table__.insert(), messages)
        mark_outbox_changed(db.session)


def return_to_origin(timer: Timer, now: datetime) -> None:
    """No answer NDR_RTO_AFTER after the escalation: RTO Initiated, as the system."""
    found = _report_for(timer)
    if found is None or found[1].escalated_at is None:
        return
    shipment, report = found
    location = db.session.scalar(select(TrackingEvent.location).where(TrackingEvent.id == report.event_id))
    [outcome] = apply_status_changes([StatusChange(shipment.tracking_id, Status.RTO_INITIATED.value,
                                                   location or "Delivery hub", RTO_NOTE)],
                                     SYSTEM, refuse_same_place=False)
    if not outcome.ok:  # the parcel moved on between the check and the change: nothing to do
        log.info("NDR %s: no return to origin for %s (%s).", report.id, shipment.tracking_id, outcome.error)
