"""Cheap load shedding: is this node overloaded right now?

Three signals, each kept up to date by the request path or a timer, so the decision
itself is three comparisons: event-loop lag (a moving average of how late a 100 ms
timer fires), requests in flight, and a moving average of request latency.
"""

from __future__ import annotations

import asyncio
import time

_PROBE_SECONDS = 0.1
_LATENCY_WEIGHT = 0.05
_LAG_WEIGHT = 0.5


class LoadMonitor:
    """Tracks the signals and says whether low-priority traffic should be shed."""

    def __init__(self, *, max_lag_ms: float, max_in_flight: int, max_latency_ms: float) -> None:
        self.max_lag = max_lag_ms / 1000
        self.max_in_flight = max_in_flight
        self.max_latency = max_latency_ms / 1000
        self.lag = 0.0
        self.in_flight = 0
        self.latency = 0.0
        self._probe: asyncio.Task[None] | None = None

    def overloaded(self) -> str | None:
        """The signal over its threshold, or None when the node copes."""
        if self._probe is None:
            self._probe = asyncio.get_running_loop().create_task(self._measure_lag())
        if self.lag > self.max_lag:
            return "event-loop-lag"
        if self.in_flight > self.max_in_flight:
            return "in-flight"
        if self.latency > self.max_latency:
            return "latency"
        return None

    def started(self) -> float:
        """Count a request in; returns its start time for ``finished``."""
        self.in_flight += 1
        return time.perf_counter()

    def finished(self, started: float) -> None:
        """Count a request out and fold its latency into the average."""
        self.in_flight -= 1
        elapsed = time.perf_counter() - started
        self.latency += _LATENCY_WEIGHT * (elapsed - self.latency)

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + _PROBE_SECONDS
            await asyncio.sleep(_PROBE_SECONDS)
            late = max(0.0, loop.time() - expected)
            # A moving average: one stall (a collection, a slow call) does not shed
            # traffic, a loop that stays late does within a few ticks.
            self.lag = self.lag * (1 - _LAG_WEIGHT) + late * _LAG_WEIGHT

    def close(self) -> None:
        """Stop the lag probe."""
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
