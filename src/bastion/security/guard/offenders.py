"""Counts malformed requests per client address and blocks repeat offenders.

An address that sends ``threshold`` rejected requests within ``window`` seconds is
blocked for ``block`` seconds; every further block of the same address doubles, up to
``block_max``. Strikes are forgotten a day after the last block ended. The table is
bounded: past ``capacity`` addresses, the ones not blocked are forgotten first.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.clock import Clock

_FORGET_STRIKES_AFTER = 86_400.0


@dataclass(slots=True)
class _Record:
    window_start: float
    count: int = 0
    strikes: int = 0
    blocked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Block:
    """A new block: how long it lasts and how many blocks this address has had."""

    seconds: int
    strikes: int


class Offenders:
    """The per-address counters and blocks (in memory, per process)."""

    def __init__(
        self,
        clock: Clock,
        *,
        threshold: int,
        window: float,
        block: int,
        block_max: int,
        capacity: int = 100_000,
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._window = window
        self._block = block
        self._block_max = block_max
        self._capacity = capacity
        self._records: dict[str, _Record] = {}

    def blocked_for(self, address: str) -> int:
        """Seconds left on the address's block (0 when it is not blocked)."""
        record = self._records.get(address)
        if record is None:
            return 0
        left = record.blocked_until - self._clock.timestamp()
        return max(0, int(left + 0.999))

    def offend(self, address: str) -> Block | None:
        """Count one malformed request; return the block it triggers, if any."""
        now = self._clock.timestamp()
        record = self._records.get(address)
        if record is None:
            self._make_room()
            record = self._records[address] = _Record(window_start=now)
        if now - record.blocked_until > _FORGET_STRIKES_AFTER and record.strikes:
            record.strikes = 0
        if now - record.window_start > self._window:
            record.window_start, record.count = now, 0
        record.count += 1
        if record.count < self._threshold or record.blocked_until > now:
            return None
        seconds = min(self._block * 2**record.strikes, self._block_max)
        record.strikes += 1
        record.blocked_until = now + seconds
        record.window_start, record.count = now, 0
        return Block(seconds=seconds, strikes=record.strikes)

    def _make_room(self) -> None:
        if len(self._records) < self._capacity:
            return
        now = self._clock.timestamp()
        for address in [a for a, r in self._records.items() if r.blocked_until <= now]:
            del self._records[address]
        while len(self._records) >= self._capacity:
            del self._records[next(iter(self._records))]
