"""Channel-mode fixtures: the fake Messaging API, and the Live relay aimed at it."""

from __future__ import annotations

import pytest

from tests.fakes.line_live import fake_line_with_alice, live_channel_config


@pytest.fixture
def fake():
    yield from fake_line_with_alice()


@pytest.fixture
def live_overrides(fake):
    return live_channel_config(fake)
