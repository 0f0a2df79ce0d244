"""Observability: counters per policy and scope, an event per block and per escalation."""

from __future__ import annotations

import asyncio
import secrets

from prometheus_client import REGISTRY

from bastion.core.clock import SystemClock
from bastion.core.settings import RateLimitPolicy, RateLimitSettings
from bastion.observe.events import MemorySink, Origin, SecurityEvents
from bastion.security.ratelimit.counters import Counters, open_store
from bastion.security.ratelimit.identity import Caller
from bastion.security.ratelimit.throttle import Throttle


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_counters_and_events_for_blocks_and_penalty_escalation() -> None:
    clock = SystemClock()
    name = f"obs-{secrets.token_hex(3)}"
    spec = RateLimitPolicy(name=name, groups=("search",), scope="user", quotas=("2/second",))
    settings = RateLimitSettings(
        policies=(spec,),
        new_account_seconds=0,
        penalty_base_seconds=0.2,
        penalty_max_seconds=1.0,
        penalty_decay_seconds=60,
    )
    memory = Counters(open_store("memory://", key_prefix="", timeout=1), "moving-window", 1)
    sink = MemorySink()
    throttle = Throttle(
        settings, shared=memory, local=memory, clock=clock, events=SecurityEvents(clock, [sink])
    )
    caller = Caller("198.51.100.4", user=f"usr_{secrets.token_hex(4)}", app="app_1")
    origin = Origin(ip="198.51.100.4", request_id="req_1")
    labels = {"policy": name, "scope": "user"}
    for _ in range(3):
        while (await throttle.check("search", caller, lambda: origin)).allowed:
            pass  # use up the quota; the refusal is a violation
        await asyncio.sleep(1.05)  # the window and the penalty (0.2, 0.4, 0.8 s) pass
    allowed = _sample("bastion_ratelimit_requests_total", {**labels, "outcome": "allowed"})
    limited = _sample("bastion_ratelimit_requests_total", {**labels, "outcome": "limited"})
    assert allowed == 6  # two per round
    assert limited == 3
    assert _sample("bastion_ratelimit_penalties_total", {"policy": name}) == 2
    blocks = [e for e in sink.of("ratelimit.block") if e.details["policy"] == name]
    penalties = [e for e in sink.of("ratelimit.penalty") if e.details["policy"] == name]
    assert [e.details["level"] for e in blocks] == [1, 2, 3]
    assert [e.details["level"] for e in penalties] == [2, 3]
    assert blocks[0].origin == origin
    assert blocks[0].actor.subject == caller.user
    assert blocks[0].outcome == "denied"
