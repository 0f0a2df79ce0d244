"""The rate-limit decision for one request: every applicable policy, penalties, fail modes.

``Throttle.check`` counts the request against each policy of its endpoint group, in
the shared store when it can and by the policy's fail mode when it cannot, applies
penalties to repeat offenders, and reports what the response headers must say.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from prometheus_client import Counter

from bastion.core.clock import Clock
from bastion.core.settings import RateLimitSettings
from bastion.observe.events import Actor, Detail, Origin, SecurityEvents
from bastion.security.ratelimit.baselines import Baselines
from bastion.security.ratelimit.counters import Counters, StoreFailure, Window, after_take
from bastion.security.ratelimit.identity import Caller, created_at
from bastion.security.ratelimit.metrics import rate_limit_metrics
from bastion.security.ratelimit.overrides import Overrides
from bastion.security.ratelimit.penalties import Penalties
from bastion.security.ratelimit.policies import Policy, PolicySet, Quota

_TIGHTENED_MAX = 4096


class Usage(NamedTuple):
    """One quota as it stands for this caller after this request (made per request)."""

    quota: Quota
    remaining: int
    reset: int


@dataclass(slots=True)
class Verdict:
    """What to do with a request, and what its rate-limit fields say."""

    usages: list[Usage] = field(default_factory=list)
    refused_by: list[str] = field(default_factory=list)
    retry_after: int = 0
    unavailable: bool = False

    @property
    def allowed(self) -> bool:
        """True unless a quota, a penalty or a closed store refused the request."""
        return not self.refused_by and not self.unavailable


@dataclass(slots=True)
class _StoreHealth:
    down_until: float = 0.0


class Throttle:
    """Applies the policies of an endpoint group to a caller."""

    def __init__(
        self,
        settings: RateLimitSettings,
        *,
        shared: Counters,
        local: Counters,
        clock: Clock,
        events: SecurityEvents,
    ) -> None:
        self.settings = settings
        self.policies = PolicySet.from_settings(settings)
        self.shared = shared
        self.local = local
        self.clock = clock
        self.events = events
        self.overrides = Overrides(settings.scale)
        self.penalties = Penalties(
            clock,
            base=settings.penalty_base_seconds,
            maximum=settings.penalty_max_seconds,
            decay=settings.penalty_decay_seconds,
        )
        self.baselines = Baselines(
            clock,
            half_life=settings.baseline_half_life_seconds,
            min_samples=settings.baseline_min_samples,
        )
        self.metrics = rate_limit_metrics()
        self._decisions: dict[tuple[str, str], Counter] = {}
        self._health = _StoreHealth()
        self._tightened: dict[int, tuple[tuple[Quota, ...], tuple[Quota, ...]]] = {}

    async def check(self, group: str, caller: Caller, origin: Callable[[], Origin]) -> Verdict:
        """Count the request against every policy of ``group`` and decide.

        ``origin`` is called only when there is something to report.
        """
        verdict = Verdict()
        for policy in self.policies.for_group(group):
            await self._apply(policy, caller, origin, verdict)
            if not verdict.allowed:
                break  # a refused request consumes nothing from the policies after it
        return verdict

    async def _apply(
        self, policy: Policy, caller: Caller, origin: Callable[[], Origin], v: Verdict
    ) -> None:
        key = f"{policy.name}/{caller.key(policy.scope)}"
        quotas = self._quotas(policy, caller)
        blocked = self.penalties.blocked_for(key)
        if blocked > 0:
            v.usages += [Usage(q, 0, math.ceil(blocked)) for q in quotas]
            self._refuse(v, policy, math.ceil(blocked))
            return
        try:
            if self.shared.remote:
                windows = await self._hit(policy, key, quotas)
            else:  # memory: synchronous, nothing can fail, no coroutine needed
                windows = _count_local(self.shared, key, quotas)
        except StoreUnavailable as exc:
            v.unavailable = True
            v.retry_after = max(v.retry_after, exc.retry_after)
            return
        if windows is None:
            return
        now = self.clock.timestamp()
        refused = None
        for quota, window in zip(quotas, windows, strict=True):
            reset = max(0, math.ceil(window.reset_at - now))
            v.usages.append(Usage(quota, window.remaining, reset))
            if not window.allowed:
                refused = max(refused or 0, reset, 1)
        if refused is None:
            self._count(policy, "allowed")
            return
        penalty = self.penalties.violation(key)
        self._refuse(v, policy, max(refused, math.ceil(penalty.seconds)))
        await self._report(policy, caller, origin, penalty.level, v.retry_after)

    def _quotas(self, policy: Policy, caller: Caller) -> tuple[Quota, ...]:
        quotas = self.overrides.quotas(policy, caller)
        if policy.scope == "user" and caller.user is not None and self._is_new(caller.user):
            quotas = self._for_new_account(quotas)
        if policy.baseline_factor is not None:
            quotas = self._relative(policy, caller, quotas)
        return quotas

    def _for_new_account(self, quotas: tuple[Quota, ...]) -> tuple[Quota, ...]:
        """The tighter quotas of a new account, made once per quota set, not per request."""
        made = self._tightened.get(id(quotas))
        if made is None or made[0] is not quotas:  # an id can be reused once freed
            factor = self.settings.new_account_factor
            tight = tuple(Quota(q.name, max(1, int(q.limit * factor)), q.window) for q in quotas)
            if len(self._tightened) >= _TIGHTENED_MAX:
                self._tightened.clear()
            made = self._tightened[id(quotas)] = (quotas, tight)
        return made[1]

    def _relative(
        self, policy: Policy, caller: Caller, quotas: tuple[Quota, ...]
    ) -> tuple[Quota, ...]:
        subject = caller.user if policy.scope == "user" else caller.key(policy.scope)
        if subject is None or policy.baseline_factor is None:
            return quotas
        # Learn from the policy's own traffic: a user's normal rate of sends, not of reads.
        baseline = self.baselines.observe(f"{policy.name}/{subject}")
        factor = policy.baseline_factor
        return tuple(
            Quota(q.name, self.baselines.allowance(baseline, factor, q.limit, q.window), q.window)
            for q in quotas
        )

    def _is_new(self, user_id: str) -> bool:
        born = created_at(user_id)
        age = self.clock.timestamp() - born if born is not None else math.inf
        return age < self.settings.new_account_seconds

    async def _hit(
        self, policy: Policy, key: str, quotas: tuple[Quota, ...]
    ) -> list[Window] | None:
        """Count on the shared (remote) store, or by the policy's fail mode when it is down."""
        counters = self.shared
        if self.clock.timestamp() < self._health.down_until:
            return await self._degraded(policy, key, quotas)
        try:
            windows = await _count_remote(counters, key, quotas)
        except StoreFailure as exc:
            await self._store_failed(policy, str(exc))
            return await self._degraded(policy, key, quotas)
        if self._health.down_until:
            self._health.down_until = 0.0
            await self.events.emit("ratelimit.store_recovered", "success", reason="store answers")
        return windows

    async def _degraded(
        self, policy: Policy, key: str, quotas: tuple[Quota, ...]
    ) -> list[Window] | None:
        mode = policy.on_store_failure
        self.metrics.store_failures.labels(mode).inc()
        if mode == "open":
            return None
        if mode == "closed":
            raise StoreUnavailable(math.ceil(self.settings.store_retry_seconds))
        return _count_local(self.local, key, quotas)

    async def _store_failed(self, policy: Policy, error: str) -> None:
        first = self._health.down_until == 0.0
        self._health.down_until = self.clock.timestamp() + self.settings.store_retry_seconds
        if first:
            await self.events.emit(
                "ratelimit.store_failure",
                "failure",
                reason=error,
                details={"policy": policy.name, "mode": policy.on_store_failure},
            )

    def _refuse(self, verdict: Verdict, policy: Policy, retry_after: int) -> None:
        verdict.refused_by.append(policy.name)
        verdict.retry_after = max(verdict.retry_after, retry_after)
        self._count(policy, "limited")

    def _count(self, policy: Policy, outcome: str) -> None:
        child = self._decisions.get((policy.name, outcome))
        if child is None:
            child = self.metrics.decisions.labels(policy.name, policy.scope, outcome)
            self._decisions[(policy.name, outcome)] = child
        child.inc()

    async def _report(
        self,
        policy: Policy,
        caller: Caller,
        origin: Callable[[], Origin],
        level: int,
        retry_after: int,
    ) -> None:
        actor = Actor(app_id=caller.app, subject=caller.user, client_id=caller.client)
        details: dict[str, Detail] = {
            "policy": policy.name,
            "scope": policy.scope,
            "level": level,
            "retry_after": retry_after,
        }
        where = origin()
        await self.events.emit(
            "ratelimit.block", "denied", actor=actor, origin=where, details=details
        )
        if level > 1:
            self.metrics.penalties.labels(policy.name).inc()
            await self.events.emit(
                "ratelimit.penalty", "denied", actor=actor, origin=where, details=details
            )


class StoreUnavailable(Exception):
    """A fail-closed policy could not reach the shared store."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("rate-limit store unavailable")
        self.retry_after = retry_after


def _count_local(counters: Counters, key: str, quotas: tuple[Quota, ...]) -> list[Window]:
    """Check every quota, then count the request in all of them only if all have room."""
    return counters.hit_local([(f"{key}/{q.window}", q.limit, q.window) for q in quotas])


async def _count_remote(counters: Counters, key: str, quotas: tuple[Quota, ...]) -> list[Window]:
    """The same on Redis: one concurrent round of reads, then one of atomic counts."""
    keys = [f"{key}/{q.window}" for q in quotas]
    pairs = list(zip(keys, quotas, strict=True))
    peeks = await asyncio.gather(*(counters.peek(k, q.limit, q.window) for k, q in pairs))
    if not all(p.allowed for p in peeks):
        return list(peeks)
    taken = await asyncio.gather(*(counters.take(k, q.limit, q.window) for k, q in pairs))
    return [after_take(p, t) for p, t in zip(peeks, taken, strict=True)]
