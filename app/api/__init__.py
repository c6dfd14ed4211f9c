"""The integrator API, /api/v1: Bearer API keys, pydantic schemas, and the OpenAPI document built from them. The
blueprint is built here, with its problem answers, its shared rate limit and headers; each module adds its
operations to `api`."""
from flask import Blueprint, current_app

from app.api.auth import add_rate_limit_headers, rate_limit_key
from app.api.contract import ApiBlueprint
from app.api.problems import API_PREFIX, register_problem_handlers
from app.extensions import limiter

bp = Blueprint("api", __name__)
api = ApiBlueprint(bp, API_PREFIX)
register_problem_handlers(bp)
limiter.shared_limit(lambda: current_app.config["RATELIMIT_API"], scope="api-v1", key_func=rate_limit_key)(bp)
bp.after_request(add_rate_limit_headers)

from app.api import routes, webhook_routes  # noqa: E402, F401 - each module adds its operations to api
