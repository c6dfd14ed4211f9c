"""No personal data in logs, whatever happens: every logged value goes through one masking function, database
errors hide their parameters, the 500 handler logs no request data, and the session-wide scanner
(tests/log_privacy.py) finds what it is meant to find. Gunicorn's access log over real HTTP (a malformed Host,
Referer, User-Agent, X-Request-ID, LOG_FORMAT=json) is tested in tests/deploy/."""
from __future__ import annotations

import contextlib
import io
import json
import logging
import types
import urllib.error
import urllib.request

import flask
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.observability.logs import JsonLineFormatter, TextFormatter, mask_contacts, tag_handler
from app.web.access_log import ENVIRON_KEY as LOG_SAFE_URI
from tests import log_privacy
from tests.conftest import VALID_BOOKING

# Rendering, translations and logs: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

EMAIL = VALID_BOOKING["email"]
NATIONAL = "9876543210"
CONTACT_EMAIL = "asha.rao@example.com"  # the needles of these tests: the scanner looks for them too


@pytest.mark.parametrize(("value", "masked"), [
    # (a) the request line of a request refused before any route (a malformed Host): masked by its text
    ("GET /track/ABCDEF12?m=9811100021 HTTP/1.1", "GET /track/ABCDEF12?m=******0021 HTTP/1.1"),
    ("GET /track/ABCDEF12?e=asha.rao%40example.com HTTP/1.1", "GET /track/ABCDEF12?e=a***%40example.com HTTP/1.1"),
    ("GET /track/asha.rao@example.com HTTP/1.1", "GET /track/a***@example.com HTTP/1.1"),
    ("/track/asha.rao%2540example.com", "/track/a***%2540example.com"),  # escaped twice
    ("/track/%39%38%31%31%31%30%30%30%32%31", "/track/******0021"),  # digits written as escapes
    # (b) an email where a mobile is expected
    ("/search/asha.rao%40example.com", "/search/a***%40example.com"),
    ("/api/v1/shipments?mobile=asha.rao@example.com", "/api/v1/shipments?mobile=a***@example.com"),
    ("/admin?mobile=asha.rao%40example.com&page=2", "/admin?mobile=a***%40example.com&page=2"),
    ("/search/98111", "/search/*8111"),  # where a mobile is expected, even a short one
    # (c) header values: a Referer (a URL) and a User-Agent (free text)
    ("http://waybill.test/search/+91%2098111%2000021", "http://waybill.test/search/+**%20*****%20*0021"),
    ("http://waybill.test/search/9811100021\"", "http://waybill.test/search/******0021\""),
    ("Mozilla/5.0 (X11; Linux x86_64; +91 98111 00021; asha.rao@example.com) Chrome/120.0.0.0",
     "Mozilla/5.0 (X11; Linux x86_64; +** ***** *0021; a***@example.com) Chrome/120.0.0.0"),
    # (d) what is not contact data stays as it was
    ("GET /track/ABCD1234?page=2 HTTP/1.1", "GET /track/ABCD1234?page=2 HTTP/1.1"),
    ("172.31.255.255, 10.0.0.1", "172.31.255.255, 10.0.0.1"),
    ("2026-12-01 10:15:00+00:00", "2026-12-01 10:15:00+00:00"),
    ("3f2a9c1e0b7d4e8f9a6b5c4d3e2f1a0b", "3f2a9c1e0b7d4e8f9a6b5c4d3e2f1a0b"),
])
def test_one_masking_function_masks_every_logged_value(value, masked):
    assert mask_contacts(value) == masked
    assert mask_contacts(masked) == masked  # masking twice changes nothing more


def test_an_email_where_a_mobile_is_expected_is_masked_in_the_log_safe_uri(client):
    for path in ("/search/asha.rao%40example.com", "/api/v1/shipments?mobile=asha.rao%40example.com",
                 "/admin?mobile=asha.rao%40example.com", "/search?mobile=asha.rao@example.com",
                 "/track/ABCDEF12?e=asha.rao%40example.com&m=9811100021"):
        with client:  # keeps the request, and the environ the app wrote into
            response = client.get(path)
            logged = flask.request.environ[LOG_SAFE_URI]
        assert response.status_code < 500, path
        assert "a***" in logged, (path, logged)
        assert "asha" not in logged and "9811100021" not in logged and "98111" not in logged, (path, logged)


def access_record(message: str, args: dict) -> logging.LogRecord:
    """A record as Gunicorn's access logger makes it: the access format and a mapping of atoms."""
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, message, (), None)
    record.args = args
    return record


def test_json_lines_are_built_from_masked_values_and_always_parse():
    """The masker once ran over the serialised text and swallowed the backslash of the escaped quote after a
    /search/<mobile> Referer: the line was no longer JSON."""
    record = access_record('%(h)s "%(r)s" %(s)s "%(f)s" "%(a)s"', {
        "h": "172.31.255.255", "r": "GET /search/9811100021 HTTP/1.1", "s": "200",
        "f": "http://waybill.test/search/9811100021", "a": 'probe "quoted" asha.rao@example.com\\'})
    for extra in ({}, {"path": "/search/9811100021", "request_id": "req-1"}):
        record.__dict__.update(extra)
        line = JsonLineFormatter().format(record)
        parsed = json.loads(line)
        assert parsed["message"] == ('172.31.255.255 "GET /search/******0021 HTTP/1.1" 200 '
                                     '"http://waybill.test/search/******0021" "probe \"quoted\" a***@example.com\\"')
        assert parsed.get("path", "/search/******0021") == "/search/******0021"
        assert "9811100021" not in line and "asha" not in line
    text = TextFormatter("%(message)s").format(record)
    assert "9811100021" not in text and "asha" not in text and '"http://waybill.test/search/******0021"' in text


def test_every_line_of_a_request_masks_its_path_and_message_arguments(make_config, made_apps, caplog):
    from app import create_app

    app = create_app(make_config())  # its own: the session's app has served requests, it takes no new route
    made_apps.append(app)

    @app.get("/_test/contact/<path:rest>")
    def log_contact(rest):
        logging.getLogger("waybill.test").warning("looked up %s for %s", rest, CONTACT_EMAIL)
        return "ok"

    stream = io.StringIO()
    handler = tag_handler(logging.StreamHandler(stream), "json")
    logging.getLogger("waybill.test").addHandler(handler)
    try:
        app.test_client().get("/_test/contact/asha.rao@example.com/9811100021",
                              headers={"X-Request-ID": CONTACT_EMAIL})
    finally:
        logging.getLogger("waybill.test").removeHandler(handler)
    # The scanner reads records before a formatter masks them: this one carries the data on purpose.
    if log_privacy.scanner() is not None:
        log_privacy.scanner().forget(lambda hit: "looked up" in hit.line)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "looked up a***@example.com/******0021 for a***@example.com"
    assert line["path"] == "/_test/contact/a***@example.com/******0021"
    assert line["request_id"] != CONTACT_EMAIL and len(line["request_id"]) == 32


def test_the_test_servers_request_line_of_a_refused_host_is_masked(live_server, caplog):
    import http.client
    from urllib.parse import urlsplit

    caplog.set_level(logging.INFO, logger="werkzeug")
    target = urlsplit(live_server.url)
    for path in ("/track/ABCDEF12?m=9811100021", "/track/ABCDEF12?e=asha.rao%40example.com",
                 "/track/asha.rao@example.com"):
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
        connection.request("GET", path, headers={"Host": "a" * 64 + ".example.com"})
        assert connection.getresponse().status == 400
        connection.close()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert len([line for line in lines if "/track/" in line]) == 3, lines
    assert not any("9811100021" in line or "asha" in line for line in lines), lines


def test_database_errors_do_not_quote_their_parameters(app_ctx):
    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text("SELECT :email, :mobile FROM no_such_table"),
                           {"email": EMAIL, "mobile": "+919876543210"})
    db.session.rollback()
    message = str(caught.value)
    assert "no_such_table" in message and "hidden" in message
    assert EMAIL not in message and NATIONAL not in message


def test_the_500_handler_logs_the_endpoint_and_the_error_kind_but_no_request_data(make_config, caplog):
    """A real database failure whose message quotes the failing row (PostgreSQL's DETAIL does, with the email
    and mobile in it), on a URL that carries both in its path and query."""
    from app import create_app

    app = create_app(make_config())

    @app.get("/broken/<email>")
    def broken_booking(email):
        db.session.execute(text("INSERT INTO shipments (email, mobile) VALUES (:email, :mobile)"),
                           {"email": email, "mobile": "+919876543210"})
        return "unreachable"

    caplog.set_level(logging.INFO)
    response = app.test_client().get(f"/broken/{EMAIL}?mobile=%2B91%2098765%2043210&note=Asha")
    assert response.status_code == 500
    assert response.get_json() == {"error": "Internal server error."}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "broken_booking" in logged and "IntegrityError" in logged and "test_log_privacy.py" in logged
    for secret in (EMAIL, NATIONAL, "98765 43210", "/broken/", "mobile=", "Asha"):
        assert secret not in logged, secret
    assert all(record.exc_info is None for record in caplog.records)  # no default traceback with messages


def test_the_scanner_reports_an_email_or_mobile_logged_in_this_process():
    scanner = log_privacy.scanner()
    assert scanner is not None, "tests/conftest.py installs the scanner for the whole session"
    probe = logging.getLogger("tests.log_privacy_probe")
    lines = [f"booked for {EMAIL.upper()}", "calling +91 98765 43210", "GET /search/%2B919876543210",
             "mobile 098765-43210 again", "GET /admin?q=98765+43210 HTTP/1.1"]
    harmless = ["booked for v***@example.com", "GET /search/******3210", "mobile +91 ••••••3210"]
    try:
        for line in lines + harmless:
            probe.warning(line)
        reported = [hit.line for hit in scanner.hits if hit.source == "log record from tests.log_privacy_probe"]
        assert reported == [f"WARNING tests.log_privacy_probe: {line}" for line in lines]
    finally:
        scanner.forget(lambda hit: hit.source == "log record from tests.log_privacy_probe")
    assert not [hit for hit in scanner.hits if hit.source == "log record from tests.log_privacy_probe"]


def test_the_scanner_reads_subprocess_output_files_at_the_end(tmp_path):
    scanner = log_privacy.PersonalDataScanner({EMAIL}, {NATIONAL})
    output = tmp_path / "server.log"
    output.write_text("Booting worker\nPOST /create 201 for vikram@example.com\n")
    scanner.watch_file(output, "gunicorn")
    scanner.scan_output("GET /search/+91%2098765%2043210 200", "flask run")
    found = scanner.finish()
    assert [str(hit) for hit in found] == ["flask run: GET /search/+91%2098765%2043210 200",
                                           "gunicorn (server.log): POST /create 201 for vikram@example.com"]


def test_a_hit_fails_the_session_and_shows_the_line():
    session = types.SimpleNamespace(exitstatus=0)
    written: list[str] = []
    log_privacy.fail_session_on_hits(session, [], written.append)
    assert session.exitstatus == 0 and written == []
    log_privacy.fail_session_on_hits(session, [log_privacy.Hit("gunicorn", "to vikram@example.com")],
                                     written.append)
    assert session.exitstatus == 1
    assert any("gunicorn: to vikram@example.com" in line for line in written)
    session.exitstatus, written = 0, []
    log_privacy.fail_session_on_hits(session, [], written.append, installed=False)
    assert session.exitstatus == 1 and "removed" in " ".join(written)


def test_the_scanner_stays_installed_when_migrations_run(database_url):
    """Migrations run inside create_app; Alembic's env.py must not replace the root logger's handlers."""
    from tests.conftest import _migrate

    _migrate(database_url)  # already at head: only env.py runs
    assert log_privacy.still_installed()


def test_the_needles_are_the_tests_own_emails_and_mobiles():
    emails, mobiles = log_privacy.collect_personal_data(VALID_BOOKING)
    assert {"vikram@example.com", "nobody@example.com"} <= emails
    assert NATIONAL in mobiles
    assert not any(email.startswith("no-reply@") for email in emails)  # the sender is not a customer


def test_the_test_servers_request_lines_are_masked_like_the_access_log(live_server, caplog):
    """The in-process server of the browser tests logs each request (Werkzeug, INFO): with the app's log-safe
    URI, so a search by mobile on the dashboard does not put the number in the session's logs."""
    caplog.set_level(logging.INFO, logger="werkzeug")
    for path in ("/search/9876543210", "/admin?q=98765+43210", "/track/ABCD1234?mobile=9876543210"):
        # /track/ABCD1234 is unknown (404): only the log line counts
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{live_server.url}{path}", timeout=5).close()
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert any("/search/******3210" in line for line in lines), lines
    assert any("/admin?q=***" in line for line in lines), lines
    assert not any(NATIONAL in line or "98765+43210" in line for line in lines), lines


def test_a_parallel_run_judges_every_workers_findings():
    """Under pytest-xdist each worker searches its own logs; the controller fails the run on any worker's hit, and
    on any worker whose scanner was blinded or that sent no report."""
    own = [log_privacy.Hit("log record from app", f"booked for {EMAIL}")]
    worker_hit = log_privacy.Hit("gunicorn (server.log)", "GET /search/+919876543210")
    reports = [log_privacy.report([worker_hit, worker_hit], installed=True), log_privacy.report([], installed=True)]
    found, installed = log_privacy.merge_reports(own, True, reports)
    assert (found, installed) == ([own[0], worker_hit], True)
    assert log_privacy.merge_reports([], True, [*reports, {"hits": [], "installed": False}])[1] is False

    class Session:
        exitstatus = 0

    session, lines = Session(), []
    log_privacy.fail_session_on_hits(session, found, lines.append, installed)
    assert session.exitstatus == 1 and any("server.log" in line for line in lines)
