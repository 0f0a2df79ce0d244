"""At most one security event per key and interval, for signals that can repeat fast.

A shed request or a refused socket can happen thousands of times a second during the
overload or flood that causes it; every event is a log line and an audit-log append.
The first occurrence is reported at once, later ones within ``interval`` are counted
and the count rides on the next report.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class ReportGate:
    """Says when an occurrence should be reported, and how many were held back."""

    def __init__(self, interval: float, capacity: int = 10_000) -> None:
        self.interval = interval
        self._capacity = capacity
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def admit(self, key: str) -> int | None:
        """None to stay quiet; else report now, with the number of occurrences since the last."""
        now = time.monotonic()
        last, held = self._seen.get(key, (-self.interval, 0))
        if now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return None
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return held + 1
