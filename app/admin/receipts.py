"""Booking receipts for the counter: GET /admin/shipments/<tracking_id>/receipt.pdf (staff), an A5 PDF with the
shipment's charges (app.services.shipments.receipts, which audits the printing as labels are audited)."""
from __future__ import annotations

from flask import Response, current_app
from flask_login import current_user

from app.admin import bp
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.extensions import db
from app.services.shipments.queries import find_shipment
from app.services.shipments.receipts import print_receipt


@bp.get("/shipments/<tracking_id>/receipt.pdf")
@staff_required(Permission.VIEW_SHIPMENTS)
def receipt(tracking_id: str):
    shipment = find_shipment(tracking_id)
    pdf = print_receipt(shipment, actor=current_user.username, timezone=current_app.config["DISPLAY_TIMEZONE"],
                        public_base_url=current_app.config["PUBLIC_BASE_URL"])
    db.session.commit()
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="receipt-{shipment.tracking_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"  # names, address and prices: not for shared caches
    return response
