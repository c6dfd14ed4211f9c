from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import Boolean, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

USERNAME_MAX = 64
PRODUCTION_HASH_METHOD = "scrypt"  # Werkzeug's default: memory-hard, the cost a stolen table must pay


def password_hash_method() -> str:
    """How new passwords are hashed: the app's PASSWORD_HASH_METHOD (the test settings choose a cheap one),
    else scrypt. A stored hash names its own method, so checking never depends on this."""
    if has_app_context():
        return current_app.config.get("PASSWORD_HASH_METHOD") or PRODUCTION_HASH_METHOD
    return PRODUCTION_HASH_METHOD


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default="operator")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Unique regardless of case in the database itself, not only by a check before the insert.
    __table_args__ = (Index("uq_users_username_lower", func.lower(username), unique=True),)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method=password_hash_method())

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def __repr__(self) -> str:
        return f"<User {self.username} ({self.role})>"
