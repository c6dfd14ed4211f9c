"""Webhook subscriptions of integrators, and the log of every attempt to deliver to them.

A delivery itself is an outbox row (channel `webhook`, recipient `subscription:<id>`, subject the event type); the
attempts log keeps what each try got back, so staff can see why a receiver fails.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

URL_MAX = 2000
DESCRIPTION_MAX = 200
SEALED_SECRET_MAX = 255  # the seed a signing secret is derived from (43 characters); never the secret itself
REASON_MAX = 255
RESPONSE_KEEP = 1024  # bytes of a receiver's answer kept in the attempts log
ERROR_MAX = 1000


class WebhookSubscription(db.Model):
    """Where to POST which shipment events for one owner (an API key's user, or an admin), and how to sign them.

    The signing secret must be usable to sign, so it cannot be a one-way hash: it is stored sealed (encrypted)
    with a key derived from SECRET_KEY, so a copy of the database alone does not give it away.
    """

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    url: Mapped[str] = mapped_column(String(URL_MAX), nullable=False)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    on_created: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    on_status_changed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    on_delivered: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    on_ndr_opened: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="0")
    on_ndr_resolved: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="0")
    secret_sealed: Mapped[str] = mapped_column(String(SEALED_SECRET_MAX), nullable=False)
    # After a rotation the old secret still signs (a second v1) until previous_secret_until.
    previous_secret_sealed: Mapped[str | None] = mapped_column(String(SEALED_SECRET_MAX))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first failure since the last success
    disabled_reason: Mapped[str | None] = mapped_column(String(REASON_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    @property
    def recipient(self) -> str:
        """What its outbox rows carry as their recipient."""
        return f"subscription:{self.id}"

    def __repr__(self) -> str:
        return f"<WebhookSubscription {self.id} active={self.active}>"


class WebhookAttempt(db.Model):
    """One try to deliver an outbox row to a subscription: what the receiver answered, or what went wrong."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
                                                 nullable=False)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"),
                                                 nullable=False, index=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    response_body: Mapped[str | None] = mapped_column(Text)  # at most RESPONSE_KEEP bytes of it
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX))

    __table_args__ = (
        Index("ix_webhook_attempts_subscription_at", "subscription_id", "attempted_at"),
    )
