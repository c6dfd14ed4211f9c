from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime
from app.models.user import USERNAME_MAX, User

KEY_HASH_LENGTH = 64  # hex SHA-256
KEY_PREFIX_MAX = 16
KEY_NAME_MAX = 100


class ApiKey(db.Model):
    """A staff account's key for the /api/v1 API. Only the SHA-256 of the secret is stored, and its first
    characters (`prefix`) so people can tell their keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(KEY_NAME_MAX), nullable=False)
    prefix: Mapped[str] = mapped_column(String(KEY_PREFIX_MAX), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(KEY_HASH_LENGTH), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_by: Mapped[str] = mapped_column(String(USERNAME_MAX), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="raise")

    def is_valid_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)

    def __repr__(self) -> str:
        return f"<ApiKey {self.id} {self.prefix}… of user {self.user_id}>"
