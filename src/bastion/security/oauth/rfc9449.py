"""RFC 9449: OAuth 2.0 Demonstrating Proof of Possession (DPoP).

https://www.rfc-editor.org/rfc/rfc9449

A DPoP proof is a JWT the client signs with a key it keeps; the access token is bound
to that key's thumbprint (``cnf.jkt``, §6.1), so a stolen token is useless without
the key. Proofs are checked per §4.3: one ``DPoP`` header, ``typ`` ``dpop+jwt``, an
asymmetric ``alg`` from our list, a public ``jwk`` in the header that verifies the
signature, ``htm``/``htu`` matching this request, ``iat`` within a short window, a
``jti`` never seen before in that window, the ``nonce`` when one is demanded, and on
resource requests ``ath``, the hash of the access token (§7.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, thumbprint

from bastion.core.clock import Clock
from bastion.core.errors import Unauthenticated
from bastion.security.crypto import aead

PROOF_TYPE = "dpop+jwt"
SCHEME = "DPoP"
_MAX_PROOF_LENGTH = 4096
_MAX_JTI_LENGTH = 256
_FUTURE_SKEW = 5
# A proof carries its public key in the header: an RSA key (RS256, PS256) alone is
# larger than joserfc's default 512-byte header limit. The whole proof stays bounded
# by _MAX_PROOF_LENGTH.
_MAX_HEADER_LENGTH = 2048


class InvalidDPoPProof(Unauthenticated):
    """§7.1: the proof is missing, malformed or does not match (``invalid_dpop_proof``)."""

    error = "invalid_dpop_proof"
    algs = "ES256"


class UseDPoPNonce(InvalidDPoPProof):
    """§8/§9: retry with the server's nonce, sent in the ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__("Retry with the DPoP-Nonce this response carries.")
        self.nonce = nonce


def challenge(error: InvalidDPoPProof) -> dict[str, str]:
    """§7.1: ``WWW-Authenticate: DPoP error=…, algs=…`` and, for §9, ``DPoP-Nonce``."""
    value = f'{SCHEME} error="{error.error}", algs="{error.algs}"'
    headers = {"WWW-Authenticate": value}
    if isinstance(error, UseDPoPNonce):
        headers["DPoP-Nonce"] = error.nonce
    return headers


def ath(access_token: str) -> str:
    """§4.2: base64url(SHA-256(ASCII(access token))), without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def parse_authorization(authorization: str | None) -> str | None:
    """The token of an ``Authorization: DPoP <token>`` header, or None for other schemes."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        return None
    token = token.strip()
    if not token or " " in token:
        raise InvalidDPoPProof("The Authorization header is not a DPoP token.")
    return token


def normalize_htu(url: str) -> str:
    """§4.3 (9): compare ``htu`` without query and fragment, scheme and host lowercased."""
    parts = urlsplit(url)
    netloc = (parts.hostname or "").lower()
    default_port = {"https": 443, "http": 80}.get(parts.scheme.lower())
    if parts.port is not None and parts.port != default_port:
        netloc = f"{netloc}:{parts.port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path or '/'}"


class ReplayStore(Protocol):
    """Where used proofs are remembered (§11.1): this process, or a store all nodes share."""

    async def first_use(self, key: str, ttl: float, now: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False if it is already recorded.

        Raises ``core.errors.Unavailable`` when the store cannot answer: a proof that
        cannot be checked for replay is never accepted.
        """
        ...

    async def close(self) -> None:
        """Release the store's connections."""
        ...


class ReplayCache:
    """``jti`` values seen within the proof window (§11.1), in this process, bounded in size.

    Enough for one node; several nodes behind a load balancer need a shared store
    (``dpop_replay.RedisReplayStore``), or a proof used at one is accepted at another.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def first_use(self, key: str, ttl: float, now: float) -> bool:
        """Record ``key``; False if it was already used and has not expired."""
        while self._seen:
            oldest, until = next(iter(self._seen.items()))
            if until > now and len(self._seen) < self._capacity:
                break
            del self._seen[oldest]
        if key in self._seen:
            return False
        self._seen[key] = now + ttl
        return True

    async def close(self) -> None:
        """Nothing to release: the cache is this process's memory."""
        self._seen.clear()


class Nonces:
    """Server nonces (§8) derived from a shared secret and the current time step.

    The nonce of step ``n`` is HKDF-SHA256(secret, salt=n, info) encoded base64url, so
    every node holding the secret hands out and accepts the same values without sharing
    any state. The current and the previous step are accepted: a nonce stays usable for
    at least one full ``lifetime`` after it was handed out.
    """

    _INFO = b"bastion dpop nonce"

    def __init__(self, secret: bytes, clock: Clock, lifetime: float = 300.0) -> None:
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime
        self._cache: dict[int, str] = {}

    def _value(self, step: int) -> str:
        value = self._cache.get(step)
        if value is None:
            key = aead.derive_key(self._secret, self._INFO, salt=step.to_bytes(8, "big"))
            value = base64.urlsafe_b64encode(key).decode().rstrip("=")
            self._cache = {s: v for s, v in self._cache.items() if s >= step - 1}
            self._cache[step] = value
        return value

    def _step(self) -> int:
        return int(self._clock.timestamp() // self._lifetime)

    def current(self) -> str:
        """The nonce clients should use now."""
        return self._value(self._step())

    def valid(self, nonce: object) -> bool:
        """Whether ``nonce`` is the current or the previous step's value."""
        if not isinstance(nonce, str):
            return False
        step = self._step()
        given = nonce.encode()
        return any(hmac.compare_digest(given, self._value(s).encode()) for s in (step, step - 1))


@dataclass(frozen=True, slots=True)
class Proof:
    """A valid proof: the thumbprint of the key that signed it."""

    jkt: str


class ProofValidator:
    """Checks DPoP proofs (§4.3) for the token endpoint and for resource requests."""

    def __init__(
        self,
        *,
        clock: Clock,
        algorithms: list[str],
        max_age: int,
        replay: ReplayStore,
        nonces: Nonces | None,
    ) -> None:
        self._clock = clock
        self._algorithms = algorithms
        self._max_age = max_age
        self._replay = replay
        self.nonces = nonces
        self.algorithms = " ".join(algorithms)
        self.supported = tuple(algorithms)
        self._registry = jws.JWSRegistry(algorithms=algorithms)
        self._registry.max_header_length = _MAX_HEADER_LENGTH

    async def validate(
        self, proofs: list[str], *, method: str, url: str, access_token: str | None = None
    ) -> Proof:
        """The proof's key thumbprint; ``InvalidDPoPProof`` or ``UseDPoPNonce`` otherwise,
        ``Unavailable`` when the replay store cannot be asked."""
        try:
            return await self._validate(proofs, method=method, url=url, access_token=access_token)
        except InvalidDPoPProof as exc:
            exc.algs = self.algorithms
            raise

    async def close(self) -> None:
        """Release the replay store."""
        await self._replay.close()

    async def _validate(
        self, proofs: list[str], *, method: str, url: str, access_token: str | None
    ) -> Proof:
        if len(proofs) != 1:
            raise InvalidDPoPProof("Exactly one DPoP header is required.")
        claims, jkt = self._verified(proofs[0])
        self._check_claims(claims, method=method, url=url, access_token=access_token)
        now = self._clock.timestamp()
        # Remembered past the window's end (iat may be up to max_age old, or a bit ahead).
        if not await self._replay.first_use(f"{jkt}:{claims['jti']}", self._max_age * 2, now):
            raise InvalidDPoPProof("This DPoP proof has been used before.")
        return Proof(jkt)

    def _verified(self, proof: str) -> tuple[dict[str, Any], str]:
        if len(proof) > _MAX_PROOF_LENGTH:
            raise InvalidDPoPProof("The DPoP proof is too long.")
        try:
            compact = jws.extract_compact(proof.encode("ascii"), registry=self._registry)
            header = dict(compact.protected)
            public = header.get("jwk")
            if header.get("typ") != PROOF_TYPE or header.get("alg") not in self._algorithms:
                raise InvalidDPoPProof("The DPoP proof has the wrong type or algorithm.")
            if not isinstance(public, dict) or "d" in public or public.get("kty") == "oct":
                raise InvalidDPoPProof("The DPoP proof must carry a public key.")
            key = JWKRegistry.import_key(public)
            decoded = jwt.decode(proof, key, algorithms=[header["alg"]], registry=self._registry)
            claims = dict(decoded.claims)
            jkt = thumbprint(public)
        except (JoseError, ValueError, TypeError, KeyError, UnicodeError) as exc:
            raise InvalidDPoPProof("The DPoP proof is not valid.") from exc
        return claims, jkt

    def _check_claims(
        self, claims: dict[str, Any], *, method: str, url: str, access_token: str | None
    ) -> None:
        jti, iat = claims.get("jti"), claims.get("iat")
        if not isinstance(jti, str) or not 0 < len(jti) <= _MAX_JTI_LENGTH:
            raise InvalidDPoPProof("The DPoP proof needs a jti.")
        if claims.get("htm") != method:
            raise InvalidDPoPProof("The DPoP proof is for another HTTP method.")
        htu = claims.get("htu")
        if not isinstance(htu, str) or normalize_htu(htu) != normalize_htu(url):
            raise InvalidDPoPProof("The DPoP proof is for another URL.")
        now = self._clock.timestamp()
        if not isinstance(iat, int) or not now - self._max_age <= iat <= now + _FUTURE_SKEW:
            raise InvalidDPoPProof("The DPoP proof is too old or from the future.")
        if access_token is not None and claims.get("ath") != ath(access_token):
            raise InvalidDPoPProof("The DPoP proof is not for this access token.")
        if self.nonces is not None and not self.nonces.valid(claims.get("nonce")):
            raise UseDPoPNonce(self.nonces.current())
