from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

ACTOR_MAX = 64
ACTION_MAX = 48
TARGET_TYPE_MAX = 32
TARGET_ID_MAX = 64


class AuditEntry(db.Model):
    """One staff or system action. Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX), nullable=False)
    action: Mapped[str] = mapped_column(String(ACTION_MAX), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(TARGET_TYPE_MAX))
    target_id: Mapped[str | None] = mapped_column(String(TARGET_ID_MAX))
    request_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_entries_at_id", "at", "id"),
        Index("ix_audit_entries_target", "target_type", "target_id", "at"),
        Index("ix_audit_entries_actor_at", "actor", "at"),
        Index("ix_audit_entries_action_at", "action", "at"),
    )

    def __repr__(self) -> str:
        return f"<AuditEntry {self.action} by {self.actor} on {self.target_type}:{self.target_id}>"
