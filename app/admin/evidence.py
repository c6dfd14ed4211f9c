"""Proof-of-delivery files (signatures, photos) for staff: never public, never kept by any cache."""
from __future__ import annotations

from flask import Response

from app.admin import bp
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.services.shipments.proofs import proof_file


@bp.get("/shipments/<tracking_id>/proofs/<int:proof_id>/<kind>")
@staff_required(Permission.VIEW_SHIPMENTS)
def proof_evidence(tracking_id: str, proof_id: int, kind: str):
    """`kind` is `signature` or `photo`; 404 unless that proof of that shipment has one."""
    evidence = proof_file(tracking_id, proof_id, kind)
    response = Response(evidence.data, mimetype=evidence.content_type)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = "inline"
    return response
