"""An HTTPS server (self-signed certificate) beside the session's plain-HTTP one."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Databases, make_settings, start_server
from tests.support.server import ServerThread

ALLOWED_ORIGIN = "https://app.example.com"


def trust(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate."""
    return ssl.create_default_context(cafile=str(cert_file))


@pytest.fixture(scope="module")
def tls_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server terminating TLS itself, with one allowed browser origin."""
    settings = make_settings(
        tmp_path_factory.mktemp("tls"),
        databases.new(),
        transport={"tls": True, "allowed_origins": (ALLOWED_ORIGIN,)},
    )
    port = settings.server.port
    settings = settings.model_copy(
        update={
            "server": settings.server.model_copy(update={"public_url": f"https://127.0.0.1:{port}"})
        }
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def https(tls_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the HTTPS server that trusts its self-signed certificate."""
    assert tls_server.tls is not None
    context = trust(tls_server.tls.certificate.cert_file)
    async with httpx.AsyncClient(base_url=tls_server.base_url, verify=context) as client:
        yield client
