"""The composition root: builds every long-lived object once and wires the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI

from bastion import __version__
from bastion.chat.context import ChatContext
from bastion.chat.identities import ExternalUsers
from bastion.chat.indexer import SearchIndexer
from bastion.chat.revocations import CutoffSync
from bastion.chat.service import Chat
from bastion.chat.users import UserResolver, keep_loading_revocations
from bastion.core.asgi import ASGIApp, Receive, Scope, Send
from bastion.core.clock import Clock, SystemClock
from bastion.core.settings import Settings
from bastion.http import problems
from bastion.http.deps import Services, known_query
from bastion.http.idempotency import Idempotency
from bastion.http.routes import (
    admin,
    alerts,
    audit,
    channels,
    clients,
    health,
    login,
    messages,
    metrics,
    moderation,
    oauth,
    problem_pages,
    ratelimits,
    revocations,
    search,
    user_logins,
    users,
    wellknown,
)
from bastion.http.schemas.common import Problem
from bastion.http.websocket import ConnectionRegistry
from bastion.http.websocket import router as websocket_router
from bastion.observe import key_ages as key_age_metrics
from bastion.observe import metrics as metric_families
from bastion.observe import system as system_metrics
from bastion.observe.access_log import AccessLog
from bastion.observe.alerts import AlertEngine, Notifier, Rule
from bastion.observe.detectors import Signals
from bastion.observe.event_metrics import MetricsSink
from bastion.observe.events import EventSink, LogSink, SecurityEvents
from bastion.observe.http_metrics import RequestMetrics
from bastion.observe.logging import configure as configure_logging
from bastion.observe.monitoring import CounterIncrease, Monitoring, SignalsSink
from bastion.observe.notifiers import (
    EmailNotifier,
    LogNotifier,
    SmtpConfig,
    WebhookNotifier,
)
from bastion.observe.siem import (
    JsonLinesTarget,
    SiemSink,
    SyslogTarget,
    Target,
    cef,
    json_message,
)
from bastion.realtime.memory import MemoryBroker
from bastion.security import key_ages, secret_files
from bastion.security.audit import keys as audit_keys
from bastion.security.audit.checkpoints import Checkpoints
from bastion.security.audit.context import AuditContext
from bastion.security.audit.log import AuditLog, ChangeAudit
from bastion.security.audit.records import Redactor, export_dict, truncate_ip
from bastion.security.authenticator import Authenticator
from bastion.security.authz import Authorizer
from bastion.security.crypto import vault
from bastion.security.crypto.envelope import EnvelopeCipher
from bastion.security.crypto.keyring import LocalKeyring, MasterKey
from bastion.security.crypto.keysource import ManagedKeySource
from bastion.security.crypto.shredlist import ShredList
from bastion.security.external import ExternalIdentities
from bastion.security.fetch import JsonFetcher
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
from bastion.security.issuers import ExternalIssuer
from bastion.security.key_rotation import RotationPolicy, maintain
from bastion.security.keys import KeyRing, SigningKeyStore
from bastion.security.oauth import dpop_replay, rfc9449
from bastion.security.oauth.authserver import build as build_authserver
from bastion.security.oauth.grants import RevocationSync
from bastion.security.oauth.server import TokenEndpoint
from bastion.security.outbound import OutboundGuard, OutboundPolicy
from bastion.security.passwords import SecretHasher
from bastion.security.ratelimit.counters import redis_tls_options
from bastion.security.ratelimit.service import RateLimiting
from bastion.security.tokens import AccessTokens, Revocations
from bastion.store.db import Database, create_engine
from bastion.store.repos.authz import AuthzReader

API_DESCRIPTION = """\
Bastion is a self-hostable, secure-by-design chat API: 1:1, group and broadcast
channels over REST and WebSocket. Every endpoint except health, discovery and this
document requires an RFC 9068 bearer access token from `POST /oauth/token`.
"""


def key_store(settings: Settings) -> SigningKeyStore:
    """The folder of signing keys."""
    passphrase = settings.auth.keys_passphrase
    return SigningKeyStore(
        settings.server.data_dir / "keys",
        passphrase.get_secret_value() if passphrase else None,
    )


def signing_keys(settings: Settings) -> KeyRing:
    """Load the signing keys, generating the first ones on first start."""
    return key_store(settings).load_or_create(settings.auth.signing_alg)


def rotation_policy(settings: Settings) -> RotationPolicy:
    """When keys rotate, and how long a retired key is kept (its tokens' longest life)."""
    auth, oauth = settings.auth, settings.oauth
    return RotationPolicy(
        period_days=oauth.key_rotation_days,
        publish_seconds=oauth.key_publish_seconds,
        keep_seconds=max(auth.client_token_ttl, auth.user_token_ttl) + auth.leeway,
        check_seconds=oauth.key_check_seconds,
    )


def secret_hasher(settings: Settings) -> SecretHasher:
    """The argon2id hasher with the configured cost."""
    auth = settings.auth
    return SecretHasher(
        time_cost=auth.argon2_time_cost,
        memory_kib=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    )


def outbound_guard(settings: Settings) -> OutboundGuard:
    """The SSRF guard every outbound fetch (webhooks, IdP metadata) goes through."""
    limits = settings.validation
    return OutboundGuard(
        OutboundPolicy.of(
            allow_http=limits.outbound_allow_http,
            allow_networks=limits.outbound_allow_networks,
            timeout_seconds=limits.outbound_timeout_seconds,
            max_bytes=limits.outbound_max_bytes,
            max_redirects=limits.outbound_max_redirects,
        )
    )


def database(settings: Settings) -> Database:
    """The database for the configured URL."""
    db = settings.database
    engine = create_engine(
        settings.database_url,
        pool_size=db.pool_size,
        connect_timeout=db.connect_timeout,
        echo=db.echo,
        sqlite_inline=db.sqlite_inline,
        tls_ca_file=settings.transport.database_ca_file,
    )
    return Database(engine, cipher=column_cipher(settings, SystemClock()))


def key_source(settings: Settings) -> ManagedKeySource:
    """Where KEKs live (``encryption.key_source``): Vault Transit or the local keyring."""
    encryption = settings.encryption
    if encryption.key_source == "vault":
        shredded = ShredList(settings.server.data_dir / "keys" / "shredded.json")
        return vault.connect(encryption.vault, shredded)
    secret = encryption.master_passphrase
    raw = encryption.master_key
    master = MasterKey(
        passphrase=secret.get_secret_value() if secret else None,
        raw_key=raw.get_secret_value() if raw else None,
        dev_key_file=settings.keyring_file.with_name("master.key"),
    )
    ring = LocalKeyring(settings.keyring_file, master)
    if not ring.exists():
        ring.create(SystemClock().now())
    return ring


def column_cipher(settings: Settings, clock: Clock) -> EnvelopeCipher:
    """Envelope encryption of sensitive columns under the key source's per-app KEKs."""
    return EnvelopeCipher(
        key_source(settings), clock, cache_seconds=settings.encryption.dek_cache_seconds
    )


def audit_log(settings: Settings, db: Database) -> AuditLog:
    """The audit log sink with its HMAC key and failure policy."""
    audit = settings.audit
    configured = audit.hmac_key.get_secret_value() if audit.hmac_key else None
    key = audit_keys.load_hmac_key(settings.server.data_dir, configured)
    return AuditLog(
        db,
        Redactor(key, audit.hmac_fields, audit.ip),
        fail_closed=audit.fail_closed,
        reads_fail_closed=audit.reads_fail_closed,
    )


def log_ip(settings: Settings) -> Callable[[str | None], str | None]:
    """How request logs show client addresses (``monitor.log_ip``)."""
    mode = settings.monitor.log_ip
    if mode == "none":
        return lambda _address: None
    if mode == "full":
        return lambda address: address
    if mode == "truncate":
        return lambda address: truncate_ip(address) if address else None
    configured = settings.audit.hmac_key
    key = audit_keys.load_hmac_key(
        settings.server.data_dir, configured.get_secret_value() if configured else None
    )
    redactor = Redactor(key, (), "hmac")
    return redactor.ip


def notifiers(settings: Settings) -> list[Notifier]:
    """The log, plus the webhook and e-mail when configured."""
    mon = settings.monitor
    found: list[Notifier] = [LogNotifier()]
    if mon.webhook_url and mon.webhook_secret:
        secret = mon.webhook_secret.get_secret_value().encode()
        found.append(
            WebhookNotifier(
                mon.webhook_url,
                secret,
                retries=mon.webhook_retries,
                backoff=mon.webhook_backoff_seconds,
            )
        )
    if mon.smtp_host and mon.email_to:
        password = mon.smtp_password.get_secret_value() if mon.smtp_password else None
        config = SmtpConfig(
            host=mon.smtp_host,
            port=mon.smtp_port,
            sender=mon.email_from,
            recipients=mon.email_to,
            starttls=mon.smtp_starttls,
            username=mon.smtp_username,
            password=password,
        )
        found.append(EmailNotifier(config))
    return found


def siem_targets(settings: Settings, node: str) -> list[Target]:
    """The configured SIEM destinations."""
    mon = settings.monitor
    targets: list[Target] = []
    if mon.siem_jsonl:
        targets.append(JsonLinesTarget(mon.siem_jsonl))
    if mon.siem_syslog_host:
        tls = None
        if mon.siem_syslog_tls:
            ca = str(mon.siem_syslog_ca_file) if mon.siem_syslog_ca_file else None
            tls = ssl.create_default_context(cafile=ca)
        formatter = cef if mon.siem_syslog_format == "cef" else json_message
        targets.append(
            SyslogTarget(
                mon.siem_syslog_host,
                mon.siem_syslog_port,
                formatter=formatter,
                tls=tls,
                hostname=node,
            )
        )
    return targets


def monitoring(settings: Settings, clock: Clock, redactor: Redactor, node: str) -> Monitoring:
    """Signals, alert rules with their notifiers, and SIEM sinks."""
    mon = settings.monitor
    signals = Signals(mon.spraying_max_sources)
    signals.gauges.update(system_metrics.gauges(settings.server.data_dir))
    signals.gauges["audit_failures"] = CounterIncrease(
        lambda: metric_families.total(metric_families.AUDIT_FAILURES), clock
    )
    signals.gauges["siem_dropped"] = CounterIncrease(
        lambda: metric_families.total(metric_families.SIEM_DROPPED), clock
    )
    rules = [Rule(**rule.model_dump()) for rule in mon.alert_rules]
    engine = AlertEngine(rules, signals, notifiers(settings), clock)
    sinks = [
        SiemSink(target, lambda event: export_dict(event, redactor), mon.siem_queue_max)
        for target in siem_targets(settings, node)
    ]
    return Monitoring(signals, engine, clock, sinks, mon.alerts_enabled, mon.evaluation_seconds)


def checkpoints(settings: Settings, db: Database, clock: Clock) -> Checkpoints:
    """The signer of audit checkpoints, with its own key."""
    passphrase = settings.auth.keys_passphrase
    keys = audit_keys.checkpoint_keys(
        settings.server.data_dir, passphrase.get_secret_value() if passphrase else None
    )
    return Checkpoints(db, keys, clock)


@dataclass(slots=True)
class _Lifespan:
    settings: Settings
    clock: Clock

    @contextlib.asynccontextmanager
    async def __call__(self, app: FastAPI) -> AsyncIterator[None]:
        services = build_services(self.settings, self.clock)
        try:
            await services.ratelimit.check_store()
        except RuntimeError:
            # Refused at start (a TLS misconfiguration): release what was opened.
            await services.ratelimit.close()
            await services.broker.close()
            await services.db.close()
            raise
        cutoffs = CutoffSync(services.chat.ctx)
        # With the database down, start anyway (health probes answer, /readyz says 503)
        # and keep trying; tokens are refused until the revocations are in.
        revoked = RevocationSync(services.db, services.tokens, self.clock)
        loader = asyncio.create_task(
            keep_loading_revocations(services.chat.ctx, loaders=[cutoffs.load, revoked.load])
        )
        await asyncio.wait({loader}, timeout=self.settings.database.connect_timeout)
        refresh = self.settings.resource_server.revocation_refresh_seconds
        syncer = asyncio.create_task(cutoffs.keep_loading(refresh))
        revoked_syncer = asyncio.create_task(revoked.keep_loading(refresh))
        keys = asyncio.create_task(
            maintain(
                key_store(self.settings),
                services.keys,
                rotation_policy(self.settings),
                services.events,
                self.clock,
            )
        )
        app.state.services = services
        app.state.connections = ConnectionRegistry(self.settings.realtime.max_connections_per_user)
        # A revocation closes the affected sockets now, not at their next frame.
        services.tokens.revocations.subscribe(app.state.connections.on_revoked)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise stall requests under load.
        background = [
            asyncio.create_task(
                services.checkpoints.run(self.settings.audit.checkpoint_interval_seconds)
            ),
            asyncio.create_task(system_metrics.sample_loop_lag()),
            await _key_ages(self.settings),
            asyncio.create_task(
                services.chat.ctx.indexer.run(
                    self.settings.encryption.index_interval_seconds,
                    self.settings.encryption.index_idle_seconds,
                )
            ),
            asyncio.create_task(
                services.ratelimit.admin.keep_reloading(
                    self.settings.ratelimit.override_refresh_seconds
                )
            ),
        ]
        services.monitoring.start()
        gc.freeze()
        try:
            yield
        finally:
            loader.cancel()
            syncer.cancel()
            revoked_syncer.cancel()
            keys.cancel()
            await services.ratelimit.close()
            await services.dpop.close()
            for task in background:
                task.cancel()
            await services.monitoring.close()
            await services.broker.close()
            await services.db.close()


async def _key_ages(settings: Settings) -> asyncio.Task[None]:
    """Sample key ages once now (so the first scrape has them), then keep refreshing."""
    collector = key_age_metrics.install()
    source, signing = key_source(settings), key_store(settings)
    max_age = settings.encryption.kek_max_age_days
    await key_ages.sample(collector, source, signing, max_age)
    interval = settings.encryption.key_age_refresh_seconds
    return asyncio.create_task(
        key_ages.keep_sampling(collector, source, signing, max_age, interval)
    )


def build_services(settings: Settings, clock: Clock) -> Services:
    """Create the database, keys, broker, token service and chat services."""
    db = database(settings)
    db.time_queries(metric_families.DB_QUERY_LATENCY.observe)
    system_metrics.install(settings.server.data_dir, db.pool_status)
    keys = signing_keys(settings)
    audit_sink = audit_log(settings, db)
    node = socket.gethostname()
    monitor = monitoring(settings, clock, audit_sink.redactor, node)
    sinks: list[EventSink] = [LogSink(), MetricsSink(), SignalsSink(monitor.signals), audit_sink]
    sinks += monitor.siem
    events = SecurityEvents(clock, sinks, node=node)
    # Order matters: the change is reported first, then the audit log appends it.
    db.add_hook(ChangeAudit(events))
    db.add_hook(audit_sink)
    broker = MemoryBroker(settings.realtime.resume_buffer_events)
    revocations = Revocations()
    tokens = AccessTokens(
        keys=keys,
        issuer=settings.issuer,
        audience=settings.audience,
        clock=clock,
        leeway=settings.auth.leeway,
        cache_size=settings.auth.token_cache_size,
        revocations=revocations,
        max_token_bytes=settings.resource_server.max_token_bytes,
    )
    authz = Authorizer(
        AuthzReader(db),
        events,
        cache_seconds=settings.authz.cache_seconds,
        audit_allows=settings.authz.audit_allows,
    )
    ctx = ChatContext(
        db=db,
        broker=broker,
        clock=clock,
        limits=settings.limits,
        revocations=revocations,
        authz=authz,
        events=events,
        indexer=SearchIndexer(db, settings.encryption.index_batch),
    )
    external = external_identities(settings, clock, ctx, events)
    authserver = build_authserver(
        settings,
        db=db,
        clock=clock,
        hasher=secret_hasher(settings),
        tokens=tokens,
        keys=keys,
        events=events,
    )
    token_endpoint = TokenEndpoint(
        clients=authserver.clients,
        users=UserResolver(ctx),
        grants=authserver.grants,
        events=events,
        tokens=tokens,
        audience=settings.audience,
        client_token_ttl=settings.auth.client_token_ttl,
        user_token_ttl=settings.auth.user_token_ttl,
        id_tokens=external,
        dpop_required=frozenset(settings.resource_server.dpop_required_clients),
    )
    return Services(
        settings=settings,
        db=db,
        chat=Chat.build(ctx),
        tokens=tokens,
        token_endpoint=token_endpoint,
        keys=keys,
        broker=broker,
        idempotency=Idempotency(db, clock, settings.server.idempotency_ttl_seconds),
        events=events,
        ratelimit=RateLimiting.build(
            settings.ratelimit,
            clock=clock,
            events=events,
            tokens=tokens,
            db=db,
            redis_tls=redis_tls_options(settings.transport),
        ),
        audit=audit_sink,
        checkpoints=checkpoints(settings, db, clock),
        authz=authz,
        outbound=outbound_guard(settings),
        authenticator=Authenticator(tokens, external),
        authserver=authserver,
        dpop=dpop_validator(settings, clock),
        monitoring=monitor,
    )


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


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
    }
    for status, description in (
        ("4XX", "An RFC 9457 problem: the request was refused."),
        ("5XX", "An RFC 9457 problem: the server could not answer."),
    )
}
"""Every route may answer a problem document; the OpenAPI document says so."""


def create_api(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The FastAPI application, without the outer ASGI guards."""
    api = FastAPI(
        responses=PROBLEM_RESPONSES,
        title="Bastion",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs" if settings.debug else None,
        redoc_url=None,
        lifespan=_Lifespan(settings, clock or SystemClock()),
        dependencies=[Depends(known_query)],
    )
    problems.install(api)
    # Routers are tried in order: the busiest first.
    routers = (
        messages,
        channels,
        users,
        admin,
        moderation,
        oauth,
        audit,
        alerts,
        wellknown,
        health,
        metrics,
        problem_pages,
        revocations,
        search,
        ratelimits,
        login,
        clients,
        user_logins,
    )
    for module in routers:
        api.include_router(module.router)
    api.include_router(websocket_router)
    return api


def transport_guards(app: ASGIApp, settings: Settings) -> ASGIApp:
    """Origin checks (CORS, WebSocket), security headers and the HTTPS-only redirect."""
    transport, server = settings.transport, settings.server
    app = OriginPolicy(
        app,
        allowed=transport.allowed_origins,
        own_origin=server.public_url,
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
            app, public_url=server.public_url, trusted_proxies=server.forwarded_allow_ips
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
        app = guarded(self.api, settings)
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
