"""Liveness and readiness: /healthz and /readyz, for the load balancer and the container."""
from flask import Blueprint

bp = Blueprint("health", __name__)

from app.health import routes  # noqa: E402, F401 - each module adds its views to bp
