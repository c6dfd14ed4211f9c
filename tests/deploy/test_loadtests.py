"""The load-test pieces: a few seconds of the Locust scenarios against the live Gunicorn, and the benchmark's
options, CSV reading and report, on made-up numbers."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, tool, write_sample

LOADTESTS = ROOT / "loadtests"


def load_module(name: str):
    if str(LOADTESTS) not in sys.path:
        sys.path.insert(0, str(LOADTESTS))
    spec = importlib.util.spec_from_file_location(f"waybill_loadtests_{name}", LOADTESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


UNTIL = Path(__file__).resolve().parent / "locust_until.py"
MAX_SECONDS = 120  # an upper bound only: a run ends as soon as every expected request was answered


def run_locust(live_gunicorn, tmp_path: Path, locustfile: str, classes: list[str], users: int,
               until: list[str]) -> dict[str, dict]:
    """Run `classes` of `locustfile` until every request name in `until` has been answered a few times."""
    sample = tmp_path / "sample.json"
    write_sample(live_gunicorn.database_path, sample)
    prefix = tmp_path / "run"
    env = {**os.environ, "WAYBILL_SAMPLE": str(sample), "WAYBILL_THINK_SCALE": "0.2", "WAYBILL_UNTIL": "|".join(until)}
    result = subprocess.run(
        [tool("locust"), "-f", f"{LOADTESTS / locustfile},{UNTIL}", *classes, "--headless", "-u", str(users),
         "-r", str(users), "-t", f"{MAX_SECONDS}s", "--host", live_gunicorn.url, "--json-file", str(prefix),
         "--stop-timeout", "2", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=MAX_SECONDS + 60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The JSON file is written once, from the final figures. (The --csv files are rewritten by a timer, about
    # once a second: read after a short run on a busy machine they missed the last requests, sometimes all.)
    rows = {entry["name"]: entry for entry in json.loads(Path(f"{prefix}.json").read_text())}
    for name, row in rows.items():
        assert row["num_failures"] == 0, (name, result.stdout[-3000:])
    return rows


@pytest.mark.slow
def test_the_mixed_scenario_runs_against_gunicorn_without_failures(live_gunicorn, tmp_path):
    expected = ["GET /track/[id]", "GET /search/[mobile]", "POST /create", "GET /healthz", "POST /update/[id]"]
    rows = run_locust(live_gunicorn, tmp_path, "locustfile.py", [], users=12, until=expected)
    for name in expected:
        assert rows[name]["num_requests"] >= 3, name
    assert rows["POST /login"]["num_requests"] >= 1  # once per operator, before its first update


@pytest.mark.slow
def test_each_probe_hits_its_endpoint_only(live_gunicorn, tmp_path):
    expected = ["GET /healthz", "GET /track/[id]", "GET /search/[mobile]", "POST /create"]
    rows = run_locust(live_gunicorn, tmp_path, "probes.py",
                      ["HealthzProbe", "TrackProbe", "SearchProbe", "CreateProbe"], users=4, until=expected)
    assert set(rows) == set(expected)


# --- the operator's choices follow the state machine ----------------------------------------------------------

def test_operators_only_pick_allowed_next_statuses():
    import random

    from app.domain.status import allowed_next_statuses

    sample = load_module("sample")
    rng = random.Random(3)
    for status in ("Booked", "Picked Up", "In Transit", "Out for Delivery", "Delivery Attempted"):
        for _ in range(50):
            assert sample.choose_next_status(status, [], rng) in allowed_next_statuses(status)
    held = [{"status": "In Transit"}, {"status": "On Hold"}]
    assert sample.choose_next_status("On Hold", held, rng) == "In Transit"
    assert sample.choose_next_status("Delivered", [], rng) is None


def test_fresh_and_demo_numbers_are_mobiles_a_booking_accepts():
    import random

    from app.services.shipments.contacts import normalise_mobile
    from app.services.shipments.demo import _mobile

    sample = load_module("sample")
    rng = random.Random(5)
    for _ in range(2000):
        for number in (sample.fresh_mobile(rng), _mobile(rng)):
            assert normalise_mobile(number, "IN") == number


def test_mobiles_are_typed_in_the_ways_people_type_them():
    import random

    from app.services.shipments.contacts import normalise_mobile

    sample = load_module("sample")
    rng = random.Random(1)
    for _ in range(40):
        typed = sample.mobile_as_typed("+919876543210", rng)
        assert normalise_mobile(typed, "IN") == "+919876543210"


# --- benchmark options and report -----------------------------------------------------------------------------

def test_bench_quick_mode_is_short_and_full_mode_reaches_a_million():
    bench = load_module("bench")
    quick, full = bench.parse_args(["--quick"]), bench.parse_args([])
    assert quick.scaling == [1000, 20000] and quick.probe_seconds < full.probe_seconds
    assert full.scaling == [1000, 100000, 1000000] and full.levels == [50, 100, 200]
    assert full.phases == {"probes", "mixed", "scaling", "email"}
    assert bench.database_url("postgresql://postgres@127.0.0.1:5432", "waybill_bench") == \
        "postgresql://postgres@127.0.0.1:5432/waybill_bench"
    with pytest.raises(SystemExit):
        bench.parse_args(["--database", "production"])


def _row(rps: float, avg: float = 10, p95: float = 20, failures: int = 0, requests: int = 1000) -> dict:
    return {"requests": requests, "failures": failures, "rps": rps, "avg_ms": avg, "p50_ms": avg, "p95_ms": p95,
            "p99_ms": p95, "max_ms": p95}


def _run(label: str, endpoints: dict, users: int = 200) -> dict:
    return {"label": label, "users": users, "seconds": 10, "endpoints": endpoints, "total": _row(300, 100, 250),
            "failures": [], "cpu": {"generator_pct": 20, "server_pct": 60, "database_pct": 10, "other_pct": 5,
                                    "idle_pct": 5}}


def made_up_result(largest: int = 1_000_000) -> dict:
    report = load_module("report")
    return {
        "name": "made-up", "mode": "full", "started_at": "2026-11-21T12:00:00+00:00", "duration_s": 600,
        "git": {"commit": "abc1234", "dirty": False},
        "machine": {"cores": 2, "cpu_model": "Test CPU", "memory_gib": 24, "python": "3.11"},
        "database": {"engine": "PostgreSQL 15", "seeded": {"shipments": 1000, "events": 5000}},
        "server": {"worker_class": "gthread", "workers": 3, "threads": 4, "accesslog": False,
                   "notify_worker_in_web": True},
        "generator": {"tool": "Locust FastHttpUser", "version": "2.47.0"},
        "paper": report.PAPER,
        "probes": {"users": 200, "seconds": 10, "shipments": 1000, "events": 5000, "runs": [
            _run("probe-healthz", {"GET /healthz": _row(1000)}),
            _run("probe-track", {"GET /track/[id]": _row(600)}),
            _run("probe-search", {"GET /search/[mobile]": _row(400)}),
            _run("probe-create", {"POST /create": _row(150, failures=0)}),
            _run("probe-healthz_again", {"GET /healthz": _row(1000)}),
        ]},
        "mixed": {"seconds": 10, "runs": [_run(f"mixed-{u}", {"GET /track/[id]": _row(200, 30, 80),
                                                               "POST /create": _row(30)}, users=u)
                                          for u in (50, 100, 200)]},
        "scaling": {"users": 200, "seconds": 10, "sizes": [
            {"target": 1000, "shipments": 1000, "events": 5000, "track": _row(600, 10), "search": _row(400, 20)},
            {"target": largest, "shipments": largest, "events": 5 * largest, "track": _row(550, 12),
             "search": _row(300, 40)},
        ]},
        "email": {"status": "measured",
                  "steady": {"queued": 100, "received": 100, "duplicates": 0, "connections": 1, "stall_s": 0,
                             "emails_per_s": 250.0, "first_to_last_s": 0.4, "command_s": 1.2,
                             "states": {"sent": 100}}},
    }


def test_targets_are_judged_from_the_measured_figures():
    report = load_module("report")
    targets = {t["name"]: t for t in report.evaluate_targets(made_up_result())}
    assert targets["GET /track/<id> JSON throughput"]["met"] is True  # 600 / 1000
    assert "0.60 x" in targets["GET /track/<id> JSON throughput"]["measured"]
    assert targets["POST /create throughput"]["met"] is False  # 150 / 1000 < 0.2
    assert targets["GET /track/<id> JSON p95"]["met"] is True  # 80 ms in the 200-user mixed run
    assert targets["POST /create failures"]["met"] is True
    assert targets["Tracking latency as data grows"]["met"] is True  # 12 / 10
    assert targets["Mobile search latency as data grows"]["met"] is False  # 40 / 20
    assert targets["Emails delivered by one worker"]["met"] is True


def test_scaling_is_not_judged_below_a_million_shipments():
    report = load_module("report")
    targets = {t["name"]: t for t in report.evaluate_targets(made_up_result(largest=20_000))}
    assert targets["Tracking latency as data grows"]["met"] is None


def test_report_shows_targets_paper_figures_and_healthz_fractions(tmp_path):
    report = load_module("report")
    result = made_up_result()
    result["targets"] = report.evaluate_targets(result)
    md_path, json_path = report.write_report(result, tmp_path, "made-up")
    text = md_path.read_text()
    assert "| average latency | 142 ms | 100 ms |" in text
    assert "| track: GET /track/[id] | 600 | 0.60 |" in text
    assert "2 cores" in text and "**not met**" in text
    assert json_path.exists()


def test_benchmark_json_stays_out_of_the_repository():
    """Raw benchmark output is written locally and ignored by git; only the Markdown reports are committed."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", "loadtests/results/some-run.json"],
                             cwd=ROOT)
    assert ignored.returncode == 0, "loadtests/results/*.json is not in .gitignore"
    assert subprocess.run(["git", "check-ignore", "-q", "--no-index", "loadtests/results/some-run.md"],
                          cwd=ROOT).returncode == 1, "the Markdown reports must stay committable"
    tracked = subprocess.run(["git", "ls-files", "loadtests/results"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    # A tracked file deleted from the working tree is on its way out (the deletion is committed next).
    committed_json = [path for path in tracked if path.endswith(".json") and (ROOT / path).exists()]
    assert committed_json == []
    assert any(path.endswith(".md") for path in tracked)
