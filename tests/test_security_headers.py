"""Security headers on every response: pages, JSON, errors, redirects, static files, 304s and 429s."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.config import ProductionConfig

# Rendering, translations and logs: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

TEMPLATES = Path(__file__).resolve().parent.parent / "app" / "templates"
EXPECTED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


def directives(response) -> dict[str, list[str]]:
    policy = response.headers["Content-Security-Policy"]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_protected(response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    for directive in ("script-src", "style-src"):
        assert policy[directive] == ["'self'"], directive  # no 'unsafe-inline', no 'unsafe-eval', no hosts
    assert "Strict-Transport-Security" not in response.headers  # outside production


@pytest.fixture
def responses(client, auth, create_shipment):
    tracking_id = create_shipment()
    html = {"Accept": "text/html"}
    track = client.get(f"/track/{tracking_id}")
    got = {
        "landing page": client.get("/"),
        "tracking page": client.get(f"/track/{tracking_id}", headers=html),
        "tracking JSON": track,
        "tracking 304": client.get(f"/track/{tracking_id}", headers={"If-None-Match": track.headers["ETag"]}),
        "not found page": client.get("/track/FFFFFFFF", headers=html),
        "not found JSON": client.get("/track/FFFFFFFF"),
        "validation error": client.post("/create", json={}),
        "redirect to login": client.get("/admin", headers=html),
        "stylesheet": client.get("/static/css/waybill.css"),
        "script": client.get("/static/js/waybill.js"),
        "health": client.get("/healthz"),
        "csrf refusal": client.delete("/"),
    }
    auth.login()
    got["staff page"] = client.get("/admin", headers=html)
    return got


def test_every_kind_of_response_carries_the_security_headers(responses):
    expected_status = {"tracking 304": 304, "not found page": 404, "not found JSON": 404, "validation error": 400,
                       "redirect to login": 302, "csrf refusal": 400}
    for name, response in responses.items():
        assert response.status_code == expected_status.get(name, 200), name
        assert_protected(response)


def test_rate_limited_answers_carry_them_too(make_config):
    client = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_SEARCH="1 per minute")).test_client()
    client.get("/search/9876543210")
    refused = client.get("/search/9876543210")
    assert refused.status_code == 429
    assert_protected(refused)


def test_production_adds_strict_transport_security(database_url, monkeypatch):
    for name, value in {"SECRET_KEY": "production-secret", "DATABASE_URL": database_url, "ADMIN_USERNAME": "",
                        "NOTIFY_WORKER_IN_WEB": "false", "TRACK_CACHE_ENABLED": "false",
                        "RATELIMIT_ENABLED": "false"}.items():
        monkeypatch.setenv(name, value)
    response = create_app(ProductionConfig()).test_client().get("/healthz")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert_protected_except_hsts = {name: response.headers.get(name) for name in EXPECTED}
    assert assert_protected_except_hsts == EXPECTED


def test_templates_hold_no_inline_script_or_style_the_policy_would_block():
    """The pages a browser renders (emails are not served by the app, and mail clients need inline styles)."""
    offenders = []
    for template in TEMPLATES.rglob("*.html"):
        if "email" in template.relative_to(TEMPLATES).parts:
            continue
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag:
                offenders.append(f"{template.name}: inline {tag}")
        if re.search(r"\son[a-z]+\s*=", text):
            offenders.append(f"{template.name}: inline event handler")
        if re.search(r"\sstyle\s*=", text) or "<style" in text:
            offenders.append(f"{template.name}: inline style")
        if "javascript:" in text:
            offenders.append(f"{template.name}: javascript: URL")
    assert offenders == []


def test_a_request_refused_for_a_malformed_host_carries_them_too(client, live_server):
    """Refused before Flask sees it (app.web.host_check): the headers are the outermost WSGI layer."""
    import http.client
    from urllib.parse import urlsplit

    refused = client.get("/healthz", headers={"Host": "a" * 64 + ".example.com", "Accept": "text/html"})
    assert refused.status_code == 400 and refused.mimetype == "text/plain"
    assert_protected(refused)
    target = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    connection.request("GET", "/healthz", headers={"Host": "exa..mple.com"})
    response = connection.getresponse()
    assert response.status == 400
    for name, value in EXPECTED.items():
        assert response.getheader(name) == value, name
    assert "frame-ancestors 'none'" in response.getheader("Content-Security-Policy")
    connection.close()
