"""Counters in a `limits` store: memory for one node, Redis for many.

The window algorithms are the library's (moving window or sliding-window counter).
On Redis each hit is one atomic Lua script; in memory the library's synchronous
store is called directly (no awaits or locks on the event loop; its expiry sweep
runs in its own thread). Keys do not include the quota's size, so a quota that
changes (an override, a learned baseline) keeps counting where it was.

A ``rediss://`` store speaks TLS (1.2 at least) and verifies the server's certificate
against ``transport.redis_ca_file`` (else the system's CAs), checking the host name
unless told not to; it can present a client certificate. A certificate the store
refuses, or that refuses the store, stops the server at start with a message saying
so: that is a configuration error, not an outage the fail modes should absorb.
"""

from __future__ import annotations

import asyncio
import bisect
import ssl
import threading
import time
from collections.abc import Awaitable, Mapping, Sequence
from math import floor, inf
from typing import Any, Literal, NamedTuple, TypeVar, cast

from limits.aio.storage import MovingWindowSupport, RedisStorage, SlidingWindowCounterSupport
from limits.aio.storage import Storage as RemoteStorage
from limits.storage import MemoryStorage
from limits.storage.memory import Entry

from bastion.core.settings import TransportSettings

Strategy = Literal["moving-window", "sliding-window-counter"]
T = TypeVar("T")
Store = RemoteStorage | MemoryStorage
Check = tuple[str, int, int]
"""One quota to count a request in: the counter key, its limit, its window in seconds."""


class Window(NamedTuple):
    """A quota's state for one request: whether it fits, what it leaves, when it frees up.

    A named tuple, not a frozen dataclass: several are made per request, and a frozen
    dataclass costs three times as much to build.
    """

    allowed: bool
    remaining: int
    reset_at: float


class StoreFailure(Exception):
    """The counter store could not be reached or answered with an error."""


class StoreTlsRefused(Exception):
    """The TLS handshake with the counter store failed: a certificate was refused."""


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind a store error, if there is one (redis-py wraps it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _describe(exc: BaseException) -> str:
    tls = tls_failure(exc)
    return f"TLS: {tls.reason or tls}" if tls is not None else type(exc).__name__


def redis_tls_options(transport: TransportSettings) -> dict[str, Any]:
    """redis-py's options for a ``rediss://`` store: verified TLS 1.2+, optional client cert."""
    options: dict[str, Any] = {
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": transport.redis_check_hostname,
        "ssl_min_version": ssl.TLSVersion.TLSv1_2,
    }
    if transport.redis_ca_file is not None:
        options["ssl_ca_certs"] = str(transport.redis_ca_file)
    if transport.redis_cert_file is not None and transport.redis_key_file is not None:
        options["ssl_certfile"] = str(transport.redis_cert_file)
        options["ssl_keyfile"] = str(transport.redis_key_file)
    return options


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

    def hit_moving_windows(self, checks: Sequence[Check]) -> list[Window]:
        """Count one request in every moving window of ``checks`` if all of them have room.

        One call for all of a policy's quotas, with the arithmetic of the library's
        ``get_moving_window`` and ``acquire_entry`` on its own entry lists (newest
        first), without their per-call wrappers. The event loop is the only writer; the
        sweep thread only trims expired entries, replacing a key's list under the key's
        lock, so an entry is added under that lock too (or it could land in a list
        that is being replaced).
        """
        self._MemoryStorage__schedule_expiry()
        now = time.time()
        windows = [self._moving_window(key, limit, window, now) for key, limit, window in checks]
        if all(w.allowed for w in windows):
            for key, _limit, window in checks:
                with self.locks[key]:
                    self.events.setdefault(key, [])[:0] = [Entry(window)]
        return windows

    def _moving_window(self, key: str, limit: int, window: int, now: float) -> Window:
        """What one more request would leave of one moving window (counts nothing).

        Reading needs no lock: the sweep replaces a list, it never changes one in place.
        """
        events = self.events.get(key)
        if not events:
            return Window(True, limit - 1, now + window)
        since = now - window
        if events[-1].atime > since:  # nothing has expired yet: no need to search
            count = len(events)
        else:
            count = bisect.bisect_left(events, -since, key=_newest_first)
        # acquire_entry's own test: the limit-th newest entry is still in the window.
        full = len(events) >= limit and events[limit - 1].atime >= since
        reset_at = events[count - 1].atime + window if count else now + window
        if count >= limit or full:
            return Window(False, 0, reset_at)
        return Window(True, limit - count - 1, reset_at)


def _newest_first(entry: Entry) -> float:
    return -entry.atime


def open_store(
    url: str, *, key_prefix: str, timeout: float, tls: Mapping[str, Any] | None = None
) -> Store:
    """A `limits` storage for ``url`` (``memory://``, ``redis://…`` or ``rediss://…``).

    ``tls`` holds redis-py's ``ssl_*`` options (``redis_tls_options``), used with
    ``rediss://`` only; `limits` hands them to ``redis.asyncio.Redis.from_url``.
    """
    if url.startswith("memory://"):
        return LocalStorage()
    if not url.startswith(("redis://", "rediss://", "redis+unix://")):
        raise ValueError(f"unsupported rate-limit store {url.split(':', 1)[0]!r}")
    options = dict(tls or {}) if url.startswith("rediss://") else {}
    return RedisStorage(
        f"async+{url}",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=key_prefix,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        **options,
    )


def _after_moving(limit: int, window: int, state: tuple[float, int]) -> Window:
    """What one more request would leave of a moving window, from its current state."""
    start, count = state
    allowed = count < limit
    reset_at = start + window if count else time.time() + window
    return Window(allowed, max(0, limit - count - 1) if allowed else 0, reset_at)


def _after_sliding(limit: int, window: int, state: tuple[int, float, int, float]) -> Window:
    """The same for a sliding-window counter (weighted as `limits` weighs it)."""
    prev, prev_ttl, cur, cur_ttl = state
    used = floor(prev * prev_ttl / window + cur)
    reset_in = inf
    if prev:
        reset_in = prev_ttl % (window / prev)
    if cur:
        reset_in = min(reset_in, cur_ttl % window)
    now = time.time()
    reset_at = now + window if reset_in == inf else now + reset_in
    allowed = used < limit
    return Window(allowed, max(0, limit - used - 1) if allowed else 0, reset_at)


class Counters:
    """Hits and reads windows of one store with one strategy."""

    def __init__(self, storage: Store, strategy: Strategy, timeout: float) -> None:
        self.storage = storage
        self.strategy = strategy
        self.timeout = timeout
        self.remote = not isinstance(storage, MemoryStorage)

    async def peek(self, key: str, limit: int, window: int) -> Window:
        """Whether one more request fits, and what it would leave; counts nothing."""
        if isinstance(self.storage, MemoryStorage):
            return self.peek_local(key, limit, window)
        return await self._remote(self._peek_remote(key, limit, window))

    async def take(self, key: str, limit: int, window: int) -> bool:
        """Count one request, atomically, unless that would exceed ``limit``."""
        if isinstance(self.storage, MemoryStorage):
            return self.take_local(key, limit, window)
        return await self._remote(self._take_remote(key, limit, window))

    async def _remote(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except Exception as exc:  # any store error means the same thing here
            raise StoreFailure(_describe(exc)) from exc

    async def check(self) -> None:
        """Ping the shared store once; ``StoreTlsRefused`` if its TLS handshake failed.

        Any other failure is left to the fail modes (the store may come up later).
        """
        client = self._client()
        if client is None:
            return
        try:
            await self._remote(client.ping())
        except StoreFailure as exc:
            tls = tls_failure(exc)
            if tls is not None:
                raise StoreTlsRefused(str(tls)) from exc

    def _client(self) -> Any:
        """The redis-py client under the `limits` storage (None for memory)."""
        return getattr(getattr(self.storage, "bridge", None), "storage", None)

    async def _peek_remote(self, key: str, limit: int, window: int) -> Window:
        if self.strategy == "moving-window":
            moving = cast(MovingWindowSupport, self.storage)
            return _after_moving(limit, window, await moving.get_moving_window(key, limit, window))
        sliding = cast(SlidingWindowCounterSupport, self.storage)
        return _after_sliding(limit, window, await sliding.get_sliding_window(key, window))

    async def _take_remote(self, key: str, limit: int, window: int) -> bool:
        if self.strategy == "moving-window":
            moving = cast(MovingWindowSupport, self.storage)
            return await moving.acquire_entry(key, limit, window)
        sliding = cast(SlidingWindowCounterSupport, self.storage)
        return await sliding.acquire_sliding_window_entry(key, limit, window, 1)

    async def close(self) -> None:
        """Close the Redis connections (the memory store has none)."""
        client = self._client()
        if client is not None:
            await client.aclose()

    def peek_local(self, key: str, limit: int, window: int) -> Window:
        """``peek`` on the memory store, without a coroutine (the store never waits)."""
        store = cast(MemoryStorage, self.storage)
        if self.strategy == "moving-window":
            return _after_moving(limit, window, store.get_moving_window(key, limit, window))
        return _after_sliding(limit, window, store.get_sliding_window(key, window))

    def hit_local(self, checks: Sequence[Check]) -> list[Window]:
        """Check every quota, then count the request in all of them only if all have room.

        On the memory store, without a coroutine (the store never waits); the moving
        window, the default, in one call for all quotas.
        """
        if self.strategy == "moving-window" and isinstance(self.storage, LocalStorage):
            return self.storage.hit_moving_windows(checks)
        peeks = [self.peek_local(key, limit, window) for key, limit, window in checks]
        if not all(p.allowed for p in peeks):
            return peeks
        taken = [self.take_local(key, limit, window) for key, limit, window in checks]
        return [after_take(p, t) for p, t in zip(peeks, taken, strict=True)]

    def take_local(self, key: str, limit: int, window: int) -> bool:
        """``take`` on the memory store, without a coroutine."""
        store = cast(MemoryStorage, self.storage)
        if self.strategy == "moving-window":
            return store.acquire_entry(key, limit, window)
        return store.acquire_sliding_window_entry(key, limit, window, 1)


def after_take(peek: Window, taken: bool) -> Window:
    """A quota another node filled between the read and the count refuses after all."""
    return peek if taken else Window(False, 0, peek.reset_at)
