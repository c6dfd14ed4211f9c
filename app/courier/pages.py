"""The courier app's shell: its page (couriers only), its web app manifest and its service worker.

All three live under /courier/, so the worker's scope is /courier/ with no Service-Worker-Allowed header. The
manifest and the worker hold no staff data and are public: a browser fetches the manifest without cookies, and
checks the worker for updates whether or not the session still lives. The stops themselves come from
GET /courier/stops, the actions go to POST /courier/events and the positions to POST /courier/locations.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import current_app, jsonify, make_response, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.auth.guard import staff_required
from app.courier import bp
from app.domain.field import (
    COD_METHODS,
    MAX_POINTS_PER_BATCH,
    MIN_POINT_GAP,
    OTP_DIGITS,
    PROOF_KINDS,
    SETTING_DEFAULTS,
    WORST_ACCURACY_M,
)
from app.domain.roles import Permission
from app.i18n.locales import STATUS_LABELS, status_label
from app.services.field.shifts import Shift, courier_shift
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.web.security import WEBASSEMBLY_CONTENT_SECURITY_POLICY

THEME_COLOR = "#0e2a47"  # the site header's brand colour: the phone's status bar matches it
BACKGROUND_COLOR = "#ffffff"

EVENTS_PER_REQUEST = 100  # POST /courier/events takes at most this many
POINTS_SEND_EVERY = 50  # positions are sent every 30 s, or sooner when this many are waiting
POINTS_SEND_SECONDS = 30
POINTS_KEPT_OFFLINE = 2000  # the newest kept on the phone while there is no connection; older ones are dropped

# Static files the app needs offline, precached by the service worker (the fonts are added by name).
SHELL_ASSETS = ("css/waybill.css", "courier/courier.css", "js/waybill.js", "js/signature.js", "js/camera-reader.js",
                "courier/store.js", "courier/app.js", "courier/icon-192.png", "courier/icon-512.png")
# The barcode reader for browsers without BarcodeDetector (barcode-detector's ponyfill and zxing-wasm's reader):
# 1.1 MB, so fetched only by the phones that need it, then kept by the worker like the rest.
BARCODE_READER = "vendor/barcode-detector/ponyfill.js"
BARCODE_WASM = "vendor/barcode-detector/zxing_reader.wasm"

COD_METHOD_LABELS = {"cash": _l("Cash"), "upi": _l("UPI")}

# What the script says, in the page's language: %(name)s is filled in by the script.
APP_WORDS = {
    "online": _l("Online"),
    "offline": _l("Offline: actions are kept on this phone and sent when the connection returns."),
    "queue_none": _l("Nothing waiting to send."),
    "queue_one": _l("1 action waiting to send."),
    "queue_many": _l("%(count)s actions waiting to send."),
    "waiting": _l("%(action)s at %(time)s: waiting to send."),
    "refused": _l("%(action)s at %(time)s was not recorded: %(error)s"),
    "dismiss": _l("Dismiss"),
    "saved": _l("%(action)s for %(id)s saved on this phone."),
    "stops_offline": _l("Offline: the stops as this phone last saw them, at %(time)s."),
    "stops_failed": _l("Your stops could not be loaded. They load when the connection returns."),
    "stops_none": _l("No stops on your run sheet today."),
    "stops_updated": _l("Updated at %(time)s."),
    "day_summary": _l("%(date)s · %(done)s of %(total)s done"),
    "kind_pickup": _l("Pickup from the sender"),
    "kind_delivery": _l("Delivery"),
    "pieces_one": _l("1 piece"),
    "pieces_many": _l("%(count)s pieces"),
    "prepaid": _l("Prepaid: nothing to collect."),
    "collect": _l("Collect %(amount)s (cash on delivery)."),
    "cod_due": _l("Due: %(amount)s."),
    "call": _l("Call %(name)s"),
    "navigate": _l("Directions to %(place)s"),
    "action_for": _l("%(action)s: %(id)s"),
    "not_found": _l("%(id)s is not on your run sheet today."),
    "found": _l("Stop %(sequence)s: %(id)s."),
    "found_done": _l("Stop %(sequence)s: %(id)s is done (%(status)s)."),
    "type_an_id": _l("Scan or type a tracking ID first."),
    "need_received_by": _l("Enter the name of the person who took the parcel."),
    "need_signature": _l("Ask the receiver to sign."),
    "need_photo": _l("Take a photo of the parcel."),
    "need_reason": _l("Choose why it could not be delivered."),
    "need_amount": _l("Enter the amount collected, like 1250.00."),
    "need_upi_reference": _l("Enter the UPI reference."),
    "need_otp": _l("Enter the %(digits)s-digit delivery code."),
    "warn_received_by": _l("Continue without the receiver's name?"),
    "warn_signature": _l("Continue without a signature?"),
    "warn_photo": _l("Continue without a photo?"),
    "continue_without": _l("Continue without"),
    "go_back": _l("Go back"),
    "photo_failed": _l("The photo could not be read: take it again."),
    "location_on": _l("Sharing your location."),
    "location_off_shift": _l("Off shift: your location is not shared."),
    "location_denied": _l("Location is off for this app: allow it in the phone's settings to share your position."),
    "location_unavailable": _l("This phone cannot share its location."),
    "camera_failed": _l("The camera could not start: type the ID instead."),
    "camera_aim": _l("Point the camera at the label's barcode or QR code."),
    "action_delivered": _l("Delivered"),
    "action_attempted": _l("Not delivered"),
    "action_picked_up": _l("Picked up"),
    "carried_over": _l("Still open from %(date)s."),
    "error_not_assigned": _l("This parcel is not on your run sheet."),
    "error_otp_wrong": _l("The delivery code was wrong: ask the receiver for it again."),
    "error_locked": _l("Too many wrong delivery codes: this stop is locked for 15 minutes."),
}


@bp.get("/", endpoint="app")
@staff_required(Permission.USE_COURIER_APP)
def courier_app():
    """The app's page. It may compile WebAssembly (the barcode reader), which no other page may."""
    page = render_template("courier/app.html", setup=_setup(courier_shift(current_user.id)),
                           attempt_reasons=ATTEMPT_REASONS, otp_digits=OTP_DIGITS, theme_color=THEME_COLOR,
                           cod_methods=[(method, COD_METHOD_LABELS[method]) for method in COD_METHODS])
    response = make_response(page)
    response.headers["Content-Security-Policy"] = WEBASSEMBLY_CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/manifest.webmanifest", endpoint="manifest")
def manifest():
    page = url_for("courier.app")
    response = jsonify({
        "id": page, "name": str(_l("Waybill courier")), "short_name": "Waybill",
        "description": str(_l("The day's stops, proof of delivery and cash on delivery, offline too.")),
        "start_url": page, "scope": page, "display": "standalone", "orientation": "portrait",
        "theme_color": THEME_COLOR, "background_color": BACKGROUND_COLOR,
        "icons": [{"src": url_for("static", filename=f"courier/icon-{size}.png"), "sizes": f"{size}x{size}",
                   "type": "image/png", "purpose": "any maskable"} for size in (192, 512)],
    })
    response.mimetype = "application/manifest+json"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/sw.js", endpoint="service_worker")
def service_worker():
    """The service worker, from /courier/ so that its scope is /courier/. Its text changes whenever a file it
    keeps changes (`version`), which is what makes browsers install the new one."""
    shell = _shell_files()
    response = make_response(render_template(
        "courier/sw.js", page=url_for("courier.app"), static_prefix=url_for("static", filename=""),
        version=_files_version(tuple(_stamp(path) for path in (*shell, *_barcode_files()))),
        precache=[url_for("static", filename=_static_name(path)) for path in shell]))
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _setup(shift: Shift | None) -> dict:
    """What the script needs, in the page (it keeps working offline from the cached page)."""
    page = url_for("courier.app")
    return {
        "courier": current_user.username,
        "csrf_token": generate_csrf(),
        "urls": {"page": page, "stops": f"{page}stops", "events": f"{page}events", "locations": f"{page}locations",
                 "service_worker": url_for("courier.service_worker"), "sign_out": url_for("auth.logout"),
                 "barcode_reader": url_for("static", filename=BARCODE_READER),
                 "barcode_wasm": url_for("static", filename=BARCODE_WASM)},
        "timezone": current_app.config["DISPLAY_TIMEZONE"],
        "shift": {"start": shift.start.strftime("%H:%M"), "end": shift.end.strftime("%H:%M")} if shift else None,
        "positions": {"worst_accuracy_m": WORST_ACCURACY_M, "min_gap_seconds": MIN_POINT_GAP.total_seconds(),
                      "per_request": MAX_POINTS_PER_BATCH, "send_every": POINTS_SEND_EVERY,
                      "send_seconds": POINTS_SEND_SECONDS, "kept_offline": POINTS_KEPT_OFFLINE},
        "events_per_request": EVENTS_PER_REQUEST,
        "otp_digits": OTP_DIGITS,
        "proof_defaults": {kind: str(SETTING_DEFAULTS[kind]) for kind in PROOF_KINDS},  # a stop that says none
        "statuses": {str(status): status_label(status) for status in STATUS_LABELS},
        "words": {key: str(text) for key, text in APP_WORDS.items()},
    }


def _static_folder() -> Path:
    return Path(current_app.static_folder)


def _static_name(path: Path) -> str:
    return path.relative_to(_static_folder()).as_posix()


def _shell_files() -> list[Path]:
    static = _static_folder()
    return [static / name for name in SHELL_ASSETS] + sorted((static / "fonts").glob("*.woff2"))


def _barcode_files() -> list[Path]:
    static = _static_folder()
    return [static / BARCODE_READER, static / BARCODE_WASM]


def _stamp(path: Path) -> tuple[str, int, int]:
    status = path.stat()
    return str(path), status.st_mtime_ns, status.st_size


@lru_cache(maxsize=8)
def _files_version(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """A digest of the files' contents, read again only when a file's size or time changes: every container of
    a release answers the same version, whatever times its files carry."""
    digest = hashlib.sha256()
    for path, _mtime, _size in stamps:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]
