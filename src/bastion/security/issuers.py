"""Trusted external OpenID Providers: discovery, key sets and token verification.

https://openid.net/specs/openid-connect-discovery-1_0.html

Metadata comes from OIDC Discovery and is used only when its ``issuer`` is identical
to the configured issuer (§4.3). The JWKS is fetched from the advertised ``jwks_uri``
(HTTPS only), cached for ``jwks_cache_seconds``, and fetched again when a token names
an unknown ``kid`` — at most once per ``jwks_min_refresh_seconds``, so a flood of
forged ``kid`` values cannot turn Bastion into a traffic amplifier. Tokens are checked
by the same RFC 9068/RFC 8725 rules as Bastion's own, with the provider's own
algorithm allow-list and keys.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key, KeySet

from bastion.core.clock import Clock
from bastion.core.settings import ExternalIssuerSettings
from bastion.security.fetch import FetchError, JsonFetcher, check_url
from bastion.security.oauth import rfc9068
from bastion.security.oauth.rfc9068 import InvalidAccessTokenError

_AT_JWT = frozenset({"at+jwt", "application/at+jwt"})
# Claims only an ID token carries: with a provider whose access tokens are typed just
# "JWT", these tell an ID token presented as an access token apart (RFC 8725 §3.12).
_ID_TOKEN_ONLY = ("nonce", "at_hash", "c_hash")
_ACCESS_REQUIRED = ("iss", "exp", "aud", "sub", "iat")
_ID_REQUIRED = ("iss", "exp", "aud", "sub", "iat")
_CURVE_ALG = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"}


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """The header and claims of a token this provider really issued."""

    header: dict[str, Any]
    claims: dict[str, Any]


def _alg_for(jwk: dict[str, Any], allowed: list[str]) -> str | None:
    """The one algorithm a published key is used with, or None to ignore the key.

    A key that names its ``alg`` keeps it; otherwise an EC/OKP key's curve decides,
    and an RSA key is usable only if exactly one RSA algorithm is allowed.
    """
    if isinstance(jwk.get("alg"), str):
        alg: str = jwk["alg"]
        return alg if alg in allowed else None
    if jwk.get("kty") in ("EC", "OKP"):
        guess = _CURVE_ALG.get(str(jwk.get("crv")))
        if guess == "EdDSA" and "Ed25519" in allowed:
            return "Ed25519"
        return guess if guess in allowed else None
    rsa = [a for a in allowed if a[:2] in ("RS", "PS")]
    return rsa[0] if jwk.get("kty") == "RSA" and len(rsa) == 1 else None


def parse_jwks(document: dict[str, Any], allowed: list[str]) -> KeySet:
    """The provider's usable public signing keys, each with exactly one algorithm.

    Keys without a ``kid``, meant for encryption, symmetric, carrying private material,
    or of an algorithm not allowed for this provider are left out.
    """
    keys: list[Key] = []
    entries = document.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct" or "d" in entry:
            continue
        alg = _alg_for(entry, allowed)
        if alg is None:
            continue
        try:
            keys.append(JWKRegistry.import_key({**entry, "alg": alg}))
        except (JoseError, ValueError, TypeError):
            continue
    return KeySet(keys)


class ExternalIssuer:
    """One configured provider: its metadata, its cached keys, its token checks."""

    def __init__(
        self,
        config: ExternalIssuerSettings,
        *,
        fetcher: JsonFetcher,
        clock: Clock,
        default_audience: str,
        leeway: int,
        max_token_bytes: int,
        cache_seconds: int,
        min_refresh_seconds: float,
    ) -> None:
        self.config = config
        self.audience = config.audience or default_audience
        self._fetcher = fetcher
        self._clock = clock
        self._leeway = leeway
        self._max_token_bytes = max_token_bytes
        self._cache_seconds = cache_seconds
        self._min_refresh = min_refresh_seconds
        self._lock = asyncio.Lock()
        self._jwks_uri: str | None = None
        self._keys = KeySet([])
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None

    @property
    def issuer(self) -> str:
        """The issuer identifier, exactly as configured."""
        return self.config.issuer

    async def discover(self) -> str:
        """Read the provider's metadata (once) and return its checked ``jwks_uri``."""
        if self._jwks_uri is not None:
            return self._jwks_uri
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = await self._fetcher.get(url)
        # OIDC Discovery §4.3: the issuer MUST be identical, or the metadata is not used.
        if metadata.get("issuer") != self.issuer:
            raise FetchError(f"{url}: issuer {metadata.get('issuer')!r} is not {self.issuer!r}")
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise FetchError(f"{url}: no jwks_uri")
        check_url(jwks_uri, allow_http_loopback=self._fetcher.allow_http_loopback)
        self._jwks_uri = jwks_uri
        return jwks_uri

    async def keys_for(self, kid: str) -> KeySet:
        """The key set, fetched if stale, or if ``kid`` is unknown and a refetch is allowed.

        While the cached set is fresh, a failed refetch keeps it; once it is stale, a
        failure is an error (no key is trusted past ``jwks_cache_seconds``).
        """
        if self._is_fresh() and self._has(kid):
            return self._keys
        async with self._lock:
            if self._is_fresh() and self._has(kid):
                return self._keys  # another request fetched it meanwhile
            now = self._clock.timestamp()
            attempted = self._attempted_at
            if attempted is not None and now - attempted < self._min_refresh:
                if self._is_fresh():
                    return self._keys  # asked a moment ago: an unknown kid stays unknown
                raise FetchError(f"{self.issuer}: key set unavailable")
            self._attempted_at = now
            try:
                document = await self._fetcher.get(await self.discover())
            except FetchError:
                if self._is_fresh():
                    return self._keys
                raise
            self._keys = parse_jwks(document, list(self.config.algorithms))
            self._fetched_at = now
        return self._keys

    def _is_fresh(self) -> bool:
        fetched = self._fetched_at
        return fetched is not None and self._clock.timestamp() - fetched < self._cache_seconds

    def _has(self, kid: str) -> bool:
        return any(key.kid == kid for key in self._keys.keys)

    async def _verified(self, token: str) -> VerifiedToken:
        try:
            kid = jws.extract_compact(token.encode("ascii")).protected.get("kid")
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidAccessTokenError from exc
        if len(token) > self._max_token_bytes or not isinstance(kid, str):
            raise InvalidAccessTokenError
        try:
            keys = await self.keys_for(kid)
        except FetchError as exc:
            raise InvalidAccessTokenError from exc
        header, claims = rfc9068.verify_signature(
            token, keys, algorithms=list(self.config.algorithms), max_length=self._max_token_bytes
        )
        return VerifiedToken(header, claims)

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token this provider issued for us (RFC 9068 §4)."""
        verified = await self._verified(token)
        typ = verified.header.get("typ", "")  # "" in the setting: a provider that sets none
        if typ not in self.config.access_token_typ:
            raise InvalidAccessTokenError
        if typ not in _AT_JWT and any(name in verified.claims for name in _ID_TOKEN_ONLY):
            raise InvalidAccessTokenError
        rfc9068.check_claims(
            verified.claims,
            issuer=self.issuer,
            audience=self.audience,
            now=int(self._clock.timestamp()),
            leeway=self._leeway,
            required=_ACCESS_REQUIRED,
        )
        return verified.claims

    async def verify_id_token(self, token: str) -> dict[str, Any]:
        """The claims of an OIDC ID token this provider issued to one of our clients."""
        verified = await self._verified(token)
        if verified.header.get("typ") in _AT_JWT or not self.config.client_ids:
            raise InvalidAccessTokenError
        claims = verified.claims
        audiences = claims.get("aud")
        named = audiences if isinstance(audiences, list) else [audiences]
        ours = [client for client in self.config.client_ids if client in named]
        if not ours:
            raise InvalidAccessTokenError
        # OIDC Core §3.1.3.7: with several audiences, azp names the client it was for.
        if len(named) > 1 and claims.get("azp") not in self.config.client_ids:
            raise InvalidAccessTokenError
        rfc9068.check_claims(
            claims,
            issuer=self.issuer,
            audience=ours[0],
            now=int(self._clock.timestamp()),
            leeway=self._leeway,
            required=_ID_REQUIRED,
        )
        return claims
