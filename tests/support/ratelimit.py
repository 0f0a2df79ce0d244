"""Servers with small, known rate-limit policies, and helpers to drive them."""

from __future__ import annotations

import itertools
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import free_port

SHARED_REDIS = "redis://127.0.0.1:6379/0"

_octets = itertools.count(1)


def fresh_ip() -> str:
    """A documentation-range IPv4 address no other test uses in this process."""
    n = next(_octets) + secrets.randbelow(1 << 20) * 4096
    return f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}"


def policy(name: str, group: str, scope: str, *quotas: str, **extra: Any) -> dict[str, Any]:
    """One policy as configuration data."""
    return {"name": name, "groups": [group], "scope": scope, "quotas": list(quotas), **extra}


def ratelimit_settings(
    storage_url: str, policies: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """A ``ratelimit`` settings section at scale 1 with its own key prefix."""
    return {
        "storage_url": storage_url,
        "policies": policies,
        "scale": 1.0,
        "key_prefix": f"t{secrets.token_hex(6)}",
        **extra,
    }


def redis_answers(url: str = SHARED_REDIS) -> bool:
    """Whether a Redis server listens at ``url``'s host and port."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        socket.create_connection((host, int(port or 6379)), timeout=1).close()
    except OSError:
        return False
    return True


class OwnRedis:
    """A private redis-server on a free port that a test may stop and start.

    With ``tls`` (redis-server's ``--tls-*`` arguments) it listens only for TLS.
    """

    def __init__(self, workdir: Path, tls: list[str] | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = tls

    @property
    def url(self) -> str:
        """The server's URL."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
            [
                self.binary,
                *self._ports(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def _ports(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return ["--port", "0", "--tls-port", str(self.port), *self.tls]

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def own_redis(workdir: Path, tls: list[str] | None = None) -> Iterator[OwnRedis]:
    """A started private Redis, stopped afterwards (for use in a fixture)."""
    redis = OwnRedis(workdir, tls)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()
