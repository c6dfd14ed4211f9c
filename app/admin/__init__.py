"""Staff pages and their JSON under /admin: the dashboard, shipments, scans, imports and labels, users, API
keys, webhooks, serviceability, rates, the audit trail, delivery zones, operations (promises, SLA, alerts, the live
map, the operations report). The blueprint is built here and each module adds its views."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

# Each module adds its views to bp.
from app.admin import (  # noqa: E402, F401
    api_keys,
    cash,
    couriers,
    dispatch,
    edit,
    evidence,
    field_settings,
    hub,
    imports,
    live,
    ndr,
    operations,
    rates,
    receipts,
    reports,
    routes,
    runsheets,
    scan,
    serviceability,
    users,
    webhooks,
    zones,
)
