"""The per-key rate limit on the JSON API and the sign-in throttle (SPEC 4.7).

Redis tests run against ``NOTIFY_SITE_TEST_REDIS_URL`` (CI sets it) and fail when it is set but
unreachable; without it they try redis://127.0.0.1:6379/0 and are skipped if nothing answers.
Each uses its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from notify_site import create_app
from notify_site.ratelimit import RateLimitConfigError
from tests.conftest import init_database, make_test_config
from tests.factories import PASSWORD, create_api_key, create_connection, create_user

LIMIT = 3


@pytest.fixture
def app_config(tmp_path):
    return make_test_config(
        tmp_path, API_RATE_LIMIT=f"{LIMIT} per minute", LOGIN_FAILURE_LIMIT="3 per 15 minutes"
    )


def make_key(app, username: str = "alice") -> str:
    with app.app_context():
        user = create_user(username)
        create_connection(user, label="Ops")
        _, plaintext = create_api_key(user, "CI")
    return plaintext


def api_get(client, key: str | None, path: str = "/api/v1/connections", address="127.0.0.1"):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": address})


def assert_rate_limited(response) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["fields"] == {}
    assert f"the limit is {LIMIT} per minute" in body["error"]["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["RateLimit-Remaining"] == "0"
    assert "<html" not in response.get_data(as_text=True).lower()


# ---------------------------------------------------------------------------- the API


def test_the_n_plus_first_request_in_the_window_is_a_json_429(app, client):
    key = make_key(app)
    for remaining in range(LIMIT - 1, -1, -1):
        response = api_get(client, key)
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == str(LIMIT)
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        assert response.headers["RateLimit-Policy"] == f"{LIMIT};w=60"
        assert "Retry-After" not in response.headers
    assert_rate_limited(api_get(client, key))


def test_every_endpoint_and_method_spends_the_same_budget(app, client):
    key = make_key(app)
    assert api_get(client, key, "/api/v1/connections").status_code == 200
    assert api_get(client, key, "/api/v1/connections/1").status_code == 200
    posted = client.post(
        "/api/v1/notifications",
        json={"connection": "Ops", "message": "hi"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert posted.status_code == 202
    refused = client.post(
        "/api/v1/notifications",
        json={"connection": "Ops", "message": "one too many"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert_rate_limited(refused)
    with app.app_context():
        from sqlalchemy import func, select

        from notify_site.extensions import db
        from notify_site.models import Notification

        # The refused POST queued nothing.
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 1


def test_the_budget_belongs_to_the_key_not_the_address(app, client):
    alice_key, bob_key = make_key(app, "alice"), make_key(app, "bob")
    # One key from three addresses shares one budget...
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert api_get(client, alice_key, address=address).status_code == 200
    assert_rate_limited(api_get(client, alice_key, address="10.0.0.4"))
    # ...and another key from the same address has its own.
    assert api_get(client, bob_key, address="10.0.0.1").status_code == 200


def test_requests_without_a_key_are_counted_per_address(app, client):
    for _ in range(LIMIT):
        assert api_get(client, None, address="10.0.0.1").status_code == 401
    assert_rate_limited(api_get(client, None, address="10.0.0.1"))
    assert api_get(client, None, address="10.0.0.2").status_code == 401


def test_the_rest_of_the_site_is_not_limited_by_the_api_budget(app, client):
    key = make_key(app)
    for _ in range(LIMIT + 1):
        api_get(client, key)
    for _ in range(LIMIT + 2):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers


def test_rate_limits_can_be_switched_off(tmp_path):
    app = create_app(
        make_test_config(tmp_path, API_RATE_LIMIT="1 per minute", RATELIMIT_ENABLED=False)
    )
    init_database(app)
    key = make_key(app)
    client = app.test_client()
    for _ in range(3):
        response = api_get(client, key)
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response.headers


@pytest.mark.parametrize("key", ["API_RATE_LIMIT", "LOGIN_FAILURE_LIMIT"])
@pytest.mark.parametrize("value", ["lots", "", "600 per fortnight"])
def test_a_limit_that_cannot_be_parsed_stops_the_app_from_starting(tmp_path, key, value):
    with pytest.raises(RateLimitConfigError, match=key):
        create_app(make_test_config(tmp_path, **{key: value}))


def test_an_unreachable_redis_does_not_turn_requests_into_errors(tmp_path, caplog):
    # Port 9 on loopback: nothing listens, so every connection is refused at once.
    app = create_app(
        make_test_config(
            tmp_path,
            API_RATE_LIMIT=f"{LIMIT} per minute",
            RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0",
            RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5},
        )
    )
    init_database(app)
    key = make_key(app)
    client = app.test_client()
    # Counted in memory meanwhile: the limit still holds.
    for _ in range(LIMIT):
        assert api_get(client, key).status_code == 200
    assert_rate_limited(api_get(client, key))
    assert any("falling back to in-memory" in r.getMessage() for r in caplog.records)
    # Sign-in keeps working too.
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


def test_with_the_fallback_off_an_unreachable_redis_fails_closed_with_a_json_503(tmp_path):
    app = create_app(
        make_test_config(
            tmp_path,
            API_RATE_LIMIT=f"{LIMIT} per minute",
            RATELIMIT_STORAGE_URI="redis://127.0.0.1:9/0",
            RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.5},
            RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=False,
        )
    )
    init_database(app)
    key = make_key(app)
    client = app.test_client()
    for _ in range(2):  # the first tries Redis; the second is inside the retry pause
        refused = client.post(
            "/api/v1/notifications",
            json={"connection": "Ops", "message": "hi"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert refused.status_code == 503
        assert refused.get_json()["error"]["code"] == "service_unavailable"
    with app.app_context():
        from sqlalchemy import func, select

        from notify_site.extensions import db
        from notify_site.models import Notification

        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


@pytest.mark.parametrize("strategy", ["moving-window", "sliding-window-counter"])
def test_the_other_strategies_limit_too(tmp_path, strategy):
    app = create_app(
        make_test_config(
            tmp_path, API_RATE_LIMIT=f"{LIMIT} per minute", RATELIMIT_STRATEGY=strategy
        )
    )
    init_database(app)
    key = make_key(app)
    client = app.test_client()
    for remaining in range(LIMIT - 1, -1, -1):
        response = api_get(client, key)
        assert response.status_code == 200
        assert response.headers["RateLimit-Remaining"] == str(remaining)
    assert_rate_limited(api_get(client, key))


def test_the_presented_key_is_hashed_once_per_request(app, client, monkeypatch):
    from notify_site import ratelimit
    from notify_site.services import api_keys

    key = make_key(app)
    hashed = []
    real = api_keys.hash_key

    def counting(plaintext):
        hashed.append(plaintext)
        return real(plaintext)

    monkeypatch.setattr(api_keys, "hash_key", counting)
    monkeypatch.setattr(ratelimit, "hash_key", counting)
    assert api_get(client, key).status_code == 200
    assert hashed == [key]


# ---------------------------------------------------------------------------- sign-in


def login(client, username="alice", password="wrong password", address="127.0.0.1"):
    return client.post(
        "/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_throttled(response) -> None:
    assert response.status_code == 429
    text = response.get_data(as_text=True)
    assert "Too many failed sign-ins for this username from your network" in text
    assert "Try again in 15 minutes" in text
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60


def test_after_n_failures_sign_in_is_refused_even_with_the_right_password(app, client):
    with app.app_context():
        create_user("alice")
    for _ in range(3):
        answer = login(client)
        assert answer.status_code == 200
        assert "Wrong username or password." in answer.get_data(as_text=True)
    assert_throttled(login(client, password=PASSWORD))
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_the_refusal_does_not_tell_whether_the_account_exists(app, client):
    with app.app_context():
        create_user("alice")
    answers = {}
    for name in ("alice", "nobody"):
        for _ in range(3):
            login(client, username=name)
        answers[name] = login(client, username=name)
        assert_throttled(answers[name])
    pages = {name: a.get_data(as_text=True).replace(name, "NAME") for name, a in answers.items()}
    assert pages["alice"] == pages["nobody"]


def test_the_throttle_is_per_username_and_address(app, client):
    with app.app_context():
        create_user("alice")
        create_user("bob")
    for _ in range(3):
        login(client, username="alice", address="10.0.0.1")
    assert_throttled(login(client, username="alice", address="10.0.0.1"))
    # Case and spaces do not make a new username.
    assert_throttled(login(client, username=" ALICE ", address="10.0.0.1"))
    # Another username from that address, and the same username from another address, go on.
    assert login(client, username="bob", password=PASSWORD, address="10.0.0.1").status_code == 302
    other = app.test_client()
    assert login(other, password=PASSWORD, address="10.0.0.2").status_code == 302


def test_a_successful_sign_in_forgets_earlier_failures(app, client):
    with app.app_context():
        create_user("alice")
    for _ in range(2):
        login(client)
    assert login(client, password=PASSWORD).status_code == 302
    client.post("/logout")
    for _ in range(2):
        assert login(client).status_code == 200
    assert login(client, password=PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_throttle_counts_the_forwarded_address(tmp_path):
    app = create_app(
        make_test_config(tmp_path, LOGIN_FAILURE_LIMIT="2 per 15 minutes", PROXY_FIX_X_FOR=1)
    )
    init_database(app)
    with app.app_context():
        create_user("alice")
    client = app.test_client()

    def via_proxy(address: str, password: str = "wrong password"):
        return client.post(
            "/login",
            data={"username": "alice", "password": password},
            headers={"X-Forwarded-For": address},
        )

    via_proxy("203.0.113.1")
    via_proxy("203.0.113.1")
    assert via_proxy("203.0.113.1", PASSWORD).status_code == 429
    # Every client reaches the site from the proxy's address; the others are not locked out.
    assert via_proxy("203.0.113.2", PASSWORD).status_code == 302


# ---------------------------------------------------------------------------- Redis


def redis_url() -> str | None:
    """The Redis to test against, or None (skip) when none is configured or running."""
    url = os.environ.get("NOTIFY_SITE_TEST_REDIS_URL")
    if url:
        return url  # configured: unreachable is a failure, not a skip
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return url


@pytest.fixture
def redis_config(tmp_path):
    url = redis_url()
    if url is None:
        pytest.skip("no Redis: set NOTIFY_SITE_TEST_REDIS_URL")
    prefix = f"test-{uuid.uuid4().hex}"
    yield make_test_config(
        tmp_path,
        API_RATE_LIMIT=f"{LIMIT} per minute",
        LOGIN_FAILURE_LIMIT="3 per 15 minutes",
        RATELIMIT_STORAGE_URI=url,
        RATELIMIT_KEY_PREFIX=prefix,
        # No silent fallback here: a broken Redis must fail the test.
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=False,
    )
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def two_processes(config):
    """Two apps on one database and one Redis: what two gunicorn workers are."""
    first = create_app(dict(config))
    init_database(first)
    second = create_app(dict(config))
    return first, second


def test_with_redis_two_processes_share_one_api_budget(redis_config):
    first, second = two_processes(redis_config)
    key = make_key(first)
    one, two = first.test_client(), second.test_client()
    assert api_get(one, key).status_code == 200
    assert api_get(two, key).headers["RateLimit-Remaining"] == str(LIMIT - 2)
    assert api_get(one, key).status_code == 200
    assert_rate_limited(api_get(two, key))
    assert_rate_limited(api_get(one, key))
    keys = redis.Redis.from_url(redis_config["RATELIMIT_STORAGE_URI"]).keys(
        f"*{redis_config['RATELIMIT_KEY_PREFIX']}*"
    )
    assert keys, "the counts were not kept in Redis"
    # Keyed by the key's hash: the key itself is not in Redis.
    assert not any(key.encode() in name for name in keys)


def api_post(client, key: str, connection: str = "Ops"):
    return client.post(
        "/api/v1/notifications",
        json={"connection": connection, "message": "disk full"},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_with_redis_fast_accepts_share_the_budget_and_each_request_counts_once(
    redis_config, fast_accepts_taken
):
    """The accept answered before Flask (notify_site/api/fast_accept.py) counts in the same
    shared budget; a POST it leaves to Flask (no such connection: 404) is counted once."""
    first, second = two_processes(redis_config)
    key = make_key(first)
    api_get(first.test_client(), key)  # records the key's use: the fast path is open
    taken = fast_accepts_taken
    answer = api_post(second.test_client(), key)
    assert answer.status_code == 202
    assert answer.headers["RateLimit-Remaining"] == str(LIMIT - 2)
    missing = api_post(first.test_client(), key, connection="Nope")
    assert missing.status_code == 404
    assert missing.headers["RateLimit-Remaining"] == "0"  # 3 of 3: counted once, not twice
    assert taken == [True, False]
    assert_rate_limited(api_post(second.test_client(), key))
    assert taken == [True, False]  # over the limit: refused before any read


def test_with_redis_a_request_is_counted_in_one_round_trip(redis_config):
    app = create_app(dict(redis_config))
    init_database(app)
    key = make_key(app)
    client = app.test_client()
    api_get(client, key)  # loads the script into Redis
    windows = app.extensions["notify_site.key_limits"].shared
    commands = []
    real = windows.client.execute_command

    def counting(*args, **kwargs):
        commands.append(args[0])
        return real(*args, **kwargs)

    windows.client.execute_command = counting
    response = api_get(client, key)
    assert response.headers["RateLimit-Remaining"] == str(LIMIT - 2)
    assert commands == ["EVALSHA"]


def test_with_redis_two_processes_share_the_sign_in_throttle(redis_config):
    first, second = two_processes(redis_config)
    with first.app_context():
        create_user("alice")
    one, two = first.test_client(), second.test_client()
    login(one)
    login(two)
    login(one)
    assert_throttled(login(two, password=PASSWORD))
    assert_throttled(login(one, password=PASSWORD))
