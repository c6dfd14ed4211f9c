"""Failed deliveries: a non-delivery report per failed attempt, and the recipient's (or staff's) answer to it."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.parcels import ADDRESS_MAX
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

NDR_STATE_MAX = 8
ACTION_MAX = 16
REASON_CODE_MAX = 32
INSTRUCTIONS_MAX = 200
LANDMARK_MAX = 120
ANSWERED_BY_MAX = 64
OUTCOME_MAX = 16


class NonDeliveryReport(db.Model):
    """One failed delivery attempt of a parcel (table `ndrs`), opened by its Delivery Attempted event in that
    event's transaction (app.services.ndr). A parcel has at most one open report: a new attempt closes the one
    before (outcome `reattempted`), and any other status change that settles the parcel closes it too (outcome
    `delivered`, `rto`, `returned`, `cancelled`).

    `state`: open → closed. `attempt` counts the parcel's failed attempts so far (1 for the first). `deadline` is
    when the workflow takes its next step on its own (reattempt due, escalation, RTO), as its timer says; None
    when nothing is pending. `reattempt_due_at`: from then the parcel may be planned again (dispatch), set by the
    reattempt timer or by an answer. `escalated_at`: the supervisors were alerted (the last step before RTO).

    The answer (`action` reattempt | pickup_at_hub | return) is the recipient's through /r/<token>, or staff's or
    an integrator's; the latest answer counts. `answered_by` is "recipient", a staff username or "api:<key
    prefix>". `alternate_mobile` is E.164, staff only like every contact."""

    __tablename__ = "ndrs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("tracking_events.id", ondelete="RESTRICT"), nullable=False,
                                          unique=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str | None] = mapped_column(String(REASON_CODE_MAX))
    state: Mapped[str] = mapped_column(String(NDR_STATE_MAX), nullable=False, default="open")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reattempt_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    action: Mapped[str | None] = mapped_column(String(ACTION_MAX))
    answer_date: Mapped[date | None] = mapped_column(Date)
    instructions: Mapped[str | None] = mapped_column(String(INSTRUCTIONS_MAX))
    landmark: Mapped[str | None] = mapped_column(String(LANDMARK_MAX))
    corrected_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    alternate_mobile: Mapped[str | None] = mapped_column(String(16))
    answered_by: Mapped[str | None] = mapped_column(String(ANSWERED_BY_MAX))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(OUTCOME_MAX))

    __table_args__ = (
        # One open report per parcel, said by the database.
        Index("uq_ndrs_open_shipment", "shipment_id", unique=True,
              postgresql_where=text("state = 'open'"), sqlite_where=text("state = 'open'")),
        Index("ix_ndrs_state_deadline", "state", "deadline"),
        Index("ix_ndrs_shipment", "shipment_id", "attempt"),
    )

    def __repr__(self) -> str:
        return f"<NonDeliveryReport {self.id} shipment={self.shipment_id} attempt={self.attempt} {self.state}>"
