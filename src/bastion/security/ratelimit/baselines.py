"""Learned request rates per app and per user: an EWMA of the rate with its variance.

Requests are counted in fixed intervals; at the end of each interval the count is
folded into an exponentially weighted mean and variance (West's incremental form),
with a weight set by the configured half-life. A policy with a ``baseline_factor``
then allows ``factor * (mean + one standard deviation)`` per window, never more than
its fixed quota and never less than a floor, once the baseline has enough samples:
a quiet user turned noisy is caught well before the fixed limit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from bastion.core.clock import Clock

INTERVAL = 60.0
"""Seconds per counting interval."""

_MAX_CATCH_UP = 1440  # idle intervals folded in at once (a day); older silence adds nothing


@dataclass(slots=True)
class Baseline:
    """One key's learned rate: mean and variance of requests per interval."""

    mean: float = 0.0
    variance: float = 0.0
    samples: int = 0
    bucket_start: float = 0.0
    bucket_count: int = 0

    def per_second(self) -> float:
        """The learned rate plus one standard deviation, per second."""
        return (self.mean + math.sqrt(max(self.variance, 0.0))) / INTERVAL


class Baselines:
    """Baselines per key, in memory, bounded (least recently seen dropped first)."""

    def __init__(
        self, clock: Clock, *, half_life: float, min_samples: int, capacity: int = 200_000
    ) -> None:
        self._clock = clock
        self._alpha = 1 - 0.5 ** (INTERVAL / half_life)
        self.min_samples = min_samples
        self._capacity = capacity
        self._items: OrderedDict[str, Baseline] = OrderedDict()

    def observe(self, key: str) -> Baseline:
        """Count one request for ``key`` and return its (possibly updated) baseline."""
        now = self._clock.timestamp()
        item = self._items.get(key)
        if item is None:
            item = Baseline(bucket_start=now)
            self._items[key] = item
            if len(self._items) > self._capacity:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(key)
        elapsed = int((now - item.bucket_start) // INTERVAL)
        if elapsed > 0:
            self._fold(item, item.bucket_count)
            for _ in range(min(elapsed - 1, _MAX_CATCH_UP)):
                self._fold(item, 0)
            item.bucket_start += elapsed * INTERVAL
            item.bucket_count = 0
        item.bucket_count += 1
        return item

    def get(self, key: str) -> Baseline | None:
        """The baseline of ``key`` if one is being learned."""
        return self._items.get(key)

    def _fold(self, item: Baseline, count: int) -> None:
        if item.samples == 0:
            item.mean = float(count)
        else:
            diff = count - item.mean
            increment = self._alpha * diff
            item.mean += increment
            item.variance = (1 - self._alpha) * (item.variance + diff * increment)
        item.samples += 1

    def allowance(self, item: Baseline, factor: float, limit: int, window: int) -> int:
        """The quota a learned baseline allows in ``window`` seconds, within [floor, limit]."""
        if item.samples < self.min_samples or window < INTERVAL:
            return limit
        floor = max(1, math.ceil(limit * 0.1))
        learned = math.ceil(factor * item.per_second() * window)
        return max(floor, min(limit, learned))
