"""The public pages: the landing page, tracking by ID, search by mobile, the full-details check, and the
recipient's answer to a failed delivery (/r/<token>)."""
from flask import Blueprint

bp = Blueprint("tracking", __name__)

from app.tracking import events, ndr, routes  # noqa: E402, F401 - each module adds its views to bp
