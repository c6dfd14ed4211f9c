"""Signing in and out, the staff account page, and the guard every staff route passes (guard.py)."""
from flask import Blueprint

bp = Blueprint("auth", __name__)

from app.auth import routes  # noqa: E402, F401 - each module adds its views to bp
