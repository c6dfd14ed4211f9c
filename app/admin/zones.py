"""Delivery zones: admins draw them (MANAGE_ZONES), operators and admins see them (VIEW_FIELD), through
app.services.planning.zones. HTML and JSON share the URLs:

- GET /admin/zones → the page (each zone's outline drawn, its hub and open parcels, the form to add one); a
  GeoJSON FeatureCollection (properties `id`, `name`, `hub`, `parcels_open`) for `Accept: application/json` or
  `?format=geojson`.
- POST /admin/zones `{"name", "geometry": <GeoJSON Polygon or MultiPolygon>, "hub": {"lat", "lon"}?}` → 201 the
  zone with `parcels_moved` (open parcels that changed zone); 400 with `fields.geometry` saying what is wrong with
  an outline; 409 for a name taken.
- GET /admin/zones/<id> → the zone's page, or the zone as JSON; POST /admin/zones/<id> with any of the same
  fields → 200 the zone (`hub: null` removes the hub).
- POST /admin/zones/<id>/delete → 200 `{"id", "name", "deleted": true, "parcels_moved"}` (GET: the
  confirmation page).

Outlines are drawn server-side as inline SVG (no script, no tiles): longitude scaled by the cosine of the
middle latitude, so shapes keep their proportions near the equator and at India's latitudes alike.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.confirm import Question, confirm_first
from app.admin.zone_forms import ZoneForm
from app.auth.guard import accepts_upload, staff_required
from app.domain.roles import Permission
from app.errors import DomainError, wants_html
from app.extensions import db
from app.models import Zone
from app.services.planning import zones
from app.web.forms import answers_json, refused_on_page

GEOJSON = "application/geo+json"
ZONE_BODY_MAX = 2 * 1024 * 1024  # an outline of MAX_POSITIONS points, as JSON text
THUMBNAIL = (160, 120)
OVERVIEW = (640, 400)


@bp.get("/zones")
@staff_required(Permission.VIEW_FIELD)
def zones_page():
    all_zones, counts = zones.list_zones(), zones.open_parcel_counts()
    if request.args.get("format") == "geojson" or not wants_html():
        body = json.dumps(zones.feature_collection(all_zones, counts), separators=(",", ":"))
        return current_app.response_class(body, mimetype=GEOJSON)
    return _list_page(all_zones, counts, ZoneForm(formdata=None))


@bp.post("/zones")
@staff_required(Permission.MANAGE_ZONES)
@accepts_upload(ZONE_BODY_MAX)
def zone_create():
    form = ZoneForm.from_request()
    try:
        zone, moved = zones.create_zone(form.raw(), actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _list_page(zones.list_zones(), zones.open_parcel_counts(), form, error.status_code, problem)
    db.session.commit()
    location = url_for("admin.zone_detail", zone_id=zone.id)
    if answers_json():
        return jsonify(_document(zone, moved)), 201, {"Location": location}
    flash(gettext("Zone %(name)s added: %(count)s open parcels placed in it.", name=zone.name, count=moved),
          "success")
    return redirect(url_for("admin.zones_page"))


@bp.get("/zones/<int:zone_id>")
@staff_required(Permission.VIEW_FIELD)
def zone_detail(zone_id: int):
    zone = zones.get_zone(zone_id)
    if not wants_html():
        return jsonify(_document(zone))
    return _detail_page(zone, ZoneForm.of(zone))


@bp.post("/zones/<int:zone_id>")
@staff_required(Permission.MANAGE_ZONES)
@accepts_upload(ZONE_BODY_MAX)
def zone_update(zone_id: int):
    form = ZoneForm.from_request()
    try:
        zone, moved = zones.update_zone(zone_id, form.raw(), actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _detail_page(zones.get_zone(zone_id), form, error.status_code, problem)
    db.session.commit()
    if answers_json():
        return jsonify(_document(zone, moved))
    flash(gettext("Zone %(name)s saved: %(count)s open parcels changed zone.", name=zone.name, count=moved),
          "success")
    return redirect(url_for("admin.zone_detail", zone_id=zone.id))


def _ask_delete(zone_id: int) -> Question:
    zone = zones.get_zone(zone_id)  # an unknown id is a 404 here too
    return Question(heading=gettext("Delete zone %(name)s?", name=zone.name),
                    question=gettext("Are you sure you want to delete zone %(name)s? Its open parcels go to the zone "
                                     "that covers them, or to none. This cannot be undone.", name=zone.name),
                    button=gettext("Delete"), back_url=url_for("admin.zone_detail", zone_id=zone_id))


@bp.route("/zones/<int:zone_id>/delete", methods=["GET", "POST"])  # GET: the confirmation page
@staff_required(Permission.MANAGE_ZONES)
@confirm_first(_ask_delete)
def zone_delete(zone_id: int):
    name, moved = zones.delete_zone(zone_id, actor=current_user.username)
    db.session.commit()
    if answers_json():
        return jsonify({"id": zone_id, "name": name, "deleted": True, "parcels_moved": moved})
    flash(gettext("Zone %(name)s deleted.", name=name), "success")
    return redirect(url_for("admin.zones_page"))


def _document(zone: Zone, moved: int | None = None) -> dict:
    document = zones.zone_document(zone, zones.open_parcel_counts().get(zone.id, 0))
    if moved is not None:
        document["parcels_moved"] = moved
    return document


def _list_page(all_zones: Sequence[Zone], counts: dict[int, int], form: ZoneForm, status_code: int = 200,
               problem: str | None = None):
    page = render_template("admin/zones.html", zones=all_zones, counts=counts, form=form, problem=problem,
                           overview=draw(all_zones, *OVERVIEW),
                           thumbnails={zone.id: draw([zone], *THUMBNAIL) for zone in all_zones})
    return page, status_code


def _detail_page(zone: Zone, form: ZoneForm, status_code: int = 200, problem: str | None = None):
    page = render_template("admin/zone.html", zone=zone, form=form, problem=problem,
                           parcels_open=zones.open_parcel_counts().get(zone.id, 0), drawing=draw([zone], *OVERVIEW))
    return page, status_code


# --- drawing -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outline:
    zone_id: int
    name: str
    path: str  # SVG path data, every ring closed; holes cut by fill-rule="evenodd"
    label: tuple[float, float]


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    outlines: list[Outline]
    hubs: list[tuple[str, float, float]]  # zone name, x, y


def draw(some_zones: Sequence[Zone], width: int, height: int, margin: float = 8.0) -> Drawing | None:
    """The zones' outlines (and hubs) fitted into width × height; None without zones."""
    rings = [ring for zone in some_zones for polygon in _polygons(zone.geometry) for ring in polygon]
    lons = [lon for ring in rings for lon, _lat in ring] + [z.hub_lon for z in some_zones if z.hub_lon is not None]
    lats = [lat for ring in rings for _lon, lat in ring] + [z.hub_lat for z in some_zones if z.hub_lat is not None]
    if not lons:
        return None
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    squeeze = math.cos(math.radians((south + north) / 2))
    span_x, span_y = max((east - west) * squeeze, 1e-9), max(north - south, 1e-9)
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
    left = (width - span_x * scale) / 2
    top = (height - span_y * scale) / 2

    def at(lon: float, lat: float) -> tuple[float, float]:
        return round(left + (lon - west) * squeeze * scale, 1), round(top + (north - lat) * scale, 1)

    outlines = []
    for zone in some_zones:
        parts = []
        for polygon in _polygons(zone.geometry):
            for ring in polygon:
                points = [at(lon, lat) for lon, lat in ring]
                parts.append("M" + " L".join(f"{x},{y}" for x, y in points) + " Z")
        outer = max((polygon[0] for polygon in _polygons(zone.geometry)), key=len)
        label = at(sum(p[0] for p in outer[:-1]) / (len(outer) - 1), sum(p[1] for p in outer[:-1]) / (len(outer) - 1))
        outlines.append(Outline(zone.id, zone.name, " ".join(parts), label))
    hubs = [(zone.name, *at(zone.hub_lon, zone.hub_lat)) for zone in some_zones if zone.hub_lat is not None]
    return Drawing(width, height, outlines, hubs)


def _polygons(geometry: dict) -> list:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
