"""Staff accounts: create, change role, (de)activate, set passwords, end sessions, unlock.

Rules: usernames are unique regardless of case (a unique index on lower(username) backs the check); passwords
follow app.services.staff.passwords; the bootstrap admin (ADMIN_USERNAME) cannot be demoted or deactivated here; no
change may leave the system without an active admin (decided inside the change's transaction, with the admins'
rows locked on PostgreSQL and the write lock held on SQLite); a new password ends the account's other sessions,
deactivation ends all of them. A courier's vehicle, capacity, shift and shown name are made and changed with the
account (app.services.field.couriers has their rules). Every change writes its audit row in the same transaction;
callers commit.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.roles import ROLES, Role
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import User
from app.models.user import USERNAME_MAX
from app.services.field.couriers import (
    CourierFields,
    courier_field_problems,
    create_profile,
    profile_of,
    profile_summary,
    update_profile,
)
from app.services.staff.audit import SYSTEM, record_audit
from app.services.staff.passwords import password_problem
from app.services.staff.sessions import end_user_sessions
from app.services.staff.sign_in import clear_lock, locked_usernames

log = logging.getLogger(__name__)
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
USERNAME_RULE = (f"A username has 1 to {USERNAME_MAX} letters, digits, dots, dashes or underscores, "
                 "starting with a letter or digit.")


class LastAdmin(Conflict):
    default_message = "That would leave no active admin: make another account an admin first."


class UsernameTaken(Conflict):
    default_message = "That username is taken."


@dataclass(frozen=True)
class UserChanges:
    """What an admin asked to change; None means leave as is (and so do the courier fields left None)."""
    role: str | None = None
    active: bool | None = None
    password: str | None = None
    courier: CourierFields = field(default_factory=CourierFields)


def find_user(username: str) -> User | None:
    return db.session.scalars(
        select(User).where(func.lower(User.username) == username.strip().lower())
    ).first()


def get_user(username: str) -> User:
    user = find_user(username)
    if user is None:
        raise NotFound("No such staff account.")
    return user


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(func.lower(User.username))))


def lock_status() -> dict[str, datetime]:
    """Lower-case username → the end of its sign-in lock, for accounts locked now."""
    return locked_usernames()


def username_problem(username: str) -> str | None:
    if not username or len(username) > USERNAME_MAX or not USERNAME_PATTERN.fullmatch(username):
        return USERNAME_RULE
    return None


def create_user(username: str, password: str, role: str = "operator", actor: str = SYSTEM,
                courier: CourierFields | None = None) -> User:
    """A new staff account, and a courier's profile with it (`courier`: its vehicle is required). 400
    (ValidationError with fields) on bad input, 409 when the name is taken."""
    username = username.strip()
    courier = courier or CourierFields()
    fields = {}
    if problem := username_problem(username):
        fields["username"] = problem
    if role not in ROLES:
        fields["role"] = f"Role must be one of: {', '.join(ROLES)}."
    if problem := password_problem(password, username):
        fields["password"] = problem
    fields.update(courier_field_problems(courier, role=role, profile=None))
    if fields:
        raise ValidationError(fields=fields)
    if find_user(username) is not None:
        raise UsernameTaken()
    user = User(username=username, role=role, active=True)
    user.set_password(password)
    try:
        with db.session.begin_nested():  # the unique index decides a race between two creators
            db.session.add(user)
    except IntegrityError as error:
        raise UsernameTaken() from error
    details = {"role": role}
    if role == Role.COURIER:
        details.update(profile_summary(create_profile(user.id, courier)))
    record_audit("user_created", actor=actor, target_type="user", target_id=user.username, details=details)
    return user


def update_user(username: str, changes: UserChanges, *, actor: str, bootstrap_admin: str | None = None,
                keep_session_id: int | None = None) -> User:
    """Apply an admin's changes to one account (see the module's rules). `keep_session_id` is the caller's own
    session, kept when admins set their own password."""
    fields = {}
    if changes.role is not None and changes.role not in ROLES:
        fields["role"] = f"Role must be one of: {', '.join(ROLES)}."
    user = get_user(username)
    if changes.password is not None and (problem := password_problem(changes.password, user.username)):
        fields["password"] = problem
    profile = profile_of(user.id)
    role_after = changes.role if changes.role in ROLES else user.role
    fields.update(courier_field_problems(changes.courier, role=role_after, profile=profile))
    if fields:
        raise ValidationError(fields=fields)
    removes_admin = user.role == Role.ADMIN and user.active and (
        (changes.role is not None and changes.role != Role.ADMIN) or changes.active is False)
    if removes_admin:
        if bootstrap_admin and user.username.lower() == bootstrap_admin.strip().lower():
            raise Conflict(f"{user.username} is the bootstrap admin (ADMIN_USERNAME): it stays an active admin.")
        _lock_active_admins()
        db.session.refresh(user)

    changed, details = [], {}
    if changes.role is not None and changes.role != user.role:
        details["role"] = {"from": user.role, "to": changes.role}
        user.role = changes.role
        changed.append("role")
    if changes.active is not None and changes.active != user.active:
        details["active"] = {"from": user.active, "to": changes.active}
        user.active = changes.active
        changed.append("active")
    if changes.password is not None:
        user.set_password(changes.password)
        changed.append("password")
    if role_after == Role.COURIER:
        _save_courier_details(user, profile, changes.courier, changed, details)
    if not changed:
        return user
    db.session.flush()
    if removes_admin and _active_admin_count() == 0:
        raise LastAdmin()
    ended = 0
    if "active" in changed and not user.active:
        ended = end_user_sessions(user.id)
    elif "password" in changed:
        ended = end_user_sessions(user.id, keep_session_id=keep_session_id)
    record_audit("user_updated", actor=actor, target_type="user", target_id=user.username,
                 details={"changed": changed, **details, **({"sessions_ended": ended} if ended else {})})
    return user


def _save_courier_details(user: User, profile, courier: CourierFields, changed: list[str], details: dict) -> None:
    """A courier's profile made (an account becoming a courier) or changed, noted in `changed` and `details`."""
    if profile is None:
        details["courier"] = profile_summary(create_profile(user.id, courier))
        changed.append("courier")
        return
    changed_fields, audit = update_profile(profile, courier)
    changed.extend(changed_fields)
    details.update(audit)


def _lock_active_admins() -> None:
    """Serialise changes that could remove the last admin: on PostgreSQL, lock every active admin's row (a
    concurrent change waits, then sees the other's result); SQLite has one writer at a time anyway, and the
    count below runs after this transaction's own write."""
    db.session.execute(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).with_for_update())


def _active_admin_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User)
                             .where(User.role == Role.ADMIN, User.active.is_(True))) or 0


def change_own_password(user: User, current_password: str, new_password: str,
                        keep_session_id: int | None) -> int:
    """A staff member's own new password (the current one is required); ends their other sessions and returns
    how many."""
    if not user.check_password(current_password):
        raise ValidationError(fields={"current_password": "That is not your current password."})
    if problem := password_problem(new_password, user.username):
        raise ValidationError(fields={"new_password": problem})
    user.set_password(new_password)
    db.session.flush()
    ended = end_user_sessions(user.id, keep_session_id=keep_session_id)
    record_audit("user_updated", actor=user.username, target_type="user", target_id=user.username,
                 details={"changed": ["password"], **({"sessions_ended": ended} if ended else {})})
    return ended


def end_sessions_of(username: str, *, actor: str) -> int:
    """An admin ends every session of an account; returns how many."""
    user = get_user(username)
    ended = end_user_sessions(user.id)
    record_audit("session_ended", actor=actor, target_type="user", target_id=user.username,
                 details={"count": ended})
    return ended


def unlock_user(username: str, *, actor: str) -> bool:
    """An admin lifts an account's sign-in lock (and forgets its failures); True when it was locked."""
    user = get_user(username)
    was_locked = clear_lock(user.username)
    record_audit("user_unlocked", actor=actor, target_type="user", target_id=user.username,
                 details={"was_locked": was_locked})
    return was_locked


def ensure_admin(username: str, password: str) -> User:
    """Make sure the bootstrap admin exists, is active, is an admin and has this password.

    The password must pass the policy (ValidationError otherwise: nothing is changed).
    """
    if problem := username_problem(username.strip()):
        raise ValidationError(fields={"ADMIN_USERNAME": problem})
    if problem := password_problem(password, username):
        raise ValidationError(fields={"ADMIN_PASSWORD": problem})
    user = find_user(username)
    if user is None:
        user = User(username=username.strip(), role="admin", active=True)
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
        record_audit("user_created", actor=SYSTEM, target_type="user", target_id=user.username,
                     details={"role": "admin", "bootstrap": True})
        log.info("Created the admin user %s", user.username)
        return user
    changed, details = [], {}
    if not user.check_password(password):
        user.set_password(password)
        changed.append("password")
        log.info("Changed the password of admin user %s from ADMIN_PASSWORD", user.username)
    if user.role != Role.ADMIN:
        details["role"] = {"from": user.role, "to": Role.ADMIN.value}
        user.role = Role.ADMIN
        changed.append("role")
    if not user.active:
        details["active"] = {"from": False, "to": True}
        user.active = True
        changed.append("active")
    db.session.flush()
    if changed:
        ended = end_user_sessions(user.id) if "password" in changed else 0
        record_audit("user_updated", actor=SYSTEM, target_type="user", target_id=user.username,
                     details={"changed": changed, **details, **({"sessions_ended": ended} if ended else {})})
    return user
