"""The /api/v1 contract, checked by Schemathesis against a real `flask run` process on 127.0.0.1 with the
document the app publishes: every operation, valid and invalid data, generated. Any 5xx, any response that does
not match its documented schema, content type or headers, any undocumented status code, invalid data that is
accepted, valid data that is refused, or a secured operation answering without its key fails the run.

Bounded: at most MAX_EXAMPLES cases per operation and phase, and MAX_SECONDS per database (about two minutes for
both), a few thousand requests in all.

One worker: with several, Schemathesis runs Hypothesis in threads, and CPython 3.11 before 3.11.9 keeps the AST
constructor's recursion depth per interpreter, not per thread (python/cpython#106905), so Hypothesis describing a
filter lambda with `ast.parse` in two threads at once can die with "AST constructor recursion depth mismatch". That
is the tool failing, not the contract; one worker cannot trip over it, and a crash of the tool (its ERRORS
section) is reported apart from a contract failure (its FAILURES section).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from tests.notifications.conftest import free_port
from tests.notifications.test_processes import AppProcess, app_env, wait_until_serving

MAX_EXAMPLES = 150
MAX_SECONDS = 55
SEED = 20261201
CHECKS = ",".join((
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance", "negative_data_rejection", "missing_required_header", "unsupported_method",
    "ignored_auth", "positive_data_acceptance",
))
# positive_data_acceptance: every request the document allows must be accepted. Its default refuses a 422, which
# POST /shipments answers, as documented, when a generated Idempotency-Key is reused with another body, or when the
# network does not serve the booking as asked. A 400 is allowed there too for one documented reason a schema cannot
# state: a well-formed PIN code that India Post's directory (19,586 codes) does not have (test_booking_details.py
# and test_api_v1.py check that refusal and every other field's on their own). An answer to a failed delivery
# (POST /shipments/{tracking_id}/ndr) may be a 400 for what its schema cannot state either: a day outside the
# next NDR_MAX_DAYS_AHEAD days, or what the attempt's reason needs (test_ndr.py checks each).
CONFIG = """
[[operations]]
include-name = "POST /api/v1/shipments"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "422", "429",
                                                     "5xx"]

[[operations]]
include-name = "POST /api/v1/shipments/{tracking_id}/ndr"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
"""


def schemathesis_command() -> list[str]:
    executable = Path(sys.executable).with_name("schemathesis")
    return [str(executable)] if executable.exists() else [shutil.which("schemathesis") or "schemathesis"]


def run_verdict(output: str) -> str:
    """What a failed Schemathesis run means: the API broke its contract, or the tool itself did not run through."""
    sections = {name for name in ("FAILURES", "ERRORS") if f" {name} " in output}
    if "FAILURES" in sections:
        return "The API broke its published contract (see FAILURES below)."
    if "ERRORS" in sections:
        return ("Schemathesis itself failed (an ERRORS section and no FAILURES): a crash of the tool or a "
                "configuration error, not a contract failure.")
    return "Schemathesis stopped without a report: the tool failed, not the contract."


@pytest.fixture
def served(app, database_url, tmp_path: Path):
    port = free_port()
    process = AppProcess(["run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger",
                          "--with-threads"], app_env(database_url, NOTIFY_WORKER_IN_WEB=False, LOG_LEVEL="WARNING"),
                         tmp_path / "app.log")
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base_url, process)
        yield base_url, process
    finally:
        process.stop()


@pytest.mark.parametrize(("output", "verdict"), [
    ("=== FAILURES ===\n___ POST /api/v1/shipments ___\n- Server error\n=== ERRORS ===\n",
     "broke its published contract"),
    ("=== ERRORS ===\n___ POST /api/v1/events ___\nSystemError: AST constructor recursion depth mismatch\n",
     "Schemathesis itself failed"),
    ("Traceback (most recent call last):\n", "the tool failed, not the contract"),
])
def test_a_crash_of_the_tool_is_told_apart_from_a_contract_failure(output, verdict):
    assert verdict in run_verdict(output)


@pytest.mark.slow
@pytest.mark.one_database  # the contract is HTTP's: checked once (55 s of fuzzing), not again per database
def test_the_api_keeps_its_published_contract(app, served, issue_key, create_shipment, tmp_path: Path):
    base_url, process = served
    secret = issue_key("contract", role="admin")
    for _ in range(3):
        create_shipment()
    report = tmp_path / "schemathesis.log"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCHEMATHESIS_")}
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [*schemathesis_command(), "--config-file", str(config), "run", f"{base_url}/api/v1/openapi.json",
               "--checks", CHECKS, "--mode", "all", "--phases", "examples,coverage,fuzzing",
               "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_SECONDS), "--seed", str(SEED),
               "--header", f"Authorization: Bearer {secret}", "--workers", "1", "--request-timeout", "20",
               "--no-color", "--output-truncate", "false", "--suppress-health-check", "all"]
    with report.open("w") as output:
        result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                timeout=MAX_SECONDS + 120)
    text = report.read_text(errors="replace")
    assert result.returncode == 0, f"{run_verdict(text)}\n{text[-20_000:]}"
    assert "No issues found" in text or "passed" in text, text[-5_000:]
    assert process.process.poll() is None, process.output()[-5_000:]
    with app.app_context():  # the key was used: bookings and status changes went through, not only refusals
        actions = set(db.session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "contract")))
    assert {"shipment_created", "status_changed"} <= actions, (actions, text[-5_000:])
