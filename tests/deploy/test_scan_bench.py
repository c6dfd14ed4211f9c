"""The scan-mode benchmark (loadtests/scan_bench.py): a small run of it, bounded to a few seconds, on PostgreSQL,
and its report on made-up numbers."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.deploy.conftest import ROOT
from tests.deploy.test_loadtests import load_module

IN_CI = os.environ.get("CI", "").lower() == "true"


def test_a_small_run_scans_every_id_and_reports_its_figures():
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        if IN_CI:
            pytest.fail("CI=true but TEST_DATABASE_URL is not set: the scan benchmark needs PostgreSQL.")
        pytest.skip("TEST_DATABASE_URL not set: the scan benchmark runs against PostgreSQL")
    result = subprocess.run([sys.executable, "loadtests/scan_bench.py", "--batch", "25", "--single", "2",
                             "--sustained", "2", "--server", server],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = result.stdout
    assert f"({os.cpu_count()} cores, PostgreSQL, in-process)" in report
    assert "| 1 |" in report and "| 2 |" in report and "status changes/s" in report
    # 4 batches of 25: every scan accepted, each with its event and email, and one audit row per batch.
    assert "written in all: 100 events, 100 queued emails" in report and "4 scan_batch audit rows" in report


def test_the_report_judges_both_targets():
    bench = load_module("scan_bench")
    result = {"cores": 2, "batch": 1000, "singles": [0.8, 0.9, 2.5], "sustained_batches": 10, "sustained_s": 8.0,
              "sustained_rate": 1250.0, "app_cpu_s": 1.5, "db_cpu_s": 1.0, "load_average": 1.2,
              "changes": 13000, "emails": 13000, "audit": 13000}
    report = bench.render(result)
    assert "median 0.90 s (target < 2 s for 1,000: met)" in report
    assert "**1,250 status changes/s** (target >= 1,000: met)" in report
    assert "0.25 ms per change" in report and "(2 cores," in report
    slow = bench.render({**result, "singles": [2.1], "sustained_rate": 900.0})
    assert slow.count("not met") == 2
    assert bench.parse_args([]).batch == 1000
