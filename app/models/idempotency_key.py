from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

IDEMPOTENCY_KEY_MAX = 255
REQUEST_HASH_LENGTH = 64  # hex SHA-256 of the operation and its canonical body


class IdempotencyKey(db.Model):
    """The first answer to a write sent with an `Idempotency-Key`, per API key. The unique constraint is what
    makes two concurrent identical requests book once: the second insert waits for the first and then loses."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False)
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(REQUEST_HASH_LENGTH), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("api_key_id", "key", name="uq_idempotency_keys_api_key_key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<IdempotencyKey {self.id} of api key {self.api_key_id}>"
