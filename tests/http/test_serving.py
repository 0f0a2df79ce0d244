"""The uvicorn configuration ``bastion serve`` runs with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.asgi import Receive, Scope, Send
from bastion.core.settings import Settings
from bastion.http import liveness, parse_errors, serving, tls_extension


async def _app(_scope: Scope, _receive: Receive, _send: Send) -> None:
    raise AssertionError("never called")


def test_mutual_tls_swaps_in_the_protocols_that_report_certificates(tmp_path: Path) -> None:
    """With mtls = tls the chosen HTTP implementation and the WebSocket one report TLS."""
    settings = Settings(transport={"mtls": "tls", "client_ca_file": tmp_path / "ca.pem"})
    config = serving.uvicorn_config(_app, settings, None, http="httptools")
    assert isinstance(config.http, type)
    assert issubclass(config.http, tls_extension.TlsHttpToolsProtocol)
    assert config.ws is tls_extension.TlsWebSocketsProtocol
    assert issubclass(config.ws, liveness.LivenessWebSocketsProtocol)


def test_without_mutual_tls_parse_errors_and_liveness_are_reported() -> None:
    """Off by default: uvicorn's own protocols, answering unparsable requests with a
    problem of the configured base; a WebSocket protocol that reports liveness."""
    settings = Settings(server={"problem_base": "https://docs.example/problems/"})
    config = serving.uvicorn_config(_app, settings, None, http="httptools")
    assert isinstance(config.http, type)
    assert issubclass(config.http, parse_errors.ProblemHttpToolsProtocol)
    assert config.http.problem_base == "https://docs.example/problems/"
    assert config.ws is liveness.LivenessWebSocketsProtocol
    h11 = serving.uvicorn_config(_app, settings, None, http="h11")
    assert isinstance(h11.http, type)
    assert issubclass(h11.http, parse_errors.ProblemH11Protocol)
    with pytest.raises(ValueError, match="zttp"):
        serving.connection_protocols(settings, "zttp")


def test_protocol_pings_follow_the_heartbeat_and_never_close_on_their_own() -> None:
    """The transport pings at the heartbeat's pace; closing a silent peer is the
    heartbeat's decision (1008), never uvicorn's keepalive timeout (1011)."""
    settings = Settings(realtime={"heartbeat_seconds": 7.0})
    config = serving.uvicorn_config(_app, settings, None, http="httptools")
    assert config.ws_ping_interval == 7.0
    assert config.ws_ping_timeout is None
