"""Exponential backoff for repeat offenders, forgiven with good behaviour.

Each violation (a request refused by a quota while not already blocked) raises the
key's level by one and blocks it for ``base * 2 ** (level - 1)`` seconds, at most ``max``.
Every quiet ``decay`` period since the last violation lowers the level by one, so a
client that behaves is back to no penalty: there is no permanent lock-out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from bastion.core.clock import Clock

_MAX_LEVEL = 64  # far past any maximum; keeps 2**level finite


@dataclass(slots=True)
class _Record:
    level: int
    last: float
    blocked_until: float


@dataclass(frozen=True, slots=True)
class Penalty:
    """The outcome of a violation: the new level and how long the key is blocked."""

    level: int
    seconds: float


class Penalties:
    """Penalty state per key, in memory, bounded (least recently punished dropped first)."""

    def __init__(
        self, clock: Clock, *, base: float, maximum: float, decay: float, capacity: int = 100_000
    ) -> None:
        self._clock = clock
        self.base = base
        self.maximum = max(base, maximum)
        self.decay = decay
        self._capacity = capacity
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def blocked_for(self, key: str) -> float:
        """Seconds ``key`` stays blocked (0 when it is not)."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        return max(0.0, record.blocked_until - self._clock.timestamp())

    def level(self, key: str) -> int:
        """The key's current level, after forgiveness for quiet periods."""
        record = self._records.get(key)
        if record is None:
            return 0
        quiet = self._clock.timestamp() - record.last
        return max(0, record.level - int(quiet // self.decay))

    def violation(self, key: str) -> Penalty:
        """Record a violation by ``key``: double its block, up to the maximum."""
        now = self._clock.timestamp()
        level = min(self.level(key) + 1, _MAX_LEVEL)
        seconds = min(self.base * 2 ** (level - 1), self.maximum)
        self._records[key] = _Record(level, now, now + seconds)
        self._records.move_to_end(key)
        if len(self._records) > self._capacity:
            self._records.popitem(last=False)
        return Penalty(level, seconds)
