"""Resource exhaustion: each oversized or slow request is refused fast, without memory growth.

Every refusal is timed (a bound far below what parsing the input would cost) and the
server's resident memory is compared before and after many rounds. The server runs in
this process, so ``/proc/self/statm`` measures it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.support.server import ServerThread
from tests.support.tenants import Tenant

FAST = 0.5  # seconds: the most any refusal below may take
ROUNDS = 20
MAX_GROWTH = 40 * 1024 * 1024  # bytes of resident memory over all rounds


def resident_bytes() -> int:
    """This process's resident set size."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def timed(call: Callable[[], Awaitable[int]]) -> tuple[int, float]:
    """The status a call got and how long it took."""
    started = time.perf_counter()
    status = await call()
    return status, time.perf_counter() - started


async def post_raw(
    server: ServerThread, body: bytes, headers: dict[str, str], path: str = "/v1/users"
) -> int:
    """POST a body over a fresh connection; return the status (the connection may close)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        response = await client.post(path, content=body, headers=headers)
        return response.status_code


@pytest.fixture
async def auth(tenant: Tenant) -> dict[str, str]:
    """Backend credentials and a JSON content type."""
    return {**await tenant.backend_headers(), "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("name", "body", "status"),
    [
        ("deep arrays, 1 MB", b"[" * 1_000_000, 400),
        ("deep objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
        ("huge array, 1 MB", b"[" + b"0," * 500_000 + b"0]", 400),
        ("many keys", b"{" + b",".join(b'"k%d":1' % i for i in range(60_000)) + b"}", 400),
        ("long string", b'{"external_id":"a","display_name":"' + b"x" * 1_000_000 + b'"}', 422),
    ],
)
async def test_big_json_is_refused_fast(
    server: ServerThread, auth: dict[str, str], name: str, body: bytes, status: int
) -> None:
    """Each body is refused in well under FAST seconds and memory stays flat over rounds."""
    assert len(body) <= server.settings.server.max_body_bytes, name
    got, _ = await timed(lambda: post_raw(server, body, auth))  # warm-up
    assert got == status
    before = resident_bytes()
    for _ in range(ROUNDS):
        got, seconds = await timed(lambda: post_raw(server, body, auth))
        assert got == status
        assert seconds < FAST, f"{name}: {seconds:.3f}s"
    assert resident_bytes() - before < MAX_GROWTH


async def _declared_10mb(server: ServerThread, auth: dict[str, str]) -> int:
    """Announce a 10 MB body and send none of it: the answer must not wait for it."""
    head = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    raw, _ = await _raw_head(
        server,
        f"POST /v1/users HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {TEN_MB}\r\n\r\n".encode(),
    )
    return int(raw.split(b" ", 2)[1])


async def _chunked_10mb(server: ServerThread, auth: dict[str, str]) -> tuple[int | None, int]:
    """Stream 10 MB chunked while listening; the status and how many bytes went out.

    The server answers 413 and closes while bytes are still in flight, so the kernel may
    turn the close into a reset that swallows the answer: the status is then None.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
    writer.write(
        f"POST /v1/users HTTP/1.1\r\nHost: x\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"10000\r\n" + b" " * 65_536 + b"\r\n"
    answer = asyncio.ensure_future(reader.read(4096))
    sent = 0
    try:
        with contextlib.suppress(ConnectionError):
            while sent < TEN_MB and not answer.done():
                writer.write(chunk)
                sent += 65_536
                drained = asyncio.ensure_future(writer.drain())
                await asyncio.wait({drained, answer}, timeout=2, return_when="FIRST_COMPLETED")
                if not drained.done():
                    drained.cancel()
                    break
                drained.result()
        try:
            raw = await asyncio.wait_for(answer, timeout=5)
        except ConnectionError:
            raw = b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return (int(raw.split(b" ", 2)[1]) if raw else None), sent


TEN_MB = 10 * 1024 * 1024


async def test_a_10mb_body_is_refused_before_it_is_read(
    server: ServerThread, auth: dict[str, str]
) -> None:
    """A declared 10 MB body is 413 at once; a chunked one as soon as it passes the limit."""
    before = resident_bytes()
    for _ in range(5):
        status, seconds = await timed(lambda: _declared_10mb(server, auth))
        assert status == 413
        assert seconds < FAST
        started = time.perf_counter()
        chunked_status, sent = await _chunked_10mb(server, auth)
        assert chunked_status in (413, None)
        assert time.perf_counter() - started < 4 * FAST
        assert sent < TEN_MB  # answered before the client could send it all
    assert resident_bytes() - before < MAX_GROWTH


async def _raw_head(server: ServerThread, head: bytes) -> tuple[bytes, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return raw, time.perf_counter() - started


@pytest.mark.parametrize(
    ("name", "extra", "statuses"),
    [
        ("one 1 MB header", b"X-Big: " + b"a" * 1_000_000 + b"\r\n", (b"400", b"431")),
        ("10,000 headers", b"".join(b"X-%d: 1\r\n" % i for i in range(10_000)), (b"400", b"431")),
        ("65 small headers", b"".join(b"X-%d: 1\r\n" % i for i in range(65)), (b"431",)),
        ("8 KB URL", b"", (b"414",)),
    ],
)
async def test_giant_request_heads_are_refused_fast(
    server: ServerThread, name: str, extra: bytes, statuses: tuple[bytes, ...]
) -> None:
    """Headers and URLs beyond the limits are refused (by the server or the guard) fast."""
    target = b"/v1/users?q=" + b"a" * 8192 if name == "8 KB URL" else b"/v1/users"
    head = b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"
    before = resident_bytes()
    for _ in range(5):
        raw, seconds = await _raw_head(server, head)
        assert raw.split(b" ", 2)[1] in statuses, (name, raw[:200])
        assert seconds < FAST, f"{name}: {seconds:.3f}s"
    assert resident_bytes() - before < MAX_GROWTH
