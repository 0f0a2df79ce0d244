"""Rolling baselines: EWMA mean and variance per series, optionally per hour of the day.

An observation is scored against what the series has looked like so far (its z-score:
how many standard deviations from the mean), then folded into the baseline. Keeping
one baseline per hour of the day lets a busy lunch hour be normal at noon and an
anomaly at 3 a.m.; it costs 24 small objects per series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted moving mean and variance (incremental form)."""

    alpha: float
    mean: float = 0.0
    variance: float = 0.0
    count: int = 0

    def update(self, value: float) -> None:
        """Fold one observation in."""
        if self.count == 0:
            self.mean = value
        else:
            diff = value - self.mean
            increment = self.alpha * diff
            self.mean += increment
            self.variance = (1 - self.alpha) * (self.variance + diff * increment)
        self.count += 1

    @property
    def std(self) -> float:
        """The standard deviation."""
        return math.sqrt(self.variance)

    def zscore(self, value: float, min_std: float) -> float:
        """How far ``value`` is above the mean, in standard deviations (floored at ``min_std``)."""
        return (value - self.mean) / max(self.std, min_std)


class Baselines:
    """EWMA baselines keyed by series name (and hour of day when ``hourly``)."""

    def __init__(
        self, alpha: float = 0.1, warmup: int = 10, min_std: float = 1.0, hourly: bool = True
    ) -> None:
        self._alpha = alpha
        self._warmup = warmup
        self._min_std = min_std
        self._hourly = hourly
        self._series: dict[tuple[str, int], Ewma] = {}

    def score(self, series: str, value: float, at: datetime) -> float | None:
        """The z-score of ``value`` against its baseline, then learn it; None while warming up.

        A series keyed by hour falls back to its all-day baseline until that hour has
        seen enough observations of its own.
        """
        overall = self._get(series, -1)
        hour = self._get(series, at.hour) if self._hourly else overall
        reference = hour if hour.count >= self._warmup else overall
        result = reference.zscore(value, self._min_std) if reference.count >= self._warmup else None
        overall.update(value)
        if hour is not overall:
            hour.update(value)
        return result

    def snapshot(self, series: str) -> dict[str, float]:
        """The all-day baseline of a series (for the admin API)."""
        ewma = self._get(series, -1)
        return {"mean": ewma.mean, "std": ewma.std, "observations": ewma.count}

    def _get(self, series: str, hour: int) -> Ewma:
        key = (series, hour)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Ewma(self._alpha)
        return found
