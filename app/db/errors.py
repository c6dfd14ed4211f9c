"""Database errors that never quote customer data.

psycopg2 binds parameters on the client, so PostgreSQL sees (and its error messages quote back, on the
"LINE 1: …" excerpt and in DETAIL lines such as "Key (email)=(…) already exists") the statement with the
customers' names, emails and mobiles in it. `hide_parameters=True` only hides SQLAlchemy's own parameter list.
This hook keeps PostgreSQL's primary message (what went wrong) and drops the rest from every database error.
"""
from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def primary_message(error: BaseException) -> str:
    """PostgreSQL's one-line reason, without the statement excerpt, detail or hint."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        return primary
    return (str(error).splitlines() or [type(error).__name__])[0]


def quote_no_statement_text(engine: Engine) -> None:
    @event.listens_for(engine, "handle_error")
    def scrub(context) -> None:
        original = context.original_exception
        if getattr(original, "diag", None) is None:
            return
        reason = primary_message(original)
        original.args = (reason,)
        wrapped = context.sqlalchemy_exception
        if wrapped is not None:
            wrapped.args = (f"({type(original).__module__}.{type(original).__name__}) {reason}",)
