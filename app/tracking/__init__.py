"""The public pages: the landing page, tracking by ID, search by mobile, the full-details check."""
from flask import Blueprint

bp = Blueprint("tracking", __name__)

from app.tracking import events, routes  # noqa: E402, F401 - each module adds its views to bp
