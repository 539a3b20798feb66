"""Plain factory functions for test data. Call them inside an app context.

:func:`seed_every_page` puts data on every page of the site and the relay at once (for the
all-pages smoke test, tests/unit/test_smoke_pages.py, and the page list in tests/pages.py).
"""

from __future__ import annotations

import contextlib
import io
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.keyring import keyring
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    Notification,
    NotificationStatus,
    OccurrenceStatus,
    ScheduleOccurrence,
    User,
    Webhook,
)
from notify_site.notify_content import Content
from notify_site.services import accounts, api_keys
from notify_site.services.connections import connection_context
from notify_site.services.retry import CONNECTION_REVOKED
from notify_site.services.schedules import manage as schedules_manage
from notify_site.services.sending import Sender
from notify_site.services.webhooks import formats
from notify_site.stored_text import StoredText, columns, site_text

PASSWORD = "correct horse battery"


def create_user(username: str = "alice", *, admin: bool = False, password: str = PASSWORD) -> User:
    return accounts.create_user(username, password, admin=admin)


def create_connection(
    owner: User,
    *,
    label: str = "Ops",
    token: str = "test-access-token",
    target_name: str | None = "Sandbox user",
    target_type: str | None = "USER",
    status: str = ConnectionStatus.ACTIVE,
) -> Connection:
    connection = Connection(
        owner_id=owner.id,
        label=label,
        target_name=target_name,
        target_type=target_type,
        status=status,
    )
    db.session.add(connection)
    db.session.flush()
    connection.token_ciphertext = keyring().encrypt(
        token, context=connection_context(connection.id)
    )
    db.session.commit()
    return connection


def sign_in(client, user: User) -> None:
    """Sign ``user`` in on the test client without the form (no password check, so no hash
    to compute): the session Flask-Login would have written."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


@dataclass(frozen=True)
class SignedIn:
    """A person signed in on a test client: their id (the relay's person id) and username."""

    id: int
    username: str


def add_person(app, client, username: str) -> SignedIn:
    """Create an account (never the first: that one is made an admin, ``first-admin``) and
    sign it in on ``client``."""
    with app.app_context():
        if db.session.scalar(select(func.count()).select_from(User)) == 0:
            create_user("first-admin")
        user = create_user(username)
        sign_in(client, user)
        return SignedIn(user.id, user.username)


def login(client, username: str = "alice", password: str = PASSWORD):
    """Sign in through the real form (CSRF must be off, or the caller adds the token)."""
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def add_connection(
    owner: User,
    label: str,
    *,
    remaining: int | None,
    limit: int = 1000,
    status: str = ConnectionStatus.ACTIVE,
    target_name: str | None = "Sandbox user",
    target_type: str | None = "USER",
) -> int:
    """A connection with a rate-limit snapshot (``remaining`` of ``limit``; None: never read)."""
    connection = create_connection(
        owner, label=label, status=status, target_name=target_name, target_type=target_type
    )
    if remaining is not None:
        connection.rate_limit = limit
        connection.rate_remaining = remaining
        connection.rate_image_limit = 50
        connection.rate_image_remaining = 49
        connection.rate_reset_at = utcnow() + timedelta(minutes=30)
        connection.rate_checked_at = utcnow()
        connection.rate_checked_by = "notify"
    db.session.commit()
    return connection.id


def create_notification(
    connection: Connection | int,
    *,
    status: str = NotificationStatus.DELIVERED,
    created: datetime | None = None,
    finished: datetime | None = None,
    next_attempt: datetime | None = None,
    lease_expires: datetime | None = None,
    attempts: int = 1,
    last_error: str | StoredText | None = None,
    api_key_id: int | None = None,
    owner_id: int | None = None,
    message: str = "Disk 91% full",
    **fields,
) -> Notification:
    """A notification row to ``connection`` (a row or its id) in any state.

    Delivered by default; ``created`` is also its last update and its first due time, and a
    ``lease_expires`` gives it a lease token. Sent by the chat's owner unless ``owner_id``
    says otherwise (an admin's send). A ``last_error`` given as a plain string is stored as a
    server's words, without a code. ``fields``: stickers, image URLs, etc.
    """
    if isinstance(connection, int):
        connection = db.session.get(Connection, connection)
    created = created or utcnow()
    if isinstance(last_error, str):
        last_error = StoredText(last_error)
    row = Notification(
        owner_id=owner_id or connection.owner_id,
        connection_id=connection.id,
        api_key_id=api_key_id,
        message=message,
        status=status,
        attempts=attempts,
        **columns("last_error", last_error),
        created_at=created,
        updated_at=created,
        next_attempt_at=next_attempt or created,
        lease_token=str(uuid.uuid4()) if lease_expires else None,
        lease_expires_at=lease_expires,
        finished_at=finished,
        **fields,
    )
    db.session.add(row)
    db.session.commit()
    return row


def create_api_key(
    owner: User | int, name: str = "CI", *, revoked: bool = False
) -> tuple[ApiKey, str]:
    """An API key of ``owner`` (a row or its id), made by the service: the row and the
    plaintext key. ``revoked``: revoked at once (it stays listed, and works no more)."""
    if isinstance(owner, int):
        owner = db.session.get(User, owner)
    row, plaintext = api_keys.create_api_key(owner, name)
    if revoked:
        api_keys.revoke_api_key(owner, row.id)
    return row, plaintext


def create_relay_token(
    client_pk: int | None,
    chat_id: int,
    token: str | None = None,
    *,
    person_id: int | None = None,
    name: str | None = None,
) -> str:
    """A relay access token of one registered client (None and a ``name``: a personal token
    from My page) for one chat, the person ``person_id``'s, stored as the relay stores them
    (its hash only); returns the token (a new random one unless ``token`` is given)."""
    from notify_site.relay.models import RelayAccessToken
    from notify_site.relay.secrets_util import hash_secret, new_access_token

    token = token or new_access_token()
    db.session.add(
        RelayAccessToken(
            token_hash=hash_secret(token),
            client_pk=client_pk,
            chat_id=chat_id,
            person_id=person_id,
            name=name,
        )
    )
    db.session.commit()
    return token


def tiny_png() -> bytes:
    """A valid 1×1 PNG (one green pixel), built here so no test needs a file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1×1, 8-bit RGB
    pixels = zlib.compress(b"\x00\x06\xc7\x55")  # filter byte + one green pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------- data on every page


@dataclass
class PageData:
    """What :func:`seed_every_page` made: the ids and secrets the page list needs."""

    admin: str
    user: str
    #: The second user's id (the admin's account actions take it).
    user_id: int = 0
    connections: dict[str, int] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    schedules: dict[str, int] = field(default_factory=dict)
    api_key: str = ""
    relay_client_id: str = ""
    relay_redirect_uri: str = ""
    relay_token: str = ""
    relay_image_id: int = 0
    #: The public id of that image (its URL).
    relay_image_public_id: str = ""
    #: The service's token's row id (My page's Disconnect page takes it).
    relay_token_pk: int = 0
    #: Channel mode (:func:`seed_line_channel`): a token for a LINE user's chat.
    relay_line_token: str = ""
    #: The admin's incoming webhooks: "prom" (Alertmanager, with history), "paused" (generic).
    webhooks: dict[str, int] = field(default_factory=dict)


def seed_every_page(app, *, admin: str = "root", user: str = "bob") -> PageData:
    """An admin and a second user, with something in every list of every page.

    * connections of both target types (USER, GROUP) and every status, with and without
      rate-limit snapshots, some the second user's;
    * notifications queued, sending (live lease), delivered, failed (with a stored error the
      pages translate) and stuck (queued overdue, lease run out), one with a sticker and one
      with image URLs;
    * API keys: the admin's (returned in plain text, used), a revoked one, the user's;
    * incoming webhooks of the admin: one with posts queued, repeated, unreadable and a test,
      one paused (with a refused post) with a template of its own;
    * the relay: a registered client, the admin's private sandbox chats, a service's access
      token and a personal one (My page), and inbox messages with text only, a sticker, image
      URLs and an uploaded image (sent through the relay's own API).

    Texts are chosen not to look like any of the site's own English strings, so a test can
    tell English that leaked into a translated page from the seeded data.
    """
    now = utcnow()
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    data = PageData(admin=admin, user=user)
    with app.app_context():
        root = create_user(admin, admin=True)
        bob = create_user(user)
        data.user_id = bob.id
        key_row, data.api_key = create_api_key(root, "CI alerts")
        create_api_key(root, "Old runner", revoked=True)
        create_api_key(bob, "Bob's cron")
        api_keys.touch(api_keys.authenticate(data.api_key))

        c = data.connections
        c["ops"] = add_connection(root, "Ops", remaining=12)
        c["family"] = add_connection(
            root, "Kin", remaining=990, target_name="Family", target_type="GROUP"
        )
        c["unknown"] = add_connection(root, "Fresh", remaining=None)
        c["revoked"] = add_connection(root, "Gone", remaining=0, status=ConnectionStatus.REVOKED)
        c["unreachable"] = add_connection(
            root, "Blocked", remaining=500, status=ConnectionStatus.UNREACHABLE
        )
        c["error"] = add_connection(bob, "Bobs box", remaining=3, status=ConnectionStatus.ERROR)
        c["bob_group"] = add_connection(
            bob, "Bobs team", remaining=700, target_name="Team alerts", target_type="GROUP"
        )

        n = data.notifications
        n["delivered"] = create_notification(
            c["ops"], created=now - minutes(90), finished=now - minutes(89), api_key_id=key_row.id
        ).id
        n["queued"] = create_notification(c["ops"], status="queued", message="Backup ran").id
        n["sending"] = create_notification(
            c["family"], status="sending", created=now - minutes(1), lease_expires=now + minutes(1)
        ).id
        n["failed"] = create_notification(
            c["revoked"],
            status="failed",
            created=now - minutes(3),
            finished=now - minutes(2),
            last_error=CONNECTION_REVOKED,
        ).id
        n["failed_server"] = create_notification(
            c["ops"],
            status="failed",
            created=now - minutes(70),
            finished=now - minutes(60),
            attempts=8,
            last_error=site_text(
                "gave_up",
                count=8,
                reason=site_text("server_answered", status=500, message=StoredText("boom")),
            ),
        ).id
        # Issue 22: accepted but pending at the Notify server, and refused for the month.
        n["at_server"] = create_notification(
            c["family"],
            status=NotificationStatus.AT_SERVER,
            created=now - minutes(4),
            next_attempt=now + minutes(1),
            remote_message_id="seeded-pending",
            message="Nightly export waiting",
        ).id
        n["refused_monthly"] = create_notification(
            c["family"],
            status="failed",
            created=now - minutes(5),
            finished=now - minutes(5),
            last_error=site_text("refused_monthly_limit"),
        ).id
        n["stuck_queued"] = create_notification(
            c["ops"], status="queued", created=now - minutes(120), next_attempt=now - minutes(90)
        ).id
        n["stuck_sending"] = create_notification(
            c["family"], status="sending", created=now - minutes(20), lease_expires=now - minutes(5)
        ).id
        n["sticker"] = create_notification(
            c["family"], message="Deploy ok", sticker_package_id=446, sticker_id=1988
        ).id
        n["image"] = create_notification(
            c["ops"],
            message="Graph",
            image_thumbnail_url="https://img.example/t.jpg",
            image_fullsize_url="https://img.example/f.jpg",
        ).id
        n["bob_delivered"] = create_notification(
            c["bob_group"], created=now - minutes(30), finished=now - minutes(29)
        ).id
        _seed_webhooks(root, data)
        _seed_schedules(root, data)
        _seed_relay(app, data, root.id)
    _fill_relay_inbox(app, data)
    return data


def _seed_webhooks(owner: User, data: PageData) -> None:
    """The admin's webhooks: one with a history of each outcome, one paused with a template."""
    from notify_site.services.webhooks import manage, receive

    w = data.webhooks
    w["prom"], _ = create_webhook(owner, ["Ops", "Kin"], name="Prom stack")
    w["paused"], _ = create_webhook(
        owner, ["Ops"], format_name="generic", name="Cron box", template="{{ payload.job }} ok"
    )
    prom = db.session.get(Webhook, w["prom"])
    firing = receive.Post(body=webhook_fixture("alertmanager-firing.json"))
    receive.receive(prom, firing)
    receive.receive(prom, firing)  # a repeat
    with contextlib.suppress(formats.PayloadError):
        receive.receive(prom, receive.Post(body=b'{"status": "firing"}'))
    receive.send_test(prom)
    manage.set_paused(owner, w["paused"], True)
    with contextlib.suppress(receive.WebhookPausedError):
        receive.receive(db.session.get(Webhook, w["paused"]), receive.Post(body=b'{"job": 1}'))


def _seed_schedules(owner: User, data: PageData) -> None:
    """Scheduled sends: two notifications sent later, a daily schedule with a queued and a
    skipped occurrence, and a paused weekly one."""
    now = utcnow()
    c, n, s = data.connections, data.notifications, data.schedules
    for key, hours in (("later", 3), ("later_tomorrow", 27)):
        n[key] = create_notification(
            c["ops"],
            status=NotificationStatus.SCHEDULED,
            message="Rubbish out tonight",
            next_attempt=now + timedelta(hours=hours),
            send_at=now + timedelta(hours=hours),
        ).id
    sender = Sender(id=owner.id, is_admin=owner.is_admin)

    def schedule(name: str, rule: str) -> int:
        draft = schedules_manage.ScheduleDraft(
            name=name,
            targets=[c["ops"], c["family"]],
            content=Content(message="Water the plants"),
            rule=rule,
            timezone="Asia/Tokyo",
            starts_local=datetime(2026, 1, 1),
        )
        return schedules_manage.create_schedule(sender, draft).id

    s["daily"] = schedule("Plants", "FREQ=DAILY;BYHOUR=7;BYMINUTE=30;BYSECOND=0")
    s["paused"] = schedule("Bins", "FREQ=WEEKLY;BYDAY=MO,TH;BYHOUR=20;BYMINUTE=0;BYSECOND=0")
    schedules_manage.pause_schedule(owner, s["paused"])
    for days, status in ((1, OccurrenceStatus.QUEUED), (2, OccurrenceStatus.SKIPPED)):
        db.session.add(
            ScheduleOccurrence(
                schedule_id=s["daily"], occurs_at=now - timedelta(days=days), status=status
            )
        )
    db.session.commit()


def seed_line_channel(app, data: PageData, fake_line) -> None:
    """Channel mode, on top of :func:`seed_every_page`: a LINE user and a group the bot learnt
    from signed webhook events (a follow, a join, a text), the user's chat paired to the admin,
    a token of the admin's for it and a push queued to it. ``fake_line`` is a running
    tests.fakes.line_api server."""
    from notify_site.relay.chats import pair_chat
    from notify_site.relay.line.channel import current_settings
    from notify_site.relay.line.events import process_events
    from notify_site.relay.models import RelayAccessToken, RelayChat
    from notify_site.relay.secrets_util import hash_secret
    from tests.fakes.line_api import event, sign, text_message, webhook_body

    user, group = "U" + "a" * 32, "C" + "e" * 32
    fake_line.state.profiles[user] = "Aiko"
    fake_line.state.groups[group] = "Night shift"
    body = webhook_body(
        event("follow", user=user), event("join", group=group), text_message("hi", user=user)
    )
    client = app.test_client()
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    assert client.post("/relay/line/webhook", data=body, headers=headers).status_code == 200
    with app.app_context():
        process_events(current_settings())
        chat = db.session.scalar(select(RelayChat).where(RelayChat.line_id == user))
        client_pk = db.session.scalar(
            select(RelayAccessToken.client_pk).where(
                RelayAccessToken.token_hash == hash_secret(data.relay_token)
            )
        )
        admin_id = db.session.scalar(
            select(RelayAccessToken.person_id).where(RelayAccessToken.client_pk == client_pk)
        )
        pair_chat(chat, admin_id)
        data.relay_line_token = create_relay_token(client_pk, chat.id, person_id=admin_id)
    answer = client.post(
        "/relay/api/notify",
        data={"message": "To LINE"},
        headers={"Authorization": f"Bearer {data.relay_line_token}"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)


def _seed_relay(app, data: PageData, admin_id: int) -> None:
    """The admin's sandbox chats, a service's token for the 1-on-1 chat (the inbox's messages
    come through it) and a personal token for Family (My page lists both)."""
    from notify_site.relay.chats import ensure_sandbox_chats
    from notify_site.relay.clients import find_client, register_client
    from notify_site.relay.models import RelayAccessToken
    from notify_site.relay.secrets_util import hash_secret

    data.relay_redirect_uri = "https://client.example/callback"
    data.relay_client_id, _ = register_client("Example service", data.relay_redirect_uri)
    chats = ensure_sandbox_chats(
        admin_id, app.config["RELAY_SANDBOX_USER"], app.config["RELAY_SANDBOX_GROUPS"]
    )
    data.relay_token = create_relay_token(
        find_client(data.relay_client_id).id, chats[0].id, person_id=admin_id
    )
    create_relay_token(None, chats[1].id, person_id=admin_id, name="Nightly job")
    data.relay_token_pk = db.session.scalar(
        select(RelayAccessToken.id).where(
            RelayAccessToken.token_hash == hash_secret(data.relay_token)
        )
    )


def _fill_relay_inbox(app, data: PageData) -> None:
    """Messages into the relay's inbox through its Notify API, as any client sends them."""
    from notify_site.relay.models import RelayImage, RelayMessage

    client = app.test_client()
    headers = {"Authorization": f"Bearer {data.relay_token}"}
    messages = [
        {"message": "Plain words"},
        {"message": "Sticker", "stickerPackageId": "446", "stickerId": "1988"},
        {
            "message": "Linked picture",
            "imageThumbnail": "https://img.example/thumb.jpg",
            "imageFullsize": "https://img.example/full.jpg",
        },
        {"message": "Uploaded picture", "imageFile": (io.BytesIO(tiny_png()), "p.png")},
    ]
    for fields in messages:
        answer = client.post("/relay/api/notify", data=fields, headers=headers)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    with app.app_context():
        data.relay_image_id = db.session.scalar(
            select(RelayMessage.image_id).where(RelayMessage.image_id.is_not(None))
        )
        data.relay_image_public_id = db.session.get(RelayImage, data.relay_image_id).public_id


# ---------------------------------------------------------------- incoming webhooks

WEBHOOK_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "webhooks"


def webhook_fixture(name: str) -> bytes:
    """A payload of tests/fixtures/webhooks (README.md there names each one's source)."""
    return (WEBHOOK_FIXTURES / name).read_bytes()


def create_webhook(
    owner: User,
    connections: list[str],
    *,
    format_name: str = "alertmanager",
    name: str = "Alerts",
    **settings,
) -> tuple[int, str]:
    """A webhook of ``owner`` sending to the connections labelled ``connections``; returns
    its id and secret."""
    from notify_site.services.webhooks import manage

    webhook, secret = manage.create_webhook(
        owner, format_name, manage.Settings(name=name, connections=connections, **settings)
    )
    return webhook.id, secret
