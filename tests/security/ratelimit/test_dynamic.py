"""Dynamic limits: learned baselines (EWMA and variance) and tighter quotas for new accounts."""

from __future__ import annotations

import secrets
import time

from bastion.core.clock import FakeClock
from bastion.core.ids import Kind, encode_ulid, new_id
from bastion.core.settings import RateLimitPolicy, RateLimitSettings
from bastion.observe.events import MemorySink, Origin, SecurityEvents
from bastion.security.ratelimit.baselines import INTERVAL, Baselines
from bastion.security.ratelimit.counters import Counters, open_store
from bastion.security.ratelimit.identity import Caller
from bastion.security.ratelimit.throttle import Throttle


def _old_user_id(days: float) -> str:
    millis = int((time.time() - days * 86_400) * 1000)
    return f"{Kind.USER.value}_{encode_ulid(millis << 80 | secrets.randbits(80))}"


def _throttle(clock: FakeClock, policy: RateLimitPolicy, **extra: object) -> Throttle:
    settings = RateLimitSettings(policies=(policy,), **extra)
    memory = Counters(open_store("memory://", key_prefix="", timeout=1), "moving-window", 1)
    events = SecurityEvents(clock, [MemorySink()])
    return Throttle(settings, shared=memory, local=memory, clock=clock, events=events)


def test_the_ewma_tracks_a_steady_rate_and_its_spread() -> None:
    clock = FakeClock()
    baselines = Baselines(clock, half_life=600, min_samples=5)
    for minute in range(60):
        for _ in range(4 if minute % 2 else 2):
            item = baselines.observe("user:a")
        clock.advance(INTERVAL)
    assert item.samples >= 59
    assert 2.5 < item.mean < 3.5
    assert 0.5 < item.variance < 1.5


def test_allowance_is_relative_to_the_baseline_within_floor_and_limit() -> None:
    clock = FakeClock()
    baselines = Baselines(clock, half_life=600, min_samples=5)
    item = baselines.observe("user:a")
    assert baselines.allowance(item, 10, 120, 60) == 120  # no history: the fixed quota
    clock.advance(INTERVAL)
    for _ in range(30):
        item = baselines.observe("user:a")
        clock.advance(INTERVAL)
    assert baselines.allowance(item, 10, 120, 60) == 12  # 10 x ~1/min, floored at 10% of 120
    assert baselines.allowance(item, 10, 5, 1) == 5  # burst windows stay fixed


async def test_a_quiet_user_turned_noisy_is_caught_before_the_fixed_limit() -> None:
    clock = FakeClock(time.time())
    policy = RateLimitPolicy(
        name="send",
        groups=("message-send",),
        scope="user",
        quotas=("120/minute",),
        baseline_factor=3,
    )
    throttle = _throttle(clock, policy, baseline_min_samples=10, new_account_seconds=0)
    quiet = Caller("192.0.2.1", user=_old_user_id(30), app="app_1")
    for _ in range(20):  # its history: one message a minute for twenty minutes
        throttle.baselines.observe(f"send/{quiet.user}")
        clock.advance(INTERVAL)
    allowed = 0
    for _ in range(60):  # then a burst
        if (await throttle.check("message-send", quiet, Origin)).allowed:
            allowed += 1
    # 3 x 1/minute, floored at a tenth of the fixed quota; the fixed quota allows 60
    assert allowed == 12


async def test_new_accounts_get_a_fraction_of_user_quotas() -> None:
    clock = FakeClock(time.time())
    policy = RateLimitPolicy(
        name="send", groups=("message-send",), scope="user", quotas=("10/minute",)
    )
    throttle = _throttle(clock, policy, new_account_seconds=86_400, new_account_factor=0.5)

    async def allowed(user: str) -> int:
        caller = Caller("192.0.2.1", user=user, app="app_1")
        return sum(
            [(await throttle.check("message-send", caller, Origin)).allowed for _ in range(12)]
        )

    assert await allowed(new_id(Kind.USER)) == 5
    assert await allowed(_old_user_id(2)) == 10
