"""The rate card from the browser and as JSON: /admin/rates, routes of the admin blueprint.

Every staff member may read it (the counter quotes prices, support answers "what will it cost"); only admins
(MANAGE_SETTINGS) save a new version.

GET /admin/rates → the card in force (its JSON document: version, currency, tax_rate, volumetric_divisor, cod
{min, percent}, slabs {zone: {service: {first_kg, first_price, per_half_kg}}}, created_at, created_by); POST the
same document (JSON), or the page's form, saves it as the next version: 201 with it, or 200 with the card in force
when nothing changed. A `version` in the body is the version the change was made to: another one in force is a
409. GET /admin/rates/versions lists the versions, GET /admin/rates/versions/<n> shows one, and
GET /admin/rates/quote?destination_pincode=…&weight_kg=…&… prices a booking without booking it.
"""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import DecimalField, IntegerField, StringField
from wtforms.validators import Optional
from wtforms.widgets import HiddenInput, TextInput

from app.admin import bp
from app.auth.guard import staff_required
from app.domain.pincodes import normalise_pincode
from app.domain.pricing import PRICING_FIELDS, SERVICES, SLAB_PARTS, ZONES
from app.domain.roles import Permission
from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db
from app.services.shipments.rates import (
    SavedCard,
    card_history,
    charges_for,
    origin_pincode,
    save_card,
    saved_card,
)
from app.web.forms import UNKNOWN_FIELD, RequestForm, answers_json, field_label, refused_on_page, strip

ZONE_LABELS = {"local": _l("Local"), "state": _l("Within the state"), "national": _l("National")}
SERVICE_LABELS = {"standard": _l("Standard"), "express": _l("Express")}
PART_LABELS = {"first_kg": _l("First slab (kg)"), "first_price": _l("First slab price"),
               "per_half_kg": _l("Each further 0.5 kg")}
QUERY_ALLOWED = frozenset(PRICING_FIELDS) | {"lang"}  # ?lang= chooses the language of any answer


class AmountField(DecimalField):
    """A number as typed, text or a JSON number: the pricing rules read it and say what is wrong with it."""

    widget = TextInput()

    def process_formdata(self, valuelist: list[str]) -> None:
        text = valuelist[0].strip() if valuelist else ""
        self.data = text or None

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)


class RateCardFormBase(RequestForm):
    """The rate card as a form: one field per value, named as the card's JSON document names it ("cod.min",
    "slabs.local.express.first_price"), so the JSON body, the page and the pricing rules' errors share names. The
    rules themselves are app.domain.pricing's, applied by the service."""

    nested_json = True
    version = IntegerField(widget=HiddenInput(), validators=[Optional()])  # the version the change was made to
    currency = StringField(_l("Currency"), filters=[strip])
    tax_rate = AmountField(_l("Tax rate"))
    volumetric_divisor = AmountField(_l("Volumetric divisor (cm³ per kg)"))
    # Read-only parts of the document, so that a script may send back what it read.
    created_at = StringField()
    created_by = StringField()

    @classmethod
    def for_card(cls, saved: SavedCard) -> RateCardFormBase:
        document = saved.document()
        data = {"version": document["version"], "tax_rate": document["tax_rate"],
                "volumetric_divisor": document["volumetric_divisor"], "cod.min": document["cod"]["min"],
                "cod.percent": document["cod"]["percent"]}
        for zone, services in document["slabs"].items():
            for service, slab in services.items():
                data.update({slab_field(zone, service, part): value for part, value in slab.items()})
        return cls(formdata=None, data=data)

    def slab(self, zone: str, service: str, part: str):
        return self[slab_field(zone, service, part)]

    def fields_in_order(self) -> list:
        """The fields as the page shows them, for the error summary's links."""
        return [self.tax_rate, self.volumetric_divisor, self["cod.min"], self["cod.percent"]] + [
            self.slab(zone, service, part) for zone in ZONES for service in SERVICES for part in SLAB_PARTS]

    def card_document(self) -> dict:
        """What was sent, as the card's JSON document (what was left out stays out: the rules say it is needed)."""
        document: dict = {"cod": {"min": self["cod.min"].data, "percent": self["cod.percent"].data},
                          "slabs": {zone: {service: {part: self.slab(zone, service, part).data for part in SLAB_PARTS}
                                           for service in SERVICES} for zone in ZONES}}
        for name in ("version", "currency", "tax_rate", "volumetric_divisor"):
            if self[name].data not in (None, ""):
                document[name] = self[name].data
        return document


def slab_field(zone: str, service: str, part: str) -> str:
    return f"slabs.{zone}.{service}.{part}"


def _card_fields() -> dict:
    fields = {"cod.min": AmountField(_l("COD fee: at least")),
              "cod.percent": AmountField(_l("COD fee: percentage of the amount to collect"))}
    for zone in ZONES:
        for service in SERVICES:
            for part in SLAB_PARTS:
                fields[slab_field(zone, service, part)] = AmountField(_l(
                    "%(zone)s, %(service)s: %(part)s", zone=ZONE_LABELS[zone], service=SERVICE_LABELS[service],
                    part=PART_LABELS[part]))
    return fields


# Built with its dotted names in one go: a form reads its fields' names when its class is made.
RateCardForm = type("RateCardForm", (RateCardFormBase,), _card_fields())


@bp.get("/rates")
@staff_required(Permission.VIEW_SHIPMENTS)
def rate_card():
    saved = saved_card()
    if not wants_html():
        return jsonify(saved.document())
    return _page(saved, RateCardForm.for_card(saved))


@bp.post("/rates")
@staff_required(Permission.MANAGE_SETTINGS)
def save_rate_card():
    form = RateCardForm.from_request()
    try:
        form.validate_or_raise()
        saved, created = save_card(form.card_document(), actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _page(saved_card(), form, problem=problem, status=error.status_code)
    db.session.commit()
    if answers_json():
        return jsonify(saved.document()), 201 if created else 200
    if created:
        flash(gettext("Saved the rate card as version %(version)s.", version=saved.card.version), "success")
    else:
        flash(gettext("Nothing changed: version %(version)s stays in force.", version=saved.card.version), "info")
    return redirect(url_for("admin.rate_card"))


@bp.get("/rates/versions")
@staff_required(Permission.VIEW_SHIPMENTS)
def rate_card_versions():
    if wants_html():
        return redirect(url_for("admin.rate_card", _anchor="history-h"))
    return jsonify({"versions": [_version_summary(saved) for saved in card_history()]})


@bp.get("/rates/versions/<int:version>")
@staff_required(Permission.VIEW_SHIPMENTS)
def rate_card_version(version: int):
    saved = saved_card(version)
    if not wants_html():
        return jsonify(saved.document())
    return _page(saved, None)


@bp.get("/rates/quote")
@staff_required(Permission.VIEW_SHIPMENTS)
def rate_quote():
    """What a booking would cost on the card in force, without booking it (the booking form's price)."""
    unknown = {field_label(name): UNKNOWN_FIELD for name in request.args if name not in QUERY_ALLOWED}
    if unknown:
        raise ValidationError(fields=unknown)
    if not request.args.get("destination_pincode", "").strip():
        raise ValidationError(fields={"destination_pincode": "Required: the destination's PIN code."})
    charges = charges_for(**{name: request.args.get(name) for name in PRICING_FIELDS})
    origin = normalise_pincode(request.args.get("sender_pincode")) or origin_pincode()
    return jsonify({"charges": charges.as_dict(), "origin_pincode": origin})


def _version_summary(saved: SavedCard) -> dict:
    document = saved.document()
    return {"version": document["version"], "created_at": document["created_at"], "created_by": saved.created_by}


def _page(saved: SavedCard, form: RateCardFormBase | None, *, problem: str | None = None, status: int = 200):
    """The card `saved` (the one in force, or an older version), with the edit form when `form` is given."""
    history = card_history()
    return render_template(
        "admin/rates.html", saved=saved, document=saved.document(), form=form, history=history,
        current_version=history[0].card.version, tax_percent=f"{(saved.card.tax_rate * 100).normalize():f}",
        zones=ZONES, services=SERVICES, parts=SLAB_PARTS, zone_labels=ZONE_LABELS, service_labels=SERVICE_LABELS,
        part_labels=PART_LABELS, origin=origin_pincode(), problem=problem), status
