"""Cash on delivery settled: the couriers' cash ledger for a day (JSON, CSV, page), remittances received at the hub,
a courier's end-of-day report."""
from app.admin import bp  # noqa: F401
