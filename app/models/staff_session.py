from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime
from app.models.user import USERNAME_MAX, User

TOKEN_HASH_LENGTH = 64  # hex SHA-256
CLIENT_ADDRESS_MAX = 64
USER_AGENT_MAX = 255


class StaffSession(db.Model):
    """One signed-in browser or API client. The cookie carries a random id; only its SHA-256 is stored here."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(TOKEN_HASH_LENGTH), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    client_address: Mapped[str | None] = mapped_column(String(CLIENT_ADDRESS_MAX))
    user_agent: Mapped[str | None] = mapped_column(String(USER_AGENT_MAX))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="raise")

    def is_valid_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > moment

    def __repr__(self) -> str:
        return f"<StaffSession {self.id} of user {self.user_id}>"


class LoginThrottle(db.Model):
    """Failed sign-ins per username (lower case), whether or not such an account exists: the lockout counter.

    Keyed by the name that was typed, so an unknown username locks exactly like a real one (no enumeration).
    """

    __tablename__ = "login_throttles"

    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LoginThrottle {self.username_key}: {self.failures}>"
