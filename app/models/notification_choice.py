from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

CHANNELS = ("email", "sms")
# The sender's notices of the return leg (app.services.outbox.preferences.SENDER_STATUSES) go on channels of their
# own, so a sender's choice and the recipient's never touch each other's messages. They have no admin defaults.
SENDER_CHANNELS = ("sender_email", "sender_sms")
CHOICES = ("all", "delivery_day", "none")


class NotificationChoice(db.Model):
    """What the recipient of one shipment chose to hear on one channel (app.services.outbox.preferences); on a
    sender's channel (SENDER_CHANNELS), what its sender chose.

    No row: the channel's defaults (NotificationDefault) decide. `choice` is one of CHOICES.
    """

    __tablename__ = "notification_choices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    choice: Mapped[str] = mapped_column(String(16), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        UniqueConstraint("shipment_id", "channel", name="uq_notification_choices_shipment_channel"),
    )

    def __repr__(self) -> str:
        return f"<NotificationChoice {self.shipment_id} {self.channel}={self.choice}>"


class NotificationDefault(db.Model):
    """Whether a status notifies on a channel when the recipient made no choice, as set by an admin.

    No row for a (channel, status): the built-in default (every status by email, SMS_STATUSES by SMS).
    """

    __tablename__ = "notification_defaults"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    notify: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False)

    def __repr__(self) -> str:
        return f"<NotificationDefault {self.channel} {self.status}={self.notify}>"
