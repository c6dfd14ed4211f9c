"""Proof of delivery: who received a parcel, why a delivery attempt failed, and the signature and photo taken at
the door.

Rules:
- A proof enters one way: as the raw fields (and files) of a status change, which the status-change core
  (app.services.shipments.status_changes) checks here with `check_proof` and records with `record_proofs`.
- Delivered needs `received_by` (the name of the person who took the parcel) and Delivery Attempted an
  `attempt_reason` from ATTEMPT_REASONS, wherever staff record them (staff pages, scan mode, /api/v1): their
  changes say `proof_required`. The paper-compatible `POST /update/<id>` does not: a missing value is recorded as
  not given (NULL), a value that is given is checked all the same.
- Values that do not belong to the status are ignored (the staff form always posts every field).
- A signature (PNG, or the canvas's PNG data URL) and a photo (JPEG or PNG) may come with Delivered. They are
  decoded and re-encoded without metadata (app.services.shipments.evidence_images) during the check, before anything
  is written, so a refused request writes nothing anywhere.
- The proof row is written in the status change's own transaction, right after its event (`record_proofs`, for
  all the events of a batch in one statement); the files go to the store (app.services.shipments.storage) just
  before the row, under keys the app makes (with a random part: they cannot be guessed or collide). A store that
  fails is a 503 and the whole change is rolled back.
- Rows and files are never changed afterwards. Signatures and photos are for staff only; anything public shows
  the receiver's first name and the time, nothing else (DESIGN.md rule 9).
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from PIL import Image
from sqlalchemy import insert, select

from app.domain.status import Status, canonical_status
from app.domain.timeutil import isoformat_z, utcnow
from app.errors import NotFound, StoreUnavailable, ValidationError
from app.extensions import db
from app.models import DeliveryProof, Shipment, TrackingEvent
from app.models.delivery_proof import RECEIVED_BY_MAX
from app.services.shipments.evidence_images import MAX_UPLOAD_BYTES, CleanImage, clean_image
from app.services.shipments.queries import NEWEST_FIRST, find_shipment
from app.services.shipments.storage import FileStore, StorageError, StoredFileMissing, open_store

# Why a delivery attempt failed: the code is what clients send (`attempt_reason`), the label what people read.
ATTEMPT_REASONS: dict[str, LazyString] = {
    "nobody_home": _l("Nobody home"),
    "address_not_found": _l("Address not found"),
    "refused": _l("Refused by the recipient"),
    "business_closed": _l("Business closed"),
    "no_access": _l("No access to the building"),
    "rescheduled": _l("Recipient asked for another day"),
    "unsafe": _l("Unsafe to deliver"),
}
FILE_KINDS = ("signature", "photo")
SIGNATURE_DATA_URL_PREFIX = "data:image/png;base64,"
_CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}
_TABLE = DeliveryProof.__table__


@dataclass(frozen=True)
class Proof:
    """A checked proof, ready to record: text normalised, images already re-encoded."""

    received_by: str | None = None
    attempt_reason: str | None = None
    signature: CleanImage | None = None
    photo: CleanImage | None = None


def check_proof(status: str, received_by: str | None, attempt_reason: str | None, *, required: bool,
                signature: bytes | str | None = None, photo: bytes | None = None) -> Proof | None:
    """The proof that goes with a change to `status`, checked; None when the status takes none.

    Rules: see the module. `required` makes `received_by` (Delivered) and `attempt_reason` (Delivery Attempted)
    compulsory. `signature` is PNG bytes or the staff form's `data:image/png;base64,…` URL. Every problem is
    reported at once, in one ValidationError naming each field. Pure except for the image decoding: no database,
    no store, so a bulk caller can check every item before writing any.
    """
    requested = canonical_status(status or "")
    if requested not in (Status.DELIVERED, Status.DELIVERY_ATTEMPTED, Status.RETURNED_TO_SENDER):
        return None
    problems: dict[str, str] = {}
    if requested == Status.RETURNED_TO_SENDER:
        name = _checked_name(received_by, False, problems)
        if problems:
            raise ValidationError(fields=problems)
        return Proof(received_by=name) if name is not None else None
    if requested == Status.DELIVERED:
        name = _checked_name(received_by, required, problems)
        if isinstance(signature, str):
            signature = _signature_from_data_url(signature, problems)
        images = {field: _checked_image(data, field, problems)
                  for field, data in (("signature", signature), ("photo", photo))}
        if problems:
            raise ValidationError(fields=problems)
        return Proof(received_by=name, signature=images["signature"], photo=images["photo"])
    reason = (attempt_reason or "").strip().lower() or None
    if reason is None and required:
        problems["attempt_reason"] = "Choose why the delivery could not be made."
    elif reason is not None and reason not in ATTEMPT_REASONS:
        problems["attempt_reason"] = f"Must be one of: {', '.join(ATTEMPT_REASONS)}."
    if problems:
        raise ValidationError(fields=problems)
    return Proof(attempt_reason=reason)


# Proof that depends on the status a shipment comes from, by the status it goes to: Returned to Sender after
# RTO In Transit ends the return leg with a handover at the sender's, named like a delivery.
RECEIVED_BY_AFTER: dict[str, frozenset[str]] = {Status.RETURNED_TO_SENDER: frozenset({Status.RTO_IN_TRANSIT})}
RECEIVED_BY_AT_THE_SENDER = "Enter the name of the person who took the parcel back at the sender's."


def missing_proof(status: str, current: str, proof: Proof | None) -> dict[str, str]:
    """What a required proof lacks for a change from `current` to `status` by the rules check_proof cannot apply
    (they depend on `current`): field → message, empty when nothing is missing. Pure."""
    if current in RECEIVED_BY_AFTER.get(status, ()) and (proof is None or proof.received_by is None):
        return {"received_by": RECEIVED_BY_AT_THE_SENDER}
    return {}


# What a name may not hold besides control characters: the invisible and direction-changing format characters
# (soft hyphen, zero-width spaces and joiners, bidirectional marks, embeddings, overrides and isolates, the
# byte-order mark), with which a name reads differently from what is stored. A regular-expression range
# (ECMA-262 and Python alike), also published in the API's schema (app.api.schemas).
HIDDEN_FORMAT_CHARACTERS = r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
_REFUSED_IN_NAME = re.compile(rf"[\x00-\x1f\x7f-\x9f\ud800-\udfff{HIDDEN_FORMAT_CHARACTERS}]")


def _checked_name(value: str | None, required: bool, problems: dict[str, str]) -> str | None:
    if value is not None and not isinstance(value, str):
        problems["received_by"] = "Must be a string."
        return None
    name = " ".join((value or "").split()) or None
    if name is None:
        if required:
            problems["received_by"] = "Enter the name of the person who received the parcel."
    elif len(name) > RECEIVED_BY_MAX:
        problems["received_by"] = f"At most {RECEIVED_BY_MAX} characters."
    elif _REFUSED_IN_NAME.search(name):
        problems["received_by"] = ("Control and invisible formatting characters (such as NUL or a right-to-left "
                                   "override) are not allowed here.")
    return name


def _checked_image(data: bytes | None, field: str, problems: dict[str, str]) -> CleanImage | None:
    if data is None:
        return None
    try:
        image = clean_image(data, field, as_png=field == "signature")
    except ValidationError as error:
        problems.update(error.fields)
        return None
    if field == "signature" and _is_blank(image):
        problems[field] = "The signature is empty: sign in the box, or leave it out."
        return None
    return image


def _is_blank(image: CleanImage) -> bool:
    """A canvas nobody drew on: every pixel transparent, or all of one colour."""
    with Image.open(io.BytesIO(image.data)) as picture:
        if "A" in picture.getbands():
            return picture.getchannel("A").getbbox() is None
        low, high = picture.convert("L").getextrema()
        return low == high


def _signature_from_data_url(value: str, problems: dict[str, str]) -> bytes | None:
    """The PNG bytes of a canvas's `data:image/png;base64,…` URL (the staff form's hidden field); None when
    empty, or when it is not one (the problem is put under `signature`)."""
    if not value:
        return None
    if not value.startswith(SIGNATURE_DATA_URL_PREFIX):
        problems["signature"] = "Must be a PNG image (a data:image/png;base64 URL)."
        return None
    return image_from_base64(value[len(SIGNATURE_DATA_URL_PREFIX):], "signature", problems,
                             "Must be a PNG image (the base64 is not valid).")


def image_from_base64(encoded: str, field: str, problems: dict[str, str], not_valid: str) -> bytes | None:
    """The bytes of an image sent as base64 text, at most MAX_UPLOAD_BYTES (decoded only when it can fit); None
    with the problem put under `field` (`not_valid` when the base64 is not valid)."""
    if len(encoded) > MAX_UPLOAD_BYTES * 4 // 3 + 4:
        problems[field] = f"At most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        problems[field] = not_valid
        return None


def record_proofs(items: Iterable[tuple[int, int, Proof | None]]) -> None:
    """Record the proofs of many events, as (event_id, shipment_id, proof), in one INSERT in the caller's
    transaction; items whose proof is None are skipped. Files are stored first (StoreUnavailable, 503, if the
    store fails: the caller's transaction must then roll back)."""
    rows = []
    store: FileStore | None = None
    now = utcnow()
    for event_id, shipment_id, proof in items:
        if proof is None:
            continue
        keys: dict[str, str | None] = {}
        for kind in FILE_KINDS:
            image: CleanImage | None = getattr(proof, kind)
            keys[kind] = None
            if image is not None:
                store = store or file_store()
                keys[kind] = _store(store, f"pod/{shipment_id}/{event_id}-{kind}-{secrets.token_hex(8)}."
                                           f"{image.extension}", image)
        rows.append({"event_id": event_id, "shipment_id": shipment_id, "received_by": proof.received_by,
                     "attempt_reason": proof.attempt_reason, "signature_key": keys["signature"],
                     "photo_key": keys["photo"], "created_at": now})
    if rows:
        db.session.execute(insert(_TABLE), rows)


def _store(store: FileStore, key: str, image: CleanImage) -> str:
    try:
        store.put(key, image.data, image.content_type)
    except StorageError as exc:
        raise StoreUnavailable() from exc
    return key


def file_store() -> FileStore:
    """This app's file store (STORAGE_BACKEND), opened once per process."""
    store = current_app.extensions.get("waybill_file_store")
    if store is None:
        store = current_app.extensions["waybill_file_store"] = open_store(current_app.config)
    return store


# --- reading proofs --------------------------------------------------------------------------------------------

def proofs_for_shipment(shipment: Shipment) -> list[tuple[TrackingEvent, DeliveryProof]]:
    """A shipment's proofs with their events, newest first (staff only)."""
    rows = db.session.execute(
        select(TrackingEvent, DeliveryProof).join(DeliveryProof, DeliveryProof.event_id == TrackingEvent.id)
        .where(DeliveryProof.shipment_id == shipment.id)
        .order_by(*NEWEST_FIRST)
    )
    return [(event, proof) for event, proof in rows]


@dataclass(frozen=True)
class StoredEvidence:
    data: bytes
    content_type: str


def proof_file(tracking_id: str, proof_id: int, kind: str) -> StoredEvidence:
    """A proof's signature or photo, for staff. NotFound unless that proof belongs to that shipment and has
    that file; StoreUnavailable when the store cannot be read."""
    shipment = find_shipment(tracking_id)
    missing = NotFound(f"Shipment {shipment.tracking_id} has no such {kind if kind in FILE_KINDS else 'file'}.")
    if kind not in FILE_KINDS or not 0 < proof_id < 2**31:
        raise missing
    proof = db.session.scalars(select(DeliveryProof).where(DeliveryProof.id == proof_id,
                                                           DeliveryProof.shipment_id == shipment.id)).first()
    key = getattr(proof, f"{kind}_key") if proof is not None else None
    if key is None:
        raise missing
    try:
        data = file_store().get(key)
    except StoredFileMissing as exc:
        raise missing from exc
    except StorageError as exc:
        raise StoreUnavailable("The file store cannot be reached right now; please try again.") from exc
    return StoredEvidence(data, _CONTENT_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream"))


# --- what the public sees --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicDelivery:
    """"Delivered to <first name> at <time>": the receiver's first name only (None when not given)."""

    received_by: str | None
    delivered_at: datetime

    def to_dict(self) -> dict:
        return {"received_by": self.received_by, "delivered_at": isoformat_z(self.delivered_at)}


def first_name(name: str | None) -> str | None:
    """The first word of a name: all of it that a public page may show ("Ravi Kumar" → "Ravi")."""
    words = (name or "").split()
    return words[0] if words else None


def public_delivery_from(status: str, events: Iterable) -> PublicDelivery | None:
    """The delivery of a Delivered shipment, from its public timeline (events oldest first, each with `status`,
    `occurred_at` and `received_by`); None for any other status. The one statement of what the public sees of a
    delivery: the tracking document's `delivery` and the tracking page's "Delivered to …" both come from it."""
    if status != Status.DELIVERED:
        return None
    delivered = [e for e in events if e.status == Status.DELIVERED]
    if not delivered:
        return None
    return PublicDelivery(first_name(delivered[-1].received_by), delivered[-1].occurred_at)


def attempt_reason_label(code: str | None) -> LazyString | None:
    """What people read for an attempt reason code (public: the tracking page and JSON, emails); None for none."""
    return ATTEMPT_REASONS.get(code or "")

