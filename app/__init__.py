"""Waybill: courier and shipment tracking. `create_app` is the table of contents."""
from __future__ import annotations

import logging
import sys

from flask import Flask

from app.config import Config, config_from_env

log = logging.getLogger(__name__)


def create_app(config: Config | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config or config_from_env())
    configure_logging(app)
    configure_security(app)
    register_request_hooks(app)
    register_compression(app)
    register_extensions(app)
    register_i18n(app)
    register_request_checks(app)
    register_security_headers(app)
    register_static_files(app)
    register_access_log(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_template_helpers(app)
    register_commands(app)
    start_notification_worker(app)
    start_job_runner(app)
    start_tracking_cache(app)
    register_live_streams(app)
    return app


def configure_logging(app: Flask) -> None:
    """One handler on the root logger, to stdout, in LOG_FORMAT (text or JSON lines), every line tagged with
    the request it belongs to (app.observability.logs)."""
    from app.observability.logs import tag_handler

    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "waybill", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stdout)
        handler.waybill = True
        root.addHandler(handler)
    tag_handler(handler, app.config["LOG_FORMAT"])
    root.setLevel(app.config["LOG_LEVEL"])
    # Alembic announces each of its plugins at INFO whenever it is set up: seven lines before every flask
    # command's own output (and the JSON `flask dispatch solve` prints).
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def configure_security(app: Flask) -> None:
    """Trusted proxy hops: the client address every limit is keyed on."""
    from app.web.security import trust_proxies

    trust_proxies(app)


def register_request_hooks(app: Flask) -> None:
    """Request id, request context and request metrics: the first request hooks, so every later one runs
    inside them (after the trusted proxy hops have set the client address)."""
    from app.web.request_hooks import init_request_hooks

    init_request_hooks(app)


def register_compression(app: Flask) -> None:
    """brotli or gzip for text over 1 KB (app.web.compression). Registered right after the request hooks: after-
    request hooks run in reverse, so it compresses what every later hook left, and the request's timing counts
    it."""
    from app.web.compression import init_compression

    init_compression(app)


def register_extensions(app: Flask) -> None:
    # The extensions are imported here, not at the top: a module-level `db` in this package would be replaced by
    # the subpackage app.db (the database layer) as soon as anything imports it, and the next create_app would fail.
    from app.api.auth import authenticate_api_request
    from app.auth.guard import drop_legacy_remember_cookie, enforce_access, load_staff_user, unauthenticated_response
    from app.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR", _migrations_dir())))
    login_manager.init_app(app)
    # Sessions are server-side records (app.services.staff.sessions), found by the cookie's token on staff routes.
    # No user_loader and no remember cookie: Flask-Login only holds current_user for the request.
    login_manager.session_protection = None
    login_manager.unauthorized_handler(unauthenticated_response)
    login_manager.request_loader(load_staff_user)
    app.before_request(drop_legacy_remember_cookie)
    # /api/v1 authenticates by Bearer API key, before the access check reads current_user.
    app.before_request(authenticate_api_request)
    # Authentication is decided before CSRF: this hook is registered before CSRFProtect's own.
    app.before_request(enforce_access)
    csrf.init_app(app)
    limiter.init_app(app)
    with app.app_context():  # creating an engine opens no connection
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)
        else:
            from app.db.errors import quote_no_statement_text
            from app.db.pool import ping_idle_connections

            quote_no_statement_text(db.engine)
            ping_idle_connections(db.engine, float(app.config["DB_PING_AFTER_IDLE_SECONDS"]))
        from app.observability.metrics import watch_pool

        watch_pool(db.engine)


def register_i18n(app: Flask) -> None:
    """English and Hindi (Flask-Babel): the request's language, remembered from ?lang= in a cookie."""
    from app.i18n.babel import init_i18n

    init_i18n(app)


def register_request_checks(app: Flask) -> None:
    """Requests the app cannot read are refused before any view: a malformed Host header (plain 400), a body
    that cannot be read (a malformed chunked encoding: 400 wherever it is read), and path parameters, query
    strings and form fields holding control characters or invalid Unicode (400)."""
    from app.web.forms import refuse_bad_text
    from app.web.host_check import RefuseMalformedHost
    from app.web.request_body import RefuseUnreadableBody

    app.wsgi_app = RefuseMalformedHost(RefuseUnreadableBody(app.wsgi_app))
    app.before_request(refuse_bad_text)  # after access, CSRF and rate limits (registered just before)


def register_security_headers(app: Flask) -> None:
    """The browser-protection headers on every response: the outermost WSGI layer, so a request refused by
    the checks above (a malformed Host) gets them too."""
    from app.web.security import register_security_headers as register

    register(app)


def register_static_files(app: Flask) -> None:
    """Static files linked and served by content fingerprint, cached for a year, without Vary: Cookie
    (app.web.static_files)."""
    from app.web.static_files import init_static_files

    init_static_files(app)


def register_access_log(app: Flask) -> None:
    from app.web.access_log import register_access_log as register

    register(app)


def _migrations_dir():
    from pathlib import Path
    return Path(__file__).resolve().parent.parent / "migrations"


def _tune_sqlite(engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    """Each blueprint package builds its blueprint and imports its own views (app/<name>/__init__.py)."""
    from app.admin import bp as admin_bp
    from app.api import bp as api_bp
    from app.api.problems import register_routing_problems
    from app.auth import bp as auth_bp
    from app.courier import bp as courier_bp
    from app.health import bp as health_bp
    from app.notifications import bp as notifications_bp
    from app.shipments import bp as shipments_bp
    from app.tracking import bp as tracking_bp

    for blueprint in (auth_bp, shipments_bp, tracking_bp, admin_bp, courier_bp, notifications_bp, health_bp, api_bp):
        app.register_blueprint(blueprint)
    register_routing_problems(app)


def register_error_handlers(app: Flask) -> None:
    from app.errors import register_error_handlers as register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from app.auth.guard import navigation_user
    from app.web.templating import register_template_helpers as register

    register(app)
    app.jinja_env.globals["navigation_user"] = navigation_user


def register_commands(app: Flask) -> None:
    from app.cli import register_commands as register

    register(app)


def start_notification_worker(app: Flask) -> None:
    """This process's outbox worker thread (off with NOTIFY_WORKER_IN_WEB=false), woken by commits that queue
    email. Stopped at exit, or by app.notifier.worker.stop_worker_thread (Gunicorn's worker_exit hook)."""
    if not app.config.get("NOTIFY_WORKER_IN_WEB"):
        return
    from app.notifier.worker import install_wake_hook, start_worker_thread

    install_wake_hook()
    start_worker_thread(app)


def start_job_runner(app: Flask) -> None:
    """This process's job runner thread (off with JOBS_IN_WEB=false): the periodic jobs of app/jobs, each in one
    process at a time. Stopped at exit, or by app.jobs.runner.stop_runner_thread (Gunicorn's worker_exit hook)."""
    if not app.config.get("JOBS_IN_WEB"):
        return
    from app.jobs.runner import start_runner_thread

    start_runner_thread(app)


def register_live_streams(app: Flask) -> None:
    """The push streams' session hooks (SQLite: a process's streams hear of its own commits at once). Their
    feed (LISTEN on PostgreSQL, a poll on SQLite) starts with the first stream a process serves."""
    from app.services.operations.live import register_session_hooks

    register_session_hooks()


def start_tracking_cache(app: Flask) -> None:
    from app.services.shipments.tracking_cache import init_tracking_cache

    init_tracking_cache(app)
