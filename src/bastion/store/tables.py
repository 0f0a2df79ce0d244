"""The relational schema, as SQLAlchemy Core tables.

Every tenant-owned table carries ``app_id``; repositories filter on it in every query
but the few listed in docs/architecture.md ("Tenancy").
Times are stored as aware UTC datetimes. Message order is the integer ``seq``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone, so add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store UTC; refuse naive datetimes, which would be ambiguous."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Deterministic constraint names keep migrations portable between SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

ID = String(40)
TS = UTCDateTime()
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
SEQ = BigInteger().with_variant(Integer(), "sqlite")

apps = Table(
    "apps",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
    # Set while the app is disabled: its clients cannot get tokens, its tokens are refused.
    Column("disabled_at", TS, nullable=True),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("id", ID, primary_key=True),
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("scopes", String(1000), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(255), nullable=False),
    # Sealed (longer than the plaintext): TEXT on PostgreSQL; SQLite ignores lengths.
    Column("display_name", Text().with_variant(String(1000), "sqlite"), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    UniqueConstraint("app_id", "external_id"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", ID, primary_key=True),
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(16), nullable=False),
    Column("name", String(1000), nullable=True),
    Column("description", String(4000), nullable=True),
    Column("created_by", ID, nullable=False),
    # "usr_a:usr_b" (sorted) for direct channels, so one pair has at most one channel.
    Column("direct_key", String(100), nullable=True),
    Column("member_count", Integer, nullable=False, default=0),
    Column("last_message_id", ID, nullable=True),
    Column("last_message_at", TS, nullable=True),
    Column("activity_at", TS, nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    UniqueConstraint("app_id", "direct_key"),
    Index("ix_channels_app_id_activity", "app_id", "activity_at"),
)

channel_members = Table(
    "channel_members",
    metadata,
    Column("channel_id", ID, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("role", String(16), nullable=False),
    Column("joined_at", TS, nullable=False),
    Column("last_read_seq", SEQ, nullable=False, default=0),
    Column("last_read_message_id", ID, nullable=True),
    Column("last_read_at", TS, nullable=True),
    # A timed role (a ban or mute with an expiry): once past, the role becomes role_after.
    Column("role_expires_at", TS, nullable=True),
    Column("role_after", String(16), nullable=True),
    # Counts role changes (If-Match on a membership); the read position does not bump it.
    Column("version", Integer, nullable=False, default=1),
    Index("ix_channel_members_app_id_user_id", "app_id", "user_id"),
    # The timed roles that end, found by time (chat.timed_roles).
    Index(
        "ix_channel_members_role_expires_at",
        "role_expires_at",
        sqlite_where=text("role_expires_at IS NOT NULL"),
        postgresql_where=text("role_expires_at IS NOT NULL"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("id", ID, nullable=False, unique=True),
    Column("app_id", ID, nullable=False),
    Column("channel_id", ID, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("author_id", ID, nullable=False),
    Column("parent_id", ID, nullable=True),
    Column("body", Text, nullable=True),
    Column("mentions", Text, nullable=False, default=""),
    Column("client_msg_id", String(64), nullable=True),
    Column("reply_count", Integer, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("edited_at", TS, nullable=True),
    Column("deleted_at", TS, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    # Blind-index terms not yet in message_terms (chat.indexer moves them there).
    Column("pending_terms", Text, nullable=True),
    UniqueConstraint("app_id", "author_id", "client_msg_id"),
    Index("ix_messages_channel_id_seq", "channel_id", "seq"),
    Index("ix_messages_parent_id_seq", "parent_id", "seq"),
    Index(
        "ix_messages_pending_terms",
        "channel_id",
        sqlite_where=text("pending_terms IS NOT NULL"),
        postgresql_where=text("pending_terms IS NOT NULL"),
    ),
)

reactions = Table(
    "reactions",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("emoji", String(64), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("created_at", TS, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("app_id", ID, primary_key=True),
    Column("principal", ID, primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

token_cutoffs = Table(
    "token_cutoffs",
    metadata,
    # Tokens of the app (subject "") or of one subject issued before `issued_before` are
    # refused: incident response ("revoke everything before T").
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("subject", ID, primary_key=True),
    Column("issued_before", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Index("ix_token_cutoffs_updated_at", "updated_at"),
)

external_identities = Table(
    "external_identities",
    metadata,
    # A user signed in through a trusted external OpenID Provider, keyed by (iss, sub).
    Column("issuer", String(500), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", TS, nullable=False),
    Index("ix_external_identities_user_id", "user_id"),
)

# The tamper-evident audit log: append-only (triggers refuse UPDATE and DELETE), each
# record carrying the hash of the one before it. Times are stored as the RFC 3339 text
# that was hashed, so no backend can change a byte of what the hash covers.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("node", String(255), nullable=False),
    Column("event_seq", BigInteger, nullable=False),
    Column("app_id", String(40), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("client_id", String(255), nullable=True),
    Column("roles", Text, nullable=False),
    Column("ip", String(100), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("request_id", String(100), nullable=True),
    Column("resource", String(255), nullable=True),
    Column("reason", String(255), nullable=True),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_app_id_seq", "app_id", "seq"),
    Index("ix_audit_log_at", "at"),
)

# The audit chain's end, one row (id 1): the newest record's ``seq`` and ``hash``. An
# append moves it in the statement that inserts the records, and only if it still says
# what the appender chained onto, so concurrent appenders from any node stay one chain.
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", SEQ, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Signed checkpoints over the audit log (as CloudTrail's digest files): each signs the
# newest record's hash, a digest of the records since the last checkpoint, and the
# previous checkpoint's signature.
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("first_seq", SEQ, nullable=False),
    Column("last_seq", SEQ, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("kid", String(100), nullable=False),
    Column("signature", Text, nullable=False),
)

# The authorization server (RFC 6749 code flow, refresh-token families, login).

oauth_client_profiles = Table(
    "oauth_client_profiles",
    metadata,
    Column("client_id", ID, ForeignKey("oauth_clients.id", ondelete="CASCADE"), primary_key=True),
    Column("app_id", ID, nullable=False),
    # confidential | public
    Column("client_type", String(16), nullable=False),
    # client_secret_basic | private_key_jwt | tls_client_auth | none
    Column("auth_method", String(32), nullable=False),
    Column("redirect_uris", Text, nullable=False),
    Column("grant_types", String(500), nullable=False),
    Column("jwks", Text, nullable=True),
    Column("first_party", Boolean, nullable=False),
    Column("require_mfa", Boolean, nullable=False),
    Column("previous_secret_hash", String(255), nullable=True),
    Column("previous_secret_expires_at", TS, nullable=True),
    # RFC 8705 tls_client_auth: which certificate name (tls_client_auth_subject_dn, …_san_dns…)
    Column("tls_auth_field", String(32), nullable=True),
    Column("tls_auth_value", Text, nullable=True),
)

login_credentials = Table(
    "login_credentials",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("username", String(255), nullable=False),
    Column("password_hash", String(255), nullable=False),
    # Sealed under the user's data key (migration 0011): TEXT on PostgreSQL; SQLite
    # ignores lengths.
    Column("totp_secret", Text().with_variant(String(64), "sqlite"), nullable=True),
    Column("totp_enabled", Boolean, nullable=False),
    Column("totp_last_step", BigInteger, nullable=False),
    # The app asked that this user always use TOTP.
    Column("mfa_required", Boolean, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("app_id", "username"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("used_at", TS, nullable=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    # app id for account counters; "*" for per-IP counters, which span apps
    Column("app_id", ID, primary_key=True),
    # a user id, or "ip:<address>"
    Column("subject", String(255), primary_key=True),
    Column("num_failures", Integer, nullable=False),
    Column("last_failure", TS, nullable=False),
    Column("last_ip", String(64), nullable=True),
    Column("locked_until", TS, nullable=True),
    Column("temporary_lockouts", Integer, nullable=False),
    Column("permanently_locked", Boolean, nullable=False),
)

auth_interactions = Table(
    "auth_interactions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("client_id", ID, nullable=False),
    Column("request", Text, nullable=False),
    Column("browser_hash", String(64), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("user_id", ID, nullable=True),
    Column("amr", String(64), nullable=False),
    Column("auth_time", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Index("ix_auth_interactions_expires_at", "expires_at"),
)

login_sessions = Table(
    "login_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("amr", String(64), nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Index("ix_login_sessions_user_id", "user_id"),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("client_id", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("scope", String(1000), nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("amr", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Index("ix_oauth_grants_app_id_user_id", "app_id", "user_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("grant_id", String(40), nullable=False),
    Column("app_id", ID, nullable=False),
    Column("client_id", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", String(1000), nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("nonce", String(255), nullable=True),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("grant_id", String(40), nullable=False),
    Column("app_id", ID, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("rotated_at", TS, nullable=True),
    # the access token issued together with this refresh token, revoked with the grant
    Column("access_jti", String(64), nullable=False),
    Column("access_expires_at", TS, nullable=False),
    Index("ix_refresh_tokens_grant_id", "grant_id"),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("expires_at", TS, nullable=False),
    # Every server re-reads the revocations made since it last looked (by any server).
    Column("revoked_at", TS, nullable=False),
    Index("ix_revoked_tokens_revoked_at", "revoked_at"),
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("client_id", ID, primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("scope", String(1000), nullable=False),
    Column("created_at", TS, nullable=False),
)

client_assertions = Table(
    "client_assertions",
    metadata,
    Column("client_id", ID, primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", TS, nullable=False),
)

# Authorization (migration 0005): app role assignments, per-app policy overrides, ACLs.
app_roles = Table(
    "app_roles",
    metadata,
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    # Space-separated role names; a user without a row holds "member".
    Column("roles", String(1000), nullable=False),
    Column("updated_at", TS, nullable=False),
)

app_policies = Table(
    "app_policies",
    metadata,
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(32), primary_key=True),
    # Space-separated permission names: this app's definition of the role.
    Column("permissions", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

# Per-app MFA policy (migration 0010): who must use a second factor at login.
app_mfa_policies = Table(
    "app_mfa_policies",
    metadata,
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("everyone", Boolean, nullable=False),
    # Space-separated app role names whose holders must use TOTP.
    Column("roles", String(1000), nullable=False),
    Column("updated_at", TS, nullable=False),
)

acl_entries = Table(
    "acl_entries",
    metadata,
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    # "channel:<id>": the resource the entry is on.
    Column("resource", String(60), primary_key=True),
    # "user:<id>", "role:<role>" or "*".
    Column("subject", String(50), primary_key=True),
    Column("level", String(16), primary_key=True),
    Column("effect", String(8), primary_key=True),
    Column("created_by", ID, nullable=False),
    Column("created_at", TS, nullable=False),
)

# Encryption at rest: data keys (stored only wrapped by a KEK), the blind index of
# message words, and the progress of resumable key jobs.
data_keys = Table(
    "data_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", ID, nullable=False),
    Column("purpose", String(8), nullable=False),
    Column("kek_version", Integer, nullable=False),
    # NULL once destroyed (crypto-shredding): nothing sealed under it can be read again.
    Column("wrapped", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("destroyed_at", TS, nullable=True),
    Index("ix_data_keys_app_id_owner", "app_id", "owner_kind", "owner_id", "purpose"),
    Index("ix_data_keys_kek_version", "kek_version"),
)

message_terms = Table(
    "message_terms",
    metadata,
    Column("message_id", ID, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("term", String(32), primary_key=True),
    Column("app_id", ID, nullable=False),
    Column("channel_id", ID, nullable=False),
    Index("ix_message_terms_channel_id_term", "channel_id", "term"),
)

key_jobs = Table(
    "key_jobs",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("position", String(64), nullable=False),
    Column("boundary", String(64), nullable=False),
    Column("done", BigInteger, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

rate_limit_overrides = Table(
    "rate_limit_overrides",
    metadata,
    # New quotas for one rate-limit policy, for the whole app (subject "*") or one user.
    Column("app_id", ID, ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True),
    Column("subject", ID, primary_key=True),
    Column("policy", String(64), primary_key=True),
    Column("quotas", String(500), nullable=False),
    Column("updated_at", TS, nullable=False),
)
