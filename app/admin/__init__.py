"""Staff pages and their JSON under /admin: the dashboard, shipments, scans, imports and labels, users, API
keys, webhooks, serviceability, rates, the audit trail. The blueprint is built here and each module adds its views."""
from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from app.admin import api_keys, evidence, hub, imports, rates, receipts, routes, scan, serviceability, users, webhooks  # noqa: E402, F401 - each module adds its views to bp
