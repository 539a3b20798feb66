"""``flask --app wsgi relay ...``: managing the built-in relay from the command line."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from notify_site.relay.clients import register_client
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


def init_app(app: Flask) -> None:
    app.cli.add_command(relay_cli)
