"""Counters in a `limits` store: memory for one node, Redis for many.

The window algorithms are the library's (moving window or sliding-window counter);
each hit is one atomic operation on the store (a Lua script on Redis). Keys do not
include the quota's size, so a quota that changes (an override, a learned baseline)
keeps counting where it was.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from math import floor, inf
from typing import Literal, cast

from limits.aio.storage import (
    MemoryStorage,
    MovingWindowSupport,
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
)

Strategy = Literal["moving-window", "sliding-window-counter"]


@dataclass(frozen=True, slots=True)
class Window:
    """A counter's state after a hit: what is left, and when the next unit frees up."""

    allowed: bool
    remaining: int
    reset_at: float


class StoreFailure(Exception):
    """The counter store could not be reached or answered with an error."""


def open_store(url: str, *, key_prefix: str, timeout: float) -> Storage:
    """A `limits` async storage for ``url`` (``memory://`` or ``redis://…``)."""
    if url.startswith("memory://"):
        return MemoryStorage()
    if not url.startswith(("redis://", "rediss://", "redis+unix://")):
        raise ValueError(f"unsupported rate-limit store {url.split(':', 1)[0]!r}")
    return RedisStorage(
        f"async+{url}",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=key_prefix,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


class Counters:
    """Hits and reads windows of one store with one strategy."""

    def __init__(self, storage: Storage, strategy: Strategy, timeout: float) -> None:
        self.storage = storage
        self.strategy = strategy
        self.timeout = timeout
        self.remote = not isinstance(storage, MemoryStorage)

    async def hit(self, key: str, limit: int, window: int) -> Window:
        """Count one request against ``key`` unless that would exceed ``limit``."""
        try:
            async with asyncio.timeout(self.timeout):
                if self.strategy == "moving-window":
                    return await self._moving(key, limit, window)
                return await self._sliding(key, limit, window)
        except StoreFailure:
            raise
        except Exception as exc:  # any store error means the same thing here
            raise StoreFailure(type(exc).__name__) from exc

    async def clear(self, key: str, window: int) -> None:
        """Forget the counts of ``key`` (an operator reset)."""
        if self.strategy == "moving-window":
            await self.storage.clear(key)
        else:
            await cast(SlidingWindowCounterSupport, self.storage).clear_sliding_window(key, window)

    async def _moving(self, key: str, limit: int, window: int) -> Window:
        store = cast(MovingWindowSupport, self.storage)
        allowed = await store.acquire_entry(key, limit, window)
        start, count = await store.get_moving_window(key, limit, window)
        return Window(allowed, max(0, limit - count), start + window)

    async def _sliding(self, key: str, limit: int, window: int) -> Window:
        store = cast(SlidingWindowCounterSupport, self.storage)
        allowed = await store.acquire_sliding_window_entry(key, limit, window, 1)
        prev, prev_ttl, cur, cur_ttl = await store.get_sliding_window(key, window)
        weighted = prev * prev_ttl / window + cur
        now = time.time()
        reset_in = inf
        if prev:
            reset_in = prev_ttl % (window / prev)
        if cur:
            reset_in = min(reset_in, cur_ttl % window)
        reset_at = now if reset_in == inf else now + reset_in
        return Window(allowed, max(0, limit - floor(weighted)), reset_at)
