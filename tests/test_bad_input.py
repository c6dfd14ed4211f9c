"""Every bad input is a 4xx naming what is wrong, never a 500, and leaves nothing written.

The reproductions of the attack run: JSON values of the wrong type, NUL and other control characters, lone
surrogates, on every route that reads text (JSON, form posts, query strings, path parameters); and a malformed
Host header on every route.
"""
from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.web.forms import CONTROL_CHARACTER, NOT_A_BOOLEAN, NOT_A_STRING, NOT_UNICODE, UNKNOWN_FIELD
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def row_counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m))
                     for m in (Shipment, TrackingEvent, Notification))


def post_json(client, path: str, body: dict, headers: dict | None = None):
    """The body as a client would write it: json.dumps escapes a lone surrogate as \\ud800, which is valid JSON."""
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers or {})


def assert_refused(response, field: str, message: str | None = None) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    fields = response.get_json()["fields"]
    assert field in fields, fields
    if message:
        assert fields[field] == message


@pytest.fixture
def staff(auth):
    auth.login()
    return auth


# --- JSON values of the wrong type --------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "field"), [
    ("/search", {"mobile": True}, "mobile"),
    ("/search", {"mobile": 9876543210}, "mobile"),
    ("/create", {**VALID_BOOKING, "destination": True}, "destination"),
    ("/create", {**VALID_BOOKING, "email": False}, "email"),
    ("/create", {**VALID_BOOKING, "sender_name": 1.5}, "sender_name"),
    ("/create", {**VALID_BOOKING, "receiver_name": ["Vikram"]}, "receiver_name"),
    ("/login", {"username": "operator1", "password": True}, "password"),
    ("/login", {"username": 7, "password": "x"}, "username"),
])
def test_a_non_string_where_a_string_is_expected_is_a_400_naming_the_field(client, app, path, body, field):
    assert_refused(post_json(client, path, body), field, NOT_A_STRING)
    assert row_counts(app) == (0, 0, 0)


def test_a_boolean_field_takes_only_a_json_boolean(client, make_user):
    make_user()
    body = {"username": "operator1", "password": "correct-horse-1", "remember": "yes"}
    assert_refused(post_json(client, "/login", body), "remember", NOT_A_BOOLEAN)
    assert post_json(client, "/login", {**body, "remember": True}).status_code == 200


@pytest.mark.parametrize("location", [True, 3, ["Kochi Hub"], {"hub": "Kochi"}])
def test_update_with_a_non_string_location_is_a_400_and_changes_nothing(client, app, create_shipment, staff,
                                                                          location):
    tid = create_shipment()
    response = post_json(client, f"/update/{tid}", {"status": "Picked Up", "location": location}, staff.headers())
    assert_refused(response, "location", NOT_A_STRING)
    assert client.get(f"/track/{tid}").get_json()["status"] == "Booked"
    assert row_counts(app) == (1, 1, 1)


# --- control characters -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("destination", "Kochi\u0000"),
    ("sender_name", "Asha\x1b[31m Rao"),
    ("receiver_name", "Vikram\x7fNair"),
    ("destination", "Ko\u0085chi"),  # C1 control
    ("destination", "Kochi\nErnakulam"),  # a single-line field takes no line break
    ("sender_name", "Asha\tRao"),
])
def test_control_characters_in_a_booking_are_a_400_naming_the_field(client, app, field, value):
    assert_refused(post_json(client, "/create", {**VALID_BOOKING, field: value}), field, CONTROL_CHARACTER)
    assert row_counts(app) == (0, 0, 0)


def test_a_nul_in_a_json_key_is_refused_and_the_answer_can_be_shown(client, app):
    response = client.post("/create", data=json.dumps({**VALID_BOOKING, "x\u0000y": "1"}),
                           content_type="application/json", headers=HTML)
    assert response.status_code == 400
    assert "x\ufffdy" in response.get_data(as_text=True).lower()  # named without the NUL
    assert row_counts(app) == (0, 0, 0)


def test_a_username_with_a_nul_is_a_400_not_a_database_error(client, make_user):
    make_user()
    assert_refused(post_json(client, "/login", {"username": "operator1\u0000", "password": "correct-horse-1"}),
                   "username", CONTROL_CHARACTER)
    response = client.post("/login", data={"username": "oper\x00ator1", "password": "correct-horse-1",
                                           "csrf_token": "x"}, headers=HTML)
    assert response.status_code == 400


def test_a_nul_in_a_password_is_refused_before_it_is_checked(client, make_user):
    make_user()
    assert_refused(post_json(client, "/login", {"username": "operator1", "password": "correct\u0000horse"}),
                   "password", CONTROL_CHARACTER)


def test_a_search_with_a_nul_is_a_400_by_json_form_and_path(client, create_shipment):
    create_shipment()
    assert_refused(post_json(client, "/search", {"mobile": "98765\u000043210"}), "mobile", CONTROL_CHARACTER)
    assert_refused(client.get("/search/98765%0043210"), "mobile", CONTROL_CHARACTER)
    page = client.get("/", headers=HTML).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/search", data={"mobile": "98765\x0043210", "csrf_token": token}, headers=HTML)
    assert response.status_code == 400 and "Mobile" in response.get_data(as_text=True)


@pytest.mark.parametrize(("url", "field"), [
    ("/track?tracking_id=AB%00CD", "tracking_id"),
    ("/track/ABCD%001234", "tracking_id"),
    ("/track/ABCD1234?fragment=time%00line", "fragment"),
    ("/login?next=/admin%0d%0aSet-Cookie:x", "next"),
    ("/?x%00=1", "x\ufffd"),
])
def test_control_characters_in_a_query_or_path_are_a_400_naming_it(client, url, field):
    assert_refused(client.get(url), field, CONTROL_CHARACTER)
    assert client.get(url, headers=HTML).status_code == 400


@pytest.mark.parametrize("query", ["q=a%00b", "q=a%01b", "status=Booked%00", "page=1%00", "sort=recent%0a"])
def test_the_dashboard_search_refuses_control_characters(client, staff, query):
    response = client.get(f"/admin?{query}", headers=HTML)
    assert response.status_code == 400
    assert "not allowed" in response.get_data(as_text=True)
    assert client.get(f"/admin/notifications?{query}").status_code == 400


def test_a_location_with_a_nul_is_refused_by_json_and_by_the_staff_form(client, app, create_shipment, staff):
    tid = create_shipment()
    response = post_json(client, f"/update/{tid}", {"status": "Picked Up", "location": "Hub\u0000"},
                         staff.headers())
    assert_refused(response, "location", CONTROL_CHARACTER)
    response = client.post(f"/admin/shipments/{tid}", headers={**HTML, **staff.headers()},
                           data={"status": "Picked Up", "location": "Kochi\x00Hub", "note": ""})
    assert response.status_code == 400
    assert "Location" in response.get_data(as_text=True)
    assert row_counts(app) == (1, 1, 1)


def test_a_note_may_hold_line_breaks_and_tabs_but_no_other_control_character(client, app, create_shipment, staff):
    tid = create_shipment()
    body = {"status": "Picked Up", "location": "Kochi Hub", "note": "Left at the gate\u0000"}
    assert_refused(post_json(client, f"/update/{tid}", body, staff.headers()), "note", CONTROL_CHARACTER)
    assert row_counts(app) == (1, 1, 1)
    body["note"] = "Two parcels:\r\n\tthe box\n\tthe tube"
    response = post_json(client, f"/update/{tid}", body, staff.headers())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["events"][-1]["note"] == "Two parcels:\r\n\tthe box\n\tthe tube"
    response = client.post(f"/admin/shipments/{tid}", headers={**HTML, **staff.headers()},
                           data={"status": "In Transit", "location": "Pune Hub", "note": "Line one\r\nLine two"})
    assert response.status_code == 302


# --- invalid Unicode --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "value"), [
    ("sender_name", "A\ud800"),
    ("receiver_name", "\udfffVikram"),
    ("destination", "Kochi \ud83d"),  # half of an emoji
])
def test_a_lone_surrogate_in_a_booking_is_a_400_naming_the_field(client, app, field, value):
    assert_refused(post_json(client, "/create", {**VALID_BOOKING, field: value}), field, NOT_UNICODE)
    assert row_counts(app) == (0, 0, 0)
    response = client.post("/create", data=json.dumps({**VALID_BOOKING, field: value}),
                           content_type="application/json", headers=HTML)
    assert response.status_code == 400


def test_a_whole_emoji_is_fine(client):
    assert post_json(client, "/create", {**VALID_BOOKING, "destination": "Kochi \U0001f4e6"}).status_code == 201


def test_a_note_with_a_surrogate_is_a_400_and_changes_nothing(client, app, create_shipment, staff):
    tid = create_shipment()
    body = {"status": "Picked Up", "location": "Kochi Hub", "note": "fragile \udc00"}
    assert_refused(post_json(client, f"/update/{tid}", body, staff.headers()), "note", NOT_UNICODE)
    assert row_counts(app) == (1, 1, 1)


def test_a_surrogate_in_a_json_key_or_nested_value_is_refused(client, app):
    response = post_json(client, "/create", {**VALID_BOOKING, "a\ud800": "x"})
    assert response.status_code == 400 and response.get_json()["fields"] == {"a\ufffd": NOT_UNICODE}
    response = post_json(client, "/search", {"mobile": ["\ud800"]})
    assert_refused(response, "mobile", NOT_UNICODE)
    assert_refused(post_json(client, "/search", {"mobile": "9876543210", "extra": 1}), "extra", UNKNOWN_FIELD)


def test_invalid_utf8_in_forms_and_urls_is_read_as_replacement_characters_not_a_500(client):
    assert client.get("/search/98%FF76").status_code == 400
    assert client.get("/track/%FF%FE%FD%FC%FB%FA%F9%F8").status_code == 404
    assert client.get("/track?tracking_id=%ff").status_code == 302
    response = client.post("/search", data=b"mobile=%ff%fe", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


# --- a malformed Host header ------------------------------------------------------------------------------

BAD_HOSTS = ["a" * 64 + ".example.com", ".example.com", "exa..mple.com", "exa mple.com", "example.com:99999",
             "example.com:0", "ex\u00e4mple.com", "[zz::1]", "example.com:80:80", "/etc/passwd"]


@pytest.mark.parametrize("host", BAD_HOSTS)
def test_a_malformed_host_is_a_plain_400_on_every_route_without_a_log_line(client, app, caplog, host):
    caplog.set_level(logging.DEBUG)
    paths = ["/healthz", "/readyz", "/no-such-page"] + [
        rule.rule.replace("<int:notification_id>", "1").replace("<tracking_id>", "ABCD1234")
        .replace("<mobile>", "9876543210").replace("<path:filename>", "css/waybill.css")
        for rule in app.url_map.iter_rules()]
    for path in paths:
        for accept in (HTML, {"Accept": "application/json"}, {}):
            response = client.get(path, headers={**accept, "Host": host})
            assert response.status_code == 400, path
            assert response.mimetype == "text/plain" and "Host" in response.get_data(as_text=True)
    assert client.post("/create", json=VALID_BOOKING, headers={"Host": host}).status_code == 400
    assert caplog.records == []
    assert row_counts(app) == (0, 0, 0)


@pytest.mark.parametrize("host", ["localhost", "waybill.test:8080", "127.0.0.1", "[::1]:5000",
                                  "xn--bcher-kva.example", "a" * 63 + ".example.com", "example.com."])
def test_a_well_formed_host_is_served(client, host):
    assert client.get("/healthz", headers={**HTML, "Host": host}).status_code == 200
    assert client.get("/no-such-page", headers={**HTML, "Host": host}).status_code == 404


def test_a_malformed_host_is_refused_by_a_real_server_too(live_server):
    import http.client
    from urllib.parse import urlsplit

    target = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
    connection.request("GET", "/healthz", headers={"Host": "a" * 64 + ".example.com", "Accept": "text/html"})
    response = connection.getresponse()
    assert response.status == 400 and b"Host" in response.read()
    connection.close()


# --- a malformed chunked body -----------------------------------------------------------------------------

def malformed_chunked(client, method: str, path: str, content_type: str):
    """The request a server hands the app for `Transfer-Encoding: chunked` then `ZZ\\r\\n`: Werkzeug's own
    dechunking reader, which fails when the body is read."""
    import io

    from werkzeug.serving import DechunkedInput

    return client.open(path, method=method, headers={**HTML, "Transfer-Encoding": "chunked",
                                                     "Content-Type": content_type},
                       environ_overrides={"wsgi.input": DechunkedInput(io.BytesIO(b"ZZ\r\n")),
                                          "wsgi.input_terminated": True})


def test_a_malformed_chunked_body_is_a_400_and_one_warning_on_every_route_that_reads_a_body(app, client, staff,
                                                                                             caplog):
    routes = [(method, rule.rule.replace("<int:notification_id>", "1").replace("<tracking_id>", "ABCD1234")
               .replace("<mobile>", "9876543210").replace("<token>", "x"))
              for rule in app.url_map.iter_rules() for method in rule.methods & {"POST", "PUT", "PATCH"}
              if "<" not in rule.rule.replace("<int:notification_id>", "").replace("<tracking_id>", "")
              .replace("<mobile>", "").replace("<token>", "")]
    assert ("POST", "/create") in routes and len(routes) > 10
    read_a_body = 0
    for method, path in routes:
        for content_type in ("application/json", "application/x-www-form-urlencoded"):
            caplog.clear()
            caplog.set_level(logging.INFO)
            response = malformed_chunked(client, method, path, content_type)
            assert response.status_code != 500, (method, path, content_type)
            warnings = [r for r in caplog.records if r.name == "app.web.request_body"]
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR], (method, path)
            if warnings:
                read_a_body += 1
                assert response.status_code == 400, (method, path, content_type)
                assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
                assert response.headers["Connection"] == "close"
    assert read_a_body > 10
    assert row_counts(app)[0] == 0


def test_a_real_server_process_answers_a_malformed_chunked_body_with_a_400(app, database_url, tmp_path):
    """`flask run` (Werkzeug's server) over a raw socket; Gunicorn in tests/deploy/test_gunicorn.py."""
    import socket

    from tests.notifications.conftest import free_port
    from tests.notifications.test_processes import AppProcess, app_env, wait_until_serving

    port = free_port()
    process = AppProcess(["run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"],
                         app_env(database_url), tmp_path / "flask.log")
    try:
        wait_until_serving(f"http://127.0.0.1:{port}", process)
        for path, content_type in (("/create", "application/json"), ("/search", "application/x-www-form-urlencoded"),
                                   ("/login", "application/json")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                             "Transfer-Encoding: chunked\r\n\r\nZZ\r\n".encode())
                answer = b""
                while chunk := sock.recv(65536):  # the server closes the connection after its answer
                    answer += chunk
            head = answer.split(b"\r\n\r\n", 1)[0].decode()
            assert head.startswith("HTTP/1.1 400"), (path, answer[:300])
            assert "connection: close" in head.lower() and "x-content-type-options: nosniff" in head.lower()
    finally:
        process.stop()
    output = process.output()
    assert output.count("Refused an unreadable request body") == 3, output
    assert "Traceback" not in output and " 500 " not in output and "ERROR" not in output, output
