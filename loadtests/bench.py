"""The Waybill benchmark: from a clean PostgreSQL database to loadtests/results/<name>.md and .json (the
report is committed; the raw JSON stays local, ignored by git).

    loadtests/bench.sh             # full: probes, 50/100/200 users, scaling to 1,000,000 shipments, email (~13 min)
    loadtests/bench.sh --quick     # the same shape, short phases, scaling to 20,000 (~3 min)
    loadtests/bench.sh --help

Steps: recreate the database, `flask db upgrade`, seed the paper's 1,000 shipments / 5,000 events, start the
app with gunicorn.conf.py on 127.0.0.1 (access log and rate limits off, console mail backend) and the outbox
worker as its own process at idle CPU priority (the stack's NotifyWorkerInWeb=false layout; --notify-worker), then
1. probes: each endpoint alone at 200 users with no think time (loadtests/probes.py), /healthz first and last;
2. mixed: the paper's scenario (loadtests/locustfile.py) at 50, 100 and 200 users;
3. scaling: tracking and mobile search probes again after topping the data up to 100,000 and 1,000,000;
4. email: one `flask notifications drain` into a local SMTP sink, then again with the sink stalling a while.
Every load test targets 127.0.0.1 only and is bounded in time. See docs/benchmark.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
LOADTESTS = ROOT / "loadtests"
WORK = LOADTESTS / ".work"
sys.path.insert(0, str(LOADTESTS))

from report import PAPER, evaluate_targets, write_report  # noqa: E402

VENV_BIN = Path(sys.executable).parent
OPERATOR = "bench-operator"
PROBES = [("healthz", "HealthzProbe"), ("track", "TrackProbe"), ("search", "SearchProbe"),
          ("create", "CreateProbe"), ("healthz_again", "HealthzProbe")]


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)


# --- options --------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short phases, scaling to 20,000 (~3 min)")
    parser.add_argument("--name", help="report file name without extension (default: the date and time)")
    parser.add_argument("--phases", default="probes,mixed,scaling,email",
                        help="comma-separated subset of probes,mixed,scaling,email")
    parser.add_argument("--levels", default="50,100,200", help="users in the mixed scenario")
    parser.add_argument("--mixed-seconds", type=int, help="per level (default 60; quick 12)")
    parser.add_argument("--probe-users", type=int, default=200)
    parser.add_argument("--probe-seconds", type=int, help="per probe (default 30; quick 8)")
    parser.add_argument("--scaling", help="shipment counts (default 1000,100000,1000000; quick 1000,20000)")
    parser.add_argument("--emails", type=int, help="emails per email run (default 5000; quick 1000)")
    parser.add_argument("--smtp-stall", type=float, default=5.0, help="seconds the SMTP sink stalls in run 2")
    parser.add_argument("--shipments", type=int, default=1000, help="initial seed (the paper's 1,000)")
    parser.add_argument("--events", type=int, default=5, help="average events per shipment (the paper's 5)")
    parser.add_argument("--worker-class", help="GUNICORN_WORKER_CLASS for this run (default: the config's)")
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY for this run (default: the config's)")
    parser.add_argument("--threads", type=int, help="GUNICORN_THREADS for this run (default: the config's)")
    parser.add_argument("--notify-worker", choices=["process", "thread", "off"], default="process",
                        help="where the outbox worker runs during the HTTP phases: 'process' (default) is the "
                             "stack's NotifyWorkerInWeb=false layout, one `flask notifications worker` beside "
                             "Gunicorn, at idle CPU priority (chrt --idle: in production it has a task of its "
                             "own, here it may only use what the web leaves); 'thread' is "
                             "NOTIFY_WORKER_IN_WEB=true, a worker thread in every Gunicorn worker; 'off': none")
    parser.add_argument("--access-log", action="store_true", help="keep Gunicorn's access log on (default off)")
    parser.add_argument("--quiet-below", type=float, default=25.0,
                        help="before each load run, wait until the machine is less busy than this percent "
                             "(others' jobs skew a shared machine); 0 to not wait")
    parser.add_argument("--quiet-wait", type=float, default=60.0, help="longest wait for that, in seconds")
    parser.add_argument("--server", default=os.environ.get("WAYBILL_BENCH_SERVER",
                                                           "postgresql://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server URL (a database on it is dropped and created)")
    parser.add_argument("--database", default="waybill_bench", help="database name (dropped first!)")
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--out", default=str(LOADTESTS / "results"), help="where the report goes")
    args = parser.parse_args(argv)
    quick = args.quick
    args.mixed_seconds = args.mixed_seconds or (12 if quick else 60)
    args.probe_seconds = args.probe_seconds or (8 if quick else 30)
    args.scaling = [int(x) for x in (args.scaling or ("1000,20000" if quick else "1000,100000,1000000"))
                    .split(",") if x.strip()]
    args.emails = args.emails or (1000 if quick else 5000)
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    unknown = args.phases - {"probes", "mixed", "scaling", "email"}
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if not args.database.startswith("waybill_bench"):
        parser.error("--database must start with waybill_bench (it is dropped)")
    return args


# --- database -------------------------------------------------------------------------------------------------

def database_url(server: str, name: str) -> str:
    base = server.rstrip("/")
    scheme, _, rest = base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/{name}"


@contextmanager
def connect(url: str, autocommit: bool = False) -> Iterator:
    """A psycopg2 connection that commits on success and is always closed (psycopg2's own `with` only ends
    the transaction)."""
    conn = psycopg2.connect(url)
    conn.autocommit = autocommit
    try:
        yield conn
        if not autocommit:
            conn.commit()
    finally:
        conn.close()


def query(conn, statement, params: tuple | None = None) -> list[tuple]:
    """Run one statement; its rows (none for a statement that returns none)."""
    with conn.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description is not None else []


def recreate_database(server: str, name: str) -> None:
    with connect(database_url(server, "postgres"), autocommit=True) as conn:
        query(conn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        query(conn, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: str, name: str) -> None:
    with connect(database_url(server, "postgres"), autocommit=True) as conn:
        query(conn, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        shipments = query(conn, "SELECT count(*) FROM shipments")[0][0]
        events = query(conn, "SELECT count(*) FROM tracking_events")[0][0]
    return {"shipments": shipments, "events": events}


def outbox_backlog(url: str, limit_s: float = 120.0) -> dict:
    """After the booking probe: the messages still waiting when it ended, and how long the notifier took to
    send them all (its work is not left out of the figures, only after them)."""
    started = time.monotonic()
    with connect(url, autocommit=True) as conn:
        waiting = query(conn, "SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending')")[0][0]
        left = waiting
        while left and time.monotonic() - started < limit_s:
            time.sleep(0.5)
            left = query(conn, "SELECT count(*) FROM notifications WHERE state IN ('pending', 'sending')")[0][0]
    backlog = {"waiting_at_end": waiting, "left": left, "drained_in_s": round(time.monotonic() - started, 1)}
    outcome = f"all sent {backlog['drained_in_s']} s later" if not left else f"{left} left after {limit_s:.0f} s"
    log(f"  outbox after the booking probe: {waiting} messages waiting, {outcome}")
    return backlog


def server_version(url: str) -> str:
    with connect(url) as conn:
        return query(conn, "SHOW server_version")[0][0]


def write_sample(url: str, path: Path, operator_password: str) -> dict:
    """Tracking IDs, mobiles and still-moving shipments picked at random from the whole table."""
    final = ("Delivered", "Returned to Sender", "Cancelled")
    with connect(url) as conn:
        tracking_ids = [r[0] for r in query(conn, "SELECT tracking_id FROM shipments ORDER BY random() LIMIT 2000")]
        mobiles = [r[0] for r in query(
            conn, "SELECT DISTINCT mobile FROM (SELECT mobile FROM shipments ORDER BY random() LIMIT 1000) s")]
        active = [r[0] for r in query(
            conn, "SELECT tracking_id FROM shipments WHERE status <> ALL(%s) ORDER BY random() LIMIT 1000",
            (list(final),))]
    sample = {"tracking_ids": tracking_ids, "mobiles": mobiles, "active_tracking_ids": active,
              "operator": {"username": OPERATOR, "password": operator_password}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sample))
    return sample


# --- processes ------------------------------------------------------------------------------------------------

def flask(env: dict[str, str], *args: str, timeout: float = 1800) -> str:
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def seed(env: dict[str, str], shipments: int, events: int, seed_value: int) -> str:
    """`flask seed-demo`, its progress bar shown live."""
    log(f"seeding {shipments:,} shipments ({events} events each on average)")
    command = [str(VENV_BIN / "flask"), "--app", "app", "seed-demo", "--shipments", str(shipments),
               "--events", str(events), "--seed", str(seed_value)]
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"seed-demo failed:\n{result.stdout}")
    log(result.stdout.strip())
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gunicorn:
    """The app as served: Gunicorn, and with `notifier_env` the outbox worker as a process of its own (its CPU
    is counted with the server's)."""

    env: dict[str, str]
    log_path: Path
    notifier_env: dict[str, str] | None = None
    process: subprocess.Popen | None = None
    notifier: subprocess.Popen | None = None

    restarts: int = 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self, base_url: str) -> None:
        """Start it again after something outside the benchmark ended it (on a shared machine, it happens)."""
        self.restarts += 1
        log(f"gunicorn is gone (exit {self.process.returncode if self.process else None}); starting it again")
        self.stop()
        self.start(base_url)

    def start(self, base_url: str) -> None:
        self.base_url = base_url
        self.log_file = self.log_path.open("a")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        self._start_notifier()
                        time.sleep(1)  # let every worker finish booting
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not become ready; see {self.log_path}")

    def _start_notifier(self) -> None:
        if self.notifier_env is not None:
            self.notifier = subprocess.Popen(
                ["chrt", "--idle", "0", str(VENV_BIN / "flask"), "--app", "app", "notifications", "worker"],
                cwd=ROOT, env=self.notifier_env, stdout=self.log_file, stderr=subprocess.STDOUT,
                start_new_session=True)

    def stop(self) -> None:
        if self.notifier is not None and self.notifier.poll() is None:
            self.notifier.send_signal(signal.SIGTERM)
            try:
                self.notifier.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.notifier.kill()
                self.notifier.wait(timeout=10)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "log_file", None) is not None:
            self.log_file.close()
            self.log_file = None

    def cpu_seconds(self) -> dict[int, float]:
        return {pid: cpu for process in (self.process, self.notifier) if process is not None
                for pid, cpu in _tree_cpu(process.pid).items()}


def _cpu_by_pid(processes) -> dict[int, float]:
    times = {}
    for process in processes:
        try:
            cpu = process.cpu_times()
            times[process.pid] = cpu.user + cpu.system
        except psutil.NoSuchProcess:
            pass
    return times


def _tree_cpu(pid: int) -> dict[int, float]:
    try:
        root = psutil.Process(pid)
        return _cpu_by_pid([root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return {}


def _postgres_cpu() -> dict[int, float]:
    return _cpu_by_pid(p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster"))


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots by the processes alive at the second one (a process that started in
    between counts whole; one that ended in between is lost, so this never goes negative)."""
    return sum(max(cpu - before.get(pid, 0.0), 0.0) for pid, cpu in after.items())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _machine_busy() -> float:
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq + getattr(times, "steal", 0.0)


# --- locust ---------------------------------------------------------------------------------------------------

@dataclass
class LocustRun:
    label: str
    endpoints: dict[str, dict] = field(default_factory=dict)
    total: dict = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    cpu: dict = field(default_factory=dict)
    users: int = 0
    seconds: int = 0


QUIET = {"below": 25.0, "wait": 60.0}


def wait_for_quiet() -> dict:
    """Wait (bounded) until the machine has been mostly idle for three seconds in a row: on a shared machine
    another job's burst would otherwise land in one run and not the next."""
    if QUIET["below"] <= 0:
        return {"waited_s": 0.0, "quiet": None}
    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < QUIET["wait"]:
        calm = calm + 1 if psutil.cpu_percent(interval=1.0) < QUIET["below"] else 0
        if calm >= 3:
            return {"waited_s": round(time.monotonic() - started, 1), "quiet": True}
    return {"waited_s": round(time.monotonic() - started, 1), "quiet": False}


def run_locust(label: str, locustfile: str, classes: list[str], users: int, seconds: int, host: str,
               gunicorn: Gunicorn, sample_path: Path, csv_dir: Path) -> LocustRun:
    """One measured run; run again once if the server was not there for all of it."""
    for attempt in (1, 2):
        if not gunicorn.alive():
            gunicorn.restart(host)
        run = _run_locust(label, locustfile, classes, users, seconds, host, gunicorn, sample_path, csv_dir)
        refused = sum(f["count"] for f in run.failures if "ConnectionRefused" in f["error"])
        if gunicorn.alive() and not refused:
            return run
        log(f"  the server went away during {label} ({refused} refused connections)"
            + ("; measuring again" if attempt == 1 else "; keeping this run, marked"))
        run.cpu["server_went_away"] = True
    return run


def _run_locust(label: str, locustfile: str, classes: list[str], users: int, seconds: int, host: str,
                gunicorn: Gunicorn, sample_path: Path, csv_dir: Path) -> LocustRun:
    quiet = wait_for_quiet()
    if quiet["quiet"] is False:
        log(f"  the machine stayed busy for {quiet['waited_s']:.0f} s; running anyway (see 'other' CPU)")
    prefix = csv_dir / label
    spawn_rate = max(users // 2, 1)
    command = [str(VENV_BIN / "locust"), "-f", str(LOADTESTS / locustfile), *classes, "--headless",
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "--host", host,
               "--csv", str(prefix), "--only-summary", "--reset-stats", "--stop-timeout", "3",
               "--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {**os.environ, "WAYBILL_SAMPLE": str(sample_path), "PYTHONUNBUFFERED": "1"}
    log(f"locust {label}: {users} users, {seconds} s ({' '.join(classes) or 'mixed'})")
    before = (_children_cpu(), gunicorn.cpu_seconds(), _postgres_cpu(), _machine_busy(), time.monotonic())
    with (csv_dir / f"{label}.log").open("w") as output:
        result = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                timeout=seconds + 90)
    after = (_children_cpu(), gunicorn.cpu_seconds(), _postgres_cpu(), _machine_busy(), time.monotonic())
    if result.returncode not in (0, 1):
        raise RuntimeError(f"locust {label} exited {result.returncode}; see {csv_dir / (label + '.log')}")
    wall = after[4] - before[4]
    capacity = wall * psutil.cpu_count()
    generator, busy = after[0] - before[0], after[3] - before[3]
    server, database = _cpu_delta(before[1], after[1]), _cpu_delta(before[2], after[2])
    run = LocustRun(label=label, users=users, seconds=seconds)
    run.cpu = {
        "wall_s": round(wall, 1),
        "generator_pct": _pct(generator, capacity), "server_pct": _pct(server, capacity),
        "database_pct": _pct(database, capacity),
        "other_pct": _pct(max(busy - generator - server - database, 0.0), capacity),
        "idle_pct": _pct(max(capacity - busy, 0.0), capacity),
        "generator_share_of_used_pct": _pct(generator, generator + server + database),
        "generator_core_pct": _pct(generator, wall),
        "quiet_before": quiet["quiet"], "waited_for_quiet_s": quiet["waited_s"],
    }
    run.endpoints, run.total = read_stats(Path(f"{prefix}_stats.csv"))
    run.failures = read_failures(Path(f"{prefix}_failures.csv"))
    summary = ", ".join(f"{name} {row['rps']:.0f}/s p95 {row['p95_ms']:.0f} ms" for name, row in run.endpoints.items())
    log(f"  {summary}; generator {run.cpu['generator_pct']:.0f}% of the machine")
    return run


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def _num(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _row(record: dict) -> dict:
    return {
        "requests": int(_num(record["Request Count"])), "failures": int(_num(record["Failure Count"])),
        "rps": round(_num(record["Requests/s"]), 1), "avg_ms": round(_num(record["Average Response Time"]), 1),
        "p50_ms": _num(record["50%"]), "p95_ms": _num(record["95%"]), "p99_ms": _num(record["99%"]),
        "max_ms": round(_num(record["Max Response Time"]), 1),
    }


def read_stats(path: Path) -> tuple[dict[str, dict], dict]:
    endpoints, total = {}, {}
    if not path.exists():
        return endpoints, total
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            if record["Name"] == "Aggregated":
                total = _row(record)
            else:
                endpoints[record["Name"]] = _row(record)
    return endpoints, total


def read_failures(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [{"endpoint": f"{r['Method']} {r['Name']}", "error": r["Error"][:300],
                 "count": int(_num(r["Occurrences"]))} for r in csv.DictReader(handle)]


def run_as_dict(run: LocustRun) -> dict:
    return {"label": run.label, "users": run.users, "seconds": run.seconds, "endpoints": run.endpoints,
            "total": run.total, "failures": run.failures, "cpu": run.cpu}


# --- email ----------------------------------------------------------------------------------------------------

class SmtpSink:
    """A local SMTP server (aiosmtpd) that counts messages and connections, and can stall once for a while."""

    def __init__(self, stall_after: int | None = None, stall_seconds: float = 0.0) -> None:
        from aiosmtpd.controller import Controller

        self.stall_after, self.stall_seconds = stall_after, stall_seconds
        self.times: list[float] = []
        self.peers: set = set()
        self.message_ids: list[str] = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        import asyncio

        with self.lock:
            count = len(self.times)
        if self.stall_after is not None and count == self.stall_after and self.stall_seconds:
            self.stall_after = None
            await asyncio.sleep(self.stall_seconds)
        message_id = ""
        for line in envelope.content.splitlines():
            if line.lower().startswith(b"message-id:"):
                message_id = line.split(b":", 1)[1].strip().decode(errors="replace")
                break
        with self.lock:
            self.times.append(time.monotonic())
            self.peers.add(session.peer)
            self.message_ids.append(message_id)
        return "250 Message accepted"

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def enqueue_emails(url: str, count: int, tag: str) -> int:
    """`count` pending notifications for existing events (the outbox emptied first), as the app would queue."""
    with connect(url) as conn:
        query(conn, "DELETE FROM notifications")
        # The worker renders each email from the shipment and event the row names, as for the app's own rows.
        query(conn,
              "INSERT INTO notifications (shipment_id, event_id, channel, recipient, subject, "
              "state, attempts, next_attempt_at, created_at) "
              "SELECT e.shipment_id, e.id, 'email', %s || e.id || '@example.com', "
              "'Shipment ' || s.tracking_id || ': ' || e.status, 'pending', 0, now(), now() "
              "FROM tracking_events e JOIN shipments s ON s.id = e.shipment_id ORDER BY e.id LIMIT %s",
              (f"{tag}+", count))
        conn.commit()
        # Fresh statistics, as autovacuum keeps them in production: the claim query is planned from them.
        query(conn, "ANALYZE notifications")
        return query(conn, "SELECT count(*) FROM notifications WHERE state = 'pending'")[0][0]


def notifier_available(env: dict[str, str]) -> str | None:
    """None if `flask notifications drain` exists, else why not."""
    result = subprocess.run([str(VENV_BIN / "flask"), "--app", "app", "notifications", "drain", "--help"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return None if result.returncode == 0 else "worker not available (no `flask notifications drain`)"


def measure_email(url: str, env: dict[str, str], count: int, stall_seconds: float) -> dict:
    missing = notifier_available(env)
    if missing:
        return {"status": f"not measured: {missing}"}
    results = {"status": "measured"}
    for scenario, stall in (("steady", 0.0), ("stalled", stall_seconds)):
        queued = enqueue_emails(url, count, tag=f"bench-{scenario}")
        sink = SmtpSink(stall_after=count // 4 if stall else None, stall_seconds=stall)
        drain_env = {**env, "MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(sink.port),
                     "MAIL_USE_SSL": "false", "MAIL_USE_TLS": "false", "MAIL_USERNAME": "", "MAIL_PASSWORD": "",
                     "MAIL_RETRY_BACKOFF": "1"}
        log(f"email {scenario}: draining {queued} queued emails into a local SMTP sink"
            + (f" that stalls {stall:.0f} s after {count // 4}" if stall else ""))
        with sink:
            started = time.monotonic()
            output = ""
            for _ in range(5):  # a pass ends when nothing is due; retries after a failure fall due a second later
                output += flask(drain_env, "notifications", "drain", timeout=600)
                with connect(url) as conn:
                    left = query(conn, "SELECT count(*) FROM notifications WHERE state <> 'sent'")[0][0]
                if left == 0 or len(sink.times) >= queued:
                    break
                time.sleep(1.5)
            elapsed = time.monotonic() - started
        received = len(sink.times)
        span = sink.times[-1] - sink.times[0] if received > 1 else 0.0
        with connect(url) as conn:
            states = dict(query(conn, "SELECT state, count(*) FROM notifications GROUP BY state"))
        results[scenario] = {
            "queued": queued, "received": received, "duplicates": received - len(set(sink.message_ids)),
            "connections": len(sink.peers), "stall_s": stall,
            "emails_per_s": round((received - 1) / span, 1) if span > 0 else None,
            "first_to_last_s": round(span, 2), "command_s": round(elapsed, 2), "states": states,
            "drain_output": output.strip()[-500:],
        }
        log(f"  {received}/{queued} received over {len(sink.peers)} connection(s), "
            f"{results[scenario]['emails_per_s']} emails/s first to last")
    return results


# --- the run --------------------------------------------------------------------------------------------------

def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": psutil.cpu_count(), "cpu_model": model,
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "platform": platform.platform(terse=True)}


def git_info() -> dict:
    """The commit measured. An exported tree (git archive) has no .git: WAYBILL_BENCH_COMMIT names it then."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        return result.stdout.strip() if result.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") if (ROOT / ".git").exists() else ""
    if not commit:
        return {"commit": os.environ.get("WAYBILL_BENCH_COMMIT", "unknown"), "dirty": False}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--", "app"))}


def gunicorn_settings(env: dict[str, str]) -> dict:
    """What gunicorn.conf.py resolves to under this environment (the file is read the way Gunicorn reads it)."""
    code = ("import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps({k: c[k] for k in ('worker_class', 'workers', 'threads', 'timeout', "
            "'graceful_timeout', 'keepalive')} | {'accesslog': c['accesslog'] is not None}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60, check=True)
    settings = json.loads(result.stdout)
    if settings["worker_class"] != "gthread":
        settings["threads"] = 1
    return settings


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    QUIET.update(below=args.quiet_below, wait=args.quiet_wait)
    started_at = datetime.now(UTC)
    name = args.name or started_at.strftime("%Y-%m-%d-%H%M") + ("-quick" if args.quick else "")
    run_dir = WORK / name
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    url = database_url(args.server, args.database)
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    operator_password = secrets.token_urlsafe(16)
    base_env = {**os.environ, "DATABASE_URL": url, "WAYBILL_ENV": "production",
                "SECRET_KEY": secrets.token_hex(32), "SESSION_COOKIE_SECURE": "false", "LOG_LEVEL": "WARNING",
                "MAIL_BACKEND": "console", "RATELIMIT_ENABLED": "false", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": "",
                "PUBLIC_BASE_URL": host}
    server_env = {**base_env, "BIND": f"127.0.0.1:{port}", "ACCESS_LOG": "on" if args.access_log else "off",
                  "GUNICORN_LOG_LEVEL": "info",
                  "NOTIFY_WORKER_IN_WEB": "true" if args.notify_worker == "thread" else "false"}
    for key, value in (("GUNICORN_WORKER_CLASS", args.worker_class), ("WEB_CONCURRENCY", args.workers),
                       ("GUNICORN_THREADS", args.threads)):
        if value is not None:
            server_env[key] = str(value)

    log(f"recreating database {args.database}")
    recreate_database(args.server, args.database)
    flask(base_env, "db", "upgrade")
    seed_output = seed(base_env, args.shipments, args.events, seed_value=42)
    flask(base_env, "users", "create", OPERATOR, "--role", "operator", "--password", operator_password)
    sample_path = run_dir / "sample.json"
    write_sample(url, sample_path, operator_password)
    initial = counts(url)

    result: dict = {
        "name": name, "mode": "quick" if args.quick else "full", "started_at": started_at.isoformat(),
        "machine": machine_info(), "git": git_info(),
        "database": {"engine": f"PostgreSQL {server_version(url)}", "where": "same machine",
                     "seeded": initial, "seed_output": seed_output},
        "server": {**gunicorn_settings(server_env), "bind": "127.0.0.1", "rate_limits": False,
                   "mail_backend": "console", "notify_worker_in_web": args.notify_worker == "thread",
                   "notifier": args.notify_worker,
                   "log_level": "WARNING", "wsgi": "app:create_app()", "config": "gunicorn.conf.py"},
        "generator": {"tool": "Locust FastHttpUser", "version": _locust_version(), "same_machine": True},
        "options": {"levels": args.levels, "mixed_seconds": args.mixed_seconds, "probe_users": args.probe_users,
                    "probe_seconds": args.probe_seconds, "scaling": args.scaling, "emails": args.emails},
        "paper": PAPER,
    }
    notifier_env = {**base_env, "NOTIFY_WORKER_IN_WEB": "false"} if args.notify_worker == "process" else None
    gunicorn = Gunicorn(server_env, run_dir / "gunicorn.log", notifier_env)
    try:
        log(f"starting gunicorn on {host}")
        gunicorn.start(host)
        if "probes" in args.phases:
            runs, backlog = [], None
            for label, cls in PROBES:
                runs.append(run_locust(f"probe-{label}", "probes.py", [cls], args.probe_users, args.probe_seconds,
                                       host, gunicorn, sample_path, run_dir))
                if label == "create" and args.notify_worker != "off":
                    backlog = outbox_backlog(url)
            result["probes"] = {"users": args.probe_users, "seconds": args.probe_seconds, **initial,
                                "runs": [run_as_dict(r) for r in runs], "create_backlog": backlog}
        if "mixed" in args.phases:
            runs = [run_locust(f"mixed-{users}", "locustfile.py", [], users, args.mixed_seconds, host, gunicorn,
                               sample_path, run_dir) for users in args.levels]
            result["mixed"] = {"seconds": args.mixed_seconds, "runs": [run_as_dict(r) for r in runs]}
        if "scaling" in args.phases:
            result["scaling"] = scaling(args, url, base_env, host, gunicorn, sample_path, run_dir,
                                        result.get("probes"), operator_password)
    finally:
        gunicorn.stop()
        result["server"]["restarts_during_run"] = gunicorn.restarts
    if "email" in args.phases:
        try:
            result["email"] = measure_email(url, base_env, args.emails, args.smtp_stall)
        except Exception as exc:  # noqa: BLE001 - the rest of the report is still worth writing
            result["email"] = {"status": f"not measured: {type(exc).__name__}: {exc}"[:500]}
    else:
        result["email"] = {"status": "not measured: phase skipped"}
    if not args.keep_database:
        drop_database(args.server, args.database)
    result["finished_at"] = datetime.now(UTC).isoformat()
    result["duration_s"] = round((datetime.now(UTC) - started_at).total_seconds())
    result["targets"] = evaluate_targets(result)
    md_path, json_path = write_report(result, Path(args.out), name)
    log(f"wrote {md_path} and {json_path} in {result['duration_s']} s")
    return 0


def scaling(args, url, env, host, gunicorn, sample_path, run_dir, probes, operator_password) -> dict:
    sizes = []
    for target in sorted(args.scaling):
        now = counts(url)
        reuse = probes is not None and target == probes["shipments"] and now["shipments"] >= target
        if reuse:
            # The probe phase measured tracking and search at exactly this size, before any booking.
            by_label = {run["label"]: run for run in probes["runs"]}
            track, search = by_label["probe-track"], by_label["probe-search"]
            size = {"shipments": probes["shipments"], "events": probes["events"], "reused_from": "probes"}
        else:
            if now["shipments"] < target:
                seed(env, target - now["shipments"], args.events, seed_value=target)
            write_sample(url, sample_path, operator_password)
            size = counts(url)
            track = run_as_dict(run_locust(f"scale-{target}-track", "probes.py", ["TrackProbe"], args.probe_users,
                                           args.probe_seconds, host, gunicorn, sample_path, run_dir))
            search = run_as_dict(run_locust(f"scale-{target}-search", "probes.py", ["SearchProbe"],
                                            args.probe_users, args.probe_seconds, host, gunicorn, sample_path,
                                            run_dir))
        size["target"] = target
        size["track"] = {**track["endpoints"].get("GET /track/[id]", {}), "cpu": track["cpu"]}
        size["search"] = {**search["endpoints"].get("GET /search/[mobile]", {}), "cpu": search["cpu"]}
        sizes.append(size)
    return {"users": args.probe_users, "seconds": args.probe_seconds, "sizes": sizes}


def _locust_version() -> str:
    try:
        from importlib.metadata import version
        return version("locust")
    except Exception:  # noqa: BLE001
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
