"""The token key ring: encrypts access tokens at rest under named Fernet keys.

Configuration (``TOKEN_KEYS``) is a list of ``"<key-id>:<fernet-key>"`` strings, newest first.
The first key is the *primary*: everything new is encrypted under it. The others stay in the
ring only so that values written under them can still be read, until ``rotate`` has moved
every stored value to the primary key and the old key can be dropped.

A ciphertext is ``"<key-id>$<fernet token>"``. Recording the key id means decryption never has
to guess: an unknown id is reported as :class:`MissingKeyError` instead of silently trying every
key. ``$`` can appear neither in a key id (``[A-Za-z0-9_-]``) nor in a Fernet token (url-safe
base64), so the split is unambiguous.

Every value is bound to a *context* naming the record that owns it (e.g. ``"connection:42"``):
the encrypted payload is ``{"c": context, "v": plaintext}``. A ciphertext copied onto another
row therefore fails to decrypt there rather than handing one user's token to another.

No message raised by this module contains key material or plaintext.
"""

from __future__ import annotations

import json
import re
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "DecryptionError",
    "KeyRing",
    "KeyRingError",
    "MissingKeyError",
    "generate_key",
]

KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
# A Fernet key is 32 bytes in url-safe base64: 43 characters and one "=" of padding. Checked
# strictly because the base64 decoder silently skips characters outside its alphabet.
_FERNET_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}=")
SEPARATOR = "$"


class KeyRingError(Exception):
    """The key ring is misconfigured, or a value cannot be read with it."""


class MissingKeyError(KeyRingError):
    """A ciphertext names a key id that is not in the ring."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"token key {key_id!r} is not in TOKEN_KEYS; add it back to the ring to read this value"
        )


class DecryptionError(KeyRingError):
    """A ciphertext is malformed, was altered, or belongs to another record."""


class KeyRing:
    """Named Fernet keys, primary (newest) first."""

    def __init__(self, keys: list[str]) -> None:
        """Parse and check ``keys``; raise :class:`KeyRingError` naming the offending key id.

        Messages name an entry by its key id, or by its position when the id itself is not
        valid (the text before the colon might then be key material), and never quote a key.
        """
        if isinstance(keys, str | bytes) or not keys:
            raise KeyRingError("TOKEN_KEYS must be a non-empty list of 'key-id:fernet-key' strings")
        self._fernets: dict[str, Fernet] = {}
        for position, entry in enumerate(keys, start=1):
            key_id, fernet = _parse_entry(entry, position)
            if key_id in self._fernets:
                raise KeyRingError(f"token key id {key_id!r} appears more than once in TOKEN_KEYS")
            self._fernets[key_id] = fernet
        self._primary_key_id = next(iter(self._fernets))

    @property
    def primary_key_id(self) -> str:
        """The id of the key that encrypts new values."""
        return self._primary_key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id in the ring, primary first."""
        return tuple(self._fernets)

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={self.key_ids!r})"

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` under the primary key, bound to ``context``."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be a str")
        _check_context(context)
        # ensure_ascii keeps lone surrogates representable, so every str round-trips.
        payload = json.dumps({"c": context, "v": plaintext}, separators=(",", ":"))
        token = self._fernets[self._primary_key_id].encrypt(payload.encode("ascii"))
        return f"{self._primary_key_id}{SEPARATOR}{token.decode('ascii')}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        """Return the plaintext of ``ciphertext``, which must have been bound to ``context``.

        Raises :class:`MissingKeyError` when the recorded key id is not in the ring and
        :class:`DecryptionError` when the value is malformed, altered, or bound to another
        context. There is no fallback to other keys.
        """
        _check_context(context)
        key_id, token = _split(ciphertext)
        fernet = self._fernets.get(key_id)
        if fernet is None:
            raise MissingKeyError(key_id)
        try:
            payload = fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            raise DecryptionError(
                f"ciphertext under token key {key_id!r} failed its integrity check: it was "
                "altered, or written with a different key that had the same id"
            ) from None
        try:
            record = json.loads(payload)
        except ValueError:
            record = None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("c"), str)
            or not isinstance(record.get("v"), str)
        ):
            raise DecryptionError("ciphertext does not hold a key-ring payload")
        if record["c"] != context:
            raise DecryptionError(
                f"ciphertext belongs to another record (expected context {context!r})"
            )
        return record["v"]

    def key_id_of(self, ciphertext: str) -> str:
        """The id of the key ``ciphertext`` was written under (which may not be in the ring)."""
        return _split(ciphertext)[0]

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when ``ciphertext`` is not under the primary key."""
        return self.key_id_of(ciphertext) != self._primary_key_id

    def rotate(self, ciphertext: str, *, context: str) -> str:
        """Return ``ciphertext`` re-encrypted under the primary key.

        The value is decrypted first, so a value bound to another context or written under a
        missing key raises exactly as :meth:`decrypt` does. A value already under the primary
        key is returned unchanged, which lets callers count what actually changed. The Fernet
        timestamp of the original is kept.
        """
        self.decrypt(ciphertext, context=context)
        key_id, token = _split(ciphertext)
        if key_id == self._primary_key_id:
            return ciphertext
        rotator = MultiFernet([self._fernets[self._primary_key_id], self._fernets[key_id]])
        new_token = rotator.rotate(token.encode("ascii"))
        return f"{self._primary_key_id}{SEPARATOR}{new_token.decode('ascii')}"


def generate_key(key_id: str | None = None) -> str:
    """A new ``"key-id:fernet-key"`` entry; the id defaults to ``k`` and 8 random hex digits."""
    if key_id is None:
        key_id = f"k{secrets.token_hex(4)}"
    elif not isinstance(key_id, str) or not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyRingError("a token key id is 1 to 32 characters from A-Z, a-z, 0-9, '_' and '-'")
    return f"{key_id}:{Fernet.generate_key().decode('ascii')}"


def _parse_entry(entry: object, position: int) -> tuple[str, Fernet]:
    if not isinstance(entry, str):
        raise KeyRingError(f"TOKEN_KEYS entry {position} is not a string")
    key_id, colon, key = entry.strip().partition(":")
    if not colon:
        raise KeyRingError(f"TOKEN_KEYS entry {position} is not in the form 'key-id:fernet-key'")
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise KeyRingError(
            f"TOKEN_KEYS entry {position} has an invalid key id: use 1 to 32 characters from "
            "A-Z, a-z, 0-9, '_' and '-'"
        )
    if not _FERNET_KEY_PATTERN.fullmatch(key):
        raise KeyRingError(
            f"token key {key_id!r} is not a Fernet key (32 bytes in url-safe base64, 44 characters)"
        )
    try:
        return key_id, Fernet(key)
    except ValueError:
        raise KeyRingError(f"token key {key_id!r} is not a usable Fernet key") from None


def _split(ciphertext: str) -> tuple[str, str]:
    if not isinstance(ciphertext, str):
        raise DecryptionError("ciphertext must be a str")
    key_id, separator, token = ciphertext.partition(SEPARATOR)
    if not separator or not token or not KEY_ID_PATTERN.fullmatch(key_id):
        raise DecryptionError("ciphertext is not in the form '<key-id>$<fernet token>'")
    return key_id, token


def _check_context(context: str) -> None:
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty str naming the record, e.g. 'connection:42'")
