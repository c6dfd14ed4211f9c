"""Pages that load fast: compressed text (brotli, gzip) over 1 KB, static files by content fingerprint with a
year's immutable caching and no Vary: Cookie, conditional requests that still answer 304 when compressed, and
a meta description on every public page."""
from __future__ import annotations

import gzip
import hashlib
import re

import brotli
import pytest
from flask import Response
from sqlalchemy import select

from app import config, create_app
from app.extensions import db
from app.models import Shipment
from app.services.outbox import preferences
from app.web.static_files import IMMUTABLE, build_manifest

# Headers and rendering: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

HTML = {"Accept": "text/html"}
DECODE = {"br": brotli.decompress, "gzip": gzip.decompress}
FINGERPRINTED = re.compile(r"^/static/(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<suffix>\.[a-z0-9]+)$")
STATIC_LINK = re.compile(r'(?:href|src)="(/static/[^"]+)"')


@pytest.fixture(scope="module")
def probe_app(database_url):
    """An app with a few made-up answers of a chosen type and size, and an event stream."""
    app = create_app(config.TestingConfig(database_url))

    @app.get("/_probe/<kind>/<int:size>")
    def sized(kind: str, size: int):
        mimetype = {"svg": "image/svg+xml", "html": "text/html", "json": "application/json",
                    "png": "image/png"}[kind]
        return Response(b"a" * size, mimetype=mimetype)

    @app.get("/_probe/events")
    def events():
        def stream():
            for number in range(100):
                yield f"data: event number {number}, with some padding to make it long\n\n"
        return Response(stream(), mimetype="text/event-stream")

    return app


def static_links(page: str) -> list[str]:
    return STATIC_LINK.findall(page)


def landing_assets(client) -> dict[str, str]:
    """The landing page's stylesheet and scripts, by kind."""
    links = static_links(client.get("/", headers=HTML).get_data(as_text=True))
    return {"css": next(link for link in links if link.endswith(".css")),
            "js": next(link for link in links if "/js/waybill." in link)}


def update(auth, tracking_id: str, status: str, location: str) -> None:
    response = auth.client.post(f"/update/{tracking_id}", json={"status": status, "location": location},
                                headers=auth.headers())
    assert response.status_code == 200, response.get_json()


# --- compression -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["br", "gzip"])
@pytest.mark.parametrize("kind", ["html", "css", "js", "json", "svg"])
def test_text_over_1_kb_is_compressed(client, probe_app, kind, encoding):
    if kind == "svg":
        client, url, headers = probe_app.test_client(), "/_probe/svg/5000", {}
    else:
        url, headers = {"html": ("/", HTML), "json": ("/api/v1/openapi.json", {}),
                        "css": (landing_assets(client)["css"], {}), "js": (landing_assets(client)["js"], {})}[kind]
    plain = client.get(url, headers=headers)
    assert plain.status_code == 200 and len(plain.data) > 1024
    assert "Content-Encoding" not in plain.headers  # no Accept-Encoding, no compression
    assert "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get(url, headers={**headers, "Accept-Encoding": encoding})
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == encoding
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert len(packed.data) < len(plain.data)
    unpacked = DECODE[encoding](packed.data)
    if kind == "html":  # the page carries a fresh CSRF token each time
        unpacked, expected = (re.sub(rb'value="[^"]{40,}"', b"", body) for body in (unpacked, plain.data))
    else:
        expected = plain.data
    assert unpacked == expected


def test_brotli_is_preferred_and_q_values_are_honoured(client):
    assert client.get("/", headers={**HTML, "Accept-Encoding": "gzip, deflate, br, zstd"}) \
        .headers["Content-Encoding"] == "br"
    assert client.get("/", headers={**HTML, "Accept-Encoding": "br;q=0.5, gzip"}).headers["Content-Encoding"] == "gzip"
    refused = client.get("/", headers={**HTML, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in refused.headers and b"<html" in refused.data
    stylesheet = landing_assets(client)["css"]  # compressed once per process, by the same preferences
    assert client.get(stylesheet, headers={"Accept-Encoding": "gzip;q=1, br;q=0.5"}).headers["Content-Encoding"] \
        == "gzip"
    packed = client.get(stylesheet, headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["Content-Encoding"] == "br" and int(packed.headers["Content-Length"]) == len(packed.data)
    assert "Content-Encoding" not in client.get(stylesheet, headers={"Accept-Encoding": "identity"}).headers


@pytest.mark.parametrize("size, compressed", [(1024, False), (1025, True)])
def test_only_answers_over_1_kb_are_compressed(probe_app, size, compressed):
    response = probe_app.test_client().get(f"/_probe/json/{size}", headers={"Accept-Encoding": "br, gzip"})
    assert ("Content-Encoding" in response.headers) is compressed
    assert "Accept-Encoding" in response.headers["Vary"]


def test_small_json_is_sent_as_it_is(client, create_shipment):
    response = client.get(f"/track/{create_shipment()}", headers={"Accept-Encoding": "br, gzip"})
    assert len(response.data) <= 1024 and "Content-Encoding" not in response.headers
    assert response.get_json()["status"] == "Booked"


def test_other_types_are_never_compressed(probe_app, client):
    assert "Content-Encoding" not in probe_app.test_client().get(
        "/_probe/png/5000", headers={"Accept-Encoding": "br, gzip"}).headers
    icon = client.get("/static/courier/icon-512.png", headers={"Accept-Encoding": "br, gzip"})
    assert icon.status_code == 200 and "Content-Encoding" not in icon.headers


def test_an_event_stream_is_never_compressed_and_still_streams(probe_app):
    response = probe_app.test_client().get("/_probe/events", headers={"Accept-Encoding": "br, gzip"},
                                           buffered=False)
    assert response.is_streamed and response.mimetype == "text/event-stream"
    assert "Content-Encoding" not in response.headers
    first = next(response.response)
    assert first.startswith(b"data: event number 0,")
    response.close()


# --- conditional requests on compressed answers ------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, HTML], ids=["json", "html"])
def test_compressed_tracking_answers_have_weak_etags_and_still_answer_304(client, auth, create_shipment, headers):
    tracking_id = create_shipment()
    auth.login()
    for status, hub in (("Picked Up", "Kochi Hub"), ("In Transit", "Bengaluru Hub"), ("In Transit", "Chennai Hub"),
                        ("In Transit", "Hyderabad Hub"), ("Out for Delivery", "Kochi Hub")):
        update(auth, tracking_id, status, hub)
    accept = {**headers, "Accept-Encoding": "br, gzip"}
    first = client.get(f"/track/{tracking_id}", headers=accept)
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "br"
    etag = first.headers["ETag"]
    assert re.fullmatch(r'W/"[0-9a-f]+"', etag), etag
    # The app's own check answers (Flask-Compress evaluates no condition of its own): before anything is rendered.
    again = client.get(f"/track/{tracking_id}", headers={**accept, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and "Content-Encoding" not in again.headers
    # A client that holds the plain answer's strong validator is answered too.
    plain = client.get(f"/track/{tracking_id}", headers=headers)
    assert "Content-Encoding" not in plain.headers and plain.headers["ETag"] == etag[2:]
    assert client.get(f"/track/{tracking_id}", headers={**accept, "If-None-Match": etag[2:]}).status_code == 304
    update(auth, tracking_id, "Delivered", "Kochi")
    assert client.get(f"/track/{tracking_id}", headers={**accept, "If-None-Match": etag}).status_code == 200


def test_a_compressed_static_file_answers_304_to_its_weak_etag(client):
    url = landing_assets(client)["css"]
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert first.headers["Content-Encoding"] == "gzip" and first.headers["ETag"].startswith('W/"')
    assert gzip.decompress(first.data).startswith(b"/*")
    again = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.headers["Cache-Control"] == IMMUTABLE


# --- fingerprinted static files ----------------------------------------------------------------------------------

def test_pages_link_static_files_by_their_content_fingerprint(client, create_shipment):
    tracking_id = create_shipment()
    for url in ("/", f"/track/{tracking_id}", "/login"):
        links = static_links(client.get(url, headers=HTML).get_data(as_text=True))
        assert len(links) >= 3, url
        for link in links:
            match = FINGERPRINTED.match(link)
            assert match, link
            served = client.get(link)
            assert served.status_code == 200, link
            if match["suffix"] != ".css":  # a stylesheet's fingerprint is taken over its rewritten text
                assert hashlib.sha256(served.data).hexdigest()[:12] == match["digest"], link


def test_a_fingerprinted_file_is_immutable_and_the_same_for_everyone(client, auth):
    auth.login()  # a signed-in visitor: the session is looked at on every request
    for url in landing_assets(client).values():
        response = client.get(url, headers={"Accept-Encoding": "br"})
        assert response.status_code == 200 and brotli.decompress(response.data)
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert "Cookie" not in response.headers.get("Vary", "")
        assert "Set-Cookie" not in response.headers


def test_the_plain_name_keeps_its_caching_and_loses_vary_cookie(client, auth):
    auth.login()
    response = client.get("/static/css/waybill.css")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"  # revalidated on every use, as before
    assert "Cookie" not in response.headers.get("Vary", "") and "Set-Cookie" not in response.headers
    assert b'url("../fonts/poppins-latin-400-normal.woff2")' in response.data  # the file as it is


def test_an_outdated_fingerprint_gets_the_current_file_never_immutable(client):
    """A page of the previous release (a rolling deploy) still gets its styles, and no cache keeps them a year."""
    current = client.get("/static/js/waybill.js").data
    stale = client.get("/static/js/waybill.0123456789ab.js")
    assert stale.status_code == 200 and stale.data == current
    assert stale.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("url", ["/static/js/nothing.0123456789ab.js", "/static/js/nothing.js",
                                 "/static/js/waybill.0123456789.js", "/static/../config.py"])
def test_unknown_static_names_are_not_found(client, url):
    assert client.get(url).status_code == 404


def test_the_stylesheet_names_the_fingerprinted_fonts_the_page_preloads(client):
    page = client.get("/", headers=HTML).get_data(as_text=True)
    preloads = re.findall(r'<link rel="preload" href="([^"]+)" as="font"', page)
    assert len(preloads) == 3  # the three Latin weights every page sets text in
    css = client.get(landing_assets(client)["css"]).get_data(as_text=True)
    fonts = re.findall(r'url\("([^"]+)"\)', css)
    assert len(fonts) == 6 and all(re.fullmatch(r"\.\./fonts/poppins-[a-z]+-\d00-normal\.[0-9a-f]{12}\.woff2", font)
                                   for font in fonts)
    assert {preload.rsplit("/", 1)[1] for preload in preloads} <= {font.rsplit("/", 1)[1] for font in fonts}


def test_the_manifest_rewrites_stylesheets_and_a_changed_font_renames_them(tmp_path):
    (tmp_path / "fonts").mkdir()
    (tmp_path / "css").mkdir()
    (tmp_path / "fonts" / "a.woff2").write_bytes(b"font one")
    (tmp_path / "css" / "site.css").write_text(
        '@font-face { src: url("../fonts/a.woff2"); } .x { background: url(data:image/png;base64,AA==); }'
        ' .y { background: url(../missing.png); }')
    (tmp_path / "LICENSE").write_text("no extension")
    first = build_manifest(tmp_path)
    font = first.files["fonts/a.woff2"]
    assert font.fingerprinted == f"fonts/a.{hashlib.sha256(b'font one').hexdigest()[:12]}.woff2"
    css = first.files["css/site.css"]
    assert f'url("../{font.fingerprinted}")'.encode() in css.body
    assert b"url(data:image/png;base64,AA==)" in css.body and b"url(../missing.png)" in css.body
    assert re.fullmatch(r"LICENSE\.[0-9a-f]{12}", first.files["LICENSE"].fingerprinted)
    assert first.current_of("css/site.0123456789ab.css") == "css/site.css"
    (tmp_path / "fonts" / "a.woff2").write_bytes(b"font two")
    assert build_manifest(tmp_path).files["css/site.css"].fingerprinted != css.fingerprinted


# --- HTML caching, unchanged -------------------------------------------------------------------------------------

def test_html_keeps_its_caching(client, create_shipment):
    landing = client.get("/", headers={**HTML, "Accept-Encoding": "br"})
    assert "Cache-Control" not in landing.headers
    assert "Cookie" in landing.headers["Vary"]  # the page holds the session's CSRF token
    page = client.get(f"/track/{create_shipment()}", headers={**HTML, "Accept-Encoding": "br"})
    assert page.headers["Cache-Control"] == "private, no-cache"
    assert {"Accept", "Accept-Language", "Cookie", "Accept-Encoding"} <= {
        part.strip() for part in page.headers["Vary"].split(",")}


# --- meta descriptions -------------------------------------------------------------------------------------------

def public_urls(app, tracking_id: str) -> dict[str, str]:
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        token = preferences.choices_token(shipment_id, "email")
    return {"landing": "/", "landing in Hindi": "/?lang=hi", "tracking": f"/track/{tracking_id}",
            "booking confirmation": f"/track/{tracking_id}?booked=1", "search": "/search/9876543210",
            "sign-in": "/login", "choices": f"/n/{token}", "API docs": "/api/docs",
            "unknown shipment": "/track/FFFFFFFF", "no such page": "/no-such-page"}


@pytest.mark.parametrize("name", ["landing", "landing in Hindi", "tracking", "booking confirmation", "search",
                                  "sign-in", "choices", "API docs", "unknown shipment", "no such page"])
def test_every_public_page_has_a_meta_description(app, client, create_shipment, name):
    url = public_urls(app, create_shipment())[name]
    response = client.get(url, headers=HTML)
    assert response.mimetype == "text/html", url
    descriptions = re.findall(r'<meta name="description" content="([^"]*)">', response.get_data(as_text=True))
    assert len(descriptions) == 1, url
    assert len(descriptions[0].strip()) >= 30, descriptions
