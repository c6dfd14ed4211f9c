"""Gunicorn settings for Waybill: `gunicorn -c gunicorn.conf.py "app:create_app()"`.

Every setting can be changed from the environment, so the same file serves the container, a laptop and the
benchmark. The defaults were chosen by measurement: see docs/benchmark.md and loadtests/results/.

    PORT / BIND               listen on 0.0.0.0:$PORT (default 8000); BIND (host:port) wins when set
    WEB_CONCURRENCY           worker processes (default: from the CPUs this process may use, see below)
    GUNICORN_WORKER_CLASS     sync | gthread | gevent (default: gthread)
    GUNICORN_THREADS          threads per gthread worker (default: 4)
    GUNICORN_TIMEOUT          seconds a worker may stay silent before it is killed (default: 30)
    GUNICORN_GRACEFUL_TIMEOUT seconds to finish in-flight requests on SIGTERM (default: 20, inside ECS's 30 s)
    GUNICORN_KEEPALIVE        seconds an idle keep-alive connection stays open (default: 75, above the ALB's 60)
    ACCESS_LOG                on | off (default: on, to stdout, emails and mobiles masked, with the request id)
    LOG_FORMAT                text | json: Gunicorn's error and access logs like the app's (default: text)
    PROMETHEUS_MULTIPROC_DIR  where the workers' metrics files go (default: a fresh directory under /tmp)
    GUNICORN_LOG_LEVEL        Gunicorn's own log level (default: the app's LOG_LEVEL, else info)
    FORWARDED_ALLOW_IPS       proxies trusted for X-Forwarded-* (default: 127.0.0.1,::1; "*" behind the ALB)
    GUNICORN_CONTROL_SOCKET   on | off: Gunicorn's gunicornc control socket (default: off)
    GUNICORN_WORKER_CONNECTIONS  connections a gevent worker holds at once (default: 1000; the streams service:
                              4000, see docs/deploy.md)

No preload: the app, its database pool, its notification thread and its job runner thread are created in each
worker after the fork.
Before the first worker starts, on_starting refuses (in production) rate-limit counters in memory when there is
more than one worker: see app.config.check_rate_limit_store.
"""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger


def _app_file(name: str):
    """app/<name>.py on its own (name may be in a package: "observability/logs"): importing the `app` package here
    would load the whole app into the master process, and every worker (even after a HUP) would inherit that code
    instead of loading its own. Neither the package's __init__ nor anything else of the app is run."""
    path = Path(__file__).resolve().parent / "app" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"waybill_{name.replace('/', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_logs = _app_file("observability/logs")  # the app's log formats (standard library and python-json-logger)
LOG_FORMATS, tag_handler = _logs.LOG_FORMATS, _logs.tag_handler

# ---------------------------------------------------------------------------------------------------------------
# Masking: no email or full mobile number reaches a log line, whatever the route or the status.
# The app knows which route a request matched: it leaves the URI to log, masked, in the environ
# (app/web/access_log.py). Every atom of an access line (request line, path, query, referrer, user agent, every
# header and environ value) and every argument of an error-log line then goes through the app's one masking
# function (app/observability/logs.py mask_contacts), which also reads percent-escapes (/search%2F…, a%40b.com):
# requests the app did not answer (a malformed Host, a request Gunicorn refused) are masked by their text.

LOG_SAFE_URI = "waybill.log_uri"  # app.web.access_log.ENVIRON_KEY
mask_contacts = _logs.mask_contacts


# Logging: text or JSON lines like the app's own (LOG_FORMAT), the request id in both.


def _masked(value):
    return mask_contacts(value) if isinstance(value, str) else value


class MaskingLogger(Logger):
    """Gunicorn's logger with emails and mobile numbers masked in access lines (request line, path, query,
    referrer, user agent and every header or environ atom) and in the arguments of error-log lines (which can
    quote the URI). With
    LOG_FORMAT=json both logs write one JSON object per line, and an access line carries the request id,
    method, path, status and duration as fields of their own."""

    def setup(self, cfg):
        super().setup(cfg)
        if log_format == "json":
            for handler in self.error_log.handlers + self.access_log.handlers:
                tag_handler(handler, log_format)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        safe_uri = environ.get(LOG_SAFE_URI)
        if isinstance(safe_uri, str):  # the route's own view of the URL, mobile masked
            path, _, query = safe_uri.partition("?")
            atoms["r"] = f"{environ.get('REQUEST_METHOD')} {safe_uri} {environ.get('SERVER_PROTOCOL')}"
            atoms.update({"U": path, "q": query, "{raw_uri}e": safe_uri, "{path_info}e": path,
                          "{query_string}e": query})
        return {key: _masked(value) for key, value in atoms.items()}

    def access(self, resp, req, environ, request_time):
        if log_format != "json":
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.cfg.access_log_format, atoms, extra={
                "request_id": atoms["{x-request-id}o"] if atoms["{x-request-id}o"] != "-" else None,
                "method": atoms["m"], "path": atoms["U"], "status": int(atoms["s"]), "duration_ms": atoms["M"],
            })
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            self.exception("Could not write the access log line")
        return None

    def critical(self, msg, *args, **kwargs):
        super().critical(_masked(msg), *map(_masked, args), **kwargs)

    def error(self, msg, *args, **kwargs):
        super().error(_masked(msg), *map(_masked, args), **kwargs)

    def warning(self, msg, *args, **kwargs):
        super().warning(_masked(msg), *map(_masked, args), **kwargs)

    def info(self, msg, *args, **kwargs):
        super().info(_masked(msg), *map(_masked, args), **kwargs)

    def debug(self, msg, *args, **kwargs):
        super().debug(_masked(msg), *map(_masked, args), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(_masked(msg), *map(_masked, args), **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Sizing.

def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _cgroup_cpu_limit() -> float | None:
    """The CPU quota of this container, if one is set (cgroup v2, then v1)."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may really use: the affinity mask, capped by a container CPU quota (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


def default_workers(worker_class: str, cpus: int) -> int:
    """The classic 2×CPUs+1 for sync workers; one process per CPU plus one for threaded or async workers,
    whose concurrency comes from threads or greenlets instead of processes."""
    if worker_class == "sync":
        return 2 * cpus + 1
    return cpus + 1


# ---------------------------------------------------------------------------------------------------------------
# Settings read by Gunicorn.

bind = [_env("BIND", f"0.0.0.0:{_env('PORT', '8000')}")]  # noqa: S104 - a container listens on all interfaces
worker_class = _env("GUNICORN_WORKER_CLASS", "gthread")
threads = int(_env("GUNICORN_THREADS", "4"))
workers = int(_env("WEB_CONCURRENCY", str(default_workers(worker_class, available_cpus()))))
worker_connections = int(_env("GUNICORN_WORKER_CONNECTIONS", "1000"))
preload_app = False  # never: the notification and job threads and the database pool belong to each worker

timeout = int(_env("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(_env("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(_env("GUNICORN_KEEPALIVE", "75"))
max_requests = int(_env("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(_env("GUNICORN_MAX_REQUESTS_JITTER", "0"))
SHM = Path("/dev/shm")  # noqa: S108 - a tmpfs for the heartbeat file: a slow disk cannot stall a worker
if SHM.is_dir():
    worker_tmp_dir = str(SHM)

forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Gunicorn's runtime control socket (gunicornc) is not needed under ECS, and the non-root user has no home for it.
control_socket_disable = _env("GUNICORN_CONTROL_SOCKET", "off").lower() in {"0", "off", "false", "no"}

log_format = _env("LOG_FORMAT", "text").lower()
if log_format not in LOG_FORMATS:
    raise RuntimeError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
logger_class = MaskingLogger
loglevel = _env("GUNICORN_LOG_LEVEL", _env("LOG_LEVEL", "info")).lower()
errorlog = "-"
accesslog = "-" if _env("ACCESS_LOG", "on").lower() not in {"0", "off", "false", "no"} else None
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s" %({x-request-id}o)s'


def _app_config_module():
    return _app_file("config")


def on_starting(server):
    """Before any worker exists: refuse per-process rate-limit counters with several workers in production (a
    RuntimeError, which Gunicorn prints as "Error: ..." before exiting 1; elsewhere only warn), and give the
    workers their metrics directory."""
    warning = _app_config_module().check_rate_limit_store(server.cfg.workers)
    if warning:
        server.log.warning("%s", warning)
    prepare_metrics_directory(server)


def post_fork(server, worker):
    """A gevent worker (the streams service) gets psycopg2 waits that yield to gevent's hub, before the app
    opens any connection (app/db/green.py)."""
    if worker_class == "gevent":
        _app_file("db/green").make_psycopg2_green()


def worker_exit(server, worker):
    """Stop this worker's notification thread (it finishes the email it is sending and leaves the rest of its
    batch for the lease to hand to another process) and its job runner thread (it finishes the job in hand, whose
    lock then frees for another process)."""
    try:
        from app.notifier.worker import stop_worker_thread

        stop_worker_thread()
    except Exception:  # noqa: BLE001 - a worker that is exiting must not fail on the way out
        server.log.exception("Could not stop the notification thread of worker %s", worker.pid)
    try:
        from app.jobs.runner import stop_runner_thread

        stop_runner_thread()
    except Exception:  # noqa: BLE001 - as above
        server.log.exception("Could not stop the job runner thread of worker %s", worker.pid)


# ---------------------------------------------------------------------------------------------------------------
# Prometheus in multiprocess mode: every worker writes its metrics to files in one directory, a scrape of any
# worker adds them up. The directory must be empty when the server starts and writable on a read-only root
# filesystem (ECS mounts a volume on /tmp).

def prepare_metrics_directory(server):
    """Give the workers a fresh metrics directory (inherited through the environment).
    PROMETHEUS_MULTIPROC_DIR, when set, is used and emptied; else a new one under /tmp."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if directory:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values of a previous run would be added to this one's
            stale.unlink()
    else:
        directory = tempfile.mkdtemp(prefix="waybill-metrics-")
        server.metrics_dir_created = directory
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    server.log.info("Prometheus metrics directory: %s", directory)


def child_exit(server, worker):
    """A worker has exited (stopped, crashed or killed): its live gauges no longer count."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    created = getattr(server, "metrics_dir_created", None)
    if created:
        shutil.rmtree(created, ignore_errors=True)
