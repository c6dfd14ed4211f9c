"""Helpers for the /api/v1 tests (the `issue_key` fixture, which makes keys, is in tests/conftest.py)."""
from __future__ import annotations


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
