"""The Notify client's session reads the environment's proxy and CA settings once per server
(notify_client.EnvironmentOnceSession), and still honours them as requests would."""

from __future__ import annotations

from unittest import mock

import pytest
import requests

from notify_site import notify_client
from notify_site.notify_client import EnvironmentOnceSession, NotifyClient

ORIGIN = "http://relay.test/relay"
OTHER = "http://other.test/relay"
OK = {"status": 200, "message": "ok"}
PROXY = "http://proxy.test:3128"


@pytest.fixture
def mocked(mocked_http):
    mocked_http.assert_all_requests_are_fired = True
    return mocked_http


@pytest.fixture
def clean_environment(monkeypatch):
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def sent_kwargs(mocked, index: int) -> dict:
    return mocked.calls[index].request.req_kwargs


def test_the_environment_s_proxy_is_used_as_requests_would(mocked, clean_environment):
    clean_environment.setenv("HTTP_PROXY", PROXY)
    mocked.post(f"{ORIGIN}/api/notify", json=OK)
    plain = requests.Session()
    mocked.post(f"{ORIGIN}/api/notify", json=OK)

    with NotifyClient(ORIGIN) as client:
        client.notify("token", "hello")
    plain.post(f"{ORIGIN}/api/notify", data={"message": "hello"}, timeout=5)

    ours, theirs = sent_kwargs(mocked, 0), sent_kwargs(mocked, 1)
    assert ours["proxies"]["http"] == PROXY
    assert (ours["proxies"], ours["verify"]) == (theirs["proxies"], theirs["verify"])


def test_no_proxy_and_the_ca_bundle_are_honoured(mocked, clean_environment):
    clean_environment.setenv("HTTP_PROXY", PROXY)
    clean_environment.setenv("NO_PROXY", "relay.test")
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/bench-ca.pem")
    mocked.post(f"{ORIGIN}/api/notify", json=OK)
    mocked.post(f"{OTHER}/api/notify", json=OK)

    with NotifyClient(ORIGIN) as client:
        client.notify("token", "hello")
    with NotifyClient(OTHER) as other:
        other.notify("token", "hello")

    bypassed, proxied = sent_kwargs(mocked, 0), sent_kwargs(mocked, 1)
    assert "http" not in bypassed["proxies"]
    assert proxied["proxies"]["http"] == PROXY
    assert bypassed["verify"] == proxied["verify"] == "/etc/ssl/bench-ca.pem"


def test_the_environment_is_read_once_per_server(mocked, clean_environment):
    for _ in range(3):
        mocked.post(f"{ORIGIN}/api/notify", json=OK)
    mocked.get(f"{OTHER}/api/status", json={**OK, "targetType": "USER", "target": "x"})
    session = EnvironmentOnceSession()
    client = NotifyClient(ORIGIN, session=session)
    other = NotifyClient(OTHER, session=session)

    with mock.patch.object(
        notify_client, "get_environ_proxies", wraps=notify_client.get_environ_proxies
    ) as lookup:
        for n in range(3):
            client.notify("token", f"hello {n}")
        other.status("token")

    assert [call.args[0] for call in lookup.call_args_list] == [
        f"{ORIGIN}/api/notify",
        f"{OTHER}/api/status",
    ]
    session.close()


def test_a_session_that_does_not_trust_the_environment_ignores_it(mocked, clean_environment):
    clean_environment.setenv("HTTP_PROXY", PROXY)
    mocked.post(f"{ORIGIN}/api/notify", json=OK)
    session = EnvironmentOnceSession()
    session.trust_env = False

    NotifyClient(ORIGIN, session=session).notify("token", "hello")

    assert "http" not in sent_kwargs(mocked, 0)["proxies"]
    session.close()
