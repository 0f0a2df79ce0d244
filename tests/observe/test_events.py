"""Security events: one schema, stamped once, handed to every sink in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.core.clock import FakeClock
from bastion.observe.events import Actor, MemorySink, Origin, SecurityEvent, SecurityEvents


class _Broken:
    async def record(self, event: SecurityEvent) -> None:
        raise OSError("disk full")


async def test_events_are_stamped_and_numbered_in_order() -> None:
    """Each event gets the clock's time, the node and the next sequence number."""
    clock = FakeClock(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp())
    sink = MemorySink()
    events = SecurityEvents(clock, [sink], node="node-a")
    await events.emit("auth.login", "failure", reason="bad_password")
    await events.emit(
        "authz.decision",
        "denied",
        actor=Actor(app_id="app_1", subject="usr_1", roles=("member",)),
        origin=Origin(ip="192.0.2.1", request_id="req_1"),
        resource="channel:chn_1",
        details={"permission": "message:send"},
    )
    assert [e.sequence for e in sink.events] == [1, 2]
    first, second = sink.events
    assert first.at == clock.now()
    assert first.node == "node-a"
    assert sink.of("authz.decision") == [second]
    wire = second.as_dict()
    assert (wire["subject"], wire["roles"]) == ("usr_1", ["member"])
    assert (wire["ip"], wire["resource"]) == ("192.0.2.1", "channel:chn_1")
    assert wire["details"] == {"permission": "message:send"}
    assert wire["at"] == "2026-01-02T03:04:05+00:00"


async def test_a_failing_sink_fails_the_emit_after_earlier_sinks_recorded() -> None:
    """A sink that must not lose events can fail the caller; earlier sinks still saw it."""
    sink = MemorySink()
    events = SecurityEvents(FakeClock(), [sink, _Broken()])
    with pytest.raises(OSError, match="disk full"):
        await events.emit("token.issue", "success")
    assert len(sink.events) == 1


async def test_memory_sink_keeps_only_the_newest() -> None:
    """Past its capacity the memory sink drops the oldest events."""
    sink = MemorySink(capacity=3)
    events = SecurityEvents(FakeClock(), [sink])
    for _ in range(5):
        await events.emit("ratelimit.block", "denied")
    assert [e.sequence for e in sink.events] == [3, 4, 5]
