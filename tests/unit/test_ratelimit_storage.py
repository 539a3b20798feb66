"""The in-process rate-limit storage (notify_site/ratelimit.py SweepingMemoryStorage)."""

from __future__ import annotations

import threading

import limits.storage.memory as limits_memory
import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from notify_site import create_app, ratelimit
from notify_site.ratelimit import SweepingMemoryStorage, storage_uri
from tests.conftest import make_test_config


class Clock:
    """time.time and time.monotonic for both modules, moved by hand."""

    def __init__(self, monkeypatch) -> None:
        self.now = 1_000_000.0
        monkeypatch.setattr(limits_memory.time, "time", lambda: self.now)
        monkeypatch.setattr(ratelimit.time, "monotonic", lambda: self.now)


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def test_counting_starts_no_thread(monkeypatch):
    storage = SweepingMemoryStorage()
    started = []
    real_timer = threading.Timer

    def counting_timer(*args, **kwargs):
        started.append(args)
        return real_timer(*args, **kwargs)

    monkeypatch.setattr(limits_memory.threading, "Timer", counting_timer)
    limiter = FixedWindowRateLimiter(storage)
    item = parse("1000 per minute")
    for _ in range(500):
        assert limiter.hit(item, "key", "a")
    assert started == []
    assert limiter.get_window_stats(item, "key", "a").remaining == 500


def test_a_window_counts_to_its_limit_and_resets_after_it(clock):
    limiter = FixedWindowRateLimiter(SweepingMemoryStorage())
    item = parse("3 per minute")
    assert [limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    clock.now += 61
    assert limiter.hit(item, "k")
    assert limiter.get_window_stats(item, "k").remaining == 2


def test_expired_counters_are_swept_from_memory_at_most_once_a_second(clock):
    storage = SweepingMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    item = parse("5 per second")
    for n in range(50):
        limiter.hit(item, f"caller-{n}")
    assert len(storage.storage) == 50
    clock.now += 0.5  # the counters are still live; no sweep is due yet
    limiter.hit(item, "late")
    assert storage.sweeps == 0
    clock.now += 1.0  # every counter but "late" has expired, and a sweep is due
    limiter.hit(item, "later")
    assert storage.sweeps == 1
    remaining = set(storage.storage)
    assert len(remaining) == 1
    assert "later" in next(iter(remaining))
    limiter.hit(item, "again")  # within the second: no second sweep
    assert storage.sweeps == 1


@pytest.mark.parametrize(
    ("configured", "used"),
    [
        (None, "notify-memory://"),
        ("memory://", "notify-memory://"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_memory_uris_are_served_by_the_sweeping_storage(configured, used):
    assert storage_uri(configured) == used


def test_the_apps_limiter_counts_in_the_sweeping_storage(tmp_path):
    app = create_app(make_test_config(tmp_path))
    key_limits = app.extensions[ratelimit.KEY_LIMITS]
    assert key_limits.shared is key_limits.memory
    assert isinstance(key_limits.memory.storage, SweepingMemoryStorage)
