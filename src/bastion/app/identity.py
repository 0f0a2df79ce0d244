"""Proof-of-possession (DPoP) checking and the trusted external OpenID Providers."""

from __future__ import annotations

from bastion.chat.context import ChatContext
from bastion.chat.identities import ExternalUsers
from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.observe.events import SecurityEvents
from bastion.security import secret_files
from bastion.security.external import ExternalIdentities
from bastion.security.fetch import JsonFetcher
from bastion.security.issuers import ExternalIssuer
from bastion.security.oauth import dpop_replay, rfc9449
from bastion.security.outbound import OutboundGuard, OutboundPolicy


def dpop_replay_store(settings: Settings) -> rfc9449.ReplayStore:
    """Where used DPoP proofs are remembered: Redis when configured, else this process."""
    url = settings.dpop_replay_url
    if not dpop_replay.is_shared(url):
        return rfc9449.ReplayCache()
    return dpop_replay.RedisReplayStore(
        url,
        key_prefix=settings.ratelimit.key_prefix,
        timeout=settings.resource_server.dpop_replay_timeout_seconds,
    )


def dpop_nonces(settings: Settings, clock: Clock) -> rfc9449.Nonces:
    """Server nonces every node derives alike from the configured (or shared file) secret."""
    configured = settings.resource_server.dpop_nonce_secret
    secret = secret_files.load_or_create(
        settings.server.data_dir / "keys" / "dpop-nonce.key",
        configured.get_secret_value() if configured else None,
    )
    return rfc9449.Nonces(secret, clock)


def dpop_validator(settings: Settings, clock: Clock) -> rfc9449.ProofValidator:
    """The RFC 9449 proof checker, with its replay store and (if required) nonces."""
    rs = settings.resource_server
    return rfc9449.ProofValidator(
        clock=clock,
        algorithms=list(rs.dpop_algorithms),
        max_age=rs.dpop_proof_max_age,
        replay=dpop_replay_store(settings),
        nonces=dpop_nonces(settings, clock) if rs.dpop_nonce else None,
    )


def external_identities(
    settings: Settings, clock: Clock, ctx: ChatContext, events: SecurityEvents
) -> ExternalIdentities:
    """The trusted external OpenID Providers, with just-in-time users."""
    rs = settings.resource_server
    # The outbound guard refuses private and metadata addresses and redirects; only the
    # test-only switch lets it reach a provider on 127.0.0.1 over http.
    policy = OutboundPolicy.of(
        allow_http=rs.allow_http_loopback,
        allow_networks=["127.0.0.1/32"] if rs.allow_http_loopback else [],
        timeout_seconds=rs.fetch_timeout_seconds,
        max_bytes=rs.fetch_max_bytes,
        max_redirects=0,
    )
    fetcher = JsonFetcher(
        timeout=rs.fetch_timeout_seconds,
        max_bytes=rs.fetch_max_bytes,
        allow_http_loopback=rs.allow_http_loopback,
        guard=OutboundGuard(policy),
    )
    issuers = [
        ExternalIssuer(
            config,
            fetcher=fetcher,
            clock=clock,
            default_audience=settings.audience,
            leeway=settings.auth.leeway,
            max_token_bytes=rs.max_token_bytes,
            cache_seconds=rs.jwks_cache_seconds,
            min_refresh_seconds=rs.jwks_min_refresh_seconds,
        )
        for config in rs.external_issuers
    ]
    return ExternalIdentities(
        issuers,
        store=ExternalUsers(ctx),
        revocations=ctx.revocations,
        events=events,
        clock=clock,
        cache_size=settings.auth.token_cache_size,
    )
