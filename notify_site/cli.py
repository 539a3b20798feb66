"""Command-line commands: ``flask --app wsgi <command>``.

``setup`` is what ``make run`` calls before serving: migrations, secrets, and the site's
registration with the built-in relay.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from notify_site import config as site_config
from notify_site.services import ServiceError, accounts, api_keys


def init_app(app: Flask) -> None:
    app.cli.add_command(setup_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(create_api_key_command)
    app.cli.add_command(serve_command)


@click.command("setup")
@with_appcontext
def setup_command() -> None:
    """Prepare a fresh checkout: database schema, secrets, relay registration."""
    upgrade()
    click.echo("Database schema is up to date.")
    site_config.ensure_secrets(current_app)
    click.echo(f"Secrets are in {current_app.instance_path}/{site_config.SECRETS_FILE} (0600).")
    if current_app.config["RELAY_ENABLED"]:
        _register_with_builtin_relay()


def _register_with_builtin_relay() -> None:
    """Register the site as a client of the built-in relay, unless configured otherwise.

    A client id set in ``instance/config.py`` or the environment belongs to the operator and is
    left alone; one that this command generated earlier is checked and renewed if the relay's
    database no longer knows it (a deleted SQLite file, say).
    """
    from notify_site.relay.clients import client_is_registered, register_client

    generated = site_config.ensure_secrets(current_app)
    client_id = current_app.config.get("NOTIFY_CLIENT_ID")
    redirect_uri = current_app.config["NOTIFY_REDIRECT_URI"]
    if client_id and client_id != generated.get("NOTIFY_CLIENT_ID"):
        click.echo("NOTIFY_CLIENT_ID is configured; not registering with the built-in relay.")
        return
    if client_id and client_is_registered(client_id, redirect_uri):
        click.echo(f"Registered with the built-in relay as {client_id}.")
        return
    client_id, client_secret = register_client("notify_site", redirect_uri)
    site_config.save_secrets(
        current_app, {"NOTIFY_CLIENT_ID": client_id, "NOTIFY_CLIENT_SECRET": client_secret}
    )
    click.echo(f"Registered with the built-in relay as {client_id} (redirect URI {redirect_uri}).")


@click.command("create-user")
@with_appcontext
@click.option("--username", prompt=True, help="The account's name.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--admin", is_flag=True, help="Make the account an admin.")
def create_user_command(username: str, password: str, admin: bool) -> None:
    """Create an account (the first account is always an admin)."""
    if len(password) < 8:
        raise click.BadParameter("use at least 8 characters", param_hint="--password")
    try:
        user = accounts.create_user(username, password, admin=admin)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    role = "admin" if user.is_admin else "user"
    click.echo(f"Created {role} {user.username!r}.")


@click.command("create-api-key")
@with_appcontext
@click.option("--user", "username", required=True, help="The account the key acts for.")
@click.option("--name", default="Command line", show_default=True, help="What the key is for.")
def create_api_key_command(username: str, name: str) -> None:
    """Create an API key and print it (only its hash is kept: store the key now)."""
    try:
        _, plaintext = api_keys.create_api_key_for_username(username, name)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"API key {name!r} for {username!r}; it is shown only now:", err=True)
    click.echo(plaintext)


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_command(host: str, port: int) -> None:
    """Serve the site for local use (threaded; for production use gunicorn, see README)."""
    from notify_site.worker import BackgroundWorker

    app = current_app._get_current_object()
    background = BackgroundWorker(app).start()
    click.echo(f"notify_site on http://{host}:{port}/ with a delivery worker  (Ctrl-C stops it)")
    try:
        # Flask's app.run() refuses to start from inside the `flask` command; run_simple is
        # the same development server.
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        background.stop()
