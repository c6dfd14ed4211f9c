"""Reading the zones page's form: a zone's name, its outline pasted as GeoJSON text, and its hub. JSON clients
send `{"name", "geometry", "hub"}` instead (app.admin.zones reads that body as it is); either way the zones
service checks every value."""
from __future__ import annotations

import json

from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField

from app.models import Zone
from app.web.forms import RequestForm, strip


class ZoneForm(RequestForm):
    name = StringField(_l("Name"), filters=[strip])
    geometry = TextAreaField(_l("Outline (GeoJSON Polygon or MultiPolygon)"), filters=[strip])
    hub_lat = StringField(_l("Hub latitude"), filters=[strip])
    hub_lon = StringField(_l("Hub longitude"), filters=[strip])

    @classmethod
    def of(cls, zone: Zone) -> ZoneForm:
        """Prefilled with a stored zone, for its page."""
        return cls(formdata=None, data={
            "name": zone.name, "geometry": json.dumps(zone.geometry, separators=(",", ":")),
            "hub_lat": "" if zone.hub_lat is None else repr(zone.hub_lat),
            "hub_lon": "" if zone.hub_lon is None else repr(zone.hub_lon)})

    def raw(self) -> dict[str, object]:
        """The values as the service reads them: no hub when both of its boxes are empty."""
        hub = None
        if self.hub_lat.data or self.hub_lon.data:
            hub = {"lat": self.hub_lat.data or None, "lon": self.hub_lon.data or None}
        return {"name": self.name.data, "geometry": self.geometry.data, "hub": hub}
