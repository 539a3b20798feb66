"""The fast path of POST /api/v1/notifications (notify_site/api/fast_accept.py, answering
before Flask, and services/fast_accept.py) answers exactly as the general path does.

Two apps, each on its own database, are given the same world and the same steps: one with
the fast path (``API_FAST_ACCEPT``), one without. Hypothesis draws the steps — posts with
random keys (valid, revoked, wrong, missing, of a disabled owner, of an admin), refs (ids, ids
as text, labels, labels that look like ids, unknown), messages (valid or not), stickers, image
URLs, silent sends, idempotency keys (new, repeated with the same or another request),
revocations, status changes, disabled owners, keys whose last use is due to be recorded — and
every answer (status, headers, body bytes) and every row written must be the same in both.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from notify_site import create_app
from notify_site.db_types import utcnow
from notify_site.extensions import db
from notify_site.models import (
    ApiKey,
    Connection,
    ConnectionStatus,
    IdempotencyRecord,
    Notification,
    User,
)
from tests.conftest import init_database, make_test_config
from tests.factories import create_api_key, create_connection, create_user
from tests.pg_schemas import ALL_ON_POSTGRES, PG_URL, PostgresSchemas

USERS = ("root", "alice", "bob")  # root, the first, is an admin
# (owner index, label): two of alice's share a label; one label looks like an id.
CONNECTIONS = ((1, "Ops"), (1, "Ops"), (1, "Family"), (1, "2"), (2, "Ops"), (0, "Ops"))
STATUSES = (
    ConnectionStatus.ACTIVE,
    ConnectionStatus.REVOKED,
    ConnectionStatus.ERROR,
    ConnectionStatus.UNREACHABLE,
)
ROW_COLUMNS = (
    "id",
    "owner_id",
    "connection_id",
    "api_key_id",
    "message",
    "sticker_package_id",
    "sticker_id",
    "image_thumbnail_url",
    "image_fullsize_url",
    "notification_disabled",
    "status",
    "send_at",
)


@pytest.fixture
def apps(tmp_path, request):
    """The fast app and the general one, each on a database of its own (two schemas on the
    PostgreSQL pass); a test may add settings with ``@pytest.mark.app_settings(...)``."""
    marker = request.node.get_closest_marker("app_settings")
    settings = marker.kwargs if marker else {}
    schemas = PostgresSchemas(PG_URL) if ALL_ON_POSTGRES else None
    made = []
    try:
        for fast in (True, False):
            instance = tmp_path / ("fast" if fast else "general")
            instance.mkdir()
            url = schemas.new_url() if schemas else f"sqlite:///{instance / 'test.sqlite3'}"
            config = make_test_config(
                instance,
                DATABASE_URL=url,
                API_FAST_ACCEPT=fast,
                API_RATE_LIMIT="1000000 per minute",
                **settings,
            )
            app = create_app(config)
            init_database(app)
            made.append(app)
        yield made
    finally:
        for app in made:
            with app.app_context():
                db.engine.dispose()
        if schemas:
            schemas.drop_all()


def build_world(app) -> list[str]:
    """The same users, connections and keys in ``app``'s empty tables; the keys' plaintexts."""
    with app.app_context():
        for model in (IdempotencyRecord, Notification, ApiKey, Connection, User):
            db.session.execute(delete(model))
        db.session.commit()
        users = [create_user(name) for name in USERS]
        for owner, label in CONNECTIONS:
            create_connection(users[owner], label=label)
        # One key per user, and a second one of alice's; used a moment ago (no touch due), so
        # that the fast path is open from the first post.
        keys = [create_api_key(user, "k")[1] for user in (*users, users[1])]
        db.session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        return keys


ref = st.one_of(
    st.integers(min_value=-1, max_value=len(CONNECTIONS) + 2),
    st.integers(min_value=1, max_value=len(CONNECTIONS) + 1).map(str),
    st.sampled_from(["Ops", "Family", "2", "ops", "Nope", "", "０"]),
)
# After each change, every key posts to these (the change must show in the answers at once).
PROBES = ("Ops", "Family", 2)
# What a body may carry besides its target and message: the plain cases the fast path takes,
# and their near misses, which it must leave to the general path.
EXTRAS = (
    {},
    {"sticker": {"package_id": 446, "sticker_id": 1988}},
    {"sticker": {"package_id": True, "sticker_id": 1988}},
    {"sticker": {"package_id": 446}},
    {"image": {"thumbnail_url": "https://e.test/t.jpg", "fullsize_url": "https://e.test/f.jpg"}},
    {"image": {"thumbnail_url": "http://e.test/t.jpg", "fullsize_url": "https://e.test/f.jpg"}},
    {"notification_disabled": True},
    {"notification_disabled": "yes"},
    {"unknown": 1},
    {"send_at": "2031-05-06T07:30:00+09:00"},
)
post = st.tuples(
    st.just("post"),
    st.integers(min_value=-3, max_value=3),  # a key's index; -1 wrong, -2 none, -3 not Bearer
    ref,
    st.sampled_from(["hello", "", "x" * 1001, "line\nbreak", "\u3053\u3093\u306b\u3061\u306f"]),
    st.booleans(),  # connections: [ref] instead of connection: ref
    st.sampled_from(range(len(EXTRAS))),
    st.sampled_from([None, None, "retry-1", "retry-2", "", "caf\u00e9"]),  # Idempotency-Key
)
change = st.one_of(
    st.tuples(st.just("revoke"), st.integers(min_value=0, max_value=3)),
    st.tuples(
        st.just("status"),
        st.integers(min_value=0, max_value=len(CONNECTIONS) - 1),
        st.sampled_from(STATUSES),
    ),
    st.tuples(st.just("disable"), st.integers(min_value=0, max_value=2), st.booleans()),
    st.tuples(st.just("last_used"), st.integers(min_value=0, max_value=3), st.booleans()),
)
steps = st.lists(st.one_of(post, post, change), min_size=1, max_size=12)


def apply_change(app, step) -> None:
    with app.app_context():
        kind = step[0]
        if kind == "revoke":
            key_id = db.session.scalars(select(ApiKey.id).order_by(ApiKey.id)).all()[step[1]]
            db.session.execute(
                update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow())
            )
        elif kind == "status":
            ids = db.session.scalars(select(Connection.id).order_by(Connection.id)).all()
            db.session.execute(
                update(Connection).where(Connection.id == ids[step[1]]).values(status=step[2])
            )
        elif kind == "disable":
            user_id = db.session.scalars(select(User.id).order_by(User.id)).all()[step[1]]
            db.session.execute(
                update(User)
                .where(User.id == user_id)
                .values(disabled_at=utcnow() if step[2] else None)
            )
        else:  # last used long ago (due to be recorded) or just now
            key_id = db.session.scalars(select(ApiKey.id).order_by(ApiKey.id)).all()[step[1]]
            when = utcnow() - (timedelta(hours=1) if step[2] else timedelta(seconds=1))
            db.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
        db.session.commit()


def fast_accept_of(app):
    """The app's FastAccept, found through its WSGI middleware stack."""
    from notify_site.api.fast_accept import FastAcceptMiddleware

    middleware = app.wsgi_app
    while not isinstance(middleware, FastAcceptMiddleware):
        middleware = middleware.app
    return middleware.accept


def send(app, keys: list[str], step):
    _, key_index, target, message, as_list, extra, idempotency_key = step
    headers = {}
    if key_index >= 0:
        headers["Authorization"] = f"Bearer {keys[key_index]}"
    elif key_index == -1:
        headers["Authorization"] = "Bearer nsk_wrong"
    elif key_index == -3:
        headers["Authorization"] = f"Basic {keys[0]}"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    body = {"connections": [target]} if as_list else {"connection": target}
    answer = app.test_client().post(
        "/api/v1/notifications",
        json={**body, "message": message, **EXTRAS[extra]},
        headers=headers,
    )
    return answer.status_code, comparable(answer.headers), answer.get_data()


def comparable(headers) -> list[tuple[str, str]]:
    """The headers, sorted, with the seconds until each app's own rate-limit window resets
    kept only as present (each app's window started when its first request came)."""
    return sorted((name, "…" if name == "RateLimit-Reset" else value) for name, value in headers)


def rows(app) -> list[tuple]:
    with app.app_context():
        found = db.session.execute(
            select(*(getattr(Notification, name) for name in ROW_COLUMNS)).order_by(Notification.id)
        ).all()
        touched = db.session.execute(
            select(ApiKey.id, ApiKey.last_used_at.is_(None)).order_by(ApiKey.id)
        ).all()
        records = db.session.execute(
            select(
                IdempotencyRecord.api_key_id,
                IdempotencyRecord.key,
                IdempotencyRecord.request_hash,
                IdempotencyRecord.status_code,
                IdempotencyRecord.response_json,
            ).order_by(IdempotencyRecord.api_key_id, IdempotencyRecord.key)
        ).all()
        return (
            [tuple(row) for row in found]
            + [("touched", *row) for row in touched]
            + [("record", *row) for row in records]
        )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_the_fast_and_the_general_path_give_the_same_answers_and_rows(apps, steps):
    fast, general = apps
    keys = build_world(fast)
    general_keys = build_world(general)  # the same keys by index (each app made its own)
    for step in steps:
        if step[0] == "post":
            assert send(fast, keys, step) == send(general, general_keys, step), step
        else:
            apply_change(fast, step)
            apply_change(general, step)
            for key_index in range(len(keys)):
                for target in PROBES:
                    probe = ("post", key_index, target, "probe", False, 0, None)
                    assert send(fast, keys, probe) == send(general, general_keys, probe), (
                        step,
                        probe,
                    )
    assert rows(fast) == rows(general)


@pytest.mark.parametrize("extra", [0, 1, 4, 6])
@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
def test_the_fast_path_is_taken_for_the_common_accept(
    apps, fast_accepts_taken, extra, idempotency_key
):
    """Guard for the comparison above: the fast app does queue through the fast path, with
    each plain content and with an idempotency key; a repeat of the key is the general
    path's to replay."""
    fast, _ = apps
    keys = build_world(fast)
    apply_change(fast, ("last_used", 1, False))  # recorded just now: nothing to touch
    taken = fast_accepts_taken
    step = ("post", 1, "Family", "hello", False, extra, idempotency_key)
    status, headers, body = send(fast, keys, step)
    assert status == 202
    assert taken == [True]
    assert json.loads(body)["notifications"][0]["connection"]["label"] == "Family"
    again = send(fast, keys, step)
    if idempotency_key is None:
        assert taken == [True, True]
        assert again[2] != body  # a second row
    else:
        assert taken == [True, False]  # claimed already: replayed by the general path
        assert again[2] == body
        assert ("Idempotent-Replayed", "true") in again[1]


@pytest.mark.app_settings(TRUSTED_HOSTS=["good.test"])
@pytest.mark.parametrize("base_url", ["https://good.test", "http://good.test", "https://evil.test"])
def test_https_and_untrusted_hosts_are_answered_alike(apps, base_url):
    """HSTS over HTTPS, and a Host outside TRUSTED_HOSTS refused (400), on both paths."""
    fast, general = apps
    answers = []
    for app, keys in ((fast, build_world(fast)), (general, build_world(general))):
        apply_change(app, ("last_used", 1, False))
        answer = app.test_client().post(
            "/api/v1/notifications",
            json={"connection": "Family", "message": "hello"},
            headers={"Authorization": f"Bearer {keys[1]}"},
            base_url=base_url,
        )
        answers.append((answer.status_code, comparable(answer.headers), answer.get_data()))
    assert answers[0] == answers[1]
    status, headers, _ = answers[0]
    assert status == (400 if "evil" in base_url else 202)
    assert any(name == "Strict-Transport-Security" for name, _ in headers) == (
        base_url.startswith("https:")
    )


def test_a_thread_per_request_server_reuses_the_fast_paths_connections(apps):
    """Reads done one after another from new threads (werkzeug's threaded server starts one
    per request) share one kept connection: none is left open per thread."""
    import threading

    fast, _ = apps
    keys = build_world(fast)
    answers = []

    def post() -> None:
        step = ("post", 1, "Family", "hello", False, 0, None)
        answers.append(send(fast, keys, step)[0])

    for _ in range(12):
        thread = threading.Thread(target=post)
        thread.start()
        thread.join()
    assert answers == [202] * 12
    assert len(fast_accept_of(fast)._idle) == 1


@pytest.mark.parametrize("idempotency_key", [None, "retry-1"])
def test_a_failed_fast_write_leaves_nothing_and_the_general_path_answers(
    apps, fast_accepts_taken, monkeypatch, idempotency_key
):
    """The fast path's INSERT fails in the driver (on SQLite inside the group commit; on
    PostgreSQL in its one autocommitted statement, with or without a key): the request goes on to
    Flask, which queues it once — one row, no half-written idempotency record."""
    from notify_site.services.fast_accept import FastAccept

    fast, _ = apps
    keys = build_world(fast)
    apply_change(fast, ("last_used", 1, False))
    with fast.app_context():
        broken_error = db.engine.dialect.loaded_dbapi.OperationalError

    class Broken:
        def run(self, cursor, values):
            raise broken_error("disk I/O error")

        row = run

    monkeypatch.setattr(FastAccept, "_insert_for", lambda self, row: Broken())
    monkeypatch.setattr(FastAccept, "_alone_for", lambda self, values, keyed: Broken())
    status, _, body = send(fast, keys, ("post", 1, "Family", "hello", False, 0, idempotency_key))
    assert status == 202, body
    assert fast_accepts_taken == [False]
    (queued,) = json.loads(body)["notifications"]
    with fast.app_context():
        assert db.session.scalars(select(Notification.id)).all() == [queued["id"]]
        records = db.session.scalars(select(IdempotencyRecord.status_code)).all()
    assert records == ([] if idempotency_key is None else [202])
    assert fast_accept_of(fast).insert_alone == (fast.config["DATABASE_URL"].startswith("postgres"))


AWKWARD_LABELS = [
    "Ops",
    'say "hi"',
    "運用チーム",
    "a\\b",
    "0,1",
    "tab\there",
    "bell\x07 and \x1f",
    "😀 ok",
]


def test_the_receipt_parts_put_together_are_the_receipt():
    """PostgreSQL's keyed fast accept stores the receipt from these parts around the row's
    id, the connection's id and its label as a JSON string."""
    from notify_site.services.fast_statements import RECEIPT_PARTS, queued
    from notify_site.services.notifications import ResolvedConnection
    from notify_site.services.sending import receipt

    head, between_ids, before_label, tail = RECEIPT_PARTS
    for label in AWKWARD_LABELS:
        connection = ResolvedConnection(7, 1, label, ConnectionStatus.ACTIVE)
        for row_id in (1, 20, 9_876_543):
            assert head + str(row_id) + between_ids + "7" + before_label + json.dumps(
                label, ensure_ascii=False
            ) + tail == receipt([queued(row_id, connection)])


def test_on_postgresql_a_keyed_fast_accept_stores_the_general_paths_receipt(
    apps, fast_accepts_taken
):
    """The receipt PostgreSQL's one statement builds (its own JSON escaping of the label)
    is byte for byte the answer the general path stores and sends, for awkward labels."""
    from notify_site.services.sending import receipt

    fast, _ = apps
    if not fast.config["DATABASE_URL"].startswith("postgres"):
        pytest.skip("PostgreSQL's statement")
    keys = build_world(fast)
    with fast.app_context():
        alice = db.session.scalars(select(User).where(User.username == "alice")).one()
        ids = [create_connection(alice, label=label).id for label in AWKWARD_LABELS[1:]]
    apply_change(fast, ("last_used", 1, False))
    # By id: a label with control characters cannot be sent as a ref (the edge refuses
    # one), but a stored label is what the receipt names.
    for number, (label, connection_id) in enumerate(zip(AWKWARD_LABELS[1:], ids, strict=True)):
        step = ("post", 1, connection_id, "hello", False, 0, f"label-{number}")
        status, _, body = send(fast, keys, step)
        assert status == 202, body
        with fast.app_context():
            stored = db.session.scalars(
                select(IdempotencyRecord.response_json).where(
                    IdempotencyRecord.key == f"label-{number}"
                )
            ).one()
        (item,) = json.loads(body)["notifications"]
        assert item["connection"] == {"id": connection_id, "label": label}
        assert stored == receipt([queued_from(item)])
    assert fast_accepts_taken == [True] * (len(AWKWARD_LABELS) - 1)


def queued_from(item: dict):
    from notify_site.services.notifications import ConnectionRef, QueuedNotification

    connection = item["connection"]
    return QueuedNotification(item["id"], ConnectionRef(connection["id"], connection["label"]))


def test_on_postgresql_the_fast_paths_connections_keep_generic_plans(apps):
    """The read's OR over an id and a label would be planned again on every execution
    (PostgreSQL prefers a custom plan for it): the fast path's connections say generic."""
    fast, _ = apps
    if not fast.config["DATABASE_URL"].startswith("postgres"):
        pytest.skip("a PostgreSQL setting")
    accept = fast_accept_of(fast)
    fairy = accept._take()
    try:
        cursor = fairy.cursor()
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
        cursor.close()
    finally:
        accept._give_back(fairy)
