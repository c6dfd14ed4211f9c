"""The password policy for every staff password (the browser, the JSON API, the CLI and the bootstrap admin).

Rules: at least PASSWORD_MIN characters, at most PASSWORD_MAX, not the username (in any case), not one of the
20,000 most common passwords shipped in app/services/staff/data (compared in lower case). Hashing is Werkzeug's
default (scrypt), in app.models.User.set_password.
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

PASSWORD_MIN = 12
PASSWORD_MAX = 256
COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def password_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with this new password, in words for the person choosing it; None when it is acceptable."""
    if len(password) < PASSWORD_MIN:
        return f"A password has at least {PASSWORD_MIN} characters."
    if len(password) > PASSWORD_MAX:
        return f"A password has at most {PASSWORD_MAX} characters."
    if username and password.strip().lower() == username.strip().lower():
        return "A password must not be the username."
    if password.strip().lower() in common_passwords():
        return "That password is one of the most common ones: choose another."
    return None
