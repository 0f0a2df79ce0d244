"""Guards that need their own server: slow clients, WebSocket frames, malformed-traffic blocks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from bastion.observe.events import MemorySink
from tests.conftest import Databases, make_settings, start_server
from tests.security.guard.test_guards import assert_problem
from tests.support.server import ServerThread
from tests.support.tenants import new_tenant

THRESHOLD = 5


@pytest.fixture(scope="module")
def strict(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with short body timeouts, small frames and a low malformed threshold."""
    settings = make_settings(
        tmp_path_factory.mktemp("strict"),
        databases.new(),
        validation={
            "request_timeout_seconds": 1.5,
            "idle_timeout_seconds": 0.5,
            "malformed_threshold": THRESHOLD,
            "block_seconds": 60,
        },
        realtime={"max_frame_bytes": 2048},
    )
    running = start_server(settings)
    yield running
    running.stop()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one response by its Content-Length, as an HTTP client would."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await asyncio.wait_for(reader.readexactly(length), timeout=5)


async def _slow_post(
    server: ServerThread, chunks: list[bytes], pause: float, *, deaf: bool = False
) -> tuple[bytes, float]:
    """POST a body in ``chunks`` ``pause`` seconds apart; the response and the time taken.

    A ``deaf`` client sends every chunk without looking for an answer in between.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    total = sum(len(c) for c in chunks) + 100
    head = (
        "POST /v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {total}\r\n\r\n"
    )
    try:
        writer.write(head.encode())
        answered = asyncio.ensure_future(reader.readuntil(b" "))
        for chunk in chunks:
            if answered.done() and not deaf:
                break
            with contextlib.suppress(ConnectionError):
                writer.write(chunk)
                await writer.drain()
            await asyncio.wait([answered], timeout=pause or 0.01)
        raw = await asyncio.wait_for(answered, timeout=5) + await _read_response(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return raw, loop.time() - started


def _status(raw: bytes) -> int:
    """The status code of a raw HTTP/1.1 response."""
    return int(raw.split(b" ", 2)[1])


async def test_a_stalled_body_is_408_after_the_idle_timeout(strict: ServerThread) -> None:
    """A client that sends part of its body and stops gets 408 after idle_timeout_seconds."""
    raw, elapsed = await _slow_post(strict, [b'{"external_id":'], 0)
    assert _status(raw) == 408
    assert 0.4 < elapsed < 1.5


async def test_a_trickled_body_is_408_after_the_request_timeout(strict: ServerThread) -> None:
    """A byte every 0.3 s never trips the idle timeout but hits the request deadline."""
    raw, elapsed = await _slow_post(strict, [b" "] * 20, 0.3)
    assert _status(raw) == 408
    assert elapsed < 6.5


async def test_a_client_that_keeps_sending_still_reads_its_408(strict: ServerThread) -> None:
    """The server reads on after the 408, so a busy sender gets the answer, not a reset."""
    raw, _ = await _slow_post(strict, [b" "] * 45, 0.04, deaf=True)
    assert _status(raw) == 408
    assert b"application/problem+json" in raw


async def test_an_oversized_websocket_frame_closes_with_1009(strict: ServerThread) -> None:
    """A message above realtime.max_frame_bytes closes the socket with 1009."""
    async with websockets.connect(strict.ws_url) as socket:
        await socket.send(json.dumps({"type": "auth", "token": "x" * 4096}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_repeat_offenders_are_blocked_and_reported(strict: ServerThread) -> None:
    """After THRESHOLD malformed requests one address gets 429; another is served; an event."""
    sink = MemorySink()
    strict.services.events.add_sink(sink)
    offender = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    bystander = httpx.AsyncHTTPTransport(local_address="127.0.0.4")
    async with (
        httpx.AsyncClient(base_url=strict.base_url, transport=offender) as bad,
        httpx.AsyncClient(base_url=strict.base_url, transport=bystander) as good,
    ):
        for _ in range(THRESHOLD):
            response = await bad.post("/v1/users", content=b"[[[", headers={"Content-Type": "x/y"})
            assert response.status_code == 415
        blocked = await bad.get("/healthz")
        body = assert_problem(blocked, 429)
        assert body["type"] == "/problems/blocked"
        assert int(blocked.headers["retry-after"]) > 0
        assert (await good.get("/healthz")).status_code == 200
        tenant = new_tenant(strict, good)
        assert (await good.get("/v1/users", headers=await tenant.backend_headers())).is_success
    events = sink.of("guard.malformed_block")
    assert len(events) == 1
    assert events[0].origin.ip == "127.0.0.3"
    assert events[0].outcome == "denied"
    assert events[0].details["block_seconds"] == 60
