"""The courier app under /courier: an installable offline web app for the role `courier` (its page, manifest and
service worker), the day's stops, the actions recorded at the door and the positions the phone sends. The
blueprint is built here and each module adds its views."""
from flask import Blueprint

bp = Blueprint("courier", __name__, url_prefix="/courier")

# Each module adds its views to bp.
from app.courier import locations, pages, routes  # noqa: E402, F401
