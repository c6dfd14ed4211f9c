"""Signing in: credentials, the per-account lockout and the audit rows of every attempt.

Rules: after `lock_after` failed attempts within `window`, the username is locked for `lock_for`; while locked
every attempt is refused, even with the right password. Counters are rows of login_throttles keyed by the typed
username in lower case, so they hold across processes, and an unknown username counts and locks exactly like a
real one. Unknown and inactive users are checked against a dummy hash: every wrong attempt costs the same.
Each attempt leaves one audit row: `login`, `login_failed` or `login_locked` (the caller commits it, whatever the
outcome).
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import LoginThrottle, StaffSession, User
from app.models.user import USERNAME_MAX, password_hash_method
from app.services.staff.audit import record_audit
from app.services.staff.sessions import SessionLifetimes, end_session, start_session

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class LockoutPolicy:
    lock_after: int = 5
    window: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInOutcome:
    user: User | None = None
    locked_until: datetime | None = None
    token: str | None = None  # the new session's cookie token, on success
    session: StaffSession | None = None

    @property
    def retry_after(self) -> int:
        """Whole seconds until a locked username may try again."""
        if self.locked_until is None:
            return 0
        return max(1, math.ceil((self.locked_until - utcnow()).total_seconds()))


def _dummy_hash() -> str:
    return _dummy_hash_for(password_hash_method())


@lru_cache(maxsize=4)
def _dummy_hash_for(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)  # the same cost as real hashes


def throttle_key(username: str) -> str:
    return username.strip().lower()[:USERNAME_MAX]


def sign_in(username: str, password: str, *, remember: bool, policy: LockoutPolicy, lifetimes: SessionLifetimes,
            client_address: str | None, user_agent: str | None) -> SignInOutcome:
    """Check credentials (attempt_sign_in) and, when they pass, start a session of the chosen life. The caller
    commits in every case: a failure's counter and audit row are facts too."""
    outcome = attempt_sign_in(username, password, policy)
    if outcome.user is None:
        return outcome
    token, record = start_session(outcome.user, lifetimes.for_sign_in(remember), client_address, user_agent)
    record_audit("login", actor=outcome.user.username, target_type="user", target_id=outcome.user.username,
                 details={"session": record.id, "remember": remember})
    return SignInOutcome(user=outcome.user, token=token, session=record)


def sign_out(user: User, record: StaffSession) -> None:
    """Logout: this session ends now, in every process."""
    end_session(record)
    record_audit("logout", actor=user.username, target_type="user", target_id=user.username,
                 details={"session": record.id})


def end_own_session(user: User, record: StaffSession) -> None:
    """A staff member ends one of their own sessions from /account."""
    end_session(record)
    record_audit("session_ended", actor=user.username, target_type="user", target_id=user.username,
                 details={"session": record.id})


def attempt_sign_in(username: str, password: str, policy: LockoutPolicy) -> SignInOutcome:
    """Check credentials under the lockout rules. `user` is set on success, `locked_until` when refused because
    the username is locked; neither on wrong credentials."""
    key = throttle_key(username)
    user = db.session.scalars(select(User).where(func.lower(User.username) == key)).first() if key else None
    actor = user.username if user is not None else ANONYMOUS
    target = user.username if user is not None else None
    now = utcnow()
    locked_until = db.session.scalar(select(LoginThrottle.locked_until).where(LoginThrottle.username_key == key))
    if locked_until is not None and locked_until > now:
        outcome = SignInOutcome(locked_until=locked_until)
        record_audit("login_locked", actor=actor, target_type="user", target_id=target,
                     details={"retry_after_seconds": outcome.retry_after})
        return outcome

    real = user is not None and user.active
    matches = check_password_hash(user.password_hash if real else _dummy_hash(), password)
    if real and matches:
        db.session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == key))
        user.last_login_at = now
        return SignInOutcome(user=user)

    failures, locked_until = _count_failure(key, now, policy)
    details = {"failures": failures}
    if user is None:
        details["known_user"] = False
    elif not user.active:
        details["inactive"] = True
    if locked_until is not None:
        details["locked_minutes"] = math.ceil(policy.lock_for.total_seconds() / 60)
    record_audit("login_failed", actor=actor, target_type="user", target_id=target, details=details)
    return SignInOutcome()


def _count_failure(key: str, now: datetime, policy: LockoutPolicy) -> tuple[int, datetime | None]:
    """One more failure for `key`, atomically (concurrent attempts from several processes all count); starts
    the lock when the count reaches the limit. Returns the count in the window and the new lock, if any."""
    fresh = (LoginThrottle.window_started_at <= now - policy.window) | (
        LoginThrottle.locked_until.is_not(None) & (LoginThrottle.locked_until <= now))
    bump = (update(LoginThrottle).where(LoginThrottle.username_key == key)
            .values(failures=case((fresh, 1), else_=LoginThrottle.failures + 1),
                    window_started_at=case((fresh, now), else_=LoginThrottle.window_started_at),
                    locked_until=case((fresh, None), else_=LoginThrottle.locked_until))
            .returning(LoginThrottle.failures).execution_options(synchronize_session=False))
    failures = db.session.execute(bump).scalar()
    if failures is None:
        _forget_stale_counters(now, policy)
        try:
            with db.session.begin_nested():
                db.session.add(LoginThrottle(username_key=key, failures=1, window_started_at=now))
            failures = 1
        except IntegrityError:  # another process inserted it first: count on its row
            failures = db.session.execute(bump).scalar() or 1
    if failures < policy.lock_after:
        return failures, None
    until = now + policy.lock_for
    db.session.execute(update(LoginThrottle).where(LoginThrottle.username_key == key,
                                                   LoginThrottle.locked_until.is_(None))
                       .values(locked_until=until).execution_options(synchronize_session=False))
    return failures, until


def _forget_stale_counters(now: datetime, policy: LockoutPolicy) -> None:
    """Counters whose window has passed and that hold no lock count nothing any more: delete them, so names
    typed once (or made up by a guesser) do not pile up. Done when a new name is counted, the only time the
    table grows."""
    db.session.execute(delete(LoginThrottle).where(
        LoginThrottle.window_started_at <= now - policy.window,
        LoginThrottle.locked_until.is_(None) | (LoginThrottle.locked_until <= now),
    ).execution_options(synchronize_session=False))


def locked_usernames(at: datetime | None = None) -> dict[str, datetime]:
    """Lower-case username → end of its lock, for the usernames locked now."""
    now = at or utcnow()
    rows = db.session.execute(select(LoginThrottle.username_key, LoginThrottle.locked_until)
                              .where(LoginThrottle.locked_until > now))
    return {key: until for key, until in rows}


def clear_lock(username: str) -> bool:
    """Forget a username's failures and lock; True when it was locked."""
    key = throttle_key(username)
    now = utcnow()
    was_locked = db.session.scalar(select(LoginThrottle.locked_until).where(
        LoginThrottle.username_key == key, LoginThrottle.locked_until > now)) is not None
    db.session.execute(delete(LoginThrottle).where(LoginThrottle.username_key == key))
    return was_locked
