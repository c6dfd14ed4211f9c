"""The SLA: which open parcels will miss, or have missed, the day they were promised by.

Rules (the one statement of "at risk" and "breached"; the alerts, the SLA page, the live map's colours and its
figure all ask here):
- Only parcels still on their way count: not final, not on the return leg (their promise is moot once they go
  back), with a `promised_by`.
- Breached: `promised_by` has passed (`now` > promised_by) and the parcel is not delivered.
- At risk: not breached yet, and its estimated delivery's latest time (app.services.shipments.estimates, from the
  status it is in since its last change) is after `promised_by`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import case, select

from app.domain.status import FINAL_STATUSES, RETURN_LEG, Status
from app.domain.timeutil import as_utc, isoformat_z
from app.extensions import db
from app.models import Shipment
from app.services.shipments.estimates import estimate, estimate_table
from app.services.shipments.queries import held_from_query

OPEN_LIMIT = 50_000  # parcels looked at in one call: more than a regional courier has open at once


@dataclass(frozen=True)
class SlaParcel:
    shipment_id: int
    tracking_id: str
    status: str
    zone_id: int | None
    promised_by: datetime
    estimated_latest: datetime | None  # None when breached (no estimate is asked) or none exists

    def to_dict(self) -> dict:
        return {"tracking_id": self.tracking_id, "status": self.status, "promised_by": isoformat_z(self.promised_by),
                "estimated_latest": isoformat_z(self.estimated_latest)}


@dataclass(frozen=True)
class SlaLists:
    at_risk: list[SlaParcel]
    breached: list[SlaParcel]

    def to_dict(self) -> dict:
        return {"at_risk": [p.to_dict() for p in self.at_risk], "breached": [p.to_dict() for p in self.breached]}


def sla_lists(now: datetime, *, shipment_ids: list[int] | None = None) -> SlaLists:
    """The open parcels at risk and breached at `now`, earliest promise first (only those of `shipment_ids` when
    given)."""
    settled = sorted(FINAL_STATUSES | RETURN_LEG)
    query = (select(Shipment.id, Shipment.tracking_id, Shipment.status, Shipment.zone_id, Shipment.promised_by,
                    Shipment.destination, Shipment.updated_at,
                    case((Shipment.status == Status.ON_HOLD.value, held_from_query(Shipment.id)),
                         else_=None).label("held_from"))
             .where(Shipment.promised_by.is_not(None), Shipment.status.not_in(settled))
             .order_by(Shipment.promised_by, Shipment.id).limit(OPEN_LIMIT))
    if shipment_ids is not None:
        query = query.where(Shipment.id.in_(shipment_ids))
    rows = db.session.execute(query).all()
    factor = float(current_app.config["ETA_DEFAULT_FACTOR"])
    table = estimate_table({row.destination for row in rows})
    at_risk, breached = [], []
    for row in rows:
        promised_by = as_utc(row.promised_by)
        if now > promised_by:
            if row.held_from not in RETURN_LEG:
                breached.append(SlaParcel(row.id, row.tracking_id, row.status, row.zone_id, promised_by, None))
            continue
        expected = estimate(row.destination, row.status, row.updated_at, row.held_from, factor, table, now=now)
        if expected is not None and expected.latest > promised_by:
            at_risk.append(SlaParcel(row.id, row.tracking_id, row.status, row.zone_id, promised_by, expected.latest))
    return SlaLists(at_risk, breached)
