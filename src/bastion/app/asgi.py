"""The complete ASGI application: the input, transport and rate-limit guards around the API."""

from __future__ import annotations

from bastion.app.api import create_api
from bastion.app.observability import (
    log_ip,
)
from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.core.clock import Clock, SystemClock
from bastion.core.settings import Settings
from bastion.http.deps import Services
from bastion.http.head import HeadAsGet
from bastion.http.routes.messages import direct_send
from bastion.observe.access_log import AccessLog
from bastion.observe.events import SecurityEvents
from bastion.observe.http_metrics import RequestMetrics
from bastion.observe.logging import configure as configure_logging
from bastion.security.audit.context import AuditContext
from bastion.security.guard.body_text import BodyText
from bastion.security.guard.client_cert import ForwardedClientCert
from bastion.security.guard.cors import OriginPolicy
from bastion.security.guard.headers import SecurityHeaders, hsts_value
from bastion.security.guard.headers_size import HeaderLimits
from bastion.security.guard.https import HttpsOnly
from bastion.security.guard.json_shape import JsonShape
from bastion.security.guard.limits import BodyLimits
from bastion.security.guard.malformed import MalformedTraffic
from bastion.security.guard.media_types import MediaTypes
from bastion.security.guard.offenders import Offenders
from bastion.security.guard.proxies import TrustedProxies
from bastion.security.guard.ratelimit import RateLimits
from bastion.security.guard.request_id import RequestId
from bastion.security.guard.request_target import RequestTarget
from bastion.security.guard.timeouts import BodyTimeouts
from bastion.security.ratelimit.service import RateLimiting


def transport_guards(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Origin checks (CORS, WebSocket), security headers and the HTTPS-only redirect."""
    transport, server = settings.transport, settings.server
    app = OriginPolicy(
        app,
        allowed=transport.allowed_origins,
        own_origin=settings.public_url,
        max_age=transport.cors_max_age,
        problem_base=server.problem_base,
    )
    hsts = hsts_value(
        transport.hsts_max_age,
        include_subdomains=transport.hsts_include_subdomains,
        preload=transport.hsts_preload,
    )
    app = SecurityHeaders(app, hsts=hsts if transport.hsts_max_age else None)
    if transport.behind_tls_proxy:
        app = HttpsOnly(
            app, public_url=settings.public_url, trusted_proxies=server.forwarded_allow_ips
        )
    return app


def guarded(api: ASGIApp, settings: Settings) -> ASGIApp:
    """Wrap the API in the input guards, cheapest first: nothing is parsed before them."""
    limits = settings.validation
    base = settings.server.problem_base
    app: ASGIApp = JsonShape(
        api,
        max_depth=limits.max_json_depth,
        max_elements=limits.max_json_elements,
        problem_base=base,
    )
    app = BodyText(app, problem_base=base)
    app = BodyLimits(
        app,
        max_body_bytes=settings.server.max_body_bytes,
        max_frame_bytes=settings.realtime.max_frame_bytes,
        problem_base=base,
    )
    app = BodyTimeouts(
        app,
        request_seconds=limits.request_timeout_seconds,
        idle_seconds=limits.idle_timeout_seconds,
        problem_base=base,
    )
    app = MediaTypes(app, problem_base=base)
    app = RequestTarget(app, max_url_bytes=limits.max_url_bytes, problem_base=base)
    return HeaderLimits(
        app,
        max_headers=limits.max_headers,
        max_header_bytes=limits.max_header_bytes,
        problem_base=base,
    )


class Bastion:
    """The complete ASGI application: guards around the API."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.api = create_api(settings, clock)
        configure_logging(settings.log.level, json_output=settings.log.json_output)
        app = guarded(HeadAsGet(direct_send(self.api)), settings)
        app = RateLimits(app, self._rate_limiting, problem_base=settings.server.problem_base)
        if settings.log.access_log:
            app = AccessLog(app, client_ip=log_ip(settings))
        app = RequestMetrics(app, [self._observe_request])
        offenders = Offenders(
            clock or SystemClock(),
            threshold=settings.validation.malformed_threshold,
            window=settings.validation.malformed_window_seconds,
            block=settings.validation.block_seconds,
            block_max=settings.validation.block_max_seconds,
        )
        app = MalformedTraffic(
            app,
            offenders=offenders,
            events=self._events,
            problem_base=settings.server.problem_base,
        )
        app = TrustedProxies(app, settings.server.forwarded_allow_ips)
        if settings.transport.mtls == "proxy":
            # Outside TrustedProxies: it must see the direct peer, not the forwarded client.
            app = ForwardedClientCert(
                app,
                header_name=settings.transport.client_cert_header,
                trusted=settings.server.forwarded_allow_ips,
            )
        self._app = RequestId(AuditContext(transport_guards(app, settings)))

    def _observe_request(
        self, method: str, route: str, status: int, seconds: float, scope: Scope
    ) -> None:
        """Feed each response to the alert signals once the services are running."""
        services: Services | None = getattr(self.api.state, "services", None)
        if services is not None:
            services.monitoring.observe_request(method, route, status, seconds, scope)

    def _rate_limiting(self) -> RateLimiting | None:
        """The running rate limiter (None until the services are built at start-up)."""
        services: Services | None = getattr(self.api.state, "services", None)
        return services.ratelimit if services is not None else None

    def _events(self) -> SecurityEvents | None:
        """The security events emitter (None until the services are built at start-up)."""
        services: Services | None = getattr(self.api.state, "services", None)
        return services.events if services is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection."""
        await self._app(scope, receive, send)


def create_app(settings: Settings, clock: Clock | None = None) -> Bastion:
    """Build the ASGI application for ``settings``."""
    return Bastion(settings, clock)
