"""Reading a zone: `{"name", "geometry", "hub"}` as JSON (only the fields sent, for an update), or the zones page's
form (the outline pasted as GeoJSON text, the hub as two boxes). The zones service checks every value."""
from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField

from app.models import Zone
from app.web.forms import ObjectField, RequestForm, strip


class GeoJsonField(TextAreaField):
    """A GeoJSON geometry: any JSON value as sent (app.services.planning.zones says what is wrong with it), or
    its text pasted into the page's box."""

    json_as_sent = True

    def _value(self) -> str:
        return self.data if isinstance(self.data, str) else json.dumps(self.data, separators=(",", ":"))


class ZoneForm(RequestForm):
    name = StringField(_l("Name"), filters=[strip])
    geometry = GeoJsonField(_l("Outline (GeoJSON Polygon or MultiPolygon)"), filters=[strip])
    hub = ObjectField(_l("Hub"))  # JSON: {"lat", "lon"}, or null for none
    hub_lat = StringField(_l("Hub latitude"), filters=[strip])
    hub_lon = StringField(_l("Hub longitude"), filters=[strip])

    @classmethod
    def of(cls, zone: Zone) -> ZoneForm:
        """Prefilled with a stored zone, for its page."""
        return cls(formdata=None, data={
            "name": zone.name, "geometry": zone.geometry,
            "hub_lat": "" if zone.hub_lat is None else repr(zone.hub_lat),
            "hub_lon": "" if zone.hub_lon is None else repr(zone.hub_lon)})

    def raw(self) -> dict[str, object]:
        """The values as the service reads them. JSON: the fields sent only (an update leaves the others). The
        page's form: every field, no hub when both of its boxes are empty."""
        if self.json_fields is not None:
            raw = {name: self[name].data for name in ("name", "geometry", "hub") if name in self.json_fields}
            if {"hub_lat", "hub_lon"} & self.json_fields:
                raw["hub"] = self._boxed_hub()
            return raw
        return {"name": self.name.data, "geometry": self.geometry.data, "hub": self._boxed_hub()}

    def _boxed_hub(self) -> dict | None:
        if not (self.hub_lat.data or self.hub_lon.data):
            return None
        return {"lat": self.hub_lat.data or None, "lon": self.hub_lon.data or None}
