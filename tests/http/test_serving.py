"""The uvicorn configuration ``bastion serve`` runs with."""

from __future__ import annotations

from pathlib import Path

from bastion.core.asgi import Receive, Scope, Send
from bastion.core.settings import Settings
from bastion.http import serving, tls_extension


async def _app(_scope: Scope, _receive: Receive, _send: Send) -> None:
    raise AssertionError("never called")


def test_mutual_tls_swaps_in_the_protocols_that_report_certificates(tmp_path: Path) -> None:
    """With mtls = tls the chosen HTTP implementation and the WebSocket one report TLS."""
    settings = Settings(transport={"mtls": "tls", "client_ca_file": tmp_path / "ca.pem"})
    config = serving.uvicorn_config(_app, settings, None, http="httptools")
    assert config.http is tls_extension.TlsHttpToolsProtocol
    assert config.ws is tls_extension.TlsWebSocketsProtocol


def test_without_mutual_tls_uvicorn_keeps_its_own_protocols() -> None:
    """Off by default: nothing about uvicorn's protocols changes."""
    config = serving.uvicorn_config(_app, Settings(), None, http="httptools")
    assert config.http == "httptools"
    assert config.ws == "auto"
