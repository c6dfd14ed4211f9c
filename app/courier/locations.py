"""Positions the courier app sends while on shift (POST /courier/locations)."""
from app.courier import bp  # noqa: F401
