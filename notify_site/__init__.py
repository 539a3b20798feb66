"""notify_site: a LINE Notify service-provider site with a built-in Notify-compatible relay.

:func:`create_app` reads like a table of contents: configuration, extensions, every
blueprint, every app-wide error handler, commands. It is the one place that wires the site
and the relay together.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from notify_site import instance_files
from notify_site.config import load_config
from notify_site.extensions import babel, csrf, db, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: the site, and the relay unless ``RELAY_ENABLED`` is false."""
    app = Flask(
        __name__,
        instance_path=os.environ.get("NOTIFY_SITE_INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    if test_config and "INSTANCE_PATH" in test_config:
        app.instance_path = test_config["INSTANCE_PATH"]
        app.config.root_path = app.instance_path
    load_config(app, test_config)
    instance_files.prepare(app)  # a private instance folder and database file, before any use
    register_extensions(app)
    # Before any route: every <int:…> in a path is a row id, so no larger than a database
    # integer (PostgreSQL refuses a larger one with an error; it is a 404).
    from notify_site.security import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter
    register_blueprints(app)
    register_rate_limits(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from notify_site import i18n, log_redaction, pages_only, security, stored_text
    from notify_site.api import fast_accept
    from notify_site.services import (
        accounts,
        encrypted_columns,
        housekeeping,
        remote_pending,
        schedules,
    )

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    login_manager.user_loader(accounts.load_user)
    # No session, remember-cookie hook or CSRF hook on the JSON API (notify_site/pages_only.py).
    pages_only.install(app, remember_hook=login_manager._update_remember_cookie)
    encrypted_columns.init_app(app)  # the site's columns under the key ring (keyring.py)
    # The common API accept, answered before Flask (notify_site/api/fast_accept.py): inside
    # the proxy and body-limit middleware that security wraps around it next.
    fast_accept.install(app)
    security.init_app(app)
    i18n.init_app(app, babel)
    stored_text.init_app(app)
    # werkzeug's server logs each request line: a webhook's secret in a path stays out of it.
    log_redaction.install("werkzeug")
    schedules.init_app(app)  # the scheduler runs in every worker (a worker job)
    housekeeping.init_app(app)  # old rows deleted by every worker (a worker job)
    remote_pending.init_app(app)  # so does following what a Notify server left pending


def register_blueprints(app: Flask) -> None:
    """Every blueprint of the site, then the relay's (unless ``RELAY_ENABLED`` is false)."""
    from notify_site import web, wiring
    from notify_site.api import hooks
    from notify_site.api import schedules as _api_schedules  # noqa: F401 - routes of api.bp
    from notify_site.api import views as api
    from notify_site.views import (
        admin,
        admin_users,
        api_docs,
        api_keys,
        auth,
        connections,
        dashboard,
        history,
        line_login,
        main,
        metrics,
        schedules,
        send,
        settings,
        webhooks,
    )

    app.register_blueprint(web.bp)  # no routes: the layout pieces and files both houses use
    app.register_blueprint(main.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(line_login.bp)
    app.register_blueprint(connections.bp)
    app.register_blueprint(send.bp)
    app.register_blueprint(schedules.bp)
    app.register_blueprint(api_keys.bp)
    app.register_blueprint(api.bp)  # /api/v1, and its OpenAPI document
    app.register_blueprint(api_docs.bp)  # /api/v1/docs: that document for people
    app.register_blueprint(webhooks.bp)  # /webhooks: a person's incoming webhooks
    app.register_blueprint(hooks.bp)  # /hooks/<id>/<secret>: where the tools post
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(history.bp)  # /history: every notification, filtered
    app.register_blueprint(admin.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(metrics.bp)
    # The relay, with the site's accounts (unless RELAY_ENABLED is false): the one place
    # where the houses are joined.
    wiring.join_relay(app)


def register_rate_limits(app: Flask) -> None:
    """The per-key limits on the JSON API and the webhooks' URLs, and the sign-in throttle
    (notify_site/ratelimit.py)."""
    from notify_site import ratelimit
    from notify_site.api import hooks
    from notify_site.api import views as api

    ratelimit.init_app(app, api_blueprint=api.bp, hooks_blueprint=hooks.bp)


def register_errorhandlers(app: Flask) -> None:
    """Every app-wide error handler. Blueprints answer some errors their own way, with
    handlers beside their views: the JSON API (notify_site/api/errors.py), the send form's
    too-large body (views/send.py) and the relay (LINE Notify's shape)."""
    from flask_wtf.csrf import CSRFError
    from werkzeug.exceptions import HTTPException

    from notify_site.views import errors

    app.register_error_handler(CSRFError, errors.csrf_error)
    app.register_error_handler(HTTPException, errors.http_error)
    app.register_error_handler(Exception, errors.unexpected_error)


def register_commands(app: Flask) -> None:
    from notify_site import cli, worker

    cli.init_app(app)
    app.cli.add_command(worker.worker_command)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers and one writer work at once; foreign keys are off in SQLite by default.

    ``synchronous=FULL``: each commit syncs the WAL to disk before it returns, so a 202
    ("durably queued", SPEC 4.3) survives a power loss, not only a crash of the process
    (``NORMAL`` in WAL mode may lose the last commits when the machine loses power).
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()
