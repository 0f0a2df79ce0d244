"""WebSocket limits: open sockets per client network, inbound frames per socket, typing.

A socket that sends frames faster than its quota gets an ``error`` frame
(``quota-exceeded`` with ``retry_after``) for each refused frame, which is dropped
unprocessed; after ``ws_violations_before_close`` refusals it is closed with 4008.
Other sockets are unaffected: each socket has its own budget.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

from bastion.security.ratelimit.counters import Counters
from bastion.security.ratelimit.policies import Quota


class SocketCounts:
    """Open sockets per client network, capped."""

    def __init__(self, per_network: int) -> None:
        self.per_network = per_network
        self._open: Counter[str] = Counter()

    def acquire(self, network: str) -> bool:
        """Count a new socket from ``network``; False when that would pass the cap."""
        if self._open[network] >= self.per_network:
            return False
        self._open[network] += 1
        return True

    def release(self, network: str) -> None:
        """Forget a closed socket."""
        self._open[network] -= 1
        if self._open[network] <= 0:
            del self._open[network]


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a frame may be processed; if not, when to retry and whether to close."""

    allowed: bool
    retry_after: int = 0
    close: bool = False
    first_refusal: bool = False


@dataclass(slots=True)
class FrameBudget:
    """The inbound frame quota of one socket."""

    counters: Counters
    key: str
    quota: Quota
    max_violations: int
    violations: int = 0
    _typing: dict[str, float] = field(default_factory=dict)

    async def admit(self) -> Admission:
        """Count one inbound frame."""
        limit, seconds = self.quota.limit, self.quota.window
        window = self.counters.peek_local(self.key, limit, seconds)
        if window.allowed and self.counters.take_local(self.key, limit, seconds):
            return Admission(True)
        self.violations += 1
        retry = max(1, math.ceil(window.reset_at - time.time()))
        return Admission(
            False,
            retry_after=retry,
            close=self.violations >= self.max_violations,
            first_refusal=self.violations == 1,
        )

    def typing_is_news(self, channel_id: str, active: bool, coalesce: float) -> bool:
        """False for a repeated "typing started" within ``coalesce`` seconds: merged."""
        now = time.monotonic()
        if not active:
            self._typing.pop(channel_id, None)
            return True
        last = self._typing.get(channel_id)
        if last is not None and now - last < coalesce:
            return False
        self._typing[channel_id] = now
        if len(self._typing) > 256:  # bounded: forget the oldest channel
            del self._typing[next(iter(self._typing))]
        return True
