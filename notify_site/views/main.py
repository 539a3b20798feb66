"""The landing page, the load balancer's health check, and /favicon.ico."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, send_from_directory, url_for
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from notify_site.extensions import db

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    return render_template("main/index.html")


@bp.get("/favicon.ico")
def favicon():
    """The site's icon where browsers and tools look without reading the page (issue 20): the
    same SVG the pages link to."""
    return send_from_directory(
        current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400
    )


@bp.get("/healthz")
def healthz():
    """200 when the database answers, 503 otherwise (for load balancers)."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "unavailable", "database": "down"}, 503
    return {"status": "ok", "database": "up"}
