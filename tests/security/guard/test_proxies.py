"""Trusted proxies: forwarding headers count only when the peer is a configured proxy."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bastion.core.asgi import Scope
from bastion.security.guard.proxies import TrustedProxies, forwarded_chain
from tests.conftest import Databases, make_settings, start_server
from tests.support.ratelimit import policy, ratelimit_settings
from tests.support.server import ServerThread


async def _app(scope: Scope, receive: object, send: object) -> None:
    return None


def _scope(**headers: str) -> Scope:
    return {
        "type": "http",
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def test_chain_walks_from_the_right_past_trusted_hops() -> None:
    guard = TrustedProxies(_app, "127.0.0.1, 10.0.0.0/8")
    chain = forwarded_chain(_scope(x_forwarded_for="6.6.6.6, 198.51.100.7, 10.1.2.3"))
    assert guard.client_of("127.0.0.1", chain) == "198.51.100.7"
    assert guard.client_of("203.0.113.1", chain) == "203.0.113.1"  # untrusted peer: ignored


def test_forwarded_header_wins_and_is_parsed() -> None:
    guard = TrustedProxies(_app, "127.0.0.1")
    scope = _scope(
        forwarded='for=192.0.2.60;proto=http, for="[2001:db8:cafe::17]:4711"',
        x_forwarded_for="6.6.6.6",
    )
    assert guard.client_of("127.0.0.1", forwarded_chain(scope)) == "2001:db8:cafe::17"


def test_garbage_in_the_chain_stops_the_walk() -> None:
    guard = TrustedProxies(_app, "127.0.0.1")
    chain = forwarded_chain(_scope(x_forwarded_for="not-an-ip"))
    assert guard.client_of("127.0.0.1", chain) == "127.0.0.1"


def _server(databases: Databases, tmp: pytest.TempPathFactory, trusted: str) -> ServerThread:
    rl = ratelimit_settings("memory://", [policy("ip", "reads", "ip", "2/minute")])
    settings = make_settings(
        tmp.mktemp("px"), databases.new(), server={"forwarded_allow_ips": trusted}, ratelimit=rl
    )
    return start_server(settings)


@pytest.fixture(scope="module")
def untrusting(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server that trusts a proxy other than the test client."""
    running = _server(databases, tmp_path_factory, "192.0.2.250")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def trusting(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server that trusts the test client (loopback) as its proxy."""
    running = _server(databases, tmp_path_factory, "127.0.0.1")
    yield running
    running.stop()


async def test_spoofed_forwarded_for_is_ignored_from_an_untrusted_peer(
    untrusting: ServerThread,
) -> None:
    async with httpx.AsyncClient(base_url=untrusting.base_url) as http:
        codes = [
            (await http.get("/healthz", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(3)
        ]
        forwarded = await http.get("/healthz", headers={"Forwarded": "for=198.51.100.99"})
    assert codes == [200, 200, 429]  # every request counted against the real peer
    assert forwarded.status_code == 429


async def test_forwarded_for_is_honoured_from_a_trusted_proxy(trusting: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=trusting.base_url) as http:
        codes = [
            (await http.get("/healthz", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(3)
        ]
        same = [
            (await http.get("/healthz", headers={"X-Forwarded-For": "198.51.100.200"})).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 200]  # three clients behind the proxy, one request each
    assert same == [200, 200, 429]


async def test_ipv6_clients_are_counted_per_64(trusting: ServerThread) -> None:
    async with httpx.AsyncClient(base_url=trusting.base_url) as http:
        codes = [
            (await http.get("/healthz", headers={"X-Forwarded-For": address})).status_code
            for address in (
                "2001:db8:7:1::1",
                "2001:db8:7:1:ffff::2",
                "2001:db8:7:1::3",
                "2001:db8:7:2::1",
            )
        ]
    assert codes == [200, 200, 429, 200]
