"""Push benchmark: thousands of concurrent server-sent event streams on the streams service, status changes at a
steady rate, change-to-client latency, and the tracking probe on the web service with and without the streams.

    .venv/bin/python loadtests/sse_bench.py                         # 2,000 streams, gevent (the production choice)
    .venv/bin/python loadtests/sse_bench.py --worker-class gthread  # the same with a thread per stream
    .venv/bin/python loadtests/sse_bench.py --streams 200 --changes-seconds 10   # a quick look

What it does, bounded in time (about two minutes):
1. A fresh PostgreSQL database on TEST_DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/
   postgres): migrations (`flask deploy`), then `flask seed-demo`.
2. Two Gunicorn servers from gunicorn.conf.py on this machine, as in production: the web service (gthread,
   SSE_STREAMS=false) and the streams service (--worker-class, SSE_STREAMS=true, one LISTEN connection a process).
3. The tracking probe alone: --probe-clients keep-alive connections asking GET /track/<id> (JSON) of the web
   service for --probe-seconds; requests a second.
4. --streams streams opened on GET /track/<id>/events (a different shipment each, asyncio sockets), each waiting
   for its first event.
5. Status changes through the app's own service (record_status_change, committed: NOTIFY reaches the streams
   service) at --rate a second for --changes-seconds, each to a shipment with an open stream, while the tracking
   probe runs again. Latency: from just before the commit to the event's arrival at its client.
Prints a Markdown report with the core count; --raw FILE keeps the raw figures (JSON, out of git).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_db import fresh_database  # noqa: E402

VENV_BIN = ROOT / ".venv" / "bin"
OPEN_STATUSES = ("Booked", "Picked Up", "In Transit", "Out for Delivery")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, WAYBILL_ENV="development", SECRET_KEY="bench-secret",
               RATELIMIT_ENABLED="false", ACCESS_LOG="off", LOG_LEVEL="WARNING", NOTIFY_WORKER_IN_WEB="false",
               JOBS_IN_WEB="false", MAIL_BACKEND="console", TRACK_CACHE_ENABLED="true", **extra)
    return env


def start_gunicorn(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Gunicorn from gunicorn.conf.py on `port`; its output goes to `log` (quoted when something failed)."""
    process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                "app:create_app()"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn on {port} did not start: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# --- the tracking probe -------------------------------------------------------------------------------------------

async def probe(port: int, tracking_ids: list[str], clients: int, seconds: float) -> dict:
    """Keep-alive clients asking GET /track/<id> as JSON as fast as answered; requests a second and failures."""
    done, failed = 0, 0
    deadline = time.monotonic() + seconds

    async def client(rng: random.Random) -> None:
        nonlocal done, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            tid = rng.choice(tracking_ids)
            writer.write(f"GET /track/{tid} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n".encode())
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if status.split()[1] == b"200":
                done += 1
            else:
                failed += 1
        writer.close()

    started = time.monotonic()
    await asyncio.gather(*(client(random.Random(i)) for i in range(clients)))
    return {"requests_per_second": done / (time.monotonic() - started), "requests": done, "failed": failed}


# --- the streams --------------------------------------------------------------------------------------------------

class Streams:
    def __init__(self, port: int, tracking_ids: list[str]) -> None:
        self.port, self.tracking_ids = port, tracking_ids
        self.ready = 0
        self.failed: list[str] = []
        self.changed_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.tasks: list[asyncio.Task] = []
        self.first_seen = asyncio.Event()

    async def open(self, tid: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
        except OSError as exc:
            self.failed.append(type(exc).__name__)
            self._settled()
            return
        writer.write(f"GET /track/{tid}/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        status = await reader.readline()
        if b" 200 " not in status:
            self.failed.append(status.decode().strip())
            self._settled()
            writer.close()
            return
        first = True
        try:
            while line := await reader.readline():
                if not line.startswith(b"data:") and b"data:" not in line:
                    continue
                if first:
                    first = False
                    self.ready += 1
                    self._settled()
                    continue
                arrived = time.perf_counter()
                sent = self.changed_at.pop(tid, None)
                if sent is not None:
                    self.latencies.append(arrived - sent)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _settled(self) -> None:
        if self.ready + len(self.failed) == len(self.tracking_ids):
            self.first_seen.set()

    async def start(self, per_second: int = 500) -> float:
        started = time.monotonic()
        for index, tid in enumerate(self.tracking_ids):
            self.tasks.append(asyncio.create_task(self.open(tid)))
            if index % per_second == per_second - 1:
                await asyncio.sleep(1)
        with contextlib.suppress(TimeoutError):  # reported as streams not open
            await asyncio.wait_for(self.first_seen.wait(), 60)
        return time.monotonic() - started

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def change_statuses(database_url: str, tracking_ids: list[str], rate: float, seconds: float,
                    streams: Streams, loop: asyncio.AbstractEventLoop) -> int:
    """In a thread: status changes through the app's service at `rate` a second (each its own transaction)."""
    from app import create_app
    from app.config import TestingConfig
    from app.extensions import db
    from app.services.shipments.status_changes import record_status_change

    app = create_app(TestingConfig(database_url))
    changed = 0
    queue = list(tracking_ids)
    random.Random(7).shuffle(queue)
    started = time.monotonic()
    with app.app_context():
        while time.monotonic() - started < seconds and queue:
            tid = queue.pop()
            loop.call_soon_threadsafe(streams.changed_at.__setitem__, tid, time.perf_counter())
            record_status_change(tid, "On Hold", "Bench hub", None, actor="bench")
            db.session.commit()
            changed += 1
            next_at = started + changed / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
        db.session.remove()
    return changed


def rss_mb(pid: int) -> float:
    import psutil

    parent = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 2**20


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def run(args) -> dict:
    server = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database_url, drop = fresh_database(server, "waybill_ssebench_")
    processes = []
    try:
        env = server_env(database_url)
        subprocess.run([str(VENV_BIN / "flask"), "--app", "app", "deploy"], cwd=ROOT, env=env, check=True,
                       capture_output=True)
        subprocess.run([str(VENV_BIN / "flask"), "--app", "app", "seed-demo", "--shipments", str(args.seed),
                        "--seed", "1"], cwd=ROOT, env=env, check=True, capture_output=True)
        from sqlalchemy import create_engine, text
        engine = create_engine(database_url)
        with engine.connect() as conn:
            all_ids = [r[0] for r in conn.execute(text("SELECT tracking_id FROM shipments ORDER BY id"))]
            open_ids = [r[0] for r in conn.execute(text("SELECT tracking_id FROM shipments WHERE status IN "
                                                        "('Booked','Picked Up','In Transit','Out for Delivery') "
                                                        "ORDER BY id"))]
        engine.dispose()
        if len(open_ids) < args.streams:
            raise RuntimeError(f"only {len(open_ids)} open shipments for {args.streams} streams: raise --seed")
        stream_ids = open_ids[:args.streams]

        web_port, streams_port = free_port(), free_port()
        logs = args.logs
        logs.mkdir(parents=True, exist_ok=True)
        processes.append(start_gunicorn(web_port, server_env(database_url, SSE_STREAMS="false"), logs / "web.log"))
        stream_extra = {"SSE_STREAMS": "true", "GUNICORN_WORKER_CLASS": args.worker_class,
                        "WEB_CONCURRENCY": str(args.stream_workers), "SSE_MAX_STREAMS": str(args.streams * 2)}
        if args.worker_class == "gevent":
            stream_extra["GUNICORN_WORKER_CONNECTIONS"] = str(args.streams * 2)
        else:
            stream_extra.update(GUNICORN_THREADS=str(args.streams // args.stream_workers + 100),
                                GUNICORN_WORKER_CONNECTIONS=str(args.streams * 2))
        streams_process = start_gunicorn(streams_port, server_env(database_url, **stream_extra),
                                         logs / f"streams-{args.worker_class}.log")
        processes.append(streams_process)

        await probe(web_port, all_ids, args.probe_clients, 8)  # warm-up: every worker loaded, caches filled
        alone = await probe(web_port, all_ids, args.probe_clients, args.probe_seconds)

        streams = Streams(streams_port, stream_ids)
        open_seconds = await streams.start()
        idle_rss = rss_mb(streams_process.pid)
        loop = asyncio.get_running_loop()
        changes = loop.run_in_executor(None, change_statuses, database_url, stream_ids, args.rate,
                                       args.changes_seconds, streams, loop)
        with_streams = await probe(web_port, all_ids, args.probe_clients,
                                   min(args.probe_seconds, args.changes_seconds))
        changed = await changes
        await asyncio.sleep(2)  # the last events
        busy_rss = rss_mb(streams_process.pid)
        await streams.close()
        latencies = sorted(streams.latencies)
        return {
            "cores": os.cpu_count(), "worker_class": args.worker_class, "stream_workers": args.stream_workers,
            "streams_asked": args.streams, "streams_open": streams.ready, "stream_failures": len(streams.failed),
            "failure_samples": streams.failed[:5], "open_seconds": round(open_seconds, 1),
            "changes": changed, "events_measured": len(latencies),
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1),
            "latency_max_ms": round(max(latencies, default=float("nan")) * 1000, 1),
            "probe_alone_rps": round(alone["requests_per_second"], 1),
            "probe_with_streams_rps": round(with_streams["requests_per_second"], 1),
            "probe_ratio": round(with_streams["requests_per_second"] / alone["requests_per_second"], 2),
            "probe_failures": alone["failed"] + with_streams["failed"],
            "streams_rss_mb_idle": round(idle_rss), "streams_rss_mb_busy": round(busy_rss),
        }
    finally:
        for process in processes:
            stop(process)
        drop()


def report(result: dict) -> str:
    ok = lambda met: "met" if met else "**not met**"  # noqa: E731
    return "\n".join([
        f"- **Machine:** {result['cores']} cores; server, PostgreSQL and load generator share them.",
        f"- **Streams service:** Gunicorn `{result['worker_class']}`, {result['stream_workers']} workers; web "
        "service: gunicorn.conf.py defaults (gthread).",
        "",
        "| target | goal | measured | status |",
        "| --- | --- | --- | --- |",
        f"| concurrent streams | ≥ 2,000 | {result['streams_open']:,} open of {result['streams_asked']:,} "
        f"({result['stream_failures']} refused), all open in {result['open_seconds']} s | "
        f"{ok(result['streams_open'] >= 2000)} |",
        f"| change-to-client p95 | < 1 s | {result['latency_p95_ms']} ms (p50 {result['latency_p50_ms']} ms, max "
        f"{result['latency_max_ms']} ms; {result['events_measured']} of {result['changes']} changes) | "
        f"{ok(result['latency_p95_ms'] < 1000)} |",
        f"| tracking probe with streams | ≥ 0.8 × without | {result['probe_with_streams_rps']} req/s vs "
        f"{result['probe_alone_rps']} req/s = {result['probe_ratio']} × | {ok(result['probe_ratio'] >= 0.8)} |",
        "",
        f"Streams service memory (all processes): {result['streams_rss_mb_idle']} MB with the streams open, "
        f"{result['streams_rss_mb_busy']} MB after the changes.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent")
    parser.add_argument("--stream-workers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="status changes a second")
    parser.add_argument("--changes-seconds", type=float, default=30.0)
    parser.add_argument("--probe-clients", type=int, default=16)
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=6000, help="shipments seeded")
    parser.add_argument("--raw", type=Path, default=None, help="write the raw figures here (JSON, out of git)")
    parser.add_argument("--logs", type=Path, default=ROOT / "loadtests" / ".work" / "sse",
                        help="the servers' logs (out of git)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.streams + 1024)), hard))
    result = asyncio.run(run(args))
    if args.raw:
        args.raw.write_text(json.dumps(result, indent=2))
    print(report(result))


if __name__ == "__main__":
    main()
