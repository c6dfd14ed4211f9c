"""The public price check, GET /quote?destination_pincode=…&weight_kg=…: what a booking would cost on the rate
card in force, before anyone books (the booking form shows it as the visitor types). JSON only; it takes the
booking's pricing fields and nothing else, and answers the charges alone: nothing personal (rule 9).
Rate-limited per client address (RATELIMIT_QUOTE)."""
from __future__ import annotations

from flask import current_app, jsonify, request
from flask_babel import gettext

from app.domain.pricing import PRICING_FIELDS
from app.errors import ValidationError
from app.extensions import limiter
from app.services.shipments.quotes import quote_booking
from app.shipments import bp
from app.web.forms import UNKNOWN_FIELD, field_label

QUERY_ALLOWED = frozenset(PRICING_FIELDS) | {"lang"}  # ?lang= chooses the language of any answer


@bp.get("/quote")
@limiter.limit(lambda: current_app.config["RATELIMIT_QUOTE"],
               error_message=lambda: gettext("Too many price checks from your address; try again shortly."))
def quote():
    """200 `{"charges": {zone, chargeable_weight_kg, freight, cod_fee, tax, total, currency, rate_card_version}}`;
    400 `{"error", "fields"}` for a value a booking would refuse, a parameter that is not a pricing field, or
    one given twice."""
    problems = {field_label(name): UNKNOWN_FIELD for name in request.args if name not in QUERY_ALLOWED}
    problems.update({name: gettext("Give this once only.") for name, values in request.args.lists()
                     if name in QUERY_ALLOWED and len(values) > 1})
    if problems:
        raise ValidationError(fields=problems)
    charges = quote_booking({name: request.args.get(name) for name in PRICING_FIELDS})
    return jsonify({"charges": charges.as_dict()})
