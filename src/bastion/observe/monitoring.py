"""The monitoring pieces of one process: signals, alert engine and SIEM sinks together."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bastion.core.asgi import Scope
from bastion.core.clock import Clock
from bastion.observe.alerts import AlertEngine
from bastion.observe.detectors import Signals
from bastion.observe.events import SecurityEvent
from bastion.observe.siem import SiemSink


class SignalsSink:
    """Feeds security events into the signals (an :class:`EventSink`)."""

    def __init__(self, signals: Signals) -> None:
        self._signals = signals

    async def record(self, event: SecurityEvent) -> None:
        """Count the event; never raises."""
        self._signals.on_event(event)


class CounterIncrease:
    """A signal reading how much a monotonic counter grew within the window."""

    def __init__(self, read_total: Callable[[], float], clock: Clock) -> None:
        self._read = read_total
        self._clock = clock
        self._samples: deque[tuple[float, float]] = deque([(clock.timestamp(), read_total())])

    def __call__(self, window: float) -> float:
        """Sample the counter and return its growth over the last ``window`` seconds."""
        now = self._clock.timestamp()
        self._samples.append((now, self._read()))
        # Keep the newest sample taken before the window opened as the baseline.
        while len(self._samples) > 2 and self._samples[1][0] <= now - window:
            self._samples.popleft()
        return self._samples[-1][1] - self._samples[0][1]


@dataclass(slots=True)
class Monitoring:
    """Built once by the composition root; started and stopped with the server."""

    signals: Signals
    engine: AlertEngine
    clock: Clock
    siem: Sequence[SiemSink] = ()
    alerts_enabled: bool = True
    evaluation_seconds: float = 10.0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def observe_request(
        self, _method: str, _route: str, status: int, seconds: float, scope: Scope
    ) -> None:
        """A :data:`RequestObserver`: count the response into the signals."""
        principal = scope.get("state", {}).get("principal")
        self.signals.on_request(self.clock.timestamp(), status, seconds, principal)

    def start(self) -> None:
        """Start evaluating rules and delivering to SIEMs."""
        for sink in self.siem:
            sink.start()
        if self.alerts_enabled:
            self._tasks.append(asyncio.create_task(self.engine.run(self.evaluation_seconds)))

    async def close(self) -> None:
        """Stop the background work."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sink in self.siem:
            await sink.close()
