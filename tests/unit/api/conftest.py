"""Fixtures of the JSON API v1 tests."""

from __future__ import annotations

import pytest

from tests.unit.api.calls import World, make_world


@pytest.fixture
def world(app) -> World:
    """An admin, alice and bob with their chats, and an API key each."""
    return make_world(app)
