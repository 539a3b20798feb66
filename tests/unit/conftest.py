"""Unit tests never reach the network: an outbound HTTP call that no test mocked fails the test.

``responses`` refuses such a call with a ConnectionError, but the code under test may well
catch it: ``notify_client`` turns every ConnectionError into a retryable NetworkError, which
the worker records and moves on from, so the refusal alone proved nothing. Each refused call is
therefore also recorded, and a test that made one fails once its body has run (or, for a call
made while fixtures were torn down, at teardown), naming the calls.
"""

from __future__ import annotations

import re

import pytest
import responses
from responses.registries import FirstMatchRegistry


class RecordingRegistry(FirstMatchRegistry):
    """responses' default registry, noting each request that no mock matched."""

    def __init__(self) -> None:
        super().__init__()
        self.unmatched: list[tuple[str, str]] = []

    def find(self, request):
        match, reasons = super().find(request)
        if match is None:
            self.unmatched.append((request.method, request.url))
        return match, reasons

    def take_unmatched(self, passthru_prefixes) -> list[str]:
        """The calls recorded so far, but those let through on purpose; and forget them."""

        def let_through(url: str) -> bool:
            return any(
                prefix.match(url) if isinstance(prefix, re.Pattern) else url.startswith(prefix)
                for prefix in passthru_prefixes
            )

        found = [f"{method} {url}" for method, url in self.unmatched if not let_through(url)]
        self.unmatched.clear()
        return found


_MOCK = pytest.StashKey[responses.RequestsMock]()


def _unmocked_calls(mock: responses.RequestsMock) -> str | None:
    registry = mock.get_registry()
    # A test that replaced the registry (mock.reset()) would silently lose the guard.
    assert isinstance(registry, RecordingRegistry), "the HTTP guard's registry was replaced"
    calls = registry.take_unmatched(mock.passthru_prefixes)
    if not calls:
        return None
    return "un-mocked outbound HTTP (add a mock for it): " + ", ".join(calls)


@pytest.fixture(autouse=True)
def mocked_http(request):
    """The ``responses`` mock every unit test runs under; register answers on it."""
    with responses.RequestsMock(
        assert_all_requests_are_fired=False, registry=RecordingRegistry
    ) as mock:
        request.node.stash[_MOCK] = mock
        yield mock
        problem = _unmocked_calls(mock)
        if problem:
            pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test itself, not only its teardown, when its body made an un-mocked call.

    A test that failed on its own keeps its own failure (the calls are reported at teardown).
    """
    result = yield
    mock = item.stash.get(_MOCK, None)
    problem = mock and _unmocked_calls(mock)
    if problem:
        pytest.fail(problem, pytrace=False)
    return result
