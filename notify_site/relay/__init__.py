"""The built-in LINE Notify-compatible relay (SPEC 5): a second house on the lot.

It shares the database and the extensions with the site but nothing else: the site reaches it
only over HTTP, at ``NOTIFY_BOT_ORIGIN`` / ``NOTIFY_API_ORIGIN``, as it would reach any Notify
server, and the relay never imports the site's models, services or views.

Modules: ``models`` (tables ``relay_*``), ``clients`` (registered services), ``oauth``
(authorize and token), ``payload`` (notify field validation), ``ratelimit`` (the per-token
window), ``service`` (delivery, status, revoke, inbox), ``forms``, ``views``, ``cli``.
"""

from __future__ import annotations

from flask import Flask

from notify_site.extensions import csrf


def init_app(app: Flask) -> None:
    """Mount the relay at ``RELAY_URL_PREFIX`` and add the ``flask relay`` commands."""
    from notify_site.relay import cli, models, views  # noqa: F401  (models: register tables)

    app.register_blueprint(views.bp, url_prefix=app.config["RELAY_URL_PREFIX"])
    # Machine-to-machine endpoints: authenticated by client secret or bearer token, not cookies.
    for view in (views.token, views.api_notify, views.api_status, views.api_revoke):
        csrf.exempt(view)
    cli.init_app(app)
