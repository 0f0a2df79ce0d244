"""Security events: one schema, stamped once, handed to every sink in order."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from bastion.core.clock import FakeClock
from bastion.observe.events import (
    Actor,
    LogSink,
    MemorySink,
    Origin,
    SecurityEvent,
    SecurityEvents,
)
from tests.support.server import ServerThread


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


_SOURCE = Path(__file__).resolve().parents[2] / "src" / "bastion"
_MONITORING = _SOURCE.parents[1] / "docs" / "monitoring.md"
_ACTION = re.compile(r"[a-z][a-z_]*(?:\.[a-z_]+)+")


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments (``ACTION = "message.read_privileged"``)."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    found[target.id] = node.value.value
    return found


def _emitted_actions() -> set[str]:
    """Action names passed to any ``emit``/``_emit``/``_emit_read`` call in the source,
    literally or by a module constant."""
    actions = set()
    for path in _SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if "emit" not in name.split("_"):
                continue
            for arg in node.args:
                value = arg.value if isinstance(arg, ast.Constant) else None
                if isinstance(arg, ast.Name):
                    value = constants.get(arg.id)
                if isinstance(value, str) and _ACTION.fullmatch(value):
                    actions.add(value)
    return actions


def _catalogued_actions() -> set[str]:
    """The names in the first column of docs/monitoring.md's event catalogue."""
    text = _MONITORING.read_text(encoding="utf-8")
    section = text.split("### Event catalogue", 1)[1].split("\n#", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def test_the_event_catalogue_lists_exactly_the_emitted_actions() -> None:
    """Every action the code emits is documented, and nothing documented is never emitted."""
    emitted, catalogued = _emitted_actions(), _catalogued_actions()
    assert "authz.decision" in emitted
    assert sorted(emitted - catalogued) == []
    assert sorted(catalogued - emitted) == []


async def test_the_log_sink_writes_its_line_without_leaving_the_event_loop() -> None:
    """The log line is written within ``record``: no worker-thread hand-off per event."""
    event = await SecurityEvents(FakeClock(), []).emit("data.change", "success")
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=out),
        processors=[structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    step = LogSink(logger).record(event)
    with pytest.raises(StopIteration):
        step.send(None)  # done at its first step: it never waits on anything
    line = json.loads(out.getvalue())
    assert (line["event"], line["action"]) == ("security_event", "data.change")


@pytest.mark.parametrize(("level", "lines"), [(logging.INFO, 1), (logging.DEBUG, 2)])
async def test_debug_actions_are_logged_at_debug_level_only(level: int, lines: int) -> None:
    """With ``debug_actions``, those actions' lines appear only when the log level is
    debug (at debug level); every other event is still logged at info."""
    emitter = SecurityEvents(FakeClock(), [])
    routine = await emitter.emit("data.change", "success")
    notable = await emitter.emit("admin.change", "success")
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(file=out),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )
    sink = LogSink(logger, debug_actions=frozenset({"data.change"}))
    await sink.record(routine)
    await sink.record(notable)
    logged = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(logged) == lines
    assert (logged[-1]["action"], logged[-1]["level"]) == ("admin.change", "info")
    if lines == 2:
        assert (logged[0]["action"], logged[0]["level"]) == ("data.change", "debug")


def test_the_server_logs_data_changes_at_debug_level(server: ServerThread) -> None:
    """The running server's log sink keeps ``data.change`` (one per committed write, in
    the audit log whole) to debug level."""
    sinks = [s for s in server.services.events._sinks if isinstance(s, LogSink)]
    assert [s._debug_actions for s in sinks] == [frozenset({"data.change"})]
