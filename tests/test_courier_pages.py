"""The courier app's shell through the test client: the page (couriers only), its manifest, its service worker,
its icons and the vendored barcode reader. What the app does in a browser: tests/browser/test_courier_app.py."""
from __future__ import annotations

import html
import io
import json
import os
import re
from datetime import time
from pathlib import Path

import pytest
from PIL import Image

from app.services.field.shifts import courier_shift
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.web.static_files import IMMUTABLE
from tests.location_support import make_courier, sign_in

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html"}


def setup_of(page: str) -> dict:
    """The JSON the page gives its script (data-setup, in a single-quoted attribute)."""
    found = re.search(r"data-setup='([^']*)'", page)
    assert found, "the page has no data-setup"
    return json.loads(html.unescape(found.group(1)))


@pytest.fixture
def courier(app, client):
    """A courier on a 09:00-18:30 shift, signed in."""
    make_courier(app, "courier1", shift=(time(9), time(18, 30)))
    sign_in(client, "courier1")


def test_anonymous_visitors_are_sent_to_sign_in_and_api_clients_get_401(client):
    page = client.get("/courier/", headers=HTML)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=/courier/")
    assert client.get("/courier/", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/courier", headers=HTML).status_code == 308  # the app lives under /courier/


@pytest.mark.parametrize("role", ["operator", "admin", "viewer"])
def test_other_staff_may_not_open_the_courier_app(client, auth, role):
    auth.login(f"{role}1", role=role)
    assert client.get("/courier/", headers=HTML).status_code == 403


def test_a_courier_gets_the_app_with_what_it_needs_offline(client, courier):
    response = client.get("/courier/", headers=HTML)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<link rel="manifest" href="/courier/manifest.webmanifest">' in page
    assert "Location is shared only while this app is open and you are on shift." in page
    # The attempt reasons are the status-change core's codes, said in the page's language.
    for code, label in ATTEMPT_REASONS.items():
        assert f'value="{code}"> {label}' in page
    setup = setup_of(page)
    assert setup["courier"] == "courier1"
    assert setup["shift"] == {"start": "09:00", "end": "18:30"}
    assert setup["urls"]["stops"] == "/courier/stops" and setup["urls"]["events"] == "/courier/events"
    assert setup["urls"]["locations"] == "/courier/locations"
    assert setup["urls"]["service_worker"] == "/courier/sw.js"
    assert setup["proof_defaults"] == {"received_by": "required", "signature": "warn", "photo": "warn"}
    assert setup["statuses"]["Delivery Attempted"] == "Delivery Attempted"
    assert setup["words"]["warn_signature"] == "Continue without a signature?"
    assert setup["positions"]["worst_accuracy_m"] == 50 and setup["positions"]["per_request"] == 500
    # The page's own token is the session's: the script sends it with its JSON posts.
    assert client.post("/logout", json={}).status_code == 400
    assert client.post("/logout", json={}, headers={"X-CSRFToken": setup["csrf_token"]}).status_code == 200


def test_an_account_without_a_courier_profile_has_no_shift_so_shares_no_position(app_ctx, make_user):
    operator_id = make_user("operator1")
    assert courier_shift(operator_id) is None


def test_only_the_courier_page_may_compile_webassembly(client, courier):
    policy = client.get("/courier/", headers=HTML).headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";")}
    assert directives["script-src"] == ["'self'", "'wasm-unsafe-eval'"]  # the barcode reader; no eval, no inline
    assert directives["style-src"] == ["'self'"] and directives["default-src"] == ["'self'"]
    assert "'wasm-unsafe-eval'" not in client.get("/courier/manifest.webmanifest").headers["Content-Security-Policy"]
    assert "'wasm-unsafe-eval'" not in client.get("/account", headers=HTML).headers["Content-Security-Policy"]


def test_the_manifest_makes_the_app_installable(client):
    response = client.get("/courier/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["name"] == "Waybill courier" and manifest["short_name"] == "Waybill"
    assert manifest["start_url"] == manifest["scope"] == manifest["id"] == "/courier/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == "#0e2a47" and manifest["background_color"] == "#ffffff"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    for icon in manifest["icons"]:
        served = client.get(icon["src"])
        assert served.status_code == 200 and served.mimetype == icon["type"] == "image/png"
        with Image.open(io.BytesIO(served.data)) as image:
            assert f"{image.width}x{image.height}" == icon["sizes"]


def test_the_service_worker_is_served_from_the_apps_scope_and_never_cached(client):
    response = client.get("/courier/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Service-Worker-Allowed" not in response.headers  # /courier/sw.js controls /courier/ by its own path
    script = response.get_data(as_text=True)
    assert 'const PAGE = "/courier/";' in script
    version = re.search(r'const VERSION = "([0-9a-f]{16})";', script).group(1)
    assert version in client.get("/courier/sw.js").get_data(as_text=True)  # the same files, the same version
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", script).group(1))
    for url in precache:  # by content fingerprint: kept a year by the browser, and by the worker's version
        served = client.get(url)
        assert served.status_code == 200 and served.headers["Cache-Control"] == IMMUTABLE, url
    assert any(re.fullmatch(r"/static/fonts/poppins-latin-400-normal\.[0-9a-f]{12}\.woff2", url) for url in precache)


def test_every_file_the_page_loads_is_kept_for_offline(client, courier):
    page = client.get("/courier/", headers=HTML).get_data(as_text=True)
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);",
                                    client.get("/courier/sw.js").get_data(as_text=True)).group(1))
    loaded = re.findall(r'<script src="([^"]+)"', page) + re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert len(loaded) >= 6
    assert set(loaded) <= set(precache)


def test_a_changed_file_changes_the_workers_version(client, app, tmp_path, monkeypatch):
    import app.courier.pages as pages

    def version() -> str:
        return re.search(r'const VERSION = "(\w+)";', client.get("/courier/sw.js").get_data(as_text=True)).group(1)

    asset = tmp_path / "courier" / "app.js"
    asset.parent.mkdir()
    asset.write_text("one")
    monkeypatch.setattr(pages, "_shell_files", lambda: [asset])
    monkeypatch.setattr(pages, "_barcode_files", lambda: [])
    monkeypatch.setattr(pages, "_static_name", lambda path: path.name)
    before = version()
    asset.write_text("two, longer")
    assert version() != before


def test_the_vendored_barcode_reader_is_the_pinned_npm_packages_files():
    """app/static/vendor/barcode-detector holds barcode-detector's IIFE ponyfill and zxing-wasm's reader, byte for
    byte, at the versions package.json pins, with their licences."""
    package = ROOT / "node_modules" / "barcode-detector"
    if not package.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("node_modules/barcode-detector is missing: the test command runs npm ci")
        pytest.skip("node_modules/barcode-detector not installed: run npm ci")
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["barcode-detector"]
    assert json.loads((package / "package.json").read_text())["version"] == pinned
    zxing = ROOT / "node_modules" / "zxing-wasm"
    assert json.loads((package / "package.json").read_text())["dependencies"]["zxing-wasm"] == \
        json.loads((zxing / "package.json").read_text())["version"]
    vendor = ROOT / "app" / "static" / "vendor" / "barcode-detector"
    assert (vendor / "ponyfill.js").read_bytes() == (package / "dist" / "iife" / "ponyfill.js").read_bytes()
    assert (vendor / "zxing_reader.wasm").read_bytes() == (zxing / "dist" / "reader" / "zxing_reader.wasm").read_bytes()
    assert (vendor / "LICENSE-barcode-detector.txt").read_bytes() == (package / "LICENSE").read_bytes()
    assert (vendor / "LICENSE-zxing-wasm.txt").read_bytes() == (zxing / "LICENSE").read_bytes()
    assert "Apache License" in (vendor / "LICENSE-zxing-cpp-Apache-2.0.txt").read_text()
