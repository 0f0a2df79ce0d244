"""The counters over the library's stores: both strategies, memory and Redis, one suite."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from bastion.core.clock import SystemClock
from bastion.core.settings import RateLimitPolicy, RateLimitSettings
from bastion.observe.events import Origin, SecurityEvents
from bastion.security.ratelimit.counters import Counters, LocalStorage, Strategy, open_store
from bastion.security.ratelimit.identity import Caller
from bastion.security.ratelimit.throttle import Throttle
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
    windows, taken = [], []
    for _ in range(4):
        windows.append(await counters.peek(key, 3, 3600))
        taken.append(await counters.take(key, 3, 3600))
    assert [w.allowed for w in windows] == [True, True, True, False]
    assert taken == [True, True, True, False]
    assert [w.remaining for w in windows] == [2, 1, 0, 0]
    assert all(w.reset_at > 0 for w in windows)
    other = await counters.peek(f"{key}-other", 3, 3600)
    await counters.close()
    assert other.allowed
    assert other.remaining == 2


async def test_the_memory_store_still_sweeps_expired_entries() -> None:
    store = LocalStorage()
    store.SWEEP_SECONDS = 0.05
    counters = Counters(store, "moving-window", 1)
    counters.take_local("gone", 5, 1)
    assert "gone" in store.events
    await asyncio.sleep(1.1)
    counters.take_local("trigger", 5, 1)  # any hit schedules the sweep once it is due
    await asyncio.sleep(0.2)
    assert store.events["gone"] == []  # the library keeps the emptied list


@pytest.mark.parametrize("url", STORES)
async def test_each_quota_of_a_policy_counts_on_its_own(url: str) -> None:
    """A burst quota and a per-minute quota of one policy: each holds, neither eats the other."""
    clock = SystemClock()
    spec = RateLimitPolicy(
        name="send", groups=("message-send",), scope="user", quotas=("3/second", "5/minute")
    )
    settings = RateLimitSettings(policies=(spec,), new_account_seconds=0)
    shared = Counters(
        open_store(url, key_prefix=f"t{secrets.token_hex(4)}", timeout=1), "moving-window", 1
    )
    local = Counters(open_store("memory://", key_prefix="", timeout=1), "moving-window", 1)
    throttle = Throttle(
        settings, shared=shared, local=local, clock=clock, events=SecurityEvents(clock, [])
    )
    caller = Caller("192.0.2.1", user=f"usr_{secrets.token_hex(4)}", app="app_1")
    first = [await throttle.check("message-send", caller, Origin) for _ in range(4)]
    assert [v.allowed for v in first] == [True, True, True, False]
    assert [(u.quota.name, u.remaining) for u in first[2].usages] == [
        ("send-1s", 0),
        ("send-60s", 2),
    ]
    await asyncio.sleep(1.05 + 1.0)  # the burst window and the first penalty (1 s) pass
    later = [await throttle.check("message-send", caller, Origin) for _ in range(3)]
    await shared.close()
    assert [v.allowed for v in later] == [True, True, False]
    assert [(u.quota.name, u.remaining) for u in later[1].usages] == [
        ("send-1s", 1),
        ("send-60s", 0),
    ]
    assert later[2].refused_by == ["send"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_several_quotas_count_in_one_call_all_or_nothing(strategy: Strategy) -> None:
    """``hit_local`` counts in every window only while all have room, as the library counts."""
    store = LocalStorage()
    counters = Counters(store, strategy, 1)
    checks = [("k/1", 2, 1), ("k/3600", 3, 3600)]
    results = [counters.hit_local(checks) for _ in range(3)]
    assert [[w.allowed for w in r] for r in results] == [[True, True], [True, True], [False, True]]
    assert [[w.remaining for w in r] for r in results] == [[1, 2], [0, 1], [0, 0]]
    assert all(
        0 < w.reset_at - time.time() <= window
        for r in results
        for w, (_, _, window) in zip(r, checks, strict=True)
    )
    # The refused third request was counted nowhere: the hour's window still has one left.
    assert counters.peek_local("k/3600", 3, 3600).remaining == 0
    assert counters.take_local("k/3600", 3, 3600)
    assert not counters.take_local("k/3600", 3, 3600)


def test_the_one_call_moving_window_matches_the_library() -> None:
    """After hits through the one-call path, the library's own reads see the same counts."""
    store = LocalStorage()
    counters = Counters(store, "moving-window", 1)
    for _ in range(4):
        counters.hit_local([("a/60", 10, 60), ("b/1", 10, 1)])
    assert store.get_moving_window("a/60", 10, 60)[1] == 4
    assert store.get_moving_window("b/1", 10, 1)[1] == 4
    assert not store.acquire_entry("a/60", 4, 60)  # full at 4, by the library's own test
    assert store.acquire_entry("a/60", 5, 60)
