"""Notification choices: the recipients' public choices page (/n/...), the defaults and the outbox for staff.
No URL prefix: the staff pages live under /admin/notifications (routes.OUTBOX)."""
from flask import Blueprint

bp = Blueprint("notifications", __name__)

from app.notifications import choices, defaults, routes  # noqa: E402, F401 - each module adds its views to bp
