"""Counters in a `limits` store: memory for one node, Redis for many.

The window algorithms are the library's (moving window or sliding-window counter).
On Redis each hit is one atomic Lua script; in memory the library's synchronous
store is called directly (no awaits or locks on the event loop; its expiry sweep
runs in its own thread). Keys do not include the quota's size, so a quota that
changes (an override, a learned baseline) keeps counting where it was.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from math import floor, inf
from typing import Literal, cast

from limits.aio.storage import MovingWindowSupport, RedisStorage, SlidingWindowCounterSupport
from limits.aio.storage import Storage as RemoteStorage
from limits.storage import MemoryStorage

Strategy = Literal["moving-window", "sliding-window-counter"]
Store = RemoteStorage | MemoryStorage


@dataclass(frozen=True, slots=True)
class Window:
    """A counter's state after a hit: what is left, and when the next unit frees up."""

    allowed: bool
    remaining: int
    reset_at: float


class StoreFailure(Exception):
    """The counter store could not be reached or answered with an error."""


class LocalStorage(MemoryStorage):
    """The library's memory store, sweeping expired entries once a second.

    The library sweeps every key 10 ms after any hit, in a thread that holds the GIL
    for the whole sweep: with thousands of keys that thread is always running and
    every request on the event loop waits for it. Expiry does not depend on the sweep
    (every read compares timestamps); the sweep only frees memory, so once a second
    is plenty. This overrides the library's private scheduling hook, by its mangled
    name; ``tests/security/ratelimit/test_counters.py`` checks the sweep still runs.
    """

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = time.monotonic() + self.SWEEP_SECONDS

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the library's name
        now = time.monotonic()
        if now < self._next_sweep or self.timer.is_alive():
            return
        self._next_sweep = now + self.SWEEP_SECONDS
        sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
        self.timer = threading.Timer(0.0, sweep)
        self.timer.daemon = True
        self.timer.start()


def open_store(url: str, *, key_prefix: str, timeout: float) -> Store:
    """A `limits` storage for ``url`` (``memory://`` or ``redis://…``)."""
    if url.startswith("memory://"):
        return LocalStorage()
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


def _sliding_window(
    limit: int, window: int, allowed: bool, state: tuple[int, float, int, float]
) -> Window:
    """The remaining count and reset time of a sliding-window counter (as `limits` does)."""
    prev, prev_ttl, cur, cur_ttl = state
    weighted = prev * prev_ttl / window + cur
    reset_in = inf
    if prev:
        reset_in = prev_ttl % (window / prev)
    if cur:
        reset_in = min(reset_in, cur_ttl % window)
    now = time.time()
    reset_at = now if reset_in == inf else now + reset_in
    return Window(allowed, max(0, limit - floor(weighted)), reset_at)


class Counters:
    """Hits and reads windows of one store with one strategy."""

    def __init__(self, storage: Store, strategy: Strategy, timeout: float) -> None:
        self.storage = storage
        self.strategy = strategy
        self.timeout = timeout
        self.remote = not isinstance(storage, MemoryStorage)

    async def hit(self, key: str, limit: int, window: int) -> Window:
        """Count one request against ``key`` unless that would exceed ``limit``."""
        if isinstance(self.storage, MemoryStorage):
            return self.hit_local(key, limit, window)
        count = self._moving if self.strategy == "moving-window" else self._sliding
        try:
            async with asyncio.timeout(self.timeout):
                return await count(self.storage, key, limit, window)
        except Exception as exc:  # any store error means the same thing here
            raise StoreFailure(type(exc).__name__) from exc

    async def close(self) -> None:
        """Close the Redis connections (the memory store has none)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    def hit_local(self, key: str, limit: int, window: int) -> Window:
        """``hit`` on the memory store, without a coroutine (the store never waits)."""
        store = cast(MemoryStorage, self.storage)
        if self.strategy == "moving-window":
            allowed = store.acquire_entry(key, limit, window)
            start, count = store.get_moving_window(key, limit, window)
            return Window(allowed, max(0, limit - count), start + window)
        allowed = store.acquire_sliding_window_entry(key, limit, window, 1)
        return _sliding_window(limit, window, allowed, store.get_sliding_window(key, window))

    @staticmethod
    async def _moving(store: RemoteStorage, key: str, limit: int, window: int) -> Window:
        moving = cast(MovingWindowSupport, store)
        allowed = await moving.acquire_entry(key, limit, window)
        start, count = await moving.get_moving_window(key, limit, window)
        return Window(allowed, max(0, limit - count), start + window)

    @staticmethod
    async def _sliding(store: RemoteStorage, key: str, limit: int, window: int) -> Window:
        sliding = cast(SlidingWindowCounterSupport, store)
        allowed = await sliding.acquire_sliding_window_entry(key, limit, window, 1)
        return _sliding_window(
            limit, window, allowed, await sliding.get_sliding_window(key, window)
        )
