"""The field settings (admin): what proof a delivery needs, and the delivery code."""
from app.admin import bp  # noqa: F401
