"""Idempotency keys for API writes: the same key with the same request within 24 hours gets the first answer.

Rules: a key is scoped to one API key; the request is identified by its operation and its canonical JSON body
(a SHA-256 of both); the same key with another request is refused (422). The key's row is inserted in the
write's own transaction before the write happens, under a unique constraint: of two concurrent identical
requests, the second waits for the first's commit and then replays its answer (it never writes twice). A write
that fails rolls its key back with it, so only successful answers are remembered. After 24 hours a key may be
used again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select, update

from app.db.dialects import dialect_insert
from app.domain.timeutil import utcnow
from app.errors import DomainError
from app.extensions import db
from app.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
_TABLE = IdempotencyKey.__table__


class IdempotencyKeyReused(DomainError):
    status_code = 422
    default_message = "This Idempotency-Key was already used with a different request."


class IdempotencyInProgress(DomainError):
    """Only seen if a first request's row exists without its answer (it cannot be committed that way): retry."""
    status_code = 409
    default_message = "A request with this Idempotency-Key is still being processed; retry shortly."


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict


@dataclass(frozen=True)
class Claim:
    """The caller holds this key for its write: store the answer with `remember_answer` before committing."""
    row_id: int


def request_fingerprint(operation: str, body: object) -> str:
    """SHA-256 of the operation and the body in canonical JSON (key order and spacing do not matter)."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def claim_or_replay(api_key_id: int, key: str, fingerprint: str) -> Claim | StoredAnswer:
    """Claim `key` for a new write (a Claim), or the first answer given to the same request (a StoredAnswer).

    IdempotencyKeyReused when the key was used with another request within its lifetime.
    """
    now = utcnow()
    for _ in range(2):
        row_id = db.session.connection().execute(_insert_statement(), {
            "api_key_id": api_key_id, "key": key, "request_hash": fingerprint, "created_at": now,
        }).scalar()
        if row_id is not None:
            return Claim(row_id=row_id)
        existing = db.session.execute(
            select(_TABLE.c.id, _TABLE.c.request_hash, _TABLE.c.created_at, _TABLE.c.status_code,
                   _TABLE.c.response_body)
            .where(_TABLE.c.api_key_id == api_key_id, _TABLE.c.key == key)
        ).first()
        if existing is None:  # the first request rolled back in the meantime: claim again
            continue
        if now - existing.created_at >= KEY_LIFETIME:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id)
                               .execution_options(synchronize_session=False))
            continue
        if existing.request_hash != fingerprint:
            raise IdempotencyKeyReused()
        if existing.status_code is None or existing.response_body is None:
            raise IdempotencyInProgress()
        return StoredAnswer(status_code=existing.status_code, body=json.loads(existing.response_body))
    raise IdempotencyInProgress()


def remember_answer(claim: Claim, status_code: int, body: dict) -> None:
    """Store the answer of a claimed write, in the write's own transaction."""
    db.session.execute(
        update(IdempotencyKey).where(IdempotencyKey.id == claim.row_id)
        .values(status_code=status_code, response_body=json.dumps(body, separators=(",", ":")))
        .execution_options(synchronize_session=False)
    )


def purge_expired_keys() -> int:
    """Delete keys older than their lifetime (callers commit); returns how many."""
    return db.session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < utcnow() - KEY_LIFETIME)
        .execution_options(synchronize_session=False)
    ).rowcount


def _insert_statement():
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, in the dialect of the session's database."""
    columns = ("api_key_id", "key", "request_hash", "created_at")
    return (dialect_insert(_TABLE).values({name: bindparam(name) for name in columns})
            .on_conflict_do_nothing(index_elements=["api_key_id", "key"]).returning(_TABLE.c.id))
