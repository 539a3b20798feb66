"""Command-line commands: ``flask --app wsgi <command>``.

``setup`` is what ``make run`` calls before serving: migrations, secrets, and the steps other
parts add (the built-in relay registers the site as its client).
"""

from __future__ import annotations

import sys

import click
from alembic.runtime.migration import MigrationContext
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from notify_site import config as site_config
from notify_site import instance_files, keyrotation, seams
from notify_site.crypto import KeyRing, KeyRingError, generate_key
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import WebhookFormat
from notify_site.security import external_url
from notify_site.services import ServiceError, accounts, api_keys
from notify_site.services.webhooks import manage as webhooks


def init_app(app: Flask) -> None:
    app.cli.add_command(setup_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(set_password_command)
    app.cli.add_command(create_api_key_command)
    app.cli.add_command(create_webhook_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(generate_key_command)
    app.cli.add_command(rotate_keys_command)


def _schema_revision() -> str | None:
    """The database's Alembic revision; None for a database without the schema yet."""
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@click.command("setup")
@with_appcontext
def setup_command() -> None:
    """Prepare a fresh checkout: database schema, secrets, an instance folder only its owner
    can read, and the built-in relay's registration of the site."""
    before = _schema_revision()
    upgrade()
    after = _schema_revision()
    where = db.engine.url.render_as_string(hide_password=True)
    if before is None:
        click.echo(f"Created the database schema (revision {after}) in {where}.")
    elif before != after:
        click.echo(f"Upgraded the database schema from revision {before} to {after} in {where}.")
    else:
        click.echo(f"The database schema in {where} is up to date (revision {after}).")
    site_config.ensure_secrets(current_app)
    click.echo(f"Secrets are in {current_app.instance_path}/{site_config.SECRETS_FILE} (0600).")
    for path in instance_files.tighten(current_app):
        click.echo(f"Made {path} readable by its owner only.")
    # Steps other parts add (the relay registers the site as its client): notify_site/seams.py
    for step in seams.items(current_app, seams.SETUP_STEPS):
        step(current_app, click.echo)


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


@click.command("set-password")
@with_appcontext
@click.argument("username")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
def set_password_command(username: str, password_stdin: bool) -> None:
    """Give USERNAME a new password, and sign the account out everywhere.

    The site sends no mail: this is how a forgotten password is reset.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.set_password(username, password)
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"New password set for {user.username!r}; it is signed out everywhere.")


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


@click.command("create-webhook")
@with_appcontext
@click.option("--user", "username", required=True, help="The account the webhook belongs to.")
@click.option(
    "--connection",
    "connections",
    required=True,
    multiple=True,
    help="A chat of that account, by label or id (repeat it for several).",
)
@click.option(
    "--format",
    "format_name",
    required=True,
    type=click.Choice(WebhookFormat.ALL),
    help="What the tool posts.",
)
@click.option("--name", default=None, help="What the webhook is for (default: the format).")
def create_webhook_command(
    username: str, connections: tuple[str, ...], format_name: str, name: str | None
) -> None:
    """Make an incoming webhook and print its URL (only a hash of its secret is kept: store
    the URL now)."""
    settings = webhooks.Settings(name=name or format_name, connections=list(connections))
    try:
        webhook, secret = webhooks.create_webhook_for_username(username, format_name, settings)
    except webhooks.WebhookError as error:
        raise click.ClickException(
            "; ".join(f"{field}: {reason}" for field, reason in error.fields.items())
        ) from None
    except ServiceError as error:
        raise click.ClickException(str(error)) from None
    with current_app.test_request_context():
        url = external_url("hooks.receive_with_secret", webhook_id=webhook.id, secret=secret)
    click.echo(
        f"Webhook {webhook.name!r} ({format_name}) for {username!r}; its URL is shown only now:",
        err=True,
    )
    click.echo(url)


@click.command("serve")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int, envvar="PORT")
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


@click.command("generate-key")
@click.option(
    "--id",
    "key_id",
    default=None,
    help="The key id (1-32 of A-Z a-z 0-9 _ -); default: k and 8 random hex digits.",
)
def generate_key_command(key_id: str | None) -> None:
    """Print a new token key, "key-id:fernet-key", for TOKEN_KEYS (see docs/key-rotation.md).

    Only the key goes to standard output, so it can be captured; nothing is stored.
    """
    try:
        entry = generate_key(key_id)
    except KeyRingError as error:
        raise click.BadParameter(str(error), param_hint="--id") from None
    click.echo(entry)
    click.echo(
        "Add it at the end of TOKEN_KEYS on every process, then move it to the front, then "
        "run rotate-keys: see docs/key-rotation.md.",
        err=True,
    )


@click.command("rotate-keys")
@with_appcontext
@click.option(
    "--batch-size",
    default=keyrotation.DEFAULT_BATCH_SIZE,
    show_default=True,
    type=click.IntRange(min=1, max=keyrotation.MAX_BATCH_SIZE),
    help="Values re-encrypted per transaction.",
)
@click.option(
    "--max-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many batches (run again to carry on).",
)
@click.option("--dry-run", is_flag=True, help="Only report what is under which key.")
def rotate_keys_command(batch_size: int, max_batches: int | None, dry_run: bool) -> None:
    """Re-encrypt every stored token under the newest key of TOKEN_KEYS.

    Resumable: each batch is committed on its own, and a new run picks up what is left. Ends
    with how many values remain under each other key id. Exits with status 1 if some values
    cannot be read (their key is missing from TOKEN_KEYS, or they are damaged).
    """
    ring = keyring()
    primary = ring.primary_key_id
    click.echo(f"Newest key: {primary!r}. Key ring: {', '.join(ring.key_ids)}.")
    if dry_run:
        _report_remaining(ring, keyrotation.RotationResult())
        return
    total = keyrotation.pending_count(ring)
    click.echo(f"{total} stored value{'s' if total != 1 else ''} not under {primary!r}.")
    try:
        with click.progressbar(length=total, label="Re-encrypting", show_pos=True) as bar:
            result = keyrotation.rotate(
                ring, batch_size=batch_size, max_batches=max_batches, on_batch=bar.update
            )
    except KeyboardInterrupt:
        raise click.ClickException(
            "Interrupted. Every finished batch is saved; run rotate-keys again to carry on."
        ) from None
    click.echo(f"Re-encrypted {result.rotated} under {primary!r} in {_batches(result.batches)}.")
    if result.changed_meanwhile:
        click.echo(f"{result.changed_meanwhile} changed while being rotated (left as they are).")
    if result.stopped_early:
        click.echo(f"Stopped after {_batches(result.batches)} as asked; run again to carry on.")
    _report_remaining(ring, result)


def _batches(count: int) -> str:
    return f"{count} batch" if count == 1 else f"{count} batches"


def _report_remaining(ring: KeyRing, result: keyrotation.RotationResult) -> None:
    """Print what is still under each key id other than the primary; fail on unreadable."""
    remaining = keyrotation.remaining_by_key(ring)
    by_key: dict[str, int] = dict.fromkeys(ring.key_ids[1:], 0)
    for counts in remaining.values():
        for key_id, count in counts.items():
            by_key[key_id] = by_key.get(key_id, 0) + count
    click.echo("Remaining on other keys:")
    if not by_key:
        click.echo(f"  none: {ring.primary_key_id!r} is the only key in the ring.")
    missing = []
    for key_id, count in by_key.items():
        if key_id in ring.key_ids:
            note = " (can now be removed from TOKEN_KEYS)" if count == 0 else ""
            click.echo(f"  {key_id}: {count}{note}")
            continue
        where = "; ".join(
            f"{label} {counts[key_id]}" for label, counts in remaining.items() if counts[key_id]
        )
        if key_id == keyrotation.MALFORMED:
            click.echo(f"  {key_id}: {count} - not key-ring ciphertexts at all ({where})")
            continue
        missing.append(key_id)
        click.echo(f"  {key_id}: {count} - NOT IN TOKEN_KEYS ({where})")
    for (label, key_id), unreadable in sorted(result.unreadable.items()):
        rows = ", ".join(unreadable.rows)
        more = " …" if unreadable.count > len(unreadable.rows) else ""
        click.echo(f"  unreadable {label} under {key_id!r}: rows {rows}{more}: {unreadable.reason}")
    if missing:
        names = ", ".join(repr(key_id) for key_id in missing)
        raise click.ClickException(
            f"Some stored values cannot be read: token key {names} is not in TOKEN_KEYS. "
            "Add the key back to the ring (anywhere after the first), and run rotate-keys "
            "again. Nothing was read with another key."
        )
    if result.unreadable_count:
        raise click.ClickException(
            f"{result.unreadable_count} stored values could not be re-encrypted: they fail "
            "their integrity check or belong to another record (listed above). They were left "
            "as they are; the keys they are under must stay in TOKEN_KEYS until they are dealt "
            "with."
        )
