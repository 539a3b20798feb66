"""The app's token key ring, and the registry of columns that hold its ciphertexts.

Shared plumbing: both houses encrypt secrets at rest under the one ring in ``TOKEN_KEYS``
(:mod:`notify_site.crypto`), and each house declares the columns it keeps them in with
:func:`add_encrypted_column` when it is initialised. ``flask rotate-keys``
(:mod:`notify_site.keyrotation`) moves every registered column to the newest key, without
knowing which house owns it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import InstrumentedAttribute

from notify_site import seams
from notify_site.crypto import KeyRing

_EXTENSION = "notify_site.keyring"


def keyring() -> KeyRing:
    """The running app's key ring from ``TOKEN_KEYS`` (newest key first), built once."""
    ring = current_app.extensions.get(_EXTENSION)
    if ring is None:
        ring = KeyRing(current_app.config["TOKEN_KEYS"])
        current_app.extensions[_EXTENSION] = ring
    return ring


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of key-ring ciphertexts, and how to find each value's context."""

    label: str
    row_key: InstrumentedAttribute
    value: InstrumentedAttribute
    context: Callable[[Any], str]
    # Columns to keep as they are on the rewrite (an onupdate timestamp, say): re-encrypting a
    # value is not a change anyone made to the row.
    preserve: tuple[InstrumentedAttribute, ...] = ()


def add_encrypted_column(app: Flask, column: EncryptedColumn) -> None:
    """Declare a column of key-ring ciphertexts, so that key rotation moves it too."""
    seams.add(app, seams.ENCRYPTED_COLUMNS, column)


def encrypted_columns(app: Flask | None = None) -> tuple[EncryptedColumn, ...]:
    """Every declared column, in the order the houses declared them."""
    return seams.items(app or current_app._get_current_object(), seams.ENCRYPTED_COLUMNS)
