"""The DPoP ``jti`` replay cache shared by every node (RFC 9449 §11.1), in Redis.

Behind a load balancer a proof used at one node must be refused at every other, so
each node records the proof in the same store: one ``SET key 1 NX PX ttl`` round
trip, which either creates the key (first use) or finds it (a replay). The key is a
hash of the key thumbprint and ``jti``, so a long ``jti`` costs the store no more.

When the store cannot answer in time the proof is refused with ``Unavailable``
(503): accepting a proof that could not be checked would let a replay through.
"""

from __future__ import annotations

import asyncio
import hashlib
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bastion.core.errors import Unavailable
from bastion.observe.logging import get_logger

_log = get_logger("bastion.dpop")
SCHEMES = ("redis://", "rediss://", "redis+unix://")


def is_shared(url: str) -> bool:
    """Whether ``url`` names a shared (Redis) store rather than this process's memory."""
    return url.startswith(SCHEMES)


class RedisReplayStore:
    """Used proofs, remembered in Redis for as long as they could be replayed."""

    def __init__(self, url: str, *, key_prefix: str, timeout: float) -> None:
        # redis+unix:// is the limits library's spelling; redis-py calls it unix://.
        client_url = "unix://" + url.removeprefix("redis+unix://") if "+unix" in url else url
        self._client = Redis.from_url(
            client_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._prefix = f"{key_prefix}:dpop:"
        self._timeout = timeout

    async def first_use(self, key: str, ttl: float, now: float) -> bool:
        """``SET NX PX``: True when this call created the key, False for a replay."""
        name = self._prefix + hashlib.sha256(key.encode()).hexdigest()
        try:
            async with asyncio.timeout(self._timeout):
                created = await self._client.set(name, b"1", nx=True, px=math.ceil(ttl * 1000))
        except (RedisError, OSError, TimeoutError) as exc:
            _log.warning("dpop.replay_store_failed", error=type(exc).__name__)
            raise Unavailable(
                "DPoP proofs cannot be checked for replay right now; retry shortly."
            ) from exc
        return bool(created)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()
