"""API keys: created by an admin for a staff account, shown once, stored as a SHA-256 hash, revocable.

Rules: the secret is `wb_live_` and 32 random bytes (URL-safe base64); only its hash and its first characters are
kept. A key authenticates as its owner with the owner's current role; a revoked or expired key, or one whose
owner is inactive, authenticates nobody, from the next request on in every process (each request looks the key
up in the database). Last use is recorded at most once a minute per key. Creation and revocation are audited
(never the secret); callers commit.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from app.domain.timeutil import as_utc, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import ApiKey, User
from app.models.api_key import KEY_NAME_MAX
from app.services.staff.audit import record_audit
from app.services.staff.users import find_user

KEY_SCHEME = "wb_live_"
KEY_BYTES = 32
PREFIX_LENGTH = len(KEY_SCHEME) + 6
# A key's last use is written at most this often, so a busy integrator costs no write per request.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its secret: the only moment the secret exists outside the client."""
    record: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """The stored form of a key. Keys are 256 random bits, so a plain SHA-256 (looked up by equality) is enough:
    there is nothing to brute-force the way there is with a password."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(name: str, username: str, expires_at: datetime | None, *, actor: str) -> IssuedKey:
    """A new key for the staff account `username`, named `name`, valid until `expires_at` (None: no expiry).

    Rules: the name is 1 to 100 characters; the owner exists and is active; an expiry lies in the future.
    """
    name = (name or "").strip()
    fields = {}
    if not name or len(name) > KEY_NAME_MAX:
        fields["name"] = f"Give the key a name of 1 to {KEY_NAME_MAX} characters."
    owner = find_user(username or "")
    if owner is None:
        fields["username"] = "No such staff account."
    elif not owner.active:
        fields["username"] = "That staff account is deactivated."
    if expires_at is not None:
        expires_at = as_utc(expires_at)
        if expires_at <= utcnow():
            fields["expires_at"] = "The expiry must be in the future."
    if fields:
        raise ValidationError(fields=fields)
    secret = KEY_SCHEME + secrets.token_urlsafe(KEY_BYTES)
    record = ApiKey(name=name, prefix=secret[:PREFIX_LENGTH], key_hash=hash_key(secret), user_id=owner.id,
                    created_by=actor, created_at=utcnow(), expires_at=expires_at)
    db.session.add(record)
    db.session.flush()
    set_committed_value(record, "user", owner)
    record_audit("api_key_created", actor=actor, target_type="api_key", target_id=record.id,
                 details={"name": name, "owner": owner.username, "prefix": record.prefix,
                          "expires_at": None if expires_at is None else expires_at.isoformat()})
    return IssuedKey(record=record, secret=secret)


def list_api_keys() -> list[ApiKey]:
    """Every key, newest first, with its owner loaded."""
    return list(db.session.scalars(
        select(ApiKey).options(joinedload(ApiKey.user)).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    ))


def get_api_key(key_id: int) -> ApiKey:
    record = db.session.scalars(
        select(ApiKey).options(joinedload(ApiKey.user)).where(ApiKey.id == key_id)).first()
    if record is None:
        raise NotFound("No such API key.")
    return record


def revoke_api_key(key_id: int, *, actor: str) -> ApiKey:
    """Revoke a key (Conflict if it already is): refused from the next request on, in every process."""
    record = get_api_key(key_id)
    if record.revoked_at is not None:
        raise Conflict("That key is already revoked.")
    now = utcnow()
    revoked = db.session.execute(
        update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if revoked != 1:
        raise Conflict("That key is already revoked.")
    set_committed_value(record, "revoked_at", now)
    record_audit("api_key_revoked", actor=actor, target_type="api_key", target_id=record.id,
                 details={"name": record.name, "owner": record.user.username, "prefix": record.prefix})
    return record


def resolve_api_key(secret: str) -> tuple[User, ApiKey] | None:
    """The owner and key a bearer secret stands for, or None (unknown, revoked, expired, owner inactive).

    Records last use at most once a minute, in its own short transaction (never the request's).
    """
    if not secret.startswith(KEY_SCHEME):
        return None
    digest = hash_key(secret)
    row = db.session.execute(
        select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.key_hash == digest)
    ).first()
    # The look-up is by equality on the hash; compare again in constant time so no timing of the index
    # comparison can tell a caller how close a guess came.
    if row is None or not hmac.compare_digest(row[0].key_hash, digest):
        return None
    record, user = row
    now = utcnow()
    if not record.is_valid_at(now) or not user.active:
        return None
    if record.last_used_at is None or now - record.last_used_at >= TOUCH_INTERVAL:
        with db.engine.begin() as connection:
            connection.execute(update(ApiKey).where(ApiKey.id == record.id).values(last_used_at=now))
        set_committed_value(record, "last_used_at", now)
    return user, record
