"""Rate-limit counters in a Redis reached over TLS (``rediss://``), and refused TLS.

The test starts its own redis-server listening only for TLS, with a certificate for
127.0.0.1 from a CA it makes, and requiring a client certificate from that CA.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio

from bastion.app import create_app
from bastion.core.asgi import Message
from bastion.core.settings import Settings, TransportSettings
from bastion.security.ratelimit.counters import (
    Counters,
    StoreTlsRefused,
    open_store,
    redis_tls_options,
)
from tests.conftest import Databases, make_settings, start_server
from tests.support.certs import Authority
from tests.support.ratelimit import OwnRedis, fresh_ip, own_redis, policy, ratelimit_settings
from tests.support.server import ServerThread

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
QUOTA = 5


@dataclass(frozen=True, slots=True)
class Files:
    """The CA, Redis's certificate, Bastion's client certificate, and a stranger CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    wrong_ca: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    """Certificates made for this module."""
    folder = tmp_path_factory.mktemp("redis-pki")
    ca = Authority.create("Redis CA")
    ca.issue(["127.0.0.1"], folder / "redis.crt", folder / "redis.key")
    ca.issue_client("CN=bastion", folder / "bastion.crt", folder / "bastion.key")
    return Files(
        ca=ca.write_ca(folder / "ca.pem"),
        server_cert=folder / "redis.crt",
        server_key=folder / "redis.key",
        client_cert=folder / "bastion.crt",
        client_key=folder / "bastion.key",
        wrong_ca=Authority.create("Wrong CA").write_ca(folder / "wrong.pem"),
    )


@pytest.fixture(scope="module")
def tls_redis(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedis]:
    """A redis-server on a TLS port only (``--port 0``), client certificates required."""
    args = [
        "--tls-cert-file",
        str(files.server_cert),
        "--tls-key-file",
        str(files.server_key),
        "--tls-ca-cert-file",
        str(files.ca),
    ]
    yield from own_redis(tmp_path_factory.mktemp("redis-tls"), tls=args)


def _transport(files: Files, ca: Path) -> dict[str, object]:
    return {
        "redis_ca_file": ca,
        "redis_cert_file": files.client_cert,
        "redis_key_file": files.client_key,
    }


def _settings(
    databases: Databases, tmp: Path, tls_redis: OwnRedis, files: Files, ca: Path
) -> Settings:
    rl = ratelimit_settings(tls_redis.url, [policy("ip", "reads", "ip", f"{QUOTA}/minute")])
    return make_settings(tmp, databases.new(), ratelimit=rl, transport=_transport(files, ca))


@pytest.fixture
def tls_node(
    databases: Databases, tmp_path: Path, tls_redis: OwnRedis, files: Files
) -> Iterator[ServerThread]:
    """A server counting in the TLS Redis, with the right CA and a client certificate."""
    server = start_server(_settings(databases, tmp_path, tls_redis, files, files.ca))
    yield server
    server.stop()


async def test_counters_land_in_the_tls_redis(tls_node: ServerThread, tls_redis: OwnRedis) -> None:
    """Requests through a server on rediss:// are counted there, and the quota holds."""
    settings = tls_node.settings
    ip = fresh_ip()
    async with httpx.AsyncClient(base_url=tls_node.base_url, timeout=10) as http:
        codes = [
            (await http.get("/healthz", headers={"X-Forwarded-For": ip})).status_code
            for _ in range(QUOTA + 2)
        ]
    assert codes == [200] * QUOTA + [429] * 2
    client = redis.asyncio.Redis.from_url(tls_redis.url, **redis_tls_options(settings.transport))
    try:
        keys = [key async for key in client.scan_iter(f"{settings.ratelimit.key_prefix}*")]
    finally:
        await client.aclose()
    assert any(ip.encode() in key for key in keys), keys


async def test_a_wrong_ca_is_refused_with_a_clear_error(tls_redis: OwnRedis, files: Files) -> None:
    """The store's certificate does not chain to the configured CA: StoreTlsRefused."""
    transport = TransportSettings(**_transport(files, files.wrong_ca))
    store = open_store(tls_redis.url, key_prefix="t", timeout=2.0, tls=redis_tls_options(transport))
    counters = Counters(store, "moving-window", 2.0)
    try:
        with pytest.raises(StoreTlsRefused, match="certificate verify failed"):
            await counters.check()
    finally:
        await counters.close()


async def test_a_server_with_a_wrong_ca_does_not_start(
    databases: Databases, tmp_path: Path, tls_redis: OwnRedis, files: Files
) -> None:
    """ASGI startup fails, saying which store refused TLS and what to check."""
    app = create_app(_settings(databases, tmp_path, tls_redis, files, files.wrong_ca))
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError) as failed:
        await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    message = str(failed.value)
    assert message.startswith(f"rate-limit store rediss://127.0.0.1:{tls_redis.port}: TLS")
    assert "certificate verify failed" in message
    assert "transport.redis_ca_file" in message


def test_tls_options_verify_by_default(files: Files) -> None:
    """Certificates are required, host names checked, TLS 1.2 at least."""
    options = redis_tls_options(TransportSettings(redis_ca_file=files.ca))
    assert options["ssl_cert_reqs"] == "required"
    assert options["ssl_check_hostname"] is True
    assert options["ssl_min_version"] is ssl.TLSVersion.TLSv1_2
    assert options["ssl_ca_certs"] == str(files.ca)
    assert "ssl_certfile" not in options
