"""Run sheets: made, extended, listed, printed and handed out (operator, admin)."""
from app.admin import bp  # noqa: F401
