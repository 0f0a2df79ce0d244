"""Client secrets: argon2id hashes, verified off the event loop in constant time."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_SECRET_BYTES = 32
# A valid hash to verify against when the client is unknown, so the response time
# does not reveal whether a client id exists.
_DUMMY_SECRET = "unknown-client-" + secrets.token_urlsafe(16)


class SecretHasher:
    """Hashes and checks secrets with argon2id; slow by design, so it runs in a thread."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._dummy_hash = self._hasher.hash(_DUMMY_SECRET)

    @staticmethod
    def new_secret() -> str:
        """Return a fresh random secret (256 bits, URL-safe)."""
        return secrets.token_urlsafe(_SECRET_BYTES)

    def hash(self, secret: str) -> str:
        """Return the argon2id hash of ``secret``."""
        return self._hasher.hash(secret)

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """Tell whether ``secret`` matches; with no hash, spend the same time and say no."""
        target = stored_hash or self._dummy_hash
        matched = await asyncio.to_thread(self._check, target, secret)
        return matched and stored_hash is not None

    def _check(self, stored_hash: str, secret: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
