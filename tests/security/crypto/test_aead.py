"""The AEAD recipe: round trips, and every failure is the same opaque error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.security.crypto import aead


@given(st.binary(max_size=4096), st.binary(max_size=256))
def test_round_trip(plaintext: bytes, aad: bytes) -> None:
    """What is sealed opens with the same key and AAD, and is never the plaintext."""
    key = aead.new_key()
    sealed = aead.seal(key, plaintext, aad)
    assert len(sealed) == len(plaintext) + aead.OVERHEAD
    assert aead.unseal(key, sealed, aad) == plaintext


@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_flipped_bit_fails(plaintext: bytes, data: st.DataObject) -> None:
    """Flipping any bit of nonce, ciphertext or tag makes opening fail."""
    key = aead.new_key()
    sealed = bytearray(aead.seal(key, plaintext, b"ctx"))
    index = data.draw(st.integers(0, len(sealed) - 1))
    sealed[index] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(aead.InvalidCiphertext):
        aead.unseal(key, bytes(sealed), b"ctx")


def test_wrong_key_and_wrong_aad_fail_alike() -> None:
    """Another key or another context: the same error, saying nothing more."""
    key = aead.new_key()
    sealed = aead.seal(key, b"hello", b"app|messages|body|msg_1")
    for bad_key, bad_aad in (
        (aead.new_key(), b"app|messages|body|msg_1"),
        (key, b"app|messages|body|msg_2"),
    ):
        with pytest.raises(aead.InvalidCiphertext) as caught:
            aead.unseal(bad_key, sealed, bad_aad)
        assert str(caught.value) == "the ciphertext could not be opened"
    with pytest.raises(aead.InvalidCiphertext):
        aead.unseal(key, sealed[:10], b"")


def test_nonces_are_fresh() -> None:
    """Sealing the same value twice gives different ciphertexts."""
    key = aead.new_key()
    assert aead.seal(key, b"same", b"") != aead.seal(key, b"same", b"")


def test_derived_keys_are_separate() -> None:
    """HKDF gives each app (info) its own key; scrypt depends on salt and passphrase."""
    root = aead.new_key()
    assert aead.derive_key(root, b"kek|app_a") != aead.derive_key(root, b"kek|app_b")
    one = aead.derive_master_key("correct horse", b"s" * 16, n=2**10, r=8, p=1)
    assert one == aead.derive_master_key("correct horse", b"s" * 16, n=2**10, r=8, p=1)
    assert one != aead.derive_master_key("correct horse", b"t" * 16, n=2**10, r=8, p=1)
    assert len(one) == aead.KEY_BYTES


@given(st.lists(st.binary(max_size=80), max_size=20))
def test_index_mac_is_hmac_sha256_under_the_key(messages: list[bytes]) -> None:
    """The keyed-once HMAC gives the one-shot digests, call after call, and none other's."""
    key, other = aead.new_key(), aead.new_key()
    mac = aead.index_mac(key)
    assert [mac(m) for m in messages] == [aead.index_hmac(key, m) for m in messages]
    assert all(mac(m) != aead.index_mac(other)(m) for m in messages)
