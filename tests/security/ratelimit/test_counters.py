"""The counters over the library's stores: both strategies, memory and Redis, one suite."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from bastion.security.ratelimit.counters import Counters, LocalStorage, Strategy, open_store
from tests.support.ratelimit import SHARED_REDIS, redis_answers

STORES = [
    "memory://",
    pytest.param(SHARED_REDIS, marks=pytest.mark.skipif(not redis_answers(), reason="no Redis")),
]
STRATEGIES: list[Strategy] = ["moving-window", "sliding-window-counter"]


@pytest.mark.parametrize("url", STORES)
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_quota_allows_its_limit_then_refuses(url: str, strategy: Strategy) -> None:
    counters = Counters(
        open_store(url, key_prefix=f"t{secrets.token_hex(4)}", timeout=1), strategy, 1
    )
    key = f"k{secrets.token_hex(4)}"
    windows = [await counters.hit(key, 3, 3600) for _ in range(4)]
    assert [w.allowed for w in windows] == [True, True, True, False]
    assert [w.remaining for w in windows] == [2, 1, 0, 0]
    assert all(w.reset_at > 0 for w in windows)
    other = await counters.hit(f"{key}-other", 3, 3600)
    await counters.close()
    assert other.allowed
    assert other.remaining == 2


async def test_the_memory_store_still_sweeps_expired_entries() -> None:
    store = LocalStorage()
    store.SWEEP_SECONDS = 0.05
    counters = Counters(store, "moving-window", 1)
    counters.hit_local("gone", 5, 1)
    assert "gone" in store.events
    await asyncio.sleep(1.1)
    counters.hit_local("trigger", 5, 1)  # any hit schedules the sweep once it is due
    await asyncio.sleep(0.2)
    assert store.events["gone"] == []  # the library keeps the emptied list
