"""Couriers as staff see them: where they are, their trails, their cash (the ledger, remittances, the day's
report), the field settings."""
from app.admin import bp  # noqa: F401
