"""Public look-ups: the landing page, GET /track/<id> and GET /search/<mobile> (JSON or HTML), and the
tracking page's "show full details" check. Public answers are minimal (DESIGN.md rule 9)."""
import hashlib
import math

from flask import Response, current_app, jsonify, redirect, render_template, request, session, url_for
from flask_babel import gettext, ngettext

from app.auth.guard import json_without_csrf, navigation_user
from app.domain.privacy import shipment_parties
from app.domain.status import Status
from app.domain.timeutil import as_utc
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import DomainError, ProofRefused, TooManyAttempts, ValidationError, wants_html
from app.extensions import db, limiter
from app.i18n.locales import current_language
from app.services.ndr.reports import answer_url_if_open
from app.services.shipments.contacts import mask_mobile
from app.services.shipments.detail_checks import DetailProof, check_mobile_last4
from app.services.shipments.proofs import public_delivery_from
from app.services.shipments.public_document import (
    document_courier,
    estimated_delivery,
    public_timeline,
    public_tracking_document,
)
from app.services.shipments.queries import find_shipment, search_by_mobile
from app.shipments.forms import BookingForm
from app.shipments.routes import BOOKED_CHARGES
from app.tracking import bp
from app.tracking.forms import FullDetailsForm, MobileSearchForm, TrackForm
from app.web.forms import field_errors, refused_on_page
from app.web.serializers import full_details_to_dict, search_result_to_dict

TIMELINE_FRAGMENT = "timeline"
# Tracking IDs whose full details this browser session has unlocked (the most recent few).
UNLOCKED_SESSION_KEY = "unlocked_tracking_ids"
UNLOCKED_KEEP = 20

# Per client address. Misses (unknown or malformed IDs) have a budget of their own, far below the one for hits:
# once it is spent, the client waits, hits included. The page's own refresh (304s) costs one request a go.
track_limit = limiter.limit(
    lambda: current_app.config["RATELIMIT_TRACK"],
    error_message=lambda: gettext("Too many tracking requests from your address; try again shortly."))
track_miss_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_TRACK_MISS"], scope="track-miss",
    deduct_when=lambda response: response.status_code in (400, 404),
    error_message=lambda: gettext("Too many unknown tracking IDs from your address; try again shortly."))
search_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_SEARCH"], scope="search",
    error_message=lambda: gettext("Too many searches from your address; try again shortly."))


@bp.get("/")
def landing():
    return render_template("tracking/landing.html", booking_form=BookingForm(formdata=None))


@bp.get("/track")
def track_form():
    """The landing page's track-by-ID form (GET, so the result is bookmarkable)."""
    form = TrackForm(formdata=request.args)
    if not form.validate():
        if wants_html():
            return _landing_with_errors(track_form=form)
        raise ValidationError(fields=field_errors(form))
    typed = form.tracking_id.data
    return redirect(url_for("tracking.track", tracking_id=normalise_tracking_id(typed) or typed))


@bp.get("/track/<tracking_id>")
@track_limit
@track_miss_limit
def track(tracking_id: str):
    """A shipment's status and timeline as JSON, a page, or the page's live part (?fragment=timeline).

    Every representation carries an ETag, so the page's refresh and API clients can ask "anything new?" and get
    a bodiless 304 when nothing is. JSON is the prebuilt public document (one query, or none when cached).
    All of them are public (rule 9), except the page once this browser session has given the proof for the
    shipment: that one shows the full names and address and is neither stored by caches nor given an ETag.
    """
    representation = _representation()
    if representation == "json":
        document = public_tracking_document(tracking_id)
        if request.if_none_match.contains_weak(document.etag):
            return _revalidated(Response(status=304), document.etag, representation)
        return _revalidated(Response(document.body, mimetype="application/json"), document.etag, representation)
    shipment = find_shipment(tracking_id)
    # The estimate is the tracking document's (cached and invalidated with it), so page and JSON agree.
    document = public_tracking_document(shipment.tracking_id)
    if representation == "html" and _is_unlocked(shipment.tracking_id):
        # The full names and address, for this browser session only: never stored by any cache, no ETag.
        response = Response(_track_page(shipment, document, unlocked=True))
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.add("Accept")
        return response
    etag = _etag(shipment, representation, document)
    if request.if_none_match.contains_weak(etag):
        return _revalidated(Response(status=304), etag, representation)
    if representation == "fragment":
        events = public_timeline(shipment.id)
        page = render_template("tracking/_live.html", shipment=shipment, events=events,
                               delivery=public_delivery_from(shipment.status, events),
                               estimate=estimated_delivery(document), courier=document_courier(document))
    else:
        page = _track_page(shipment, document)
    return _revalidated(Response(page), etag, representation)


def _track_page(shipment, document, unlocked: bool = False, details_form: FullDetailsForm | None = None) -> str:
    events = public_timeline(shipment.id)
    return render_template(
        "tracking/track.html", shipment=shipment, events=events, estimate=estimated_delivery(document),
        courier=document_courier(document),
        delivery=public_delivery_from(shipment.status, events), parties=shipment_parties(shipment, full=unlocked),
        unlocked=unlocked,
        # The answer page of an open failed delivery, for a visitor who gave the proof (app.services.ndr).
        ndr_url=answer_url_if_open(shipment.id) if unlocked else None,
        details_form=details_form or FullDetailsForm(formdata=None),
        booked=_just_booked(shipment), booked_charges=_booked_charges(shipment),
        live_etag=_etag(shipment, "fragment", document),
        refresh_seconds=max(1, int(current_app.config["TRACK_REFRESH_SECONDS"])),
    )


def _just_booked(shipment) -> bool:
    """The "Booked. Your tracking ID is…" banner after the booking form, only while it is still true: a link
    with ?booked=1 kept (bookmarked, shared) shows the plain page once the shipment has moved on."""
    return request.args.get("booked") == "1" and shipment.status == Status.BOOKED


def _booked_charges(shipment) -> dict | None:
    """What the booking costs, on its confirmation in the browser that booked it (the session remembers its last
    booking): a tracking page never shows charges to anyone else."""
    booked = session.get(BOOKED_CHARGES) or {}
    if _just_booked(shipment) and booked.get("tracking_id") == shipment.tracking_id:
        return booked.get("charges")
    return None


@bp.post("/track/<tracking_id>/details")
@limiter.limit(lambda: current_app.config["RATELIMIT_DETAILS"],
               error_message=lambda: gettext("Too many checks from your address; try again later."))
@json_without_csrf
def full_details(tracking_id: str):
    """"Show full details": the last 4 digits of the receiver's mobile unlock the full names and the address
    for this browser session (a JSON call also gets them in the answer). Misses count per shipment and client
    address, with a ceiling per shipment, and lock the check (see app.services.shipments.detail_checks); the page's form
    works without JavaScript (POST, then 303)."""
    form = FullDetailsForm.from_request()
    try:
        form.validate_or_raise()
        proof = check_mobile_last4(tracking_id, form.mobile_last4.data, client=request.remote_addr)
        db.session.commit()  # a miss is counted even though the answer is an error
        if not proof.unlocked:
            raise _refusal(proof)
    except (ValidationError, ProofRefused, TooManyAttempts) as error:
        return _details_refused_page(tracking_id, form, error)
    _remember_unlocked(proof.shipment.tracking_id)
    if not request.is_json:
        return redirect(url_for("tracking.track", tracking_id=proof.shipment.tracking_id), 303)
    response = jsonify(full_details_to_dict(proof.shipment))
    response.headers["Cache-Control"] = "no-store"
    return response


def _refusal(proof: DetailProof) -> DomainError:
    if proof.retry_after and proof.closed_for_everyone:
        hours = max(1, math.ceil(proof.retry_after / 3600))
        return TooManyAttempts(ngettext("Those digits do not match, and this shipment has had too many wrong answers "
                                        "today: the check is closed for %(num)d hour.",
                                        "Those digits do not match, and this shipment has had too many wrong answers "
                                        "today: the check is closed for %(num)d hours.", hours),
                               retry_after=proof.retry_after)
    if proof.retry_after:
        minutes = max(1, round(proof.retry_after / 60))
        return TooManyAttempts(ngettext("Those digits do not match, and that was the last try: the check is locked "
                                        "for this shipment for %(num)d minute.",
                                        "Those digits do not match, and that was the last try: the check is locked "
                                        "for this shipment for %(num)d minutes.", minutes),
                               retry_after=proof.retry_after)
    return ProofRefused(ngettext("Those digits do not match. %(num)d try left.",
                                 "Those digits do not match. %(num)d tries left.", proof.misses_left),
                        misses_left=proof.misses_left)


def _details_refused_page(tracking_id: str, form: FullDetailsForm, error: DomainError) -> Response:
    """The tracking page again, with the check's error next to its field (and the error's status); a JSON
    client gets the error as JSON."""
    problem = refused_on_page(error, form)
    if problem:  # the check has one field: every refusal is shown beside it
        form.mobile_last4.errors = [problem]
    shipment = find_shipment(tracking_id)
    response = Response(_track_page(shipment, public_tracking_document(shipment.tracking_id), details_form=form),
                        status=error.status_code,
                        headers=error.response_headers())
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _is_unlocked(tracking_id: str) -> bool:
    return tracking_id in session.get(UNLOCKED_SESSION_KEY, ())


def _remember_unlocked(tracking_id: str) -> None:
    kept = [t for t in session.get(UNLOCKED_SESSION_KEY, ()) if t != tracking_id]
    session[UNLOCKED_SESSION_KEY] = [*kept, tracking_id][-UNLOCKED_KEEP:]


def _representation() -> str:
    if request.args.get("fragment") == TIMELINE_FRAGMENT:
        return "fragment"
    return "html" if wants_html() else "json"


def _etag(shipment, representation: str, document) -> str:
    """Pages change only with the shipment's status and last update (events are append-only and always move
    both), its estimate (the tracking document's ETag covers it) and the page's language. The full page also
    shows who is signed in (navigation bar) and the "just booked" banner."""
    viewer = ""
    if representation == "html":
        signed_in = navigation_user()
        viewer = (f"{signed_in.username if signed_in.is_authenticated else '-'}|{request.args.get('booked')}|"
                  f"{(session.get(BOOKED_CHARGES) or {}).get('tracking_id') == shipment.tracking_id}")
    source = f"{shipment.tracking_id}|{shipment.status}|{as_utc(shipment.updated_at).isoformat()}|" \
             f"{representation}|{viewer}|{current_language()}|{document.etag}"
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def _revalidated(response: Response, etag: str, representation: str) -> Response:
    response.set_etag(etag)
    # no-cache: caches may keep a copy but must ask every time; the page names the signed-in user.
    response.headers["Cache-Control"] = "private, no-cache" if representation == "html" else "no-cache"
    response.vary.add("Accept")
    if representation != "json":
        response.vary.update(("Accept-Language", "Cookie"))  # the page speaks the visitor's language
    return response


@bp.post("/search")
@search_limit
@json_without_csrf
def search_form():
    """The landing page's find-by-mobile form: POST, so the number stays out of URLs, history and logs."""
    form = MobileSearchForm.from_request()
    try:
        form.validate_or_raise()
        return _search_response(form.mobile.data)
    except ValidationError as error:
        refused_on_page(error, form)
        return _landing_with_errors(search_form=form)


@bp.get("/search/<mobile>")
@search_limit
def search(mobile: str):
    return _search_response(mobile)


def _search_response(raw_mobile: str):
    mobile, shipments = search_by_mobile(raw_mobile, current_app.config["DEFAULT_PHONE_REGION"])
    if wants_html() or not request.is_json and request.method == "POST":
        return render_template("tracking/search.html", masked_mobile=mask_mobile(mobile), shipments=shipments)
    return jsonify({"mobile": mask_mobile(mobile), "shipments": [search_result_to_dict(s) for s in shipments]})


def _landing_with_errors(**forms):
    return render_template("tracking/landing.html", booking_form=BookingForm(formdata=None), **forms), 400
