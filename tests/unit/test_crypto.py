"""Unit tests for notify_site.crypto: the token key ring."""

from __future__ import annotations

import base64
import json
import re

import pytest
from cryptography.fernet import Fernet, InvalidToken
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from notify_site.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    MissingKeyError,
    generate_key,
)

NEW = generate_key("k2")
OLD = generate_key("k1")
OLDEST = generate_key("k0")
CONTEXT = "connection:42"
SECRET = "line-access-token-4Zq9wP"


def key_text(entry: str) -> str:
    return entry.partition(":")[2]


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing([NEW, OLD])


def test_round_trip(ring):
    ciphertext = ring.encrypt(SECRET, context=CONTEXT)

    assert ring.decrypt(ciphertext, context=CONTEXT) == SECRET
    assert SECRET not in ciphertext


def test_encryption_is_randomised(ring):
    assert ring.encrypt(SECRET, context=CONTEXT) != ring.encrypt(SECRET, context=CONTEXT)


def test_ciphertext_records_the_primary_key_id(ring):
    ciphertext = ring.encrypt(SECRET, context=CONTEXT)

    key_id, separator, token = ciphertext.partition("$")
    assert (key_id, separator) == ("k2", "$")
    assert ring.key_id_of(ciphertext) == "k2"
    assert ring.primary_key_id == "k2"
    # The token after the separator really is a Fernet token under the primary key.
    payload = Fernet(key_text(NEW)).decrypt(token.encode())
    assert json.loads(payload) == {"c": CONTEXT, "v": SECRET}
    with pytest.raises(InvalidToken):
        Fernet(key_text(OLD)).decrypt(token.encode())


def test_old_keys_still_decrypt(ring):
    written_before = KeyRing([OLD]).encrypt(SECRET, context=CONTEXT)

    assert ring.key_id_of(written_before) == "k1"
    assert ring.needs_rotation(written_before) is True
    assert ring.decrypt(written_before, context=CONTEXT) == SECRET


def test_key_ids_in_order(ring):
    assert ring.key_ids == ("k2", "k1")
    assert KeyRing([OLDEST, NEW, OLD]).primary_key_id == "k0"


def test_ciphertext_moved_to_another_record_fails(ring):
    ciphertext = ring.encrypt(SECRET, context="connection:42")

    with pytest.raises(DecryptionError, match="belongs to another record") as info:
        ring.decrypt(ciphertext, context="connection:43")

    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


@pytest.mark.parametrize("position", [0, 10, 40, -5, -1])
def test_tampered_token_fails(ring, position):
    ciphertext = ring.encrypt(SECRET, context=CONTEXT)
    key_id, _, token = ciphertext.partition("$")
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[position] ^= 0x01
    tampered = f"{key_id}${base64.urlsafe_b64encode(bytes(raw)).decode()}"

    with pytest.raises(DecryptionError) as info:
        ring.decrypt(tampered, context=CONTEXT)

    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_relabelled_key_id_fails(ring):
    ciphertext = ring.encrypt(SECRET, context=CONTEXT)
    relabelled = "k1$" + ciphertext.partition("$")[2]

    with pytest.raises(DecryptionError, match="integrity"):
        ring.decrypt(relabelled, context=CONTEXT)


def test_same_id_but_different_key_fails():
    ciphertext = KeyRing([generate_key("k1")]).encrypt(SECRET, context=CONTEXT)

    with pytest.raises(DecryptionError):
        KeyRing([generate_key("k1")]).decrypt(ciphertext, context=CONTEXT)


def test_missing_key_names_the_id(ring):
    ciphertext = KeyRing([OLDEST]).encrypt(SECRET, context=CONTEXT)

    with pytest.raises(MissingKeyError) as info:
        ring.decrypt(ciphertext, context=CONTEXT)

    assert info.value.key_id == "k0"
    assert isinstance(info.value, KeyRingError)
    assert str(info.value) == (
        "token key 'k0' is not in TOKEN_KEYS; add it back to the ring to read this value"
    )


@pytest.mark.parametrize(
    "ciphertext",
    [
        "",
        "no-separator-here",
        "k2$",
        "$gAAAAAB",
        "bad id$gAAAAAB",
        "k2$not a fernet token",
        "k2$gAAAAAB",
    ],
)
def test_malformed_ciphertext_fails(ring, ciphertext):
    with pytest.raises(DecryptionError):
        ring.decrypt(ciphertext, context=CONTEXT)


def test_a_fernet_token_without_a_ring_payload_fails():
    raw = Fernet(key_text(NEW)).encrypt(b"just the token, no context").decode()

    with pytest.raises(DecryptionError, match="payload"):
        KeyRing([NEW]).decrypt(f"k2${raw}", context=CONTEXT)


def test_rotation_moves_to_the_primary_key(ring):
    old_ciphertext = KeyRing([OLD]).encrypt(SECRET, context=CONTEXT)

    rotated = ring.rotate(old_ciphertext, context=CONTEXT)

    assert ring.key_id_of(rotated) == "k2"
    assert ring.needs_rotation(rotated) is False
    assert ring.decrypt(rotated, context=CONTEXT) == SECRET
    # Once rotated, the old key is no longer needed.
    assert KeyRing([NEW]).decrypt(rotated, context=CONTEXT) == SECRET


def test_rotation_keeps_the_original_timestamp(ring):
    payload = json.dumps({"c": CONTEXT, "v": SECRET}).encode()
    written_2001 = Fernet(key_text(OLD)).encrypt_at_time(payload, current_time=1_000_000_000)
    old_ciphertext = f"k1${written_2001.decode()}"

    rotated = ring.rotate(old_ciphertext, context=CONTEXT)

    assert ring.decrypt(rotated, context=CONTEXT) == SECRET
    token = rotated.partition("$")[2].encode()
    assert Fernet(key_text(NEW)).extract_timestamp(token) == 1_000_000_000


def test_rotation_of_a_current_value_returns_it_unchanged(ring):
    current = ring.encrypt(SECRET, context=CONTEXT)

    assert ring.needs_rotation(current) is False
    assert ring.rotate(current, context=CONTEXT) == current


def test_rotation_still_checks_the_context(ring):
    old_ciphertext = KeyRing([OLD]).encrypt(SECRET, context="connection:1")
    current = ring.encrypt(SECRET, context="connection:1")

    with pytest.raises(DecryptionError, match="another record"):
        ring.rotate(old_ciphertext, context="connection:2")
    with pytest.raises(DecryptionError, match="another record"):
        ring.rotate(current, context="connection:2")


def test_rotation_of_a_value_under_a_missing_key_fails(ring):
    lost = KeyRing([OLDEST]).encrypt(SECRET, context=CONTEXT)

    assert ring.needs_rotation(lost) is True
    with pytest.raises(MissingKeyError):
        ring.rotate(lost, context=CONTEXT)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "non-empty list"),
        # The key is new each run: its own id keeps the test's name the same everywhere
        # (pytest-xdist's processes must collect the same names).
        pytest.param("k1:" + key_text(NEW), "non-empty list", id="a-string-not-a-list"),
        ([None], "entry 1 is not a string"),
        ([NEW, key_text(OLD)], "entry 2 is not in the form"),
        ([f"bad id:{key_text(NEW)}"], "entry 1 has an invalid key id"),
        ([f"{'x' * 33}:{key_text(NEW)}"], "entry 1 has an invalid key id"),
        ([f":{key_text(NEW)}"], "entry 1 has an invalid key id"),
        (["k1:" + key_text(NEW)[:-2]], "token key 'k1' is not a Fernet key"),
        (["k1:" + key_text(NEW).replace("=", "")], "token key 'k1' is not a Fernet key"),
        (["k1:" + base64.b64encode(b"\xfb" * 32).decode()], "token key 'k1' is not a Fernet key"),
        (["k1:" + key_text(NEW)[:20] + "!" + key_text(NEW)[21:]], "'k1' is not a Fernet key"),
        (["k1:"], "token key 'k1' is not a Fernet key"),
        ([NEW, "k2:" + key_text(OLD)], "'k2' appears more than once"),
    ],
)
def test_bad_configuration_is_rejected_without_leaking_keys(keys, message):
    with pytest.raises(KeyRingError) as info:
        KeyRing(keys)

    text = str(info.value) + repr(info.value)
    assert message in text
    for entry in [NEW, OLD]:
        assert key_text(entry) not in text
        assert key_text(entry)[:20] not in text
    assert info.value.__cause__ is None


def test_entry_whitespace_is_tolerated():
    assert KeyRing([f"  {NEW} "]).key_ids == ("k2",)


def test_repr_hides_key_material(ring):
    text = repr(ring) + str(ring)

    assert text == "KeyRing(key_ids=('k2', 'k1'))" * 2
    assert key_text(NEW) not in text
    assert key_text(OLD) not in text


def test_generate_key_format():
    entry = generate_key()

    assert re.fullmatch(r"k[0-9a-f]{8}:[A-Za-z0-9_-]{43}=", entry)
    assert generate_key() != entry
    assert KeyRing([entry]).primary_key_id == entry.partition(":")[0]


def test_generate_key_with_an_id():
    assert generate_key("2024-06_a").startswith("2024-06_a:")
    with pytest.raises(KeyRingError):
        generate_key("has:colon")


def test_context_must_be_given(ring):
    with pytest.raises(ValueError, match="context"):
        ring.encrypt(SECRET, context="")


# Built once: hypothesis runs the test body many times and function-scoped fixtures are not
# reset between examples.
PROPERTY_RING = KeyRing([generate_key("p2"), generate_key("p1")])


@settings(max_examples=200, database=None, deadline=None)
@given(plaintext=st.text(), context=st.text(min_size=1))
def test_round_trip_property(plaintext, context):
    ciphertext = PROPERTY_RING.encrypt(plaintext, context=context)

    assert PROPERTY_RING.decrypt(ciphertext, context=context) == plaintext
    assert PROPERTY_RING.key_id_of(ciphertext) == "p2"


@settings(max_examples=100, database=None, deadline=None)
@given(
    plaintext=st.text(),
    context=st.text(min_size=1),
    other=st.text(min_size=1),
)
def test_other_context_never_decrypts_property(plaintext, context, other):
    assume(other != context)
    ciphertext = PROPERTY_RING.encrypt(plaintext, context=context)

    with pytest.raises(DecryptionError, match="another record"):
        PROPERTY_RING.decrypt(ciphertext, context=other)


def test_lone_surrogates_round_trip(ring):
    odd = "a\ud800b\udfff"

    assert ring.decrypt(ring.encrypt(odd, context=CONTEXT), context=CONTEXT) == odd
