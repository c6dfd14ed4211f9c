"""Staff accounts."""
from __future__ import annotations

import logging

from sqlalchemy import func, select

from app.errors import ValidationError
from app.extensions import db
from app.models import User
from app.models.user import USERNAME_MAX
from app.services.roles import ROLES
from app.timeutil import utcnow

log = logging.getLogger(__name__)
PASSWORD_MIN = 8


def find_user(username: str) -> User | None:
    return db.session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).first()


def create_user(username: str, password: str, role: str = "operator") -> User:
    """A new staff account. Usernames are unique regardless of case."""
    username = username.strip()
    fields = {}
    if not username or len(username) > USERNAME_MAX:
        fields["username"] = f"A username has 1 to {USERNAME_MAX} characters."
    elif find_user(username) is not None:
        fields["username"] = "That username is taken."
    if role not in ROLES:
        fields["role"] = f"Role must be one of: {', '.join(ROLES)}."
    if len(password) < PASSWORD_MIN:
        fields["password"] = f"A password has at least {PASSWORD_MIN} characters."
    if fields:
        raise ValidationError(fields=fields)
    user = User(username=username, role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def ensure_admin(username: str, password: str) -> User:
    """Make sure the bootstrap admin exists, is active, is an admin and has this password."""
    user = find_user(username)
    if user is None:
        user = User(username=username.strip(), role="admin", active=True)
        user.set_password(password)
        db.session.add(user)
        log.info("Created the admin user %s", user.username)
    else:
        if not user.check_password(password):
            user.set_password(password)
            log.info("Changed the password of admin user %s from ADMIN_PASSWORD", user.username)
        user.role, user.active = "admin", True
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same answer whatever was wrong)."""
    user = find_user(username) if username else None
    if user is None or not user.active or not user.check_password(password):
        return None
    user.last_login_at = utcnow()
    return user
