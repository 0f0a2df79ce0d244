"""``SecretHasher``: argon2id hashes of client secrets, checked without revealing unknown ids."""

from __future__ import annotations

import base64

import pytest

from bastion.security.passwords import SecretHasher


@pytest.fixture(scope="module")
def hasher() -> SecretHasher:
    """A hasher with the cheapest argon2 cost (the tests check behaviour, not strength)."""
    return SecretHasher(time_cost=1, memory_kib=1024, parallelism=1)


async def test_the_right_secret_verifies(hasher: SecretHasher) -> None:
    """A secret verifies against its own hash."""
    secret = hasher.new_secret()
    assert await hasher.verify(hasher.hash(secret), secret) is True


@pytest.mark.parametrize("attempt", ["", "wrong", "x" * 512])
async def test_a_wrong_secret_does_not_verify(hasher: SecretHasher, attempt: str) -> None:
    """Any other secret fails."""
    stored = hasher.hash(hasher.new_secret())
    assert await hasher.verify(stored, attempt) is False


async def test_a_near_miss_does_not_verify(hasher: SecretHasher) -> None:
    """One changed character, a prefix or an extra suffix all fail."""
    secret = hasher.new_secret()
    stored = hasher.hash(secret)
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    for attempt in (flipped, secret[:-1], secret + "x", secret.upper()):
        assert await hasher.verify(stored, attempt) is False


async def test_an_unknown_client_never_verifies(hasher: SecretHasher) -> None:
    """With no stored hash (unknown client) the answer is False whatever is presented."""
    for attempt in ("", "unknown-client-", hasher.new_secret()):
        assert await hasher.verify(None, attempt) is False


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$argon2id$v=19$m=8,t=1,p=1$broken"])
async def test_a_malformed_stored_hash_does_not_verify(hasher: SecretHasher, stored: str) -> None:
    """A corrupt hash in the database is a failed check, not an exception."""
    assert await hasher.verify(stored, "anything") is False


def test_hashes_are_salted_argon2id(hasher: SecretHasher) -> None:
    """Hashes are argon2id, never contain the secret, and differ for the same secret."""
    secret = hasher.new_secret()
    first, second = hasher.hash(secret), hasher.hash(secret)
    assert first.startswith("$argon2id$")
    assert first != second
    assert secret not in first


def test_new_secrets_are_256_bit_and_url_safe(hasher: SecretHasher) -> None:
    """Generated secrets carry 256 random bits in URL-safe base64 and do not repeat."""
    secrets_ = {hasher.new_secret() for _ in range(100)}
    assert len(secrets_) == 100
    for secret in secrets_:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
        assert len(raw) == 32
