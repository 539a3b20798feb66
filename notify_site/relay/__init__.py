"""The built-in LINE Notify-compatible relay (SPEC 5): a second house on the lot.

It shares the database, the extensions and the plumbing (``config``, ``db_types``,
``security``, the key ring, ``web/``) with the site but nothing else: the site reaches it
only over HTTP, at ``NOTIFY_BOT_ORIGIN`` / ``NOTIFY_API_ORIGIN``, as it would reach any Notify
server, and the relay never imports the site's models, services, views, api or forms.
Import-linter contracts in ``pyproject.toml`` hold both directions; ``notify_site/wiring.py``
is the one module of the site that imports the relay, and ``create_app`` calls it.

Where one house needs the other, it goes through a seam (``notify_site/seams.py``): the relay
adds its LINE push job to the worker's jobs, its step to ``flask setup`` (registering this
app's Notify client, the site), its answerer for errors raised at routing on its API paths,
its encrypted column to the key ring's registry, what it forgets of a person whose
account is deleted, and the monthly LINE quota's warnings the site's ``/admin`` shows.

Who is signed in (My page's personal tokens, the private sandbox chats and inbox, the consent
page, SPEC 6): the relay keeps no accounts and reads no account table. The app factory
hands :func:`init_app` an **accounts port** (:class:`notify_site.relay.accounts.Accounts`):
the signed-in person (a stable id, a display name, whether they are an admin), whether a
given person id is an admin, people's names by id, the sign-in URL, and where the language
switcher posts. The site's accounts implement it
(``wiring.SiteAccounts``). Relay rows that belong to a person store the port's person id,
without a foreign key into the site's tables; every check of who may see what asks the
port (:func:`notify_site.relay.accounts.accounts`), as the LINE channel page does.

Modules: ``models`` (tables ``relay_*``), ``clients`` (registered services), ``oauth``
(authorize and token), ``chats`` (whose chats, who sees which), ``tokens`` (My page: personal
tokens, connected services), ``payload`` (notify field validation), ``ratelimit`` (the
per-token window), ``service`` (delivery, status, revoke), ``inbox`` (the inbox's pages and
images), ``accounts`` (the port), ``forms``,
``views/`` (one module per area), ``line/`` (channel mode), ``cli``; its own layout,
templates and CSS under ``templates/relay`` and ``static/relay``.
"""

from __future__ import annotations

from flask import Flask

from notify_site import seams
from notify_site.config import ConfigError
from notify_site.extensions import csrf
from notify_site.keyring import EncryptedColumn, add_encrypted_column
from notify_site.relay import accounts as accounts_port


def init_keyring(app: Flask) -> None:
    """Declare the relay's one column of key-ring ciphertexts: its v2.1 LINE channel access
    tokens (channel mode), bound to ``relay-line-token:<id>``. Revoked ones are emptied; the
    current one lives up to 30 days, so it must move with the rest when keys rotate.

    The relay keeps nothing else under the ring: its client secrets, codes, access tokens and
    pairing codes are SHA-256 digests (``relay/secrets_util.py``), which no key opens.
    """
    from notify_site.relay.line.channel import token_context
    from notify_site.relay.models import RelayLineToken

    add_encrypted_column(
        app,
        EncryptedColumn(
            "relay LINE channel tokens",
            RelayLineToken.id,
            RelayLineToken.token_ciphertext,
            token_context,
        ),
    )


def init_app(app: Flask, *, accounts: accounts_port.Accounts) -> None:
    """Mount the relay at ``RELAY_URL_PREFIX``, with ``accounts`` telling it who is signed in,
    and add the ``flask relay`` commands and the relay's step of ``flask setup``.

    With a LINE channel configured (channel mode), the relay also takes LINE's webhook and
    gives the worker its push job; a half-configured channel stops the app at start.
    """
    from notify_site.relay import chats, cli, notices, views
    from notify_site.relay.line import channel, push

    try:
        settings = channel.settings_from_config(app.config)
    except channel.ChannelConfigError as error:
        raise ConfigError(str(error)) from None
    app.extensions["notify_site.relay.line"] = settings
    if settings is not None:
        seams.add(app, seams.WORKER_JOBS, push.worker_job)
    accounts_port.init_app(app, accounts)
    seams.add(app, seams.ACCOUNT_DELETED, chats.forget_person)
    seams.add(app, seams.ADMIN_NOTICES, notices.admin_warnings)

    app.register_blueprint(views.bp, url_prefix=app.config["RELAY_URL_PREFIX"])
    for view in views.CSRF_EXEMPT:
        csrf.exempt(view)
    seams.add(app, seams.ERROR_ANSWERERS, views.errors.routing_error_answer)
    cli.init_app(app)
