"""Time as a parameter: code asks a ``Clock`` instead of calling ``time`` directly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the current time."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        ...

    def timestamp(self) -> float:
        """Return the current time as seconds since the epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """Return the current time as an aware UTC datetime."""
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """Return the current time as seconds since the epoch."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to; for tests of expiry and ordering."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start

    def now(self) -> datetime:
        """Return the fake time as an aware UTC datetime."""
        return datetime.fromtimestamp(self._now, UTC)

    def timestamp(self) -> float:
        """Return the fake time as seconds since the epoch."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the fake time forward."""
        self._now += seconds


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as an RFC 3339 UTC string with milliseconds."""
    # isoformat always writes four year digits (strftime's %Y does not before year 1000).
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"
