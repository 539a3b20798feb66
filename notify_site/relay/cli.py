"""``flask --app wsgi relay ...``: managing the built-in relay from the command line; and the
relay's step of ``flask setup``, which registers this app's own Notify client with it."""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from notify_site import config as app_config
from notify_site import seams
from notify_site.relay.clients import client_is_registered, register_client
from notify_site.relay.errors import ClientRegistrationError

relay_cli = AppGroup("relay", help="The built-in LINE Notify-compatible relay.")


@relay_cli.command("add-client")
@click.option("--name", required=True, help="The service's name, shown on the consent page.")
@click.option(
    "--redirect-uri",
    required=True,
    help="The service's callback URL; authorization requests must use exactly this URL.",
)
def add_client_command(name: str, redirect_uri: str) -> None:
    """Register a service; prints its client id and secret (the secret only this once)."""
    try:
        client_id, client_secret = register_client(name, redirect_uri)
    except ClientRegistrationError as error:
        raise click.UsageError(error.message) from None
    click.echo(f"client_id: {client_id}")
    click.echo(f"client_secret: {client_secret}")
    click.echo(
        "Store the secret now: the relay keeps only its hash and cannot show it again.",
        err=True,
    )


@relay_cli.command("line-check")
@with_appcontext
def line_check_command() -> None:
    """Check the LINE channel: the access token, the bot's name, this month's quota."""
    from notify_site.relay.line import channel, quota

    settings = channel.current_settings()
    if settings is None:
        # Sandbox parity (issue 15): the ledger counts as LINE would; then the usual refusal.
        _echo_units()
        raise click.ClickException("No LINE channel is configured: the relay is in sandbox mode.")
    try:
        token = channel.access_token(settings)
        seconds = channel.verify_token(settings, token)
        report = quota.channel_report(settings)
    except (channel.ChannelError, channel.ChannelConfigError) as error:
        raise click.ClickException(str(error)) from None
    kind = "v2.1, issued by the relay" if settings.issues_tokens else "from the configuration"
    click.echo(f"Channel {settings.channel_id}: token valid ({kind}), {seconds} s left.")
    basic = f" ({report.basic_id})" if report.basic_id else ""
    click.echo(f"Bot: {report.bot_name}{basic}")
    limit = "no limit" if report.quota is None else str(report.quota)
    click.echo(f"Messages this month: {report.used} used, quota {limit}.")
    _echo_units()


def _echo_units() -> None:
    """The relay's own ledger of this month (issue 15): units, budget, projection, tops."""
    from flask import current_app

    from notify_site.db_types import utcnow
    from notify_site.relay.quota import quota_overview

    overview = quota_overview(current_app.config, utcnow())
    channel = overview.channel
    limit = "no limit" if channel.limit is None else str(channel.limit)
    click.echo(
        f"Relay's ledger for {overview.month}: {channel.used} units used, channel budget "
        f"{limit}, projected {overview.projected} by the month's end "
        f"(resets {channel.reset:%Y-%m-%d %H:%M} UTC)."
    )
    for warning in overview.warnings:
        who = warning.subject or "the channel"
        click.echo(f"Warning: {who} has used {warning.figures.percent}% of its monthly budget.")
    for title, rows in (
        ("Top chats", overview.top_chats),
        ("Top tokens", overview.top_tokens),
        ("Top services", overview.top_services),
    ):
        if rows:
            click.echo(f"{title}: " + ", ".join(f"{row.name} ({row.units})" for row in rows))


def register_the_apps_client(app: Flask, echo: Callable[[str], None]) -> None:
    """``flask setup``'s step: register this app's Notify client (``NOTIFY_CLIENT_ID``, the
    site) with the built-in relay, unless configured otherwise.

    A client id set in ``instance/config.py`` or the environment belongs to the operator and is
    left alone; one that ``setup`` generated earlier is checked and renewed if the relay's
    database no longer knows it (a deleted SQLite file, say). The relay reads only the app's
    configuration and its secrets file, never the site's code.
    """
    generated = app_config.ensure_secrets(app)
    client_id = app.config.get("NOTIFY_CLIENT_ID")
    redirect_uri = app.config["NOTIFY_REDIRECT_URI"]
    if client_id and client_id != generated.get("NOTIFY_CLIENT_ID"):
        echo("NOTIFY_CLIENT_ID is configured; not registering with the built-in relay.")
        return
    if client_id and client_is_registered(client_id, redirect_uri):
        echo(f"Registered with the built-in relay as {client_id}.")
        return
    client_id, client_secret = register_client("notify_site", redirect_uri)
    app_config.save_secrets(
        app, {"NOTIFY_CLIENT_ID": client_id, "NOTIFY_CLIENT_SECRET": client_secret}
    )
    echo(f"Registered with the built-in relay as {client_id} (redirect URI {redirect_uri}).")


def init_app(app: Flask) -> None:
    app.cli.add_command(relay_cli)
    seams.add(app, seams.SETUP_STEPS, register_the_apps_client)
