"""Booking (public) and status changes (staff): the paper's POST /create and POST /update/<id>, and the public
serviceability pre-check."""
from flask import Blueprint

bp = Blueprint("shipments", __name__)

from app.shipments import quote, routes, serviceability  # noqa: E402, F401 - each module adds its views to bp
