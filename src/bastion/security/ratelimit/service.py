"""Everything rate limiting needs at run time, built once by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.core.clock import Clock
from bastion.core.errors import BastionError
from bastion.core.settings import RateLimitSettings
from bastion.observe.events import SecurityEvents
from bastion.security.ratelimit.admin import OverrideAdmin
from bastion.security.ratelimit.counters import Counters, StoreTlsRefused, open_store
from bastion.security.ratelimit.identity import Caller, network_of
from bastion.security.ratelimit.policies import FRAMES_POLICY
from bastion.security.ratelimit.reports import ReportGate
from bastion.security.ratelimit.shedding import LoadMonitor
from bastion.security.ratelimit.sockets import FrameBudget, SocketCounts
from bastion.security.ratelimit.throttle import Throttle
from bastion.security.tokens import AccessTokens
from bastion.store.db import Database


@dataclass(slots=True)
class RateLimiting:
    """The throttle, the load monitor, and how to tell who a caller is."""

    settings: RateLimitSettings
    throttle: Throttle
    load: LoadMonitor
    tokens: AccessTokens
    sockets: SocketCounts
    admin: OverrideAdmin
    reports: ReportGate = field(default_factory=lambda: ReportGate(interval=1.0))

    @classmethod
    def build(
        cls,
        settings: RateLimitSettings,
        *,
        clock: Clock,
        events: SecurityEvents,
        tokens: AccessTokens,
        db: Database,
        redis_tls: Mapping[str, Any] | None = None,
    ) -> RateLimiting:
        """Open the configured store and build the throttle around it.

        ``redis_tls`` holds the TLS options of a ``rediss://`` store (``redis_tls_options``).
        """
        timeout = settings.store_timeout_seconds
        store = open_store(
            settings.storage_url, key_prefix=settings.key_prefix, timeout=timeout, tls=redis_tls
        )
        shared = Counters(store, settings.strategy, timeout)
        local = Counters(
            open_store("memory://", key_prefix="", timeout=timeout), settings.strategy, timeout
        )
        throttle = Throttle(settings, shared=shared, local=local, clock=clock, events=events)
        load = LoadMonitor(
            max_lag_ms=settings.shed_loop_lag_ms,
            max_in_flight=settings.shed_in_flight,
            max_latency_ms=settings.shed_latency_ms,
        )
        admin = OverrideAdmin(
            db, throttle.policies, throttle.overrides, clock, settings.override_max_factor
        )
        sockets = SocketCounts(settings.ws_connections_per_ip)
        return cls(settings, throttle, load, tokens, sockets, admin)

    def caller(self, address: str | None, authorization: bytes | None) -> Caller:
        """Who is calling: the client network, and the token's identities if it is valid."""
        network = network_of(address)
        if not authorization or authorization[:7].lower() != b"bearer ":
            return Caller(network)
        try:
            principal = self.tokens.authenticate(authorization[7:].strip().decode("ascii"))
        except (BastionError, UnicodeDecodeError):
            return Caller(network)
        return Caller(network, principal.user_id, principal.client_id, principal.app_id)

    def frame_budget(self, connection_id: str, caller: Caller) -> FrameBudget:
        """The inbound frame budget of a new socket (counted in this node's memory).

        The quota is the ``ws-frames`` policy's, after the caller's app or user override.
        """
        policy = self.throttle.policies.by_name[FRAMES_POLICY]
        quota = self.throttle.overrides.quotas(policy, caller)[0]
        return FrameBudget(
            self.throttle.local,
            f"{FRAMES_POLICY}/{connection_id}",
            quota,
            self.settings.ws_violations_before_close,
        )

    async def check_store(self) -> None:
        """At start: refuse to run if the shared store's TLS handshake fails.

        A refused certificate (wrong CA, wrong host name, no client certificate) is a
        configuration error that would otherwise only show as counting locally.
        """
        try:
            await self.throttle.shared.check()
        except StoreTlsRefused as exc:
            raise RuntimeError(
                f"rate-limit store {_where(self.settings.storage_url)}: TLS handshake failed "
                f"({exc}); check transport.redis_ca_file, redis_cert_file/redis_key_file and "
                "the host name in ratelimit.storage_url"
            ) from exc

    async def close(self) -> None:
        """Stop the load probe and close the store's connections."""
        self.load.close()
        await self.throttle.shared.close()


def _where(url: str) -> str:
    """The store's scheme, host and port, without credentials."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2].split('/', 1)[0]}"
