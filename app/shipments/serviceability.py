"""The public pre-check, GET /serviceability/<pincode>: whether the network delivers to a PIN code, and with
cash on delivery and express, before anyone books. JSON only; nothing personal in it (rule 9). Rate-limited
per client address (RATELIMIT_SERVICEABILITY)."""
from __future__ import annotations

from flask import current_app, jsonify
from flask_babel import gettext

from app.extensions import limiter
from app.services.shipments.serviceability import check
from app.shipments import bp


@bp.get("/serviceability/<pincode>")
@limiter.limit(lambda: current_app.config["RATELIMIT_SERVICEABILITY"],
               error_message=lambda: gettext("Too many PIN code checks from your address; try again shortly."))
def serviceability(pincode: str):
    """200 `{"pincode", "served", "cod", "express", "city", "state"}`: a well-formed PIN code unknown to the
    directory is not served, its city and state null; 400 `{"error", "fields"}` for anything else."""
    return jsonify(check(pincode).to_dict())
