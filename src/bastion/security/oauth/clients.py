"""OAuth clients: registration, secrets with rotation overlap, and client authentication.

RFC 6749 §2.1 client types: *confidential* clients authenticate with
``client_secret_basic`` (§2.3.1), ``private_key_jwt`` (RFC 7523) or, with mutual TLS
enabled, ``tls_client_auth`` (RFC 8705 §2.1); *public* clients (SPAs, mobile apps)
only identify themselves with ``client_id`` and must use PKCE.
Secrets are 256-bit random strings shown once and stored as argon2id hashes; a
rotated secret keeps working for the overlap period the administrator chose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

from bastion.core.clock import Clock
from bastion.core.errors import FieldError, NotFound, OAuthError, ValidationFailed
from bastion.core.ids import Kind, is_id, new_id
from bastion.security import scopes as scope_names
from bastion.security.oauth import rfc6749, rfc7523, rfc8693, rfc8705
from bastion.security.passwords import SecretHasher
from bastion.store.db import Database
from bastion.store.records import ClientProfile, ClientRecord, DuplicateKeyError
from bastion.store.repos import apps as apps_repo
from bastion.store.repos import oauth as repo

CONFIDENTIAL = "confidential"
PUBLIC = "public"
SECRET_BASIC = "client_secret_basic"
PRIVATE_KEY_JWT = "private_key_jwt"
TLS_CLIENT_AUTH = rfc8705.TLS_CLIENT_AUTH
NONE = "none"
AUTH_METHODS = (SECRET_BASIC, PRIVATE_KEY_JWT, TLS_CLIENT_AUTH, NONE)

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
BACKEND_GRANTS = frozenset({rfc6749.CLIENT_CREDENTIALS, rfc8693.GRANT_TYPE})
USER_GRANTS = frozenset({AUTHORIZATION_CODE, REFRESH_TOKEN})
_MAX_REDIRECT_URIS = 20
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript"})


@dataclass(frozen=True, slots=True)
class Client:
    """A registered client with its effective profile."""

    record: ClientRecord
    profile: ClientProfile

    @property
    def id(self) -> str:
        """The client id."""
        return self.record.id

    @property
    def app_id(self) -> str:
        """The app (tenant) the client belongs to."""
        return self.record.app_id

    @property
    def is_public(self) -> bool:
        """Public clients cannot keep a secret (RFC 6749 §2.1)."""
        return self.profile.client_type == PUBLIC

    def allows(self, grant_type: str) -> bool:
        """Whether this client may use a grant type."""
        return grant_type in self.profile.grant_types

    @property
    def uses_certificate(self) -> bool:
        """Whether the client authenticates with its TLS certificate (RFC 8705 §2.1)."""
        return self.profile.auth_method == TLS_CLIENT_AUTH


def legacy_profile(record: ClientRecord) -> ClientProfile:
    """The profile of a backend client created with its app: confidential, no redirects."""
    return ClientProfile(
        client_id=record.id,
        app_id=record.app_id,
        client_type=CONFIDENTIAL,
        auth_method=SECRET_BASIC,
        redirect_uris=(),
        grant_types=BACKEND_GRANTS,
        jwks=None,
        first_party=True,
        require_mfa=False,
        previous_secret_hash=None,
        previous_secret_expires_at=None,
    )


def redirect_uri_error(uri: str) -> str | None:
    """Why a redirect URI may not be registered (RFC 9700 §2.1, §4.1.3), or None."""
    parts = urlsplit(uri)
    problems = (
        (len(uri) > 2000 or any(c.isspace() for c in uri), "must be short and without spaces"),
        ("#" in uri, "must not contain a fragment (RFC 6749 §3.1.2)"),
        (not parts.scheme, "must be an absolute URI"),
        (parts.scheme in _FORBIDDEN_SCHEMES, "this scheme is not allowed"),
        (parts.scheme in {"http", "https"} and not parts.hostname, "must name a host"),
        (
            parts.scheme == "http" and parts.hostname not in _LOOPBACK,
            "http is allowed only for loopback addresses; use https",
        ),
    )
    return next((message for failed, message in problems if failed), None)


@dataclass(frozen=True, slots=True)
class Registration:
    """What an administrator asks for when registering a client."""

    name: str
    client_type: str = CONFIDENTIAL
    auth_method: str = SECRET_BASIC
    redirect_uris: tuple[str, ...] = ()
    grant_types: frozenset[str] = USER_GRANTS
    scopes: frozenset[str] = scope_names.DEFAULT_USER_SCOPES
    jwks: str | None = None
    first_party: bool = False
    require_mfa: bool = False
    tls_client_auth: tuple[str, str] | None = None
    """RFC 8705 §2.1.2: (metadata field, value) of the name the certificate must carry."""


def _field(name: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError(f"body.{name}", message)])


def validate(reg: Registration, allowed_scopes: frozenset[str]) -> None:
    """Refuse registrations that would be insecure or inconsistent (422)."""
    _check_type(reg)
    _check_grants(reg)
    _check_redirects(reg)
    if not reg.scopes <= allowed_scopes:
        raise _field("scopes", "a client may not hold scopes its registrar does not hold")
    if reg.client_type == PUBLIC and reg.scopes - scope_names.USER_SCOPES - {"openid"}:
        raise _field("scopes", "public clients may only hold user scopes")
    _check_keys(reg)
    _check_certificate_name(reg)


def _check_type(reg: Registration) -> None:
    if reg.client_type not in (CONFIDENTIAL, PUBLIC):
        raise _field("client_type", "must be confidential or public")
    if reg.auth_method not in AUTH_METHODS:
        raise _field("auth_method", "unsupported method")
    if reg.client_type == PUBLIC and reg.auth_method != NONE:
        raise _field("auth_method", "public clients authenticate with none (PKCE only)")
    if reg.client_type == CONFIDENTIAL and reg.auth_method == NONE:
        raise _field(
            "auth_method",
            "confidential clients need a secret, private_key_jwt or tls_client_auth",
        )


def _check_grants(reg: Registration) -> None:
    unknown = reg.grant_types - BACKEND_GRANTS - USER_GRANTS
    if unknown or not reg.grant_types:
        raise _field(
            "grant_types",
            "use authorization_code, refresh_token, client_credentials or token exchange",
        )
    if reg.client_type == PUBLIC and reg.grant_types & BACKEND_GRANTS:
        raise _field("grant_types", "public clients may use authorization_code and refresh_token")


def _check_redirects(reg: Registration) -> None:
    if AUTHORIZATION_CODE in reg.grant_types and not reg.redirect_uris:
        raise _field("redirect_uris", "authorization_code needs at least one redirect URI")
    if len(reg.redirect_uris) > _MAX_REDIRECT_URIS:
        raise _field("redirect_uris", f"at most {_MAX_REDIRECT_URIS}")
    for uri in reg.redirect_uris:
        problem = redirect_uri_error(uri)
        if problem:
            raise _field("redirect_uris", f"{uri[:100]!r} {problem}")


def _check_keys(reg: Registration) -> None:
    if reg.auth_method == PRIVATE_KEY_JWT:
        try:
            rfc7523.parse_jwks(reg.jwks or "")
        except (ValueError, TypeError) as exc:
            raise _field("jwks", str(exc) or "not a JWK Set") from exc
    elif reg.jwks:
        raise _field("jwks", "jwks is only used with private_key_jwt")


def certificate_name(reg: Registration) -> rfc8705.ExpectedName | None:
    """The normalised certificate name of a tls_client_auth registration (422 if bad)."""
    if reg.tls_client_auth is None:
        return None
    field, value = reg.tls_client_auth
    try:
        return rfc8705.expected_name(field, value)
    except ValueError as exc:
        raise _field(field, str(exc) or "not a valid name") from exc


def certificate_name_field(values: Mapping[str, str | None]) -> tuple[str, str] | None:
    """RFC 8705 §2.1.2: the one certificate-name metadata field given, or None (422 if
    several are)."""
    given = [(name, value) for name, value in values.items() if value is not None]
    if len(given) > 1:
        raise _field(given[1][0], "register exactly one certificate name")
    unknown = [name for name, _ in given if name not in rfc8705.NAME_FIELDS]
    if unknown:
        raise _field(unknown[0], "not a certificate name field")
    return given[0] if given else None


def _check_certificate_name(reg: Registration) -> None:
    name = certificate_name(reg)
    if reg.auth_method == TLS_CLIENT_AUTH and name is None:
        raise _field(
            "auth_method",
            "tls_client_auth needs one of " + ", ".join(rfc8705.NAME_FIELDS),
        )
    if reg.auth_method != TLS_CLIENT_AUTH and name is not None:
        raise _field(name.field, "a certificate name is only used with tls_client_auth")


class ClientRegistry:
    """Looks up, registers, changes and authenticates OAuth clients."""

    def __init__(
        self,
        db: Database,
        hasher: SecretHasher,
        clock: Clock,
        *,
        issuer: str,
        assertion_max_lifetime: int,
        leeway: int,
        mtls: bool = False,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._clock = clock
        self._issuer = issuer
        self._audiences = frozenset({issuer, f"{issuer}/oauth/token"})
        self._max_lifetime = assertion_max_lifetime
        self._leeway = leeway
        self._mtls = mtls

    async def get(self, client_id: str) -> Client | None:
        """A client by id, or None (also for malformed ids)."""
        if not is_id(Kind.CLIENT, client_id):
            return None
        async with self._db.read() as conn:
            found = await repo.identify_client(conn, client_id)
        if found is None:
            return None
        record, profile = found
        return Client(record, profile or legacy_profile(record))

    async def get_owned(self, app_id: str, client_id: str) -> Client:
        """A client of this app; any other is not found."""
        if not is_id(Kind.CLIENT, client_id):
            raise NotFound("No such client.")
        async with self._db.read() as conn:
            found = await repo.get_client_with_profile(conn, app_id, client_id)
        if found is None:
            raise NotFound("No such client.")
        record, profile = found
        return Client(record, profile or legacy_profile(record))

    async def list(self, app_id: str) -> list[Client]:
        """The app's clients."""
        async with self._db.read() as conn:
            rows = await repo.list_clients(conn, app_id)
        return [Client(r, p or legacy_profile(r)) for r, p in rows]

    async def register(self, app_id: str, reg: Registration) -> tuple[Client, str | None]:
        """Create a client; returns it with its secret (None unless client_secret_basic)."""
        if reg.auth_method == TLS_CLIENT_AUTH and not self._mtls:
            raise _field("auth_method", "mutual TLS is not enabled on this server")
        name = certificate_name(reg)
        secret = self._hasher.new_secret() if reg.auth_method == SECRET_BASIC else None
        # argon2id is slow on purpose: hash in a worker thread, not on the event loop.
        secret_hash = await asyncio.to_thread(self._hasher.hash, secret) if secret else ""
        client_id = new_id(Kind.CLIENT)
        profile = ClientProfile(
            client_id=client_id,
            app_id=app_id,
            client_type=reg.client_type,
            auth_method=reg.auth_method,
            redirect_uris=reg.redirect_uris,
            grant_types=reg.grant_types,
            jwks=reg.jwks,
            first_party=reg.first_party,
            require_mfa=reg.require_mfa,
            previous_secret_hash=None,
            previous_secret_expires_at=None,
            tls_client_auth=(name.field, name.value) if name else None,
        )
        async with self._db.write() as conn:
            record = await apps_repo.insert_client(
                conn,
                app_id=app_id,
                client_id=client_id,
                name=reg.name,
                secret_hash=secret_hash,
                scopes=reg.scopes,
                now=self._clock.now(),
            )
            await repo.save_profile(conn, profile)
        return Client(record, profile), secret

    async def update(self, client: Client, changes: Mapping[str, object]) -> Client:
        """Apply a merge patch (name, redirect_uris, first_party, require_mfa, jwks, disabled)."""
        profile_fields = {k: v for k, v in changes.items() if k in _PROFILE_FIELDS}
        profile = replace(client.profile, **profile_fields)  # type: ignore[arg-type]
        record = client.record
        name = changes.get("name", record.name)
        disabled = changes.get("disabled", record.disabled)
        reg = Registration(
            name=str(name),
            client_type=profile.client_type,
            auth_method=profile.auth_method,
            redirect_uris=profile.redirect_uris,
            grant_types=profile.grant_types,
            scopes=record.scopes,
            jwks=profile.jwks,
            tls_client_auth=profile.tls_client_auth,
        )
        validate(reg, record.scopes | scope_names.USER_SCOPES)
        async with self._db.write() as conn:
            await repo.update_client(
                conn, record.app_id, record.id, name=name, disabled=bool(disabled)
            )
            await repo.save_profile(conn, profile)
        return Client(replace(record, name=str(name), disabled=bool(disabled)), profile)

    async def rotate_secret(self, client: Client, overlap_seconds: int) -> str:
        """Issue a new secret; the old one keeps working for ``overlap_seconds``."""
        if client.profile.auth_method != SECRET_BASIC:
            raise OAuthError("invalid_request", "Only client_secret_basic clients have secrets.")
        secret = self._hasher.new_secret()
        expires = self._clock.now() + timedelta(seconds=overlap_seconds)
        profile = replace(
            client.profile,
            previous_secret_hash=client.record.secret_hash if overlap_seconds else None,
            previous_secret_expires_at=expires if overlap_seconds else None,
        )
        secret_hash = await asyncio.to_thread(self._hasher.hash, secret)
        async with self._db.write() as conn:
            await repo.update_client(conn, client.app_id, client.id, secret_hash=secret_hash)
            await repo.save_profile(conn, profile)
        return secret

    async def authenticate(
        self,
        params: Mapping[str, str],
        authorization: str | None,
        certificate: bytes | None = None,
    ) -> Client:
        """RFC 6749 §2.3: authenticate (or, for public clients, identify) the caller.

        ``certificate`` is the DER client certificate of the connection, if it presented
        one; it authenticates ``tls_client_auth`` clients (RFC 8705 §2).
        """
        secret = "client_secret" in params
        asserted = "client_assertion" in params or "client_assertion_type" in params
        if authorization is not None:
            if "client_id" in params or secret or asserted:
                raise _several_methods()
            return await self._basic(authorization)
        if secret:
            if asserted:
                raise _several_methods()
            # §5.2: client_secret_post is an authentication method this server does not
            # support, so invalid_client; the Basic challenge names the one it does.
            raise rfc6749.invalid_client(
                "Send client secrets with HTTP Basic (client_secret_basic)."
            )
        if asserted:
            return await self._private_key_jwt(params)
        return await self._by_client_id(params.get("client_id"), certificate)

    async def _by_client_id(self, client_id: str | None, certificate: bytes | None) -> Client:
        """A public client identified by ``client_id``, or a tls_client_auth client whose
        certificate carries its registered name (RFC 8705 §2.1)."""
        if not client_id:
            raise rfc6749.invalid_client("Client authentication is required.")
        client = await self.get(client_id)
        if client is None or not client.record.usable:
            raise rfc6749.invalid_client()
        if client.is_public:
            return client
        expected = client.profile.tls_client_auth
        if not client.uses_certificate or not self._mtls or expected is None:
            raise rfc6749.invalid_client()
        if certificate is None:
            raise rfc6749.invalid_client("This client authenticates with a TLS certificate.")
        if not rfc8705.ExpectedName(*expected).presented_by(certificate):
            raise rfc6749.invalid_client()
        return client

    async def _basic(self, authorization: str) -> Client:
        client_id, secret = rfc6749.parse_basic(authorization)
        client = await self.get(client_id)
        usable = client is not None and client.record.usable
        usable = usable and client is not None and client.profile.auth_method == SECRET_BASIC
        current = client.record.secret_hash if usable and client else None
        if await self._hasher.verify(current, secret) and client is not None:
            return client
        previous = client.profile.previous_secret_hash if usable and client else None
        expiry = client.profile.previous_secret_expires_at if client else None
        in_overlap = bool(previous and expiry and expiry > self._clock.now())
        if in_overlap and client is not None and await self._hasher.verify(previous, secret):
            return client
        raise rfc6749.invalid_client()

    async def _private_key_jwt(self, params: Mapping[str, str]) -> Client:
        assertion = params.get("client_assertion")
        if params.get("client_assertion_type") != rfc7523.ASSERTION_TYPE or not assertion:
            raise rfc6749.invalid_client("Unsupported client assertion.")
        try:
            client_id = rfc7523.claimed_client(assertion)
        except rfc7523.InvalidAssertionError as exc:
            raise rfc6749.invalid_client() from exc
        client = await self.get(client_id)
        jwks = client.profile.jwks if client else None
        usable = client is not None and client.record.usable and jwks is not None
        if not usable or params.get("client_id", client_id) != client_id or client is None:
            raise rfc6749.invalid_client()
        if client.profile.auth_method != PRIVATE_KEY_JWT or jwks is None:
            raise rfc6749.invalid_client()
        try:
            verified = rfc7523.verify(
                assertion,
                client_id=client_id,
                keys=rfc7523.parse_jwks(jwks),
                audiences=self._audiences,
                now=int(self._clock.timestamp()),
                max_lifetime=self._max_lifetime,
                leeway=self._leeway,
            )
        except (rfc7523.InvalidAssertionError, ValueError) as exc:
            raise rfc6749.invalid_client() from exc
        await self._remember_jti(client, verified)
        return client

    async def _remember_jti(self, client: Client, verified: rfc7523.Assertion) -> None:
        expires = self._clock.now() + timedelta(
            seconds=max(verified.expires_at - int(self._clock.timestamp()), 0) + self._leeway
        )
        try:
            async with self._db.write() as conn:
                await repo.use_assertion(conn, client.id, verified.jti, expires)
        except DuplicateKeyError as exc:
            raise rfc6749.invalid_client("The client assertion was already used.") from exc


def _several_methods() -> OAuthError:
    """§2.3 / §5.2: a client MUST NOT use more than one authentication method."""
    return OAuthError("invalid_request", "Use exactly one client authentication method.")


_PROFILE_FIELDS = frozenset({"redirect_uris", "first_party", "require_mfa", "jwks"})
