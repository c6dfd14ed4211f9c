"""Jinja filters and globals shared by the pages and the emails."""
from __future__ import annotations

from flask import Flask, current_app
from flask_wtf.csrf import generate_csrf

from app.services.status import MAIN_STAGES, is_final
from app.timeutil import isoformat_z, to_local


def local_time(value, fmt: str = "%d %b %Y, %H:%M") -> str:
    if value is None:
        return ""
    local = to_local(value, current_app.config["DISPLAY_TIMEZONE"])
    return f"{local.strftime(fmt)} {local.tzname()}"


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["iso_z"] = isoformat_z
    app.jinja_env.globals.update(csrf_token=generate_csrf, MAIN_STAGES=MAIN_STAGES, is_final=is_final)
