"""How uvicorn serves the app: one place for ``bastion serve`` and the test servers."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn

from bastion.core.asgi import ASGIApp
from bastion.core.settings import Settings
from bastion.http import parse_errors, tls_extension
from bastion.http.liveness import LivenessWebSocketsProtocol
from bastion.security.crypto.certificates import ServerCertificate, describe, ensure_self_signed
from bastion.security.guard.tls import CertificateReloader, server_context


@dataclass(slots=True)
class Tls:
    """The live TLS context, the certificate it serves and the watcher that reloads it."""

    context: ssl.SSLContext
    certificate: ServerCertificate
    reloader: CertificateReloader


def server_certificate(settings: Settings, now: dt.datetime) -> ServerCertificate:
    """The operator's certificate, or the self-signed one (made now if missing)."""
    transport = settings.transport
    if transport.cert_file is not None and transport.key_file is not None:
        return describe(transport.cert_file, transport.key_file)
    return ensure_self_signed(settings.server.data_dir / "tls", now=now)


def prepare_tls(settings: Settings, now: dt.datetime) -> Tls | None:
    """Build the TLS context when the server terminates TLS itself (None otherwise)."""
    if not settings.transport.tls:
        return None
    cert = server_certificate(settings, now)
    context = server_context(settings.transport, cert.cert_file, cert.key_file)
    reloader = CertificateReloader(
        context, cert.cert_file, cert.key_file, settings.transport.cert_reload_seconds
    )
    return Tls(context=context, certificate=cert, reloader=reloader)


def _factory(context: ssl.SSLContext) -> Callable[[uvicorn.Config, Any], ssl.SSLContext]:
    def factory(_config: uvicorn.Config, _default: Any) -> ssl.SSLContext:
        return context

    return factory


def uvicorn_config(
    app: ASGIApp, settings: Settings, tls: Tls | None, **overrides: Any
) -> uvicorn.Config:
    """The uvicorn configuration: TLS context, no Server header, the app's own limits."""
    server = settings.server
    options: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "ws_max_size": settings.realtime.max_frame_bytes,
        "server_header": False,
        "date_header": True,
        # The app resolves the client address and scheme itself (security.guard.proxies,
        # security.guard.https), from trusted proxies only.
        "proxy_headers": False,
        "access_log": False,
        "log_level": "warning",
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 10,
        # Protocol pings at the heartbeat's pace, answered by every client's WebSocket
        # stack, keep idle sockets heard from (bastion.http.liveness); the heartbeat
        # alone decides when a silent one is closed, with its own close code.
        "ws_ping_interval": settings.realtime.heartbeat_seconds,
        "ws_ping_timeout": None,
    }
    if tls is not None:
        options["ssl_context_factory"] = _factory(tls.context)
    options.update(overrides)
    options.update(connection_protocols(settings, str(options.get("http", "auto"))))
    return uvicorn.Config(app, **options)


def connection_protocols(settings: Settings, http: str = "auto") -> dict[str, Any]:
    """uvicorn's protocol options: HTTP/1.1 parse errors answered as problems
    (``bastion.http.parse_errors``), a WebSocket protocol that reports when the peer was
    last heard (``bastion.http.liveness``) and, with mutual TLS, the protocols that also
    report the client certificate to the app (``bastion.http.tls_extension``)."""
    if settings.transport.mtls == "tls":
        options: dict[str, Any] = dict(tls_extension.protocols(http))
    elif http in parse_errors.HTTP_PROTOCOLS:
        options = {"http": parse_errors.HTTP_PROTOCOLS[http], "ws": LivenessWebSocketsProtocol}
    else:
        raise ValueError(f"no problem-answering protocol for http={http!r}")
    options["http"] = parse_errors.bound(options["http"], settings.server.problem_base)
    return options
