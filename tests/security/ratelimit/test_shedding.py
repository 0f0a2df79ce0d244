"""Load shedding: overload signals, and low-priority traffic shed through the real server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from bastion.observe.events import MemorySink
from bastion.security.ratelimit.shedding import LoadMonitor
from tests.conftest import Databases, make_settings, start_server
from tests.support.problem_checks import problem
from tests.support.server import ServerThread


async def test_event_loop_lag_is_detected_when_it_lasts() -> None:
    monitor = LoadMonitor(max_lag_ms=150, max_in_flight=100, max_latency_ms=1000)
    assert monitor.overloaded() is None
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # noqa: ASYNC251 - blocking the loop is the point
    await asyncio.sleep(0.01)
    assert monitor.overloaded() is None  # one stall is not an overload
    for _ in range(4):
        time.sleep(0.3)  # noqa: ASYNC251 - a loop that stays late
        await asyncio.sleep(0.01)
    assert monitor.overloaded() == "event-loop-lag"
    assert monitor.lag > 0.15
    monitor.close()


async def test_in_flight_and_latency_thresholds() -> None:
    monitor = LoadMonitor(max_lag_ms=1000, max_in_flight=2, max_latency_ms=50)
    starts = [monitor.started() for _ in range(3)]
    assert monitor.overloaded() == "in-flight"
    for start in starts:
        monitor.finished(start - 2.0)  # each took two seconds
    assert monitor.in_flight == 0
    assert monitor.overloaded() == "latency"
    monitor.close()


@pytest.fixture(scope="module")
def busy(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server whose latency threshold every request exceeds."""
    settings = make_settings(
        tmp_path_factory.mktemp("shed"), databases.new(), ratelimit={"shed_latency_ms": 0.001}
    )
    running = start_server(settings)
    yield running
    running.stop()


async def test_reads_are_shed_with_503_while_writes_pass(busy: ServerThread) -> None:
    sink = MemorySink()
    busy.services.events.add_sink(sink)
    async with httpx.AsyncClient(base_url=busy.base_url) as http:
        await http.post("/v1/users", json={})  # a write: served (401), and its latency counted
        shed = await http.get("/healthz")
        write = await http.post("/v1/users", json={})
        token = await http.post("/oauth/token", data={"grant_type": "client_credentials"})
    problem(shed, 503, "temporary-reduced-capacity")
    assert shed.headers["retry-after"] == "1"
    assert write.status_code == 401
    assert token.status_code == 401
    events = sink.of("ratelimit.shed")
    assert events
    assert events[0].reason == "latency"
    assert events[0].details["group"] == "reads"


@pytest.fixture(scope="module")
def busy_sockets(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server that sheds WebSocket handshakes, and whose latency every request exceeds."""
    settings = make_settings(
        tmp_path_factory.mktemp("shed-ws"),
        databases.new(),
        ratelimit={"shed_latency_ms": 0.001, "shed_groups": ["ws-connect"]},
    )
    running = start_server(settings)
    yield running
    running.stop()


async def test_a_shed_handshake_gets_an_error_frame_then_1011(busy_sockets: ServerThread) -> None:
    """Shedding a socket uses the house close code for server trouble (1011), after an
    error frame with the 503 problem and retry_after."""
    async with httpx.AsyncClient(base_url=busy_sockets.base_url) as http:
        await http.get("/healthz")  # not shed here: its latency is counted
    async with websockets.connect(busy_sockets.ws_url, open_timeout=5) as socket:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 5))
        with pytest.raises(websockets.ConnectionClosed) as closing:
            await asyncio.wait_for(socket.recv(), 5)
    assert frame["type"] == "error"
    assert frame["data"]["status"] == 503
    assert frame["data"]["retry_after"] == 1
    assert closing.value.rcvd is not None
    assert closing.value.rcvd.code == 1011
