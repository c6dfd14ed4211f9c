"""The Lighthouse benchmark: five pages of the app as served (Gunicorn with gunicorn.conf.py, production settings)
scored by Lighthouse's mobile preset in Debian's headless Chromium, and what compression saves on the wire.

    .venv/bin/python loadtests/lighthouse.py              # one Lighthouse run per page
    .venv/bin/python loadtests/lighthouse.py --runs 3     # the median of three runs per page

Steps: a fresh SQLite database in loadtests/.work/lighthouse (or --database-url, e.g. PostgreSQL), migrated;
an operator and a courier (`flask users create`); Gunicorn on 127.0.0.1 (rate limits off, console mail); two
bookings through POST /create, one moved to Out for Delivery through five hubs by the operator; every page
and its files fetched 20 times (warm workers); then Lighthouse (loadtests/package.json pins it; `npm ci` there
when it is missing) on
1. the landing page `/` (the booking form, track by ID, find by mobile),
2. a booking's confirmation `/track/<id>?booked=1` (what the booking form leads to),
3. a tracking page `/track/<id>` with a timeline of seven steps,
4. a search `/search/<mobile>`,
5. the courier app `/courier/`, signed in as the courier (its session cookie sent with every request).
Writes loadtests/results/lighthouse-<date>.md with the four scores per page, the metrics, every audit that kept
a score below 100, the bytes of the main page, stylesheet and script with and without compression, and the
machine's core count. Lighthouse's JSON reports stay in loadtests/.work/lighthouse (not in git). Only 127.0.0.1
is contacted; each Lighthouse run is bounded (--timeout).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import brotli
import requests

LOADTESTS = Path(__file__).resolve().parent
ROOT = LOADTESTS.parent
sys.path.insert(0, str(LOADTESTS))

from bench import Gunicorn, flask, free_port, git_info, log, machine_info  # noqa: E402

WORK = LOADTESTS / ".work" / "lighthouse"
LIGHTHOUSE = LOADTESTS / "node_modules" / "lighthouse" / "cli" / "index.js"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
METRICS = {"first-contentful-paint": "FCP", "largest-contentful-paint": "LCP", "total-blocking-time": "TBT",
           "cumulative-layout-shift": "CLS", "speed-index": "Speed Index"}
BOOKING = {"sender_name": "Asha Rao", "receiver_name": "Vikram Nair", "mobile": "+91 98765 43210",
           "email": "vikram@example.com", "destination": "Kochi"}
HUBS = (("Picked Up", "Bengaluru Hub"), ("In Transit", "Bengaluru Sorting Centre"), ("In Transit", "Coimbatore Hub"),
        ("In Transit", "Kochi Hub"), ("Out for Delivery", "Kochi Hub"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="Lighthouse runs per page (the median is reported)")
    parser.add_argument("--database-url", help="default: a fresh SQLite file in loadtests/.work/lighthouse")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds for one Lighthouse run")
    parser.add_argument("--out", default=str(LOADTESTS / "results"))
    parser.add_argument("--name", help="report name (default lighthouse-<today>)")
    return parser.parse_args(argv)


# --- setup (not measured) ---------------------------------------------------------------------------------------

def ensure_lighthouse() -> str:
    if not LIGHTHOUSE.exists():
        log("installing Lighthouse (npm ci in loadtests/)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=LOADTESTS, check=True,
                       timeout=600)
    return json.loads((LIGHTHOUSE.parent.parent / "package.json").read_text())["version"]


def chromium_version(path: str) -> str:
    result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "unknown"


def sign_in(host: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{host}/login", json={"username": username, "password": password}, timeout=30)
    response.raise_for_status()
    session.headers["X-CSRFToken"] = response.json()["csrf_token"]
    return session


def seed_pages(host: str, operator: requests.Session) -> dict[str, str]:
    """Two bookings through the public API, one moved along to Out for Delivery; the pages to score."""
    booked = requests.post(f"{host}/create", json=BOOKING, timeout=30)
    booked.raise_for_status()
    moving = requests.post(f"{host}/create", json={**BOOKING, "receiver_name": "Meera Iyer"}, timeout=30)
    moving.raise_for_status()
    moving_id = moving.json()["tracking_id"]
    for status, location in HUBS:
        operator.post(f"{host}/update/{moving_id}", json={"status": status, "location": location},
                      timeout=30).raise_for_status()
    mobile = re.sub(r"\D", "", BOOKING["mobile"])[-10:]
    return {"Landing (booking form)": "/", "Booking confirmation": f"/track/{booked.json()['tracking_id']}?booked=1",
            "Tracking": f"/track/{moving_id}", "Search": f"/search/{mobile}", "Courier app": "/courier/"}


def warm_up(host: str, paths: dict[str, str], courier: requests.Session, rounds: int = 20) -> None:
    """Every page and file a few times over, so that each Gunicorn worker has imported, compiled its templates
    and fingerprinted the static files before Lighthouse times the server's answer (a cold worker's first page
    took 990 ms: a start-up cost, not the page's)."""
    visitor = requests.Session()
    for _ in range(rounds):
        for path in paths.values():
            client = courier if path.startswith("/courier") else visitor
            page = client.get(f"{host}{path}", headers={"Accept": "text/html"}, timeout=30)
            for link in set(re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)):
                client.get(f"{host}{link}", timeout=30)


# --- measuring --------------------------------------------------------------------------------------------------

def run_lighthouse(url: str, path: Path, chromium: str, timeout: float, cookie: str | None) -> dict:
    command = ["node", str(LIGHTHOUSE), url, "--output=json", f"--output-path={path}", "--quiet",
               f"--only-categories={','.join(CATEGORIES)}", f"--chrome-path={chromium}",
               "--chrome-flags=--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"]
    if cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    subprocess.run(command, cwd=ROOT, check=True, timeout=timeout, capture_output=True)
    return json.loads(path.read_text())


def summarise(report: dict) -> dict:
    """Scores (0-100), metrics and the audits that cost points, from one Lighthouse JSON report."""
    audits = report["audits"]
    failing = {}
    for category in CATEGORIES:
        for ref in report["categories"][category]["auditRefs"]:
            audit = audits[ref["id"]]
            if ref.get("weight", 0) > 0 and audit.get("score") is not None and audit["score"] < 1:
                failing.setdefault(category, []).append(f"{audit['title']} ({audit.get('displayValue', '')})"
                                                        .replace(" ()", ""))
    return {
        "scores": {category: round(report["categories"][category]["score"] * 100) for category in CATEGORIES},
        "metrics": {name: audits[key].get("displayValue", "") for key, name in METRICS.items()},
        "bytes": round(audits["total-byte-weight"]["numericValue"]),
        "failing": failing,
        "final_url": report.get("finalDisplayedUrl") or report.get("finalUrl"),
    }


def median_run(runs: list[dict]) -> dict:
    """The run whose performance score is the median (Lighthouse's own advice for several runs)."""
    ordered = sorted(runs, key=lambda run: run["scores"]["performance"])
    return ordered[len(ordered) // 2]


def transfer_sizes(host: str, session: requests.Session) -> list[dict]:
    """The main page, its stylesheet and its script: bytes as stored, as brotli and as gzip on the wire."""
    page = requests.get(f"{host}/", headers={"Accept": "text/html", "Accept-Encoding": "identity"}, timeout=30)
    links = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    targets = [("Landing page (HTML)", "/"), ("Stylesheet", next(link for link in links if link.endswith(".css"))),
               ("Script (waybill.js)", next(link for link in links if "/js/waybill." in link)),
               ("Script (booking.js)", next(link for link in links if "/js/booking." in link))]
    rows = []
    for label, path in targets:
        sizes = {}
        for encoding in ("identity", "br", "gzip"):
            response = session.get(f"{host}{path}", headers={"Accept": "text/html", "Accept-Encoding": encoding},
                                   stream=True, timeout=30)
            raw = response.raw.read(decode_content=False)
            served = response.headers.get("Content-Encoding", "identity")
            sizes[encoding] = len(raw)
            if encoding != "identity":
                assert served == encoding, (path, encoding, served)
                plain = brotli.decompress(raw) if encoding == "br" else gzip.decompress(raw)
                assert len(plain) > len(raw)
        rows.append({"label": label, "path": path, **sizes})
    return rows


# --- report -----------------------------------------------------------------------------------------------------

def write_report(result: dict, out: Path, name: str) -> Path:
    machine = result["machine"]
    lines = [
        f"# Lighthouse, mobile: {result['date']}",
        "",
        f"Lighthouse {result['lighthouse']} (mobile preset: simulated slow 4G and a 4x slower CPU, Moto G Power "
        f"screen) in {result['chromium']}, headless, on the same machine as the server. {result['runs']} run(s) "
        f"per page{', the median by performance' if result['runs'] > 1 else ''}. Commit {result['git']['commit']}"
        f"{' (with local changes)' if result['git']['dirty'] else ''}.",
        "",
        f"Machine: {machine['cores']} cores ({machine['cpu_model'] or 'unknown CPU'}), {machine['memory_gib']} GiB, "
        f"Python {machine['python']}. Server: Gunicorn with gunicorn.conf.py, WAYBILL_ENV=production "
        f"(SESSION_COOKIE_SECURE=false: plain HTTP on 127.0.0.1), rate limits off, {result['database']}. "
        f"Load average (1 min) {result['load_average'][0]} at the start and {result['load_average'][1]} at the end: "
        "the machine is shared, and a busy CPU delays Chromium's first paint, which Lighthouse's simulation then "
        "counts against FCP and Speed Index.",
        "",
        "| page | URL | performance | accessibility | best practices | SEO | FCP | LCP | TBT | CLS | bytes | "
        "performance, each run |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for page in result["pages"]:
        scores, metrics = page["scores"], page["metrics"]
        lines.append(f"| {page['label']} | `{page['path']}` | {scores['performance']} | {scores['accessibility']} | "
                     f"{scores['best-practices']} | {scores['seo']} | {metrics['FCP']} | {metrics['LCP']} | "
                     f"{metrics['TBT']} | {metrics['CLS']} | {page['bytes']:,} | "
                     f"{', '.join(str(score) for score in page['performance_runs'])} |")
    lines += ["", "Bytes: Lighthouse's total byte weight of the page and everything it loaded (compressed as sent).",
              "", "## What cost points", ""]
    costs = [(page["label"], category, audits) for page in result["pages"]
             for category, audits in page["failing"].items()]
    if not costs:
        lines.append("Nothing: every audit with a weight passed on every page.")
    for label, category, audits in costs:
        lines.append(f"- {label}, {category}: {'; '.join(audits)}")
    lines += ["", "## Compression on the wire", "",
              "Bytes of the body as sent (Accept-Encoding: identity, br, gzip); the static files by their "
              "fingerprinted names.", "",
              "| what | plain | brotli | gzip | brotli saves |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in result["sizes"]:
        saved = 100 * (1 - row["br"] / row["identity"])
        lines.append(f"| {row['label']} | {row['identity']:,} | {row['br']:,} | {row['gzip']:,} | {saved:.0f} % |")
    lines += ["", "Raw Lighthouse reports: loadtests/.work/lighthouse/ (not in git). Reproduce with "
              "`.venv/bin/python loadtests/lighthouse.py`.", ""]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = ensure_lighthouse()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    database_url = args.database_url or f"sqlite:///{WORK / 'waybill.db'}"
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    passwords = {"lh-operator": secrets.token_urlsafe(16), "lh-courier": secrets.token_urlsafe(16)}
    env = {**os.environ, "DATABASE_URL": database_url, "WAYBILL_ENV": "production",
           "SECRET_KEY": secrets.token_hex(32), "SESSION_COOKIE_SECURE": "false", "LOG_LEVEL": "WARNING",
           "MAIL_BACKEND": "console", "RATELIMIT_ENABLED": "false", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": "",
           "PUBLIC_BASE_URL": host, "NOTIFY_WORKER_IN_WEB": "false"}
    log(f"migrating {database_url.split('@')[-1]}")
    flask(env, "db", "upgrade")
    flask(env, "users", "create", "lh-operator", "--role", "operator", "--password", passwords["lh-operator"])
    flask(env, "users", "create", "lh-courier", "--role", "courier", "--vehicle", "two_wheeler",
          "--password", passwords["lh-courier"])
    gunicorn = Gunicorn({**env, "BIND": f"127.0.0.1:{port}", "ACCESS_LOG": "off"}, WORK / "gunicorn.log")
    pages = []
    load_before = os.getloadavg()[0]
    try:
        log(f"starting gunicorn on {host}")
        gunicorn.start(host)
        paths = seed_pages(host, sign_in(host, "lh-operator", passwords["lh-operator"]))
        courier = sign_in(host, "lh-courier", passwords["lh-courier"])
        courier_cookie = "; ".join(f"{name}={value}" for name, value in courier.cookies.items())
        sizes = transfer_sizes(host, requests.Session())
        warm_up(host, paths, courier)
        for number, (label, path) in enumerate(paths.items(), start=1):
            runs = []
            for run in range(1, args.runs + 1):
                log(f"lighthouse {label} ({path}), run {run} of {args.runs}")
                report = run_lighthouse(f"{host}{path}", WORK / f"{number}-{run}.json", args.chromium, args.timeout,
                                        courier_cookie if path.startswith("/courier") else None)
                runs.append(summarise(report))
            chosen = median_run(runs)
            chosen["performance_runs"] = [run["scores"]["performance"] for run in runs]
            pages.append({"label": label, "path": re.sub(r"/track/[0-9A-F]{8}", "/track/<id>", path), **chosen})
            log(f"  {chosen['scores']}")
    finally:
        gunicorn.stop()
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "lighthouse": version,
              "chromium": chromium_version(args.chromium), "runs": args.runs, "machine": machine_info(),
              "git": git_info(), "pages": pages, "sizes": sizes,
              "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
              "database": "SQLite" if database_url.startswith("sqlite") else "PostgreSQL"}
    (WORK / "summary.json").write_text(json.dumps(result, indent=2))
    path = write_report(result, Path(args.out), args.name or f"lighthouse-{result['date']}")
    log(f"wrote {path}")
    worst = min(min(page["scores"].values()) for page in pages)
    if worst < 100:
        log(f"lowest score {worst}: see the report's 'What cost points'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
