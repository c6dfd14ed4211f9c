"""Configuration classes. The environment is read here and nowhere else."""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from app.domain.timeutil import parse_duration, parse_durations

INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def database_url(value: str | None) -> str:
    """Normalise DATABASE_URL: default SQLite file, postgres:// accepted, psycopg2 as the driver."""
    if not value:
        return f"sqlite:///{INSTANCE_DIR / 'waybill.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if value.startswith(prefix):
            return "postgresql+psycopg2://" + value[len(prefix):]
    return value


def local_base_url() -> str:
    """PUBLIC_BASE_URL when it is not set: the address this machine serves on, from the port Gunicorn listens on
    (BIND's port, else PORT, as gunicorn.conf.py and run-local.sh choose it), else Flask's default 5000. Links in
    emails, QR codes and List-Unsubscribe then point at the server that is really running."""
    bind = os.environ.get("BIND", "").strip()
    port = bind.rpartition(":")[2] if ":" in bind and not bind.startswith("unix:") else ""
    if not port.isdigit():
        port = os.environ.get("PORT", "").strip()
    return f"http://localhost:{port if port.isdigit() else 5000}"


def log_format(value: str | None) -> str:
    chosen = (value or "text").strip().lower()
    if chosen not in {"text", "json"}:
        raise RuntimeError(f"LOG_FORMAT must be text or json, not {value!r}")
    return chosen


DEFAULT_SMS_STATUSES = ("Out for Delivery", "Delivery Attempted", "Delivered")


def status_list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """SMS_STATUSES: comma-separated shipment statuses, any case ("out for delivery, Delivered"); unset or empty:
    the default; `none`: no status. An unknown status stops the app from starting (a typo must not mute SMS)."""
    from app.domain.status import canonical_status

    if value is None or not value.strip():
        return default
    if value.strip().lower() == "none":
        return ()
    statuses = []
    for part in value.split(","):
        if not part.strip():
            continue
        status = canonical_status(part)
        if status is None:
            raise RuntimeError(f"SMS_STATUSES: unknown status {part.strip()!r}")
        statuses.append(str(status))
    return tuple(statuses)


DEFAULT_ORIGIN_PINCODE = "560001"  # Bengaluru GPO


def duration_setting(name: str, value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise RuntimeError(f"{name}: {exc}") from None


def durations_setting(name: str, value: str) -> tuple[timedelta, ...]:
    try:
        return parse_durations(value)
    except ValueError as exc:
        raise RuntimeError(f"{name}: {exc}") from None


def pincode_setting(name: str, value: str | None, default: str) -> str:
    """A six-digit PIN code setting; unset or empty: the default. Anything else stops the app from starting
    (a typo must not price every booking from the wrong place)."""
    from app.domain.pincodes import normalise_pincode

    if value is None or not value.strip():
        return default
    pincode = normalise_pincode(value)
    if pincode is None:
        raise RuntimeError(f"{name} must be a six-digit PIN code, not {value!r}")
    return pincode


class Config:
    def __init__(self) -> None:
        env = os.environ.get
        self.SECRET_KEY = env("SECRET_KEY") or "dev-only-insecure-key"
        self.SQLALCHEMY_DATABASE_URI = database_url(env("DATABASE_URL"))
        # `flask deploy` and `flask db …` connect as the tables' owner when this is set; the app never does (it
        # connects with DATABASE_URL, as a role deploy grants only what it needs: see app/db/roles.py).
        self.MIGRATION_DATABASE_URI = database_url(env("MIGRATION_DATABASE_URL")) \
            if env("MIGRATION_DATABASE_URL") else None
        # The role deploy grants to: this, else DATABASE_URL's user.
        self.APP_DATABASE_ROLE = env("APP_DATABASE_ROLE") or None
        # hide_parameters: a database error's message (and so any log of it) never quotes the values bound to
        # the statement, which are the customers' names, emails and mobiles.
        # A pooled connection is pinged before use only after it sat idle this long (see app/db/pool.py), not on
        # every checkout: under load that ping was a round trip per request.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False, "hide_parameters": True}
        self.DB_PING_AFTER_IDLE_SECONDS = 1.0
        self.ADMIN_USERNAME = env("ADMIN_USERNAME") or None
        self.ADMIN_PASSWORD = env("ADMIN_PASSWORD") or None
        # Not from the environment: every deployment hashes with scrypt; only the test settings choose a cheap
        # method, so a suite of thousands of sign-ins does not spend minutes on scrypt (tests/test_auth.py keeps
        # one sign-in on scrypt, tests/test_sessions.py the timing check).
        self.PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a hash method's name, not a password
        self.DEFAULT_PHONE_REGION = env("DEFAULT_PHONE_REGION", "IN").upper()
        self.DISPLAY_TIMEZONE = env("DISPLAY_TIMEZONE", "Asia/Kolkata")
        # The most a cash-on-delivery booking may collect, in rupees (app.domain.parcels).
        self.COD_MAX = env_int("COD_MAX", 50_000)  # app.domain.parcels.COD_MAX_DEFAULT
        self.PUBLIC_BASE_URL = (env("PUBLIC_BASE_URL") or local_base_url()).rstrip("/")
        # Couriers in the field (app/services/field): how long kept positions stay (purged by a job), and how
        # many stops before a recipient's the tracking page starts showing where the courier is.
        self.LOCATION_RETENTION_DAYS = env_int("LOCATION_RETENTION_DAYS", 90)
        self.COURIER_SHOW_WITHIN_STOPS = env_int("COURIER_SHOW_WITHIN_STOPS", 3)
        # How often the job runner looks at the `locations.purge` job (0 turns it off).
        self.LOCATION_PURGE_SECONDS = env_float("LOCATION_PURGE_SECONDS", 3600.0)
        # Zones and dispatch (app/services/planning). Travel is haversine × ROAD_FACTOR at AVERAGE_SPEED_KMH unless
        # OSRM_URL names an OSRM server (its table service); each stop takes DISPATCH_SERVICE_MINUTES; a solve
        # stops after DISPATCH_SOLVE_SECONDS. Every zone is planned at DISPATCH_TIMES (DISPLAY_TIMEZONE, "" for
        # none); the job runner looks for due slots and queued runs every DISPATCH_POLL_SECONDS (0 turns it off).
        self.ROAD_FACTOR = env_float("ROAD_FACTOR", 1.3)
        self.AVERAGE_SPEED_KMH = env_float("AVERAGE_SPEED_KMH", 18.0)
        self.OSRM_URL = (env("OSRM_URL") or "").rstrip("/") or None
        self.DISPATCH_SERVICE_MINUTES = env_float("DISPATCH_SERVICE_MINUTES", 3.0)
        self.DISPATCH_SOLVE_SECONDS = env_float("DISPATCH_SOLVE_SECONDS", 30.0)
        self.DISPATCH_TIMES = env("DISPATCH_TIMES", "06:00,09:00,12:00")
        self.DISPATCH_POLL_SECONDS = env_float("DISPATCH_POLL_SECONDS", 15.0)
        # A geocoder refines a booking's point in the job runner, never in a request: none | nominatim |
        # amazon-location (GEOCODER_URL: the Nominatim server, or an endpoint override for Amazon Location; the
        # Amazon place index: GEOCODER_PLACE_INDEX). The job runner's `points.geocode` looks every
        # GEOCODE_POLL_SECONDS (0 turns it off); with GEOCODER=none it still applies couriers' delivery points.
        self.GEOCODER = env("GEOCODER", "none").lower()
        self.GEOCODER_URL = (env("GEOCODER_URL") or "").rstrip("/") or None
        self.GEOCODER_PLACE_INDEX = env("GEOCODER_PLACE_INDEX") or None
        self.GEOCODE_POLL_SECONDS = env_float("GEOCODE_POLL_SECONDS", 60.0)
        self.MAX_CONTENT_LENGTH = env_int("MAX_CONTENT_LENGTH", 64 * 1024)
        # Failed deliveries (app/services/ndr). Durations are a number and s, m, h or d. An unanswered report is
        # due for reattempt NDR_REATTEMPT_AFTER its attempt (one per attempt, the last repeating); after
        # NDR_MAX_ATTEMPTS failed attempts it is escalated, and goes back to its sender (RTO Initiated) NDR_RTO_AFTER
        # later without an answer. A recipient may ask for a day up to NDR_MAX_DAYS_AHEAD days ahead.
        self.NDR_REATTEMPT_AFTER = durations_setting("NDR_REATTEMPT_AFTER", env("NDR_REATTEMPT_AFTER", "2h,4h"))
        self.NDR_MAX_ATTEMPTS = env_int("NDR_MAX_ATTEMPTS", 3)
        self.NDR_RTO_AFTER = duration_setting("NDR_RTO_AFTER", env("NDR_RTO_AFTER", "3d"))
        self.NDR_MAX_DAYS_AHEAD = env_int("NDR_MAX_DAYS_AHEAD", 5)
        # Timers (rule 13): the job runner's `timers.run` looks for due steps every TIMERS_POLL_SECONDS (0 turns it
        # off); a step that fails is tried again later, TIMER_MAX_ATTEMPTS times in all.
        self.TIMERS_POLL_SECONDS = env_float("TIMERS_POLL_SECONDS", 5.0)
        self.TIMER_MAX_ATTEMPTS = env_int("TIMER_MAX_ATTEMPTS", 5)
        # Alerts (app/services/operations/alerts.py): the job runner's `alerts.watch` looks every
        # ALERTS_POLL_SECONDS (0 turns it off) for couriers silent COURIER_SILENT_AFTER on shift with open stops,
        # parcels Out for Delivery longer than UNCONFIRMED_OUT_FOR_DELIVERY_AFTER, and SLA risks; ADMIN_ALERT_EMAILS
        # get one digest per ALERT_DIGEST_EVERY at most.
        self.ALERTS_POLL_SECONDS = env_float("ALERTS_POLL_SECONDS", 60.0)
        self.COURIER_SILENT_AFTER = duration_setting("COURIER_SILENT_AFTER", env("COURIER_SILENT_AFTER", "15m"))
        self.UNCONFIRMED_OUT_FOR_DELIVERY_AFTER = duration_setting(
            "UNCONFIRMED_OUT_FOR_DELIVERY_AFTER", env("UNCONFIRMED_OUT_FOR_DELIVERY_AFTER", "6h"))
        self.ALERT_DIGEST_EVERY = duration_setting("ALERT_DIGEST_EVERY", env("ALERT_DIGEST_EVERY", "5m"))

        # Staff sessions: a record per sign-in (staff_sessions); the signed cookie carries only its random id.
        self.SESSION_HOURS = env_float("SESSION_HOURS", 12.0)
        self.SESSION_REMEMBER_DAYS = env_float("SESSION_REMEMBER_DAYS", 7.0)
        # A "keep me signed in" cookie lives as long as its record; others end with the browser.
        self.PERMANENT_SESSION_LIFETIME = timedelta(days=self.SESSION_REMEMBER_DAYS)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
        # Per-account lockout: LOGIN_LOCK_AFTER failures within LOGIN_LOCK_MINUTES lock it for as long.
        self.LOGIN_LOCK_AFTER = env_int("LOGIN_LOCK_AFTER", 5)
        self.LOGIN_LOCK_MINUTES = env_float("LOGIN_LOCK_MINUTES", 15.0)

        # CSRF is checked explicitly in one before_request hook, after authentication.
        self.WTF_CSRF_CHECK_DEFAULT = False
        self.WTF_CSRF_TIME_LIMIT = None

        self.RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_HEADERS_ENABLED = True
        self.RATELIMIT_LOGIN = env("RATELIMIT_LOGIN", "10 per minute")
        self.RATELIMIT_CREATE = env("RATELIMIT_CREATE", "60 per minute")
        # An open tracking page asks about twice a minute; 120 leaves room for many tabs behind one address.
        self.RATELIMIT_TRACK = env("RATELIMIT_TRACK", "120 per minute")
        # Unknown or malformed tracking IDs: people mistype a few, a guesser makes hundreds.
        self.RATELIMIT_TRACK_MISS = env("RATELIMIT_TRACK_MISS", "20 per minute")
        self.RATELIMIT_SEARCH = env("RATELIMIT_SEARCH", "20 per minute")
        # GET /serviceability/<pincode>, the public pre-check before booking: it reveals nothing personal.
        self.RATELIMIT_SERVICEABILITY = env("RATELIMIT_SERVICEABILITY", "30 per minute")
        # GET /quote, the public price check: the booking form asks again as each pricing field changes.
        self.RATELIMIT_QUOTE = env("RATELIMIT_QUOTE", "60 per minute")
        # Per API key, across all of /api/v1: generous, so a busy integrator's scanner is never slowed down.
        self.RATELIMIT_API = env("RATELIMIT_API", "50 per second")
        # A store that goes away (Redis restarting) must not turn every request into a 500: counters then
        # live in each process until it is back.
        self.RATELIMIT_SWALLOW_ERRORS = True
        self.RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
        # Proxies in front of the app that append to X-Forwarded-For (the ALB: 1). 0: the peer is the client.
        self.TRUST_PROXY_HOPS = env_int("TRUST_PROXY_HOPS", 0)
        # Strict-Transport-Security value, sent only when set (ProductionConfig sets it).
        self.HSTS_HEADER: str | None = None
        # Per client, on the tracking page's "show full details" check (misses are also counted per shipment).
        self.RATELIMIT_DETAILS = env("RATELIMIT_DETAILS", "10 per minute;60 per hour")
        # The recipient's choices page and one-click unsubscribe (/n/<token>), per client.
        self.RATELIMIT_CHOICES = env("RATELIMIT_CHOICES", "30 per minute")

        self.MAIL_BACKEND = env("MAIL_BACKEND", "console").lower()
        self.MAIL_SERVER = env("MAIL_SERVER", "localhost")
        self.MAIL_PORT = env_int("MAIL_PORT", 25)
        self.MAIL_USE_SSL = env_bool("MAIL_USE_SSL", False)
        self.MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
        self.MAIL_USERNAME = env("MAIL_USERNAME") or None
        self.MAIL_PASSWORD = env("MAIL_PASSWORD") or None
        self.MAIL_TIMEOUT = env_float("MAIL_TIMEOUT", 10.0)
        self.MAIL_DEFAULT_SENDER = env("MAIL_DEFAULT_SENDER", "Waybill <no-reply@waybill.local>")
        self.MAIL_MAX_ATTEMPTS = env_int("MAIL_MAX_ATTEMPTS", 8)
        self.MAIL_RETRY_BACKOFF = env_float("MAIL_RETRY_BACKOFF", 30.0)
        self.MAIL_RETRY_BACKOFF_MAX = env_float("MAIL_RETRY_BACKOFF_MAX", 3600.0)
        self.MAIL_CA_FILE = env("MAIL_CA_FILE") or None
        # SMS to the shipment's mobile, on the same outbox (app/notifier/sms.py): console | http | sns.
        self.SMS_BACKEND = env("SMS_BACKEND", "console").strip().lower()
        self.SMS_STATUSES = status_list(env("SMS_STATUSES"), DEFAULT_SMS_STATUSES)
        self.SMS_HTTP_URL = env("SMS_HTTP_URL") or None
        self.SMS_HTTP_AUTHORIZATION = env("SMS_HTTP_AUTHORIZATION") or None
        self.SMS_TIMEOUT = env_float("SMS_TIMEOUT", 10.0)
        self.SMS_SENDER_ID = env("SMS_SENDER_ID") or None
        self.SNS_ENDPOINT_URL = env("SNS_ENDPOINT_URL") or None
        self.SMS_MAX_ATTEMPTS = env_int("SMS_MAX_ATTEMPTS", 6)
        self.SMS_RETRY_BACKOFF = env_float("SMS_RETRY_BACKOFF", 30.0)
        self.SMS_RETRY_BACKOFF_MAX = env_float("SMS_RETRY_BACKOFF_MAX", 1800.0)
        self.NOTIFY_POLL_SECONDS = env_float("NOTIFY_POLL_SECONDS", 2.0)
        self.NOTIFY_LEASE_SECONDS = env_float("NOTIFY_LEASE_SECONDS", 60.0)
        self.NOTIFY_BATCH_SIZE = env_int("NOTIFY_BATCH_SIZE", 50)
        self.NOTIFY_WORKER_IN_WEB = env_bool("NOTIFY_WORKER_IN_WEB", True)

        # Periodic jobs (app/jobs): a runner thread in every web process unless false (then `flask jobs runner`
        # runs them), waking this often to run the jobs that are due. Each job runs in one process at a time.
        self.JOBS_IN_WEB = env_bool("JOBS_IN_WEB", True)
        self.JOBS_TICK_SECONDS = env_float("JOBS_TICK_SECONDS", 5.0)

        # Webhooks: deliveries are outbox rows of the `webhook` channel (see app/notifier/webhooks.py).
        # WEBHOOK_ALLOW_PRIVATE lets plain http:// and loopback/private receivers through: tests and laptops only.
        self.WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
        self.WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10.0)
        self.WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 15)
        self.WEBHOOK_RETRY_BACKOFF = env_float("WEBHOOK_RETRY_BACKOFF", 30.0)
        self.WEBHOOK_RETRY_BACKOFF_MAX = env_float("WEBHOOK_RETRY_BACKOFF_MAX", 86400.0)
        self.WEBHOOK_RETRY_JITTER = env_float("WEBHOOK_RETRY_JITTER", 0.2)
        self.WEBHOOK_DISABLE_AFTER_HOURS = env_float("WEBHOOK_DISABLE_AFTER_HOURS", 72.0)
        self.WEBHOOK_ROTATION_OVERLAP_HOURS = env_float("WEBHOOK_ROTATION_OVERLAP_HOURS", 24.0)
        self.WEBHOOK_CA_FILE = env("WEBHOOK_CA_FILE") or None
        # Who is told by email when a failing webhook subscription is switched off (comma-separated).
        self.ADMIN_ALERT_EMAILS = [a.strip() for a in env("ADMIN_ALERT_EMAILS", "").split(",") if a.strip()]

        # Per-process cache of public tracking documents, invalidated across processes by PostgreSQL NOTIFY.
        self.TRACK_CACHE_ENABLED = env_bool("TRACK_CACHE_ENABLED", True)
        self.TRACK_CACHE_MAX_ENTRIES = env_int("TRACK_CACHE_MAX_ENTRIES", 50_000)
        # How often an open tracking page asks for news (a conditional request: 304 when nothing changed).
        self.TRACK_REFRESH_SECONDS = env_int("TRACK_REFRESH_SECONDS", 30)

        # Push (server-sent events, app/web/sse.py): GET /track/<id>/events and GET /admin/live/events. Served only
        # where SSE_STREAMS is on: the streams service in production (gevent workers, docs/deploy.md), the one
        # process on a laptop; elsewhere they answer 503 and the pages poll. A comment line every
        # SSE_HEARTBEAT_SECONDS, `retry:` SSE_RETRY_MS, each stream closed after SSE_MAX_SECONDS; on SQLite
        # changes are looked for every SSE_POLL_SECONDS (PostgreSQL: LISTEN/NOTIFY); at most SSE_MAX_STREAMS open
        # streams per process (more: 503, the page polls).
        self.SSE_STREAMS = env_bool("SSE_STREAMS", True)
        self.SSE_HEARTBEAT_SECONDS = env_float("SSE_HEARTBEAT_SECONDS", 15.0)
        self.SSE_MAX_SECONDS = env_float("SSE_MAX_SECONDS", 300.0)
        self.SSE_RETRY_MS = env_int("SSE_RETRY_MS", 5000)
        self.SSE_POLL_SECONDS = env_float("SSE_POLL_SECONDS", 0.5)
        self.SSE_MAX_STREAMS = env_int("SSE_MAX_STREAMS", 5000)
        # The live map (/admin/live): a tile server's URL template ({z}/{x}/{y}) and its attribution. Unset: no
        # tiles (a plain background); its host joins the page's Content-Security-Policy only when set.
        self.MAP_TILE_URL = env("MAP_TILE_URL") or None
        self.MAP_TILE_ATTRIBUTION = env("MAP_TILE_ATTRIBUTION", "")

        self.LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
        # text: one readable line per record; json: one JSON object per line (for CloudWatch Logs Insights).
        self.LOG_FORMAT = log_format(env("LOG_FORMAT"))

        # GET /metrics (Prometheus) answers only `Authorization: Bearer <METRICS_TOKEN>`; unset: no /metrics.
        self.METRICS_TOKEN = env("METRICS_TOKEN") or None
        # Set (by gunicorn.conf.py, or by hand) when several processes serve the app: each writes its metrics
        # there and a scrape of any of them adds them up. Unset: this process's metrics only.
        self.PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR") or None

        # Estimated delivery, learned from the last ETA_WINDOW_DAYS of deliveries
        # (see app/services/shipments/estimates.py).
        self.ETA_WINDOW_DAYS = env_int("ETA_WINDOW_DAYS", 90)
        self.ETA_MIN_SAMPLES = env_int("ETA_MIN_SAMPLES", 20)
        self.ETA_DEFAULT_FACTOR = env_float("ETA_DEFAULT_FACTOR", 1.0)
        # The job runner's `estimates.refresh` looks at the estimates' age at most once a minute and rebuilds them
        # when they are older than this (0: only `flask estimates refresh` does); one process at a time.
        self.ESTIMATES_REFRESH_SECONDS = env_float("ESTIMATES_REFRESH_SECONDS", 3600.0)

        # Where parcels are booked: the PIN code a booking's zone is counted from when it names no sender PIN
        # (see the README's "Rate card and charges").
        self.ORIGIN_PINCODE = pincode_setting("ORIGIN_PINCODE", env("ORIGIN_PINCODE"), DEFAULT_ORIGIN_PINCODE)

        # Languages of public pages and emails (Flask-Babel catalogues in translations/).
        self.BABEL_DEFAULT_LOCALE = "en"
        self.BABEL_TRANSLATION_DIRECTORIES = str(INSTANCE_DIR.parent / "translations")

        # Uploaded proof of delivery (signatures, photos): the local filesystem, or S3.
        self.STORAGE_BACKEND = env("STORAGE_BACKEND", "filesystem").strip().lower()
        self.STORAGE_DIR = env("STORAGE_DIR") or str(INSTANCE_DIR / "uploads")
        self.S3_BUCKET = env("S3_BUCKET") or None
        self.S3_PREFIX = env("S3_PREFIX", "proof-of-delivery/")
        self.S3_ENDPOINT_URL = env("S3_ENDPOINT_URL") or None
        self.AWS_REGION = env("AWS_REGION") or "ap-south-1"


class DevelopmentConfig(Config):
    pass


class ProductionConfig(Config):
    def __init__(self) -> None:
        super().__init__()
        secret = os.environ.get("SECRET_KEY")
        if not secret:
            raise RuntimeError("SECRET_KEY must be set in production (WAYBILL_ENV=production).")
        self.SECRET_KEY = secret
        self.SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
        self.HSTS_HEADER = "max-age=31536000"  # one year; browsers ignore it on plain HTTP
        # The web service does not serve streams (they would hold its threads): the streams service sets this.
        self.SSE_STREAMS = env_bool("SSE_STREAMS", False)
        if self.WEBHOOK_ALLOW_PRIVATE:
            raise RuntimeError("WEBHOOK_ALLOW_PRIVATE must not be on in production: webhooks go to public "
                               "https:// receivers only.")


class TestingConfig(Config):
    def __init__(self, database_uri: str = "sqlite://") -> None:
        super().__init__()
        self.TESTING = True
        self.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"  # noqa: S105 - one PBKDF2 round, tests only
        self.SECRET_KEY = "test-secret-key"  # noqa: S105 - tests only
        self.SQLALCHEMY_DATABASE_URI = database_url(database_uri)
        self.MIGRATION_DATABASE_URI = None  # the tests' schema is migrated on their own database
        self.APP_DATABASE_ROLE = None
        self.ADMIN_USERNAME = None
        self.ADMIN_PASSWORD = None
        self.RATELIMIT_ENABLED = False
        self.MAIL_BACKEND = "console"
        self.NOTIFY_WORKER_IN_WEB = False
        self.JOBS_IN_WEB = False  # tests run the jobs with run_due and their own clock, or start a runner
        self.TRACK_CACHE_ENABLED = False
        self.ESTIMATES_REFRESH_SECONDS = 0.0  # tests of the `estimates.refresh` job turn it on
        self.LOCATION_PURGE_SECONDS = 0.0  # tests of the `locations.purge` job turn it on
        self.DISPATCH_POLL_SECONDS = 0.0  # tests of the dispatch jobs turn it on
        self.GEOCODE_POLL_SECONDS = 0.0  # tests of the `points.geocode` job turn it on
        self.TIMERS_POLL_SECONDS = 0.0  # tests run due timers with their own clock, or turn it on
        self.ALERTS_POLL_SECONDS = 0.0  # tests of the `alerts.watch` job turn it on
        self.PUBLIC_BASE_URL = "http://waybill.test"
        self.METRICS_TOKEN = None


def shared_store_problem(workers: int) -> str | None:
    """Why the rate limits of this environment cannot hold across `workers` processes, or None when they can.

    Counters in memory are per process: N workers would let N times every limit through.
    """
    if workers <= 1 or not env_bool("RATELIMIT_ENABLED", True):
        return None
    storage = os.environ.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://"
    if not storage.startswith("memory://"):
        return None
    return (f"RATELIMIT_STORAGE_URI={storage} keeps rate-limit counters in each process, so {workers} worker "
            f"processes would let {workers} times every limit through. Set RATELIMIT_STORAGE_URI to a shared "
            f"store (redis://host:6379/0) or run one worker (WEB_CONCURRENCY=1).")


def check_rate_limit_store(workers: int) -> str | None:
    """Called by gunicorn.conf.py before any worker starts: in production a store that cannot be shared by
    `workers` processes is a RuntimeError (Gunicorn prints it and exits 1); elsewhere the problem is returned
    as a warning to print."""
    load_env_file()
    problem = shared_store_problem(workers)
    if problem and environment_name() == "production":
        raise RuntimeError(f"Refusing to start in production: {problem}")
    return problem


def load_env_file() -> None:
    """A local .env, for variables the real environment does not set."""
    from dotenv import load_dotenv

    load_dotenv(INSTANCE_DIR.parent / ".env", override=False)


def environment_name() -> str:
    return os.environ.get("WAYBILL_ENV", "development").strip().lower() or "development"


CONFIGS = {"development": DevelopmentConfig, "production": ProductionConfig, "testing": TestingConfig}


def config_from_env() -> Config:
    """The config named by WAYBILL_ENV, after loading a local .env (real environment variables win)."""
    load_env_file()
    name = environment_name()
    if name not in CONFIGS:
        raise RuntimeError(f"WAYBILL_ENV must be one of {sorted(CONFIGS)}, not {name!r}")
    return CONFIGS[name]()
