"""No personal data in logs, whatever happens: database errors hide their parameters, the 500 handler logs no
request data, and the session-wide scanner (tests/log_privacy.py) finds what it is meant to find."""
from __future__ import annotations

import contextlib
import logging
import types
import urllib.error
import urllib.request

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from tests import log_privacy
from tests.conftest import VALID_BOOKING

EMAIL = VALID_BOOKING["email"]
NATIONAL = "9876543210"


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
