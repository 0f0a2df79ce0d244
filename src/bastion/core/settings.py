"""The one settings model: every knob, its secure default, and the production checks.

Settings are read once at start-up from (highest priority first) constructor
arguments, ``BASTION_*`` environment variables (``__`` separates sections, as in
``BASTION_DATABASE__URL``), and an optional TOML file named by ``BASTION_CONFIG_FILE``;
the frozen result is passed down explicitly. Nothing reads the environment later.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "BASTION_CONFIG_FILE"
_PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "changethis", "secret", "password"})
_MIN_PASSPHRASE = 16
_REACTION_NAME = re.compile(r"[a-z0-9_+-]{1,32}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
REDACTED = "**********"
# Query parameters whose values are connection options, never credentials; every other
# value (password=, token=, key=...) is hidden by ``redact_url``.
_PLAIN_QUERY_KEYS = frozenset(
    {
        "sslmode",
        "ssl",
        "application_name",
        "target_session_attrs",
        "connect_timeout",
        "timeout",
        "db",
    }
)


class ConfigFileError(ValueError):
    """The file ``BASTION_CONFIG_FILE`` names is missing, unreadable or not valid TOML."""


class InsecureProduction(ValueError):
    """Production mode refused the configuration; ``findings`` says why, one per problem."""

    def __init__(self, findings: list[str]) -> None:
        super().__init__(
            "refusing to run in production with an insecure configuration: " + "; ".join(findings)
        )
        self.findings = tuple(findings)


def _read_only(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


ReadOnlyMap = Annotated[
    Mapping[str, str],
    AfterValidator(_read_only),
    PlainSerializer(dict, return_type=dict[str, str]),
]
"""A string-to-string mapping that cannot be changed once the settings are built."""


class Environment(StrEnum):
    """Where the server runs; production refuses insecure settings."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerSettings(_Section):
    """Where and how the HTTP server listens."""

    host: str = Field("127.0.0.1", description="Interface to bind; loopback by default.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to listen on.")
    public_url: str | None = Field(
        None,
        description="The URL clients use to reach the server; the default token issuer. "
        "Unset: https://<host>:<port> as served (http:// with transport.tls off; "
        "127.0.0.1 for a wildcard host).",
    )
    data_dir: Path = Field(Path("var"), description="Holds the SQLite database and keys.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="Proxies (IPs or CIDRs, comma-separated) whose Forwarded and "
        "X-Forwarded-For headers name the client.",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, description="Largest request body accepted."
    )
    problem_base: str = Field("/problems/", description="Prefix of RFC 9457 problem type URIs.")
    idempotency_ttl_seconds: int = Field(
        86_400, ge=60, le=30 * 86_400, description="How long Idempotency-Key answers are kept."
    )


class DatabaseSettings(_Section):
    """The relational store: SQLite (embedded) or PostgreSQL."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/bastion.db. "
        "For PostgreSQL use postgresql+asyncpg://user@host/db.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connection pool size.")
    connect_timeout: float = Field(5.0, gt=0, le=60, description="Seconds to wait to connect.")
    echo: bool = Field(False, description="Log every SQL statement (development only).")
    sqlite_inline: bool = Field(
        True,
        description="Run SQLite calls on the event loop instead of a worker thread: "
        "several times cheaper per statement; each call holds the loop for its duration.",
    )


class AuthSettings(_Section):
    """Access tokens (RFC 9068 JWTs) and client credentials."""

    issuer: str | None = Field(None, description="Token issuer; defaults to server.public_url.")
    audience: str | None = Field(
        None, description="This API's resource identifier (token `aud`); defaults to the issuer."
    )
    signing_alg: Literal["ES256", "Ed25519"] = Field("ES256", description="Signature algorithm.")
    client_token_ttl: int = Field(900, ge=60, le=86_400, description="App-backend token life, s.")
    user_token_ttl: int = Field(3600, ge=60, le=86_400, description="Default user token life, s.")
    leeway: int = Field(30, ge=0, le=300, description="Clock skew allowed on exp/iat, s.")
    token_cache_size: int = Field(
        50_000, ge=0, le=1_000_000, description="Verified tokens remembered until they expire."
    )
    keys_passphrase: SecretStr | None = Field(
        None, description="Encrypts signing keys on disk; required in production."
    )
    argon2_time_cost: int = Field(3, ge=1, le=20, description="argon2id iterations.")
    argon2_memory_kib: int = Field(65_536, ge=8, le=4_194_304, description="argon2id memory.")
    argon2_parallelism: int = Field(2, ge=1, le=16, description="argon2id lanes.")


class ExternalIssuerSettings(_Section):
    """One trusted external OpenID Provider whose tokens this server accepts."""

    issuer: str = Field(description="The issuer identifier, exactly as the provider's `iss`.")
    app_id: str = Field(description="The app (tenant) this provider's users belong to.")
    audience: str | None = Field(
        None, description="Required `aud` of its access tokens; default: this server's audience."
    )
    client_ids: tuple[str, ...] = Field(
        (),
        description="OAuth client ids of the app at the provider: the `aud` of ID tokens "
        "accepted for token exchange.",
    )
    algorithms: tuple[str, ...] = Field(
        ("RS256", "ES256"),
        description="Signature algorithms accepted from this provider (never none or HS*).",
    )
    access_token_typ: tuple[str, ...] = Field(
        ("at+jwt", "application/at+jwt"),
        description='Accepted `typ` headers of access tokens (RFC 9068); "" accepts none.',
    )
    user_claim: str = Field("sub", description="Claim that becomes the user's external id.")
    name_claim: str = Field("name", description="Claim holding the display name.")
    role_claim: str | None = Field(None, description="Claim holding the user's groups/roles.")
    role_map: ReadOnlyMap = Field(
        default_factory=lambda: MappingProxyType({}),
        description="Provider group/role value -> Bastion role (`member` or `reader`).",
    )
    default_role: Literal["member", "reader"] | None = Field(
        "member", description="Role of a user no mapping matches; none refuses them."
    )

    @model_validator(mode="after")
    def _safe_algorithms(self) -> Self:
        bad = [a for a in self.algorithms if a.lower() == "none" or a.upper().startswith("HS")]
        if bad or not self.algorithms:
            raise ValueError(f"issuer {self.issuer}: only asymmetric algorithms are allowed")
        if any(role not in ("member", "reader") for role in self.role_map.values()):
            raise ValueError(f"issuer {self.issuer}: role_map values must be member or reader")
        return self


DPoPAlgorithm = Literal[
    "ES256",
    "ES384",
    "ES512",
    "Ed25519",
    "EdDSA",
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
]
"""The asymmetric JWS algorithms a DPoP proof may be signed with (RFC 9449 §4.2)."""


# Ed25519 is the fully-specified name RFC 9864 gives EdDSA over that curve; the
# polymorphic "EdDSA" it deprecates can still be configured.
_DEFAULT_DPOP_ALGORITHMS: tuple[DPoPAlgorithm, ...] = ("ES256", "Ed25519", "RS256", "PS256")


class ResourceServerSettings(_Section):
    """How presented tokens are validated: revocation, external issuers, DPoP."""

    max_token_bytes: int = Field(
        8192, ge=1024, le=65_536, description="Longest access token accepted (RFC 8725 §3.11)."
    )
    revocation_refresh_seconds: float = Field(
        2.0, gt=0, le=300, description="How often revoke-before cutoffs are re-read."
    )
    external_issuers: tuple[ExternalIssuerSettings, ...] = Field(
        (), description="Trusted external OpenID Providers (JSON list)."
    )
    fetch_timeout_seconds: float = Field(
        5.0, gt=0, le=30, description="Timeout of discovery and JWKS requests."
    )
    fetch_max_bytes: int = Field(
        262_144, ge=4096, le=4_194_304, description="Largest discovery/JWKS document read."
    )
    jwks_cache_seconds: int = Field(
        3600, ge=60, le=86_400, description="How long a provider's JWKS is trusted."
    )
    jwks_min_refresh_seconds: float = Field(
        60.0, ge=0, le=3600, description="Least time between two JWKS refetches (unknown kid)."
    )
    allow_http_loopback: bool = Field(
        False, description="Test only: allow http:// providers on 127.0.0.1; refused in production."
    )
    dpop_required_clients: tuple[str, ...] = Field(
        (), description="Client ids whose tokens must be DPoP-bound."
    )
    dpop_proof_max_age: int = Field(
        60, ge=5, le=600, description="How old (by iat) a DPoP proof may be, s."
    )
    dpop_nonce: bool = Field(False, description="Require server-issued DPoP nonces.")
    dpop_nonce_secret: SecretStr | None = Field(
        None,
        description="Key DPoP nonces are derived from; give every node the same one. "
        "Default: generated once in <data_dir>/keys/dpop-nonce.key.",
    )
    dpop_algorithms: tuple[DPoPAlgorithm, ...] = Field(
        _DEFAULT_DPOP_ALGORITHMS,
        min_length=1,
        description="Algorithms accepted for DPoP proofs (asymmetric only); advertised as "
        "dpop_signing_alg_values_supported.",
    )
    dpop_replay_url: str = Field(
        "",
        pattern=r"^(|memory://|(redis|rediss|redis\+unix)://.*)$",
        description="Where used DPoP proofs are remembered: memory:// (this node only) or "
        "redis://host:port/db (shared by all nodes). Empty: ratelimit.storage_url when that "
        "is Redis, else memory.",
    )
    dpop_replay_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Give up on the shared DPoP replay store (503) after, s."
    )


class OAuthSettings(_Section):
    """The authorization server: codes, refresh tokens, signing keys, login and lockout."""

    code_ttl: int = Field(60, ge=10, le=600, description="Authorization code life, s (<= 10 min).")
    refresh_idle_ttl: int = Field(
        1_209_600, ge=300, le=31_536_000, description="A refresh token unused this long dies, s."
    )
    refresh_absolute_ttl: int = Field(
        2_592_000, ge=300, le=31_536_000, description="Refresh-token family life from login, s."
    )
    interaction_ttl: int = Field(
        600, ge=60, le=3600, description="Time to finish the login pages of one request, s."
    )
    session_ttl: int = Field(
        28_800, ge=300, le=2_592_000, description="Browser login session life, s."
    )
    assertion_max_lifetime: int = Field(
        300, ge=30, le=3600, description="Longest private_key_jwt assertion accepted (exp-iat), s."
    )
    key_rotation_days: int = Field(
        90, ge=0, le=3650, description="Rotate the signing key after this many days (0 = never)."
    )
    key_publish_seconds: int = Field(
        3600, ge=0, le=604_800, description="The next key is published this long before use, s."
    )
    key_check_seconds: float = Field(
        60.0, gt=0, le=3600, description="How often a server re-reads and maybe rotates keys, s."
    )
    purge_interval_seconds: float = Field(
        600.0,
        gt=0,
        le=86_400,
        description="How often expired login interactions, codes, sessions, refresh tokens "
        "and revocations are deleted, s.",
    )
    password_min_length: int = Field(8, ge=8, le=64, description="Shortest password accepted.")
    password_max_length: int = Field(128, ge=64, le=1024, description="Longest password accepted.")
    require_mfa: bool = Field(False, description="Every login needs TOTP, whatever the client.")
    require_mfa_roles: tuple[str, ...] = Field(
        (), max_length=32, description="App roles whose holders must use TOTP (e.g. admin)."
    )
    mfa_issuer: str = Field("Bastion", min_length=1, max_length=64, description="TOTP issuer.")
    brute_force: bool = Field(True, description="Count failed logins and lock out (Keycloak).")
    max_login_failures: int = Field(
        5, ge=1, le=1000, description="Failures per account before a wait."
    )
    ip_max_login_failures: int = Field(
        20, ge=1, le=100_000, description="Failures per client IP (any accounts) before a wait."
    )
    wait_increment_seconds: int = Field(60, ge=1, le=86_400, description="Wait added per step.")
    max_wait_seconds: int = Field(900, ge=1, le=604_800, description="Longest temporary wait.")
    wait_strategy: Literal["multiple", "linear"] = Field(
        "multiple", description="Keycloak's wait formula: multiple or linear."
    )
    failure_reset_seconds: int = Field(
        43_200, ge=60, le=2_592_000, description="Failure counters reset after this quiet time."
    )
    quick_login_check_ms: int = Field(
        1000, ge=0, le=60_000, description="Failures closer than this count as a robot."
    )
    min_quick_login_wait_seconds: int = Field(
        60, ge=0, le=86_400, description="Wait imposed after a too-quick failure."
    )
    permanent_lockout: bool = Field(
        False, description="Lock permanently after max_temporary_lockouts (admin unlocks)."
    )
    max_temporary_lockouts: int = Field(
        1, ge=0, le=100, description="Temporary lockouts before a permanent one (if enabled)."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.password_min_length > self.password_max_length:
            raise ValueError("oauth.password_min_length must not exceed password_max_length")
        if self.failure_reset_seconds <= self.max_wait_seconds:
            raise ValueError("oauth.failure_reset_seconds must exceed oauth.max_wait_seconds")
        if self.refresh_idle_ttl > self.refresh_absolute_ttl:
            raise ValueError("oauth.refresh_idle_ttl must not exceed oauth.refresh_absolute_ttl")
        return self


class LimitSettings(_Section):
    """Limits every chat API has, enforced with a clear error."""

    message_max_chars: int = Field(4000, ge=1, le=100_000, description="Message body length.")
    group_max_members: int = Field(1000, ge=2, le=100_000, description="Members of a group.")
    broadcast_max_members: int = Field(
        100_000, ge=2, le=10_000_000, description="Members (readers) of a broadcast channel."
    )
    initial_members_max: int = Field(100, ge=1, le=1000, description="Members named at create.")
    mentions_max: int = Field(50, ge=0, le=1000, description="Mentions in one message.")
    page_size_default: int = Field(50, ge=1, le=1000, description="Default page size.")
    page_size_max: int = Field(200, ge=1, le=1000, description="Largest page size.")
    name_max_chars: int = Field(200, ge=1, le=1000, description="Channel and display names.")
    reactions_per_message_max: int = Field(
        50, ge=1, le=1000, description="Distinct emoji on one message."
    )

    @model_validator(mode="after")
    def _default_within_max(self) -> Self:
        if self.page_size_default > self.page_size_max:
            raise ValueError("limits.page_size_default must not exceed limits.page_size_max")
        return self


class RealtimeSettings(_Section):
    """The WebSocket endpoint and event fan-out."""

    heartbeat_seconds: float = Field(
        25.0, gt=0, le=300, description="Server ping interval; a client silent for 2x is closed."
    )
    auth_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Wait for an auth frame.")
    resume_buffer_events: int = Field(
        10_000, ge=0, le=1_000_000, description="Recent events kept per app for resume."
    )
    send_queue_max: int = Field(
        1000, ge=10, le=100_000, description="Events queued per connection before it is dropped."
    )
    max_connections_per_user: int = Field(10, ge=1, le=1000, description="Sockets per user.")
    max_frame_bytes: int = Field(65_536, ge=1024, le=1_048_576, description="Largest frame.")
    timed_role_check_seconds: float = Field(
        2.0,
        gt=0,
        le=300,
        description="How often ended timed bans and mutes are announced, rejoining members.",
    )


EndpointGroup = Literal[
    "all",
    "auth",
    "message-send",
    "channel-create",
    "invites",
    "search",
    "reads",
    "writes",
    "ws-connect",
]
"""Route classes a rate-limit policy can apply to (``all`` matches every request)."""

_QUOTA = r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day)s?\s*$"


class RateLimitPolicy(_Section):
    """A named policy: quotas over windows, for one scope, on some endpoint groups."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$", description="Stable policy name.")
    groups: tuple[EndpointGroup, ...] = Field(min_length=1, description="Route classes.")
    scope: Literal["ip", "user", "client", "app"] = Field(description="Who is counted.")
    quotas: tuple[str, ...] = Field(
        min_length=1, description='Quotas such as "5/second", "60/minute", "10 per 5 minutes".'
    )
    on_store_failure: Literal["closed", "open", "local"] = Field(
        "local", description="With the shared store down: refuse (503), allow, or count locally."
    )
    baseline_factor: float | None = Field(
        None, gt=1, le=1000, description="Tighten to this multiple of the caller's learned rate."
    )

    @model_validator(mode="after")
    def _quotas_parse(self) -> Self:
        for quota in self.quotas:
            if not re.match(_QUOTA, quota):
                raise ValueError(f"policy {self.name}: cannot read quota {quota!r}")
        return self


def _policy(
    name: str, groups: tuple[EndpointGroup, ...], scope: str, *quotas: str, **kw: Any
) -> RateLimitPolicy:
    return RateLimitPolicy(name=name, groups=groups, scope=scope, quotas=quotas, **kw)


DEFAULT_RATE_LIMIT_POLICIES: tuple[RateLimitPolicy, ...] = (
    _policy("ip", ("all",), "ip", "100/second", "3000/minute", on_store_failure="local"),
    _policy("auth-ip", ("auth",), "ip", "10/second", "60/minute", on_store_failure="local"),
    _policy(
        "message-send", ("message-send",), "user", "5/second", "120/minute", baseline_factor=10.0
    ),
    _policy("message-send-app", ("message-send",), "app", "1000/second"),
    _policy("channel-create", ("channel-create",), "user", "2/second", "30/minute"),
    _policy("invites", ("invites",), "user", "5/second", "100/minute"),
    _policy("search", ("search",), "user", "2/second", "30/minute", on_store_failure="open"),
    _policy("reads", ("reads",), "user", "20/second", "1200/minute", on_store_failure="open"),
    _policy("writes", ("writes",), "user", "10/second", "300/minute"),
    _policy("ws-connect-ip", ("ws-connect",), "ip", "5/second", "60/minute"),
    _policy("ws-connect", ("ws-connect",), "user", "2/second", "30/minute"),
)
"""The chat defaults: per-user message sends ~5/s burst as peers use, per-IP ceilings."""


class RateLimitSettings(_Section):
    """Rate limits, penalties, load shedding and WebSocket flood limits."""

    enabled: bool = Field(True, description="Enforce rate limits (on by default).")
    storage_url: str = Field(
        "memory://",
        description="Counter store: memory:// for one node, rediss://host:port/db (Redis over "
        "TLS; redis:// on loopback) for many.",
    )
    strategy: Literal["moving-window", "sliding-window-counter"] = Field(
        "moving-window", description="Algorithm from the limits library."
    )
    key_prefix: str = Field(
        "bastion", pattern=r"^[a-z0-9_-]{1,32}$", description="Store key prefix."
    )
    store_timeout_seconds: float = Field(
        0.25, gt=0, le=10, description="Give up on the shared store after this long."
    )
    store_retry_seconds: float = Field(
        2.0, gt=0, le=300, description="After a store failure, use the fail mode this long."
    )
    policies: tuple[RateLimitPolicy, ...] = Field(
        DEFAULT_RATE_LIMIT_POLICIES, description="The policies, as data (see rate-limits.md)."
    )
    scale: float = Field(
        1.0, gt=0, le=1_000_000, description="Multiply every quota (capacity planning, tests)."
    )
    penalty_base_seconds: float = Field(1.0, gt=0, le=3600, description="First penalty block.")
    penalty_max_seconds: float = Field(300.0, gt=0, le=86_400, description="Longest block.")
    penalty_decay_seconds: float = Field(
        60.0, gt=0, le=86_400, description="Each quiet period this long forgives one violation."
    )
    new_account_seconds: float = Field(
        86_400.0, ge=0, le=30 * 86_400, description="Accounts younger than this are new."
    )
    new_account_factor: float = Field(
        0.5, gt=0, le=1, description="New accounts get this fraction of user quotas."
    )
    baseline_half_life_seconds: float = Field(
        3600.0, gt=0, le=30 * 86_400, description="Half-life of learned request rates."
    )
    baseline_min_samples: int = Field(
        30, ge=1, le=100_000, description="Intervals observed before a baseline is trusted."
    )
    shed_groups: tuple[EndpointGroup, ...] = Field(
        ("reads", "search"), description="Low-priority route classes shed under overload."
    )
    shed_loop_lag_ms: float = Field(250.0, gt=0, description="Shed when event-loop lag exceeds.")
    shed_in_flight: int = Field(512, ge=1, description="Shed when this many requests run.")
    shed_latency_ms: float = Field(2000.0, gt=0, description="Shed when mean latency exceeds.")
    ws_connections_per_ip: int = Field(50, ge=1, le=100_000, description="Sockets per IP.")
    ws_frames: str = Field("20/second", pattern=_QUOTA, description="Inbound frames per socket.")
    ws_violations_before_close: int = Field(
        10, ge=1, le=10_000, description="Refused frames before close code 4008."
    )
    typing_coalesce_seconds: float = Field(
        2.0, ge=0, le=60, description="Repeated typing frames within this are merged."
    )
    override_refresh_seconds: float = Field(
        10.0, gt=0, le=3600, description="How often overrides are reread from the database."
    )
    override_max_factor: float = Field(
        10.0, ge=1, le=1000, description="Apps may raise a policy's rate at most this much."
    )


class AuthzSettings(_Section):
    """Authorization: how long role and policy lookups are cached, what is recorded."""

    cache_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How long another node's role or policy change may take to apply here "
        "(changes made on this node apply at once).",
    )
    audit_allows: bool = Field(
        False,
        description="Also record an authz.decision event for every allowed use of a "
        "sensitive permission (denials are always recorded).",
    )


class LogSettings(_Section):
    """Structured logging."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    json_output: bool = Field(True, description="One JSON object per line.")
    access_log: bool = Field(True, description="One line per request.")


class AuditSettings(_Section):
    """The tamper-evident audit log."""

    fail_closed: bool = Field(
        True,
        description="A state-changing request whose audit record cannot be written fails "
        "with 503 and changes nothing.",
    )
    reads_fail_closed: bool = Field(
        False,
        description="Also refuse reads (503) whose audit event cannot be written; off: "
        "they are served and the failure is counted and logged.",
    )
    hmac_key: SecretStr | None = Field(
        None,
        description="Key for HMAC-SHA256 of identifiers kept only as hashes; default: "
        "generated once in <data_dir>/audit/hmac.key.",
    )
    hmac_fields: tuple[str, ...] = Field(
        ("username", "external_id", "email", "jti", "token_id", "family_id"),
        description="Event detail fields stored only as their HMAC (secrets always are).",
    )
    ip: Literal["full", "truncate", "hmac"] = Field(
        "full",
        description="Client addresses in audit records: full, truncated (/24, /48) or HMAC'd.",
    )
    checkpoint_interval_seconds: float = Field(
        300.0, ge=1, le=86_400, description="How often a signed checkpoint is written."
    )


class TransportSettings(_Section):
    """HTTPS, security headers, CORS and TLS to the backing services."""

    tls: bool = Field(
        True,
        description="Serve HTTPS. Off only for tests or behind a TLS-terminating proxy "
        "(then set behind_tls_proxy).",
    )
    cert_file: Path | None = Field(
        None,
        description="PEM certificate chain; unset means a self-signed localhost certificate "
        "made at first start in <data_dir>/tls.",
    )
    key_file: Path | None = Field(None, description="PEM private key for cert_file.")
    cert_reload_seconds: float = Field(
        10.0, gt=0, le=3600, description="How often the certificate files are checked for change."
    )
    tls_min_version: Literal["1.2", "1.3"] = Field("1.2", description="Oldest TLS version.")
    tls_ciphers: str | None = Field(
        None, description="OpenSSL TLS 1.2 cipher list; unset means Mozilla intermediate."
    )
    mtls: Literal["off", "tls", "proxy"] = Field(
        "off",
        description="Client certificates (RFC 8705): off; tls, asked for in this server's own "
        "handshake (optional per connection); or proxy, read from client_cert_header as a "
        "trusted proxy forwards it.",
    )
    client_ca_file: Path | None = Field(
        None,
        description="CA bundle that client certificates are verified against (mtls = tls).",
    )
    client_cert_header: str = Field(
        "x-client-cert",
        pattern=r"^[a-z0-9-]{1,64}$",
        description="Header carrying the URL-encoded PEM client certificate (mtls = proxy), "
        "believed only from server.forwarded_allow_ips.",
    )
    behind_tls_proxy: bool = Field(
        False,
        description="A trusted proxy (server.forwarded_allow_ips) terminates TLS; plain-HTTP "
        "requests it forwards are redirected to https.",
    )
    hsts_max_age: int = Field(
        31_536_000, ge=0, le=63_072_000, description="Strict-Transport-Security max-age, s."
    )
    hsts_include_subdomains: bool = Field(True, description="HSTS includeSubDomains.")
    hsts_preload: bool = Field(False, description="HSTS preload (only once you submitted it).")
    allowed_origins: tuple[str, ...] = Field(
        (),
        description="Browser origins allowed by CORS and on the WebSocket; empty means none.",
    )
    cors_max_age: int = Field(600, ge=0, le=86_400, description="Preflight cache time, s.")
    database_ca_file: Path | None = Field(
        None,
        description="CA file for PostgreSQL TLS: set it to connect with verify-full "
        "(certificate chain and host name checked).",
    )
    redis_ca_file: Path | None = Field(
        None, description="CA file for rediss:// (default: the system's trusted CAs)."
    )
    redis_cert_file: Path | None = Field(
        None, description="Client certificate (PEM) presented to Redis over rediss://."
    )
    redis_key_file: Path | None = Field(None, description="Private key for redis_cert_file.")
    redis_check_hostname: bool = Field(
        True, description="Check that Redis's certificate names the host in the URL."
    )
    redis_allow_plain: bool = Field(
        False,
        description="Let production use plain redis:// to a non-loopback host (a private "
        "network you trust); otherwise rediss:// is required.",
    )

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("transport.cert_file and transport.key_file go together")
        if "*" in self.allowed_origins:
            raise ValueError("transport.allowed_origins lists origins; '*' is not allowed")
        if (self.redis_cert_file is None) != (self.redis_key_file is None):
            raise ValueError("transport.redis_cert_file and transport.redis_key_file go together")
        return self

    @model_validator(mode="after")
    def _coherent_mtls(self) -> Self:
        if self.mtls == "tls" and (self.client_ca_file is None or not self.tls):
            raise ValueError("transport.mtls = tls needs transport.tls and client_ca_file")
        if self.mtls != "tls" and self.client_ca_file is not None:
            raise ValueError("transport.client_ca_file is used only with transport.mtls = tls")
        if self.mtls == "proxy" and not self.behind_tls_proxy:
            raise ValueError("transport.mtls = proxy needs transport.behind_tls_proxy")
        return self


class ValidationSettings(_Section):
    """Input guards before parsing, text rules, and the outbound-URL (SSRF) guard."""

    max_url_bytes: int = Field(
        4096, ge=256, le=65_536, description="Longest request target (path and query), bytes."
    )
    max_headers: int = Field(64, ge=8, le=1000, description="Most request header fields.")
    max_header_bytes: int = Field(
        16_384, ge=1024, le=262_144, description="Largest total size of the request headers."
    )
    max_json_depth: int = Field(32, ge=2, le=1000, description="Deepest JSON nesting accepted.")
    max_json_elements: int = Field(
        10_000, ge=10, le=10_000_000, description="Most JSON values (items and members) in a body."
    )
    request_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="Time allowed to receive a whole request body."
    )
    idle_timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Longest pause allowed while a request body arrives."
    )
    malformed_threshold: int = Field(
        30, ge=1, le=100_000, description="Rejected requests from one address before it is blocked."
    )
    malformed_window_seconds: int = Field(
        60, ge=1, le=86_400, description="Window in which rejected requests are counted."
    )
    block_seconds: int = Field(
        30, ge=1, le=86_400, description="First block of a repeat offender; doubles each time."
    )
    block_max_seconds: int = Field(
        3600, ge=1, le=7 * 86_400, description="Longest block of a repeat offender."
    )
    confusable_names: Literal["reject", "allow"] = Field(
        "reject",
        description="`reject` refuses display names that mix scripts with look-alike letters.",
    )
    reactions: tuple[str, ...] = Field(
        (),
        max_length=200,
        description="Named reactions accepted besides emoji (lower-case, digits, _ + -).",
    )
    outbound_allow_http: bool = Field(
        False, description="Let the outbound guard fetch http:// URLs (tests only)."
    )
    outbound_allow_networks: tuple[str, ...] = Field(
        (), description="Networks (CIDR) the outbound guard may reach although not public."
    )
    outbound_timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Total time for one outbound fetch, redirects included."
    )
    outbound_max_bytes: int = Field(
        1_048_576, ge=1024, le=64 * 1_048_576, description="Largest outbound response body."
    )
    outbound_max_redirects: int = Field(
        3, ge=0, le=10, description="Redirects followed, each one checked again."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in self.reactions:
            if not _REACTION_NAME.fullmatch(name):
                raise ValueError(f"validation.reactions: {name!r} is not a valid reaction name")
        for network in self.outbound_allow_networks:
            ipaddress.ip_network(network, strict=False)
        if self.block_seconds > self.block_max_seconds:
            raise ValueError(
                "validation.block_seconds must not exceed validation.block_max_seconds"
            )
        return self


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class VaultSettings(_Section):
    """HashiCorp Vault Transit as the key source (``encryption.key_source = "vault"``)."""

    # A refused value must not echo the token into the error printed to the operator.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    address: str | None = Field(
        None,
        description="Vault's URL, e.g. https://vault.internal:8200; http only on loopback, "
        "and never in production.",
    )
    token: SecretStr | None = Field(
        None, description="Vault token (set it from a secret: BASTION_ENCRYPTION__VAULT__TOKEN)."
    )
    token_file: Path | None = Field(
        None,
        description="File holding the Vault token (e.g. written by Vault Agent); re-read "
        "at each start.",
    )
    mount: str = Field(
        "transit", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", description="Transit mount path."
    )
    key_name: str = Field(
        "bastion-kek",
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="Transit key (derived=true) that wraps data keys; its versions are the KEKs.",
    )
    backup_key_name: str = Field(
        "bastion-backup",
        pattern=r"^[A-Za-z0-9_-]{1,128}$",
        description="Transit key (derived=true) that wraps each backup's file key.",
    )
    namespace: str | None = Field(None, description="Vault Enterprise namespace, if any.")
    ca_file: Path | None = Field(
        None, description="CA bundle that signs Vault's certificate (default: system CAs)."
    )
    timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="Time limit of one request to Vault."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.address is None:
            return self
        parts = urlsplit(self.address)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("encryption.vault.address must be an https:// URL")
        if parts.scheme == "http" and not _is_loopback_host(parts.hostname):
            raise ValueError(
                "encryption.vault.address: http:// is allowed only on loopback; use https://"
            )
        if self.token is not None and self.token_file is not None:
            raise ValueError("set encryption.vault.token or token_file, not both")
        return self


class EncryptionSettings(_Section):
    """Encryption at rest: the key source, data-key caching, key age policy and backups."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    key_source: Literal["local", "vault"] = Field(
        "local",
        description="Where KEKs live: the local keyring file, or HashiCorp Vault Transit "
        "(encryption.vault).",
    )
    vault: VaultSettings = VaultSettings()

    master_passphrase: SecretStr | None = Field(
        None,
        description="Passphrase the keyring's master key is derived from (scrypt); "
        "production needs this or master_key.",
    )
    master_key: SecretStr | None = Field(
        None, description="The keyring's master key itself: 32 random bytes, base64."
    )
    keyring_file: Path | None = Field(
        None, description="The keyring file; default <data_dir>/keys/keyring.json."
    )
    dek_cache_seconds: float = Field(
        60.0, gt=0, le=3600, description="How long an unwrapped data key stays in memory."
    )
    kek_max_age_days: int = Field(
        90, ge=1, le=3650, description="Key age policy: `keys check` warns past this age."
    )
    backup_dir: Path | None = Field(
        None, description="Where `backup create` writes; default <data_dir>/backups."
    )
    backup_keep: int = Field(7, ge=1, le=1000, description="Backups kept (oldest removed).")
    backup_chunk_bytes: int = Field(
        1_048_576, ge=4096, le=64 * 1_048_576, description="Plaintext bytes per backup chunk."
    )
    key_age_refresh_seconds: float = Field(
        300.0, ge=1, le=86_400, description="How often the key-age metrics re-read the key source."
    )
    index_interval_seconds: float = Field(
        0.05,
        ge=0.01,
        le=60,
        description="How long after a send the search indexer files its pending terms.",
    )
    index_idle_seconds: float = Field(
        5.0,
        ge=0.1,
        le=3600,
        description="How often the search indexer looks for pending terms no send here "
        "announced (another node's, or a crashed process's).",
    )
    index_batch: int = Field(
        500, ge=1, le=10_000, description="Messages whose terms the indexer files per transaction."
    )

    @model_validator(mode="after")
    def _vault_is_configured(self) -> Self:
        vault = self.vault
        if self.key_source == "vault" and vault.address is None:
            raise ValueError("encryption.key_source = vault needs encryption.vault.address")
        if self.key_source == "vault" and vault.token is None and vault.token_file is None:
            raise ValueError(
                "encryption.key_source = vault needs encryption.vault.token or token_file"
            )
        return self

    def insecure_findings(self) -> list[str]:
        """What in this section is unfit for production."""
        if self.key_source == "vault":
            address = self.vault.address or ""
            if not address.startswith("https://"):
                return ["encryption.vault.address is not an https:// URL"]
            return []
        if self.master_passphrase is None and self.master_key is None:
            return [
                "neither encryption.master_passphrase nor encryption.master_key is set: the "
                "keyring's master key would sit in a file beside it"
            ]
        return []


class AlertRuleSettings(_Section):
    """One alert rule: a threshold or anomaly condition on a signal."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    signal: Literal[
        "auth_failures",
        "authz_denials",
        "token_reuse",
        "requests",
        "http_401_403",
        "http_5xx",
        "http_429",
        "error_rate",
        "latency_mean",
        "credential_stuffing",
        "password_spraying",
        "enumeration",
        "cpu_percent",
        "memory_percent",
        "disk_used_percent",
        "audit_failures",
        "siem_dropped",
    ]
    kind: Literal["threshold", "anomaly"] = "threshold"
    threshold: float = 0.0
    k: float = Field(3.0, gt=0, le=100)
    window_seconds: float = Field(60.0, gt=0, le=3600)
    for_seconds: float = Field(0.0, ge=0, le=86_400)
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_seconds: float = Field(900.0, ge=0, le=7 * 86_400)


def _rule(name: str, signal: str, **values: Any) -> AlertRuleSettings:
    return AlertRuleSettings(name=name, signal=signal, **values)


DEFAULT_ALERT_RULES = (
    _rule("failed_login_spike", "auth_failures", threshold=50, window_seconds=300),
    _rule("failed_login_anomaly", "auth_failures", kind="anomaly", k=4, for_seconds=180),
    _rule("unauthorized_rate", "http_401_403", threshold=100, window_seconds=300),
    _rule(
        "server_errors",
        "error_rate",
        threshold=0.05,
        window_seconds=300,
        for_seconds=120,
        severity="critical",
    ),
    _rule("rate_limited_spike", "http_429", kind="anomaly", k=4, for_seconds=120),
    _rule("traffic_spike", "requests", kind="anomaly", k=4, for_seconds=120),
    _rule("cpu_high", "cpu_percent", threshold=90, for_seconds=300),
    _rule("memory_high", "memory_percent", threshold=90, for_seconds=300, severity="critical"),
    _rule("disk_low", "disk_used_percent", threshold=90, severity="critical"),
    _rule(
        "credential_stuffing",
        "credential_stuffing",
        threshold=9,
        window_seconds=300,
        severity="critical",
        cooldown_seconds=1800,
    ),
    _rule(
        "password_spraying",
        "password_spraying",
        threshold=19,
        window_seconds=900,
        severity="critical",
        cooldown_seconds=1800,
    ),
    _rule("token_reuse_burst", "token_reuse", threshold=2, window_seconds=300, severity="critical"),
    _rule("enumeration", "enumeration", threshold=49, window_seconds=300),
    _rule("audit_failures", "audit_failures", threshold=0, window_seconds=300, severity="critical"),
    _rule("siem_overflow", "siem_dropped", threshold=0, window_seconds=300),
)


class MonitorSettings(_Section):
    """Alerts, notifiers, SIEM export and request-log privacy."""

    log_ip: Literal["full", "truncate", "hmac", "none"] = Field(
        "truncate",
        description="Client addresses in request logs: full, truncated, HMAC'd or left out.",
    )
    alerts_enabled: bool = Field(True, description="Evaluate the alert rules.")
    evaluation_seconds: float = Field(10.0, ge=1, le=3600, description="Rule evaluation period.")
    alert_rules: tuple[AlertRuleSettings, ...] = Field(
        DEFAULT_ALERT_RULES, description="The alert rules (see docs/monitoring.md)."
    )
    spraying_max_sources: int = Field(
        3, ge=1, le=1000, description="Password spraying: at most this many source addresses."
    )
    webhook_url: str | None = Field(None, description="POST alert notifications here.")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key for webhooks.")
    webhook_retries: int = Field(5, ge=0, le=20, description="Retries after a failed POST.")
    webhook_backoff_seconds: float = Field(
        1.0, ge=0, le=300, description="First retry delay; doubles each time."
    )
    smtp_host: str | None = Field(None, description="SMTP server for alert e-mail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str | None = Field(None, description="SMTP login user.")
    smtp_password: SecretStr | None = Field(None, description="SMTP login password.")
    email_from: str = Field("bastion@localhost", description="Sender of alert e-mail.")
    email_to: tuple[str, ...] = Field((), description="Recipients of alert e-mail.")
    siem_jsonl: str | None = Field(
        None, description="Write security events as JSON lines to this file ('-': stdout)."
    )
    siem_syslog_host: str | None = Field(None, description="Syslog (RFC 5424) receiver host.")
    siem_syslog_port: int = Field(6514, ge=1, le=65535, description="Syslog receiver port.")
    siem_syslog_format: Literal["rfc5424", "cef"] = Field(
        "rfc5424", description="Message format inside the syslog frame."
    )
    siem_syslog_tls: bool = Field(True, description="Syslog over TLS (RFC 5425).")
    siem_syslog_ca_file: Path | None = Field(
        None, description="CA bundle that signs the receiver's certificate."
    )
    siem_queue_max: int = Field(
        10_000, ge=10, le=10_000_000, description="Events queued per SIEM target before dropping."
    )

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Self:
        if self.webhook_url and self.webhook_secret is None:
            raise ValueError("monitor.webhook_url needs monitor.webhook_secret to sign bodies")
        return self

    def insecure_findings(self) -> list[str]:
        """What in this section is unfit for production."""
        findings = []
        if self.webhook_url and not self.webhook_url.startswith("https://"):
            findings.append("monitor.webhook_url is not an https:// URL")
        if self.smtp_host and not self.smtp_starttls:
            findings.append("monitor.smtp_starttls is off: alert e-mail would travel in clear")
        if self.siem_syslog_host and not self.siem_syslog_tls:
            findings.append("monitor.siem_syslog_tls is off: security events would travel in clear")
        return findings


class Settings(BaseSettings):
    """Every setting Bastion has, with secure defaults."""

    model_config = SettingsConfigDict(
        env_prefix="BASTION_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        # Refused values are not echoed: they may be secrets (tokens, passphrases).
        hide_input_in_errors=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    oauth: OAuthSettings = OAuthSettings()
    limits: LimitSettings = LimitSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    log: LogSettings = LogSettings()
    resource_server: ResourceServerSettings = ResourceServerSettings()
    audit: AuditSettings = AuditSettings()
    transport: TransportSettings = TransportSettings()
    authz: AuthzSettings = AuthzSettings()
    validation: ValidationSettings = ValidationSettings()
    encryption: EncryptionSettings = EncryptionSettings()
    monitor: MonitorSettings = MonitorSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read constructor arguments, then the environment, then the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(_toml_source(settings_cls, Path(config_file)))
        return tuple(sources)

    @property
    def database_url(self) -> str:
        """The effective database URL."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.server.data_dir / 'bastion.db'}"

    @property
    def keyring_file(self) -> Path:
        """The effective keyring file."""
        return self.encryption.keyring_file or self.server.data_dir / "keys" / "keyring.json"

    @property
    def dpop_replay_url(self) -> str:
        """The effective DPoP replay store: its own setting, else the shared rate-limit
        store when that is Redis, else this process's memory."""
        configured = self.resource_server.dpop_replay_url
        if configured:
            return configured
        shared = self.ratelimit.storage_url
        if shared.startswith(("redis://", "rediss://", "redis+unix://")):
            return shared
        return "memory://"

    @property
    def public_url(self) -> str:
        """The effective public URL (no trailing slash): ``server.public_url``, else where
        this process serves, so that what it advertises matches where it is reached
        (RFC 8414 §3.3) when it is started on another port."""
        configured = self.server.public_url
        if configured:
            return configured.rstrip("/")
        return served_url(self.server.host, self.server.port, tls=self.transport.tls)

    @property
    def issuer(self) -> str:
        """The effective token issuer identifier."""
        return (self.auth.issuer or self.public_url).rstrip("/")

    @property
    def audience(self) -> str:
        """The effective audience access tokens must name."""
        return self.auth.audience or self.issuer

    def insecure_findings(self) -> list[str]:
        """Say what makes this configuration unfit for production (empty when fine)."""
        findings = []
        if self.debug:
            findings.append("debug is on (BASTION_DEBUG): it must be off in production")
        if self.database.echo:
            findings.append("database.echo logs SQL with data: turn it off in production")
        if self.auth.keys_passphrase is None:
            findings.append(
                "auth.keys_passphrase is not set (BASTION_AUTH__KEYS_PASSPHRASE): signing keys "
                "would be stored unencrypted"
            )
        findings += _weak_secret_findings(self)
        if self.auth.issuer is None and self.server.public_url is None:
            # The derived URL names this machine's bind address: remote clients and
            # other nodes would see an issuer that is not theirs to reach.
            findings.append(
                "neither server.public_url nor auth.issuer is set "
                "(BASTION_SERVER__PUBLIC_URL): clients must be told the public https:// URL"
            )
        elif not self.issuer.startswith("https://"):
            findings.append(f"the token issuer {self.issuer!r} is not an https:// URL")
        if "*" in self.server.forwarded_allow_ips:
            findings.append(
                "server.forwarded_allow_ips trusts every peer: any client could choose the "
                "address it is rate-limited and logged under"
            )
        if not self.transport.tls and not self.transport.behind_tls_proxy:
            findings.append(
                "plain HTTP (transport.tls off) without a TLS-terminating proxy "
                "(transport.behind_tls_proxy)"
            )
        findings += self.encryption.insecure_findings()
        if self.transport.hsts_max_age < 31_536_000:
            findings.append("transport.hsts_max_age is below one year")
        if self.auth.argon2_memory_kib < 19_456 or self.auth.argon2_time_cost < 2:
            findings.append("argon2 parameters are below OWASP's minimum (19 MiB, t=2)")
        if self.validation.outbound_allow_http or self.validation.outbound_allow_networks:
            findings.append(
                "validation.outbound_allow_http/outbound_allow_networks open the outbound "
                "guard to plain http or private addresses: for tests only"
            )
        if self.resource_server.allow_http_loopback:
            findings.append("resource_server.allow_http_loopback is for tests only")
        findings.extend(
            f"external issuer {i.issuer!r} is not an https:// URL"
            for i in self.resource_server.external_issuers
            if not i.issuer.startswith("https://")
        )
        findings += self.monitor.insecure_findings()
        findings += _redis_findings(self.ratelimit.storage_url, self.transport)
        return findings

    @model_validator(mode="after")
    def _redis_tls_needs_rediss(self) -> Self:
        transport = self.transport
        files = (transport.redis_ca_file, transport.redis_cert_file)
        if any(files) and not self.ratelimit.storage_url.startswith("rediss://"):
            raise ValueError("transport.redis_ca_file/redis_cert_file need a rediss:// storage_url")
        return self

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Self:
        if self.environment is Environment.PRODUCTION:
            findings = self.insecure_findings()
            if findings:
                raise InsecureProduction(findings)
        return self

    def redacted(self) -> dict[str, Any]:
        """Return the effective configuration as plain data, safe to print: secrets are
        replaced by '**********', and so are the password and query values of every URL."""
        data = self.model_dump(mode="json")
        data["database"]["url"] = self.database_url
        data["server"]["public_url"] = self.public_url
        data["auth"]["issuer"] = self.issuer
        data["auth"]["audience"] = self.audience
        if self.monitor.webhook_url:
            # Chat-ops webhooks (Slack's, Teams') carry their secret in the path.
            data["monitor"]["webhook_url"] = redact_url(self.monitor.webhook_url, hide_path=True)
        redacted: dict[str, Any] = _redact_urls(data)
        return redacted


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    """The TOML file as a settings source; a missing or malformed file is refused."""
    if not path.is_file():
        raise ConfigFileError(f"{CONFIG_FILE_ENV} names {path}, which is not a file")
    try:
        return TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigFileError(f"{path} cannot be read: {exc.strerror}") from None


def _secrets(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, SecretStr]]:
    """Every secret set anywhere in ``model``, with its dotted name."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            yield f"{prefix}{name}", value
        elif isinstance(value, BaseModel):
            yield from _secrets(value, f"{prefix}{name}.")
        elif isinstance(value, tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _secrets(item, f"{prefix}{name}[{index}].")


def _weak_secret_findings(settings: BaseModel) -> list[str]:
    """Secrets set to a placeholder, or too short to resist guessing."""
    findings = []
    for name, secret in _secrets(settings):
        value = secret.get_secret_value()
        if value.strip().lower() in _PLACEHOLDER_SECRETS:
            findings.append(f"{name} is a placeholder value: set a long random secret")
        elif len(value) < _MIN_PASSPHRASE:
            findings.append(f"{name} is shorter than {_MIN_PASSPHRASE} characters")
    return findings


def _redact_urls(data: Any) -> Any:
    """``data`` with every URL-shaped string passed through ``redact_url``."""
    if isinstance(data, dict):
        return {key: _redact_urls(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_redact_urls(value) for value in data]
    if isinstance(data, str) and _URL.match(data):
        return redact_url(data)
    return data


# Wildcard binds are reached on loopback from this machine (these are names, not binds).
_WILDCARD_HOSTS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
_DEFAULT_PORTS = {"https": 443, "http": 80}


def served_url(host: str, port: int, *, tls: bool) -> str:
    """The URL of a server listening on ``host``:``port``, as a client on this machine
    reaches it: a wildcard address becomes loopback, and a default port is left out."""
    scheme = "https" if tls else "http"
    name = _WILDCARD_HOSTS.get(host, host)
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"  # RFC 3986 §3.2.2: an IPv6 literal in brackets
    return f"{scheme}://{name}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{name}:{port}"


def _redis_findings(url: str, transport: TransportSettings) -> list[str]:
    """A plain ``redis://`` to another host would carry counters and keys in clear."""
    scheme, _, rest = url.partition("://")
    if scheme != "redis" or transport.redis_allow_plain:
        return []
    host = rest.rpartition("@")[2].split("/", 1)[0]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
    if host == "localhost" or _is_loopback(host):
        return []
    return [
        f"ratelimit.storage_url is plain redis:// to {host!r}: use rediss:// (TLS), or set "
        "transport.redis_allow_plain if that network is private and trusted"
    ]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str, *, hide_path: bool = False) -> str:
    """Hide what may be a credential in a URL: the password of its user information, the
    values of its query parameters (but connection options such as ``sslmode``) and its
    fragment, and with ``hide_path`` the path. The scheme, user, host and port stay readable."""
    scheme, sep, rest = url.partition("://")
    rest, hash_mark, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if ":" in userinfo:
        userinfo = f"{userinfo.partition(':')[0]}:{REDACTED}"
    pairs = [_redact_parameter(pair) for pair in query.split("&")] if query else []
    if hide_path and slash:
        path = REDACTED
    return (
        f"{scheme}{sep}{userinfo}{at}{host}{slash}{path}{question}{'&'.join(pairs)}"
        f"{hash_mark}{REDACTED if fragment else ''}"
    )


def _redact_parameter(pair: str) -> str:
    key, equals, value = pair.partition("=")
    if not equals or not value or key.lower() in _PLAIN_QUERY_KEYS:
        return pair
    return f"{key}={REDACTED}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings once, from overrides, the environment and the config file."""
    return Settings(**overrides)
