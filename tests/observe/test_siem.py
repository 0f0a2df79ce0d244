"""SIEM export: RFC 5424 frames over TLS to a real listener, CEF, JSON lines, outages."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from prometheus_client import REGISTRY

from bastion.core.clock import FakeClock
from bastion.observe.events import Actor, MemorySink, Origin, SecurityEvents
from bastion.observe.siem import (
    JsonLinesTarget,
    SiemSink,
    SyslogTarget,
    cef,
    json_message,
)
from tests.support.server import free_port

# RFC 5424 §6: HEADER SP STRUCTURED-DATA [SP MSG]
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) "
    r"(?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) (?P<sd>-|(?:\[[^\]]*(?:\\\][^\]]*)*\])+)"
    r"(?: (?P<msg>.*))?$",
    re.S,
)
CEF = re.compile(
    r"^CEF:0\|(?:[^|\\]|\\.)*\|(?:[^|\\]|\\.)*\|(?:[^|\\]|\\.)*\|"
    r"(?P<sig>(?:[^|\\]|\\.)*)\|(?P<name>(?:[^|\\]|\\.)*)\|(?P<sev>\d+)\|(?P<ext>.*)$"
)


def _transform(event: Any) -> dict[str, Any]:
    return dict(event.as_dict())


class Listener:
    """A syslog receiver over TLS that reads octet-counted frames (RFC 5425 §4.3)."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port, self.context = port, context
        self.frames: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self.context
        )

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int((await reader.readuntil(b" "))[:-1])
                self.frames.append((await reader.readexactly(length)).decode())
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def wait_for(self, count: int) -> list[str]:
        for _ in range(500):
            if len(self.frames) >= count:
                return self.frames
            await asyncio.sleep(0.01)
        raise AssertionError(f"received {len(self.frames)} of {count} frames")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def emitter() -> SecurityEvents:
    return SecurityEvents(FakeClock(), [MemorySink()], node="node-1")


async def _emit_login(events: SecurityEvents, reason: str = "bad|pass=word") -> None:
    await events.emit(
        "auth.login",
        "failure",
        actor=Actor(app_id="app_1", subject="usr_1", client_id="cli_1"),
        origin=Origin(ip="203.0.113.7", user_agent="curl/8\r\nInjected: yes", request_id="req_1"),
        reason=reason,
    )


@pytest.mark.parametrize("fmt", ["rfc5424", "cef"])
async def test_syslog_frames_over_tls_parse(
    ca: trustme.CA, emitter: SecurityEvents, fmt: str
) -> None:
    """Frames reach a TLS listener, parse as RFC 5424, and carry JSON or CEF messages."""
    listener = Listener(free_port(), _server_context(ca))
    await listener.start()
    formatter = json_message if fmt == "rfc5424" else cef
    target = SyslogTarget(
        "127.0.0.1", listener.port, formatter=formatter, tls=_client_context(ca), hostname="node-1"
    )
    sink = SiemSink(target, _transform, queue_max=100)
    emitter.add_sink(sink)
    sink.start()
    try:
        await _emit_login(emitter)
        await emitter.emit("token.issue", "success", actor=Actor(app_id="app_1"))
        frames = await listener.wait_for(2)
    finally:
        await sink.close()
        await listener.stop()
    first = RFC5424.match(frames[0])
    assert first is not None, frames[0]
    assert int(first["pri"]) == 10 * 8 + 4  # authpriv.warning for a failure
    assert (first["host"], first["app"], first["msgid"]) == ("node-1", "bastion", "auth.login")
    assert 'action="auth.login"' in first["sd"]
    assert "\n" not in frames[0]
    assert "\r" not in frames[0]
    second = RFC5424.match(frames[1])
    assert second is not None
    assert int(second["pri"]) == 10 * 8 + 6
    if fmt == "rfc5424":
        body = json.loads(first["msg"])
        assert body["reason"] == "bad|pass=word"
        assert body["user_agent"] == "curl/8\r\nInjected: yes"
    else:
        parsed = CEF.match(first["msg"])
        assert parsed is not None, first["msg"]
        assert (parsed["sig"], parsed["sev"]) == ("auth.login", "6")
        assert r"reason=bad|pass\=word" in parsed["ext"]
        assert r"requestClientApplication=curl/8\r\nInjected: yes" in parsed["ext"]
        assert "src=203.0.113.7" in parsed["ext"]


async def test_a_receiver_outage_loses_nothing_within_the_bound(
    ca: trustme.CA, emitter: SecurityEvents
) -> None:
    """Events wait while the receiver is down and arrive in order once it is back."""
    listener = Listener(free_port(), _server_context(ca))
    target = SyslogTarget(
        "127.0.0.1",
        listener.port,
        formatter=json_message,
        tls=_client_context(ca),
        hostname="node-1",
    )
    sink = SiemSink(target, _transform, queue_max=100)
    emitter.add_sink(sink)
    sink.start()
    try:
        for i in range(5):
            await _emit_login(emitter, reason=f"attempt{i}")
        await asyncio.sleep(0.3)  # the sink is retrying against a closed port meanwhile
        await listener.start()
        frames = await listener.wait_for(5)
    finally:
        await sink.close()
        await listener.stop()
    reasons = [json.loads(RFC5424.match(f)["msg"])["reason"] for f in frames]  # type: ignore[index]
    assert reasons == [f"attempt{i}" for i in range(5)]


async def test_an_overflowing_queue_drops_and_counts(emitter: SecurityEvents) -> None:
    """Past the bound, events are dropped (never blocking the emitter) and counted."""
    target = SyslogTarget(
        "127.0.0.1", free_port(), formatter=json_message, tls=None, hostname="node-1"
    )
    target.name = "overflow-test"
    sink = SiemSink(target, _transform, queue_max=10)
    emitter.add_sink(sink)
    for i in range(15):
        await _emit_login(emitter, reason=f"r{i}")
    dropped = REGISTRY.get_sample_value("bastion_siem_dropped_total", {"target": "overflow-test"})
    assert dropped == 5
    await sink.close()


async def test_json_lines_to_a_file(tmp_path: Path, emitter: SecurityEvents) -> None:
    """One JSON object per line, control characters escaped, in order."""
    path = tmp_path / "events.jsonl"
    sink = SiemSink(JsonLinesTarget(str(path)), _transform, queue_max=100)
    emitter.add_sink(sink)
    sink.start()
    await _emit_login(emitter)
    await emitter.emit("token.revoke", "success")
    assert await sink.drain(5)
    await sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["auth.login", "token.revoke"]
