"""Every long-lived service, built once per process from settings."""

from __future__ import annotations

import socket

from bastion.app.identity import dpop_validator, external_identities
from bastion.app.keys import outbound_guard, secret_hasher, signing_keys
from bastion.app.observability import (
    audit_log,
    checkpoints,
    monitoring,
)
from bastion.app.storage import database
from bastion.chat.context import ChatContext
from bastion.chat.indexer import SearchIndexer
from bastion.chat.service import Chat
from bastion.chat.users import UserResolver
from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.http.deps import Services
from bastion.http.idempotency import Idempotency
from bastion.observe import metrics as metric_families
from bastion.observe import system as system_metrics
from bastion.observe.event_metrics import MetricsSink
from bastion.observe.events import EventSink, LogSink, SecurityEvents
from bastion.observe.monitoring import SignalsSink
from bastion.realtime.memory import MemoryBroker
from bastion.security.audit.log import CHANGE_ACTION, ChangeAudit
from bastion.security.authenticator import Authenticator
from bastion.security.authz import Authorizer
from bastion.security.oauth.authserver import build as build_authserver
from bastion.security.oauth.server import TokenEndpoint
from bastion.security.ratelimit.counters import redis_tls_options
from bastion.security.ratelimit.service import RateLimiting
from bastion.security.tokens import AccessTokens, Revocations
from bastion.store.repos.authz import AuthzReader


def build_services(settings: Settings, clock: Clock) -> Services:
    """Create the database, keys, broker, token service and chat services."""
    db = database(settings)
    db.time_queries(metric_families.DB_QUERY_LATENCY.observe)
    system_metrics.install(settings.server.data_dir, db.pool_status)
    keys = signing_keys(settings)
    audit_sink = audit_log(settings, db)
    node = socket.gethostname()
    monitor = monitoring(settings, clock, audit_sink.redactor, node)
    log = LogSink(debug_actions=frozenset({CHANGE_ACTION}))
    sinks: list[EventSink] = [log, MetricsSink(), SignalsSink(monitor.signals), audit_sink]
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
