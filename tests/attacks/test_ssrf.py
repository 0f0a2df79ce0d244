"""SECURITY.md §1 API7: every SSRF attempt is refused by the one outbound guard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bastion.security.outbound import OutboundGuard, OutboundPolicy, OutboundRefused

STRICT = OutboundGuard(OutboundPolicy())

CORPUS = [
    "https://127.0.0.1/",
    "https://127.0.0.1:8443/admin",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://100.100.100.200/",  # shared address space (Alibaba metadata)
    "https://0x7f000001/",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://0.0.0.0/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://[fe80::1]/",
    "https://[::]/",
    "https://224.0.0.1/",
    "https://localhost/",
    "https://LOCALHOST./",
    "http://example.com/",  # plain http
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "dict://127.0.0.1:11211/",
    "ftp://example.com/",
    "https://user:pass@example.com/",
    "https://example.com:99999/",
    "//example.com/",
    "",
]


@pytest.mark.parametrize("url", CORPUS)
async def test_corpus_is_refused(url: str) -> None:
    """No URL of the corpus gets past the guard."""
    with pytest.raises(OutboundRefused):
        await STRICT.check(url)


async def test_a_name_resolving_privately_is_refused() -> None:
    """A public-looking name whose DNS answer is private is refused (checked after resolving)."""

    async def resolver(host: str, port: int) -> list[str]:
        return {
            "intranet.example.com": ["10.1.2.3"],
            "mixed.example.com": ["93.184.215.14", "127.0.0.1"],
        }[host]

    guard = OutboundGuard(OutboundPolicy(), resolver)
    for url in ("https://intranet.example.com/", "https://mixed.example.com/"):
        with pytest.raises(OutboundRefused, match="non-public"):
            await guard.check(url)


async def test_a_public_address_passes_the_check() -> None:
    """The check is not a blanket refusal: a public address is allowed."""

    async def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    target = await OutboundGuard(OutboundPolicy(), resolver).check("https://example.com/x")
    assert (target.host, target.port, str(target.address)) == ("example.com", 443, "93.184.215.14")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def http_server(handler: Handler) -> AsyncIterator[int]:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering with ``handler``."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def answer(status: str, headers: dict[str, str], body: bytes = b"") -> Handler:
    """A handler that reads the request head and sends a fixed response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        length = f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        writer.write(f"HTTP/1.1 {status}\r\n{head}{length}\r\n".encode() + body)
        await writer.drain()
        writer.close()

    return handle


def local_guard(**policy: float) -> OutboundGuard:
    """A guard that may reach this machine's 127.0.0.1 over http, as a stand-in public host."""
    return OutboundGuard(
        OutboundPolicy.of(
            allow_http=True,
            allow_networks=["127.0.0.1/32"],
            timeout_seconds=policy.get("timeout", 5.0),
            max_bytes=int(policy.get("max_bytes", 65_536)),
            max_redirects=int(policy.get("max_redirects", 3)),
        )
    )


async def test_an_allowed_fetch_returns_the_body() -> None:
    """A fetch to an allowed address works and says which URL answered."""
    async with http_server(answer("200 OK", {"Content-Type": "text/plain"}, b"hello")) as port:
        response = await local_guard().fetch(f"http://127.0.0.1:{port}/x")
    assert (response.status, response.body) == (200, b"hello")


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://0x7f000001/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_",
    ],
)
async def test_a_redirect_to_a_private_address_is_refused(location: str) -> None:
    """An allowed URL that redirects to a disallowed one is refused at the redirect."""
    async with http_server(answer("302 Found", {"Location": location})) as port:
        with pytest.raises(OutboundRefused):
            await local_guard().fetch(f"http://127.0.0.1:{port}/start")


async def test_redirect_loops_stop() -> None:
    """Redirects are followed only up to the limit."""
    async with http_server(answer("302 Found", {"Location": "/again"})) as port:
        with pytest.raises(OutboundRefused, match="too many redirects"):
            await local_guard(max_redirects=2).fetch(f"http://127.0.0.1:{port}/")


async def test_an_oversized_response_is_refused() -> None:
    """A response body above the size limit is refused, not buffered."""
    async with http_server(answer("200 OK", {}, b"x" * 200_000)) as port:
        with pytest.raises(OutboundRefused, match="too large"):
            await local_guard(max_bytes=10_000).fetch(f"http://127.0.0.1:{port}/")


async def test_a_slow_server_times_out() -> None:
    """A server that never answers is given up on after the time limit."""

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answer; return once the client gives up
        writer.close()

    loop = asyncio.get_running_loop()
    async with http_server(stall) as port:
        started = loop.time()
        with pytest.raises(OutboundRefused, match="too long"):
            await local_guard(timeout=0.5).fetch(f"http://127.0.0.1:{port}/")
    assert loop.time() - started < 2
