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

from notify_site.config import ConfigError
from notify_site.extensions import csrf

#: Where the site's worker looks for extra jobs to run beside its deliveries: callables
#: ``job(app, stopping) -> int`` (work done; 0 when idle). The relay adds its push job here.
WORKER_JOBS = "notify_site.worker_jobs"


def init_app(app: Flask) -> None:
    """Mount the relay at ``RELAY_URL_PREFIX`` and add the ``flask relay`` commands.

    With a LINE channel configured (channel mode), the relay also takes LINE's webhook and
    gives the site's worker its push job; a half-configured channel stops the app at start.
    """
    from notify_site.relay import cli, models, views  # noqa: F401  (models: register tables)
    from notify_site.relay.line import channel, push

    try:
        settings = channel.settings_from_config(app.config)
    except channel.ChannelConfigError as error:
        raise ConfigError(str(error)) from None
    app.extensions["notify_site.relay.line"] = settings
    if settings is not None:
        jobs = app.extensions.setdefault(WORKER_JOBS, [])
        if push.worker_job not in jobs:
            jobs.append(push.worker_job)

    app.register_blueprint(views.bp, url_prefix=app.config["RELAY_URL_PREFIX"])
    # Machine-to-machine endpoints: authenticated by client secret, bearer token or LINE's
    # signature, not cookies.
    for view in (
        views.token,
        views.api_notify,
        views.api_status,
        views.api_revoke,
        views.line_webhook,
    ):
        csrf.exempt(view)
    cli.init_app(app)
