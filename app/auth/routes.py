from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from app.auth.forms import LoginForm
from app.auth.guard import json_without_csrf
from app.errors import ValidationError, wants_html
from app.extensions import db, limiter
from app.services.users import authenticate

bp = Blueprint("auth", __name__)
BAD_CREDENTIALS = "Wrong username or password."


def safe_next(target: str | None) -> str:
    """Only a local path: a `next` that names another host (or scheme) falls back to the dashboard."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"])
@json_without_csrf
def login():
    form = LoginForm.from_request()
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next")))
        return render_template("auth/login.html", form=form, next=request.args.get("next", ""))
    if not form.validate():
        if request.is_json:
            raise ValidationError(fields=form.field_errors())
        return render_template("auth/login.html", form=form, next=request.form.get("next", "")), 400
    user = authenticate(form.username.data, form.password.data)
    if user is None:
        if request.is_json:
            return jsonify({"error": BAD_CREDENTIALS}), 401
        flash(BAD_CREDENTIALS, "error")
        return render_template("auth/login.html", form=form, next=request.form.get("next", "")), 401
    db.session.commit()
    session.clear()  # a fresh session on every login
    if request.is_json:
        login_user(user)
        session.permanent = True
        return jsonify({"username": user.username, "role": user.role, "csrf_token": generate_csrf()})
    login_user(user, remember=form.remember.data)
    session.permanent = bool(form.remember.data)
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    """Ends the session. JSON for API clients (a JSON body, or an Accept that prefers JSON, as curl's
    `-H 'Accept: application/json'` with no body); the sign-in page for the browser's form."""
    logout_user()
    session.clear()
    if request.is_json or not wants_html():
        return jsonify({"logged_out": True})
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))
