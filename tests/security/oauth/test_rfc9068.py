"""RFC 9068 §4 / RFC 8725: access-token validation, called directly on ``rfc9068.decode``.

Every rejection must be the same bare ``InvalidAccessTokenError``: the caller learns
that the token is unusable, never which check failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, OctKey

from bastion.security.keys import KeyRing, SigningKeyStore
from bastion.security.oauth import rfc9068
from tests.support.tokens import b64, hmac_with_public_key, unsigned, with_stranger_key

ISSUER = "https://chat.example.com"
AUDIENCE = "https://chat.example.com"
NOW = 1_800_000_000
LEEWAY = 30
REQUIRED = ("iss", "exp", "aud", "sub", "client_id", "iat", "jti", "scope")


@pytest.fixture(params=["ES256", "Ed25519"])
def ring(request: pytest.FixtureRequest, tmp_path: Path) -> KeyRing:
    """A fresh signing key ring of each supported algorithm."""
    alg: str = request.param
    return SigningKeyStore(tmp_path / "keys", None).load_or_create(alg)


@pytest.fixture
def es_ring(tmp_path: Path) -> KeyRing:
    """An ES256 key ring (for attacks that are about one algorithm)."""
    return SigningKeyStore(tmp_path / "keys", None).load_or_create("ES256")


def claims(**changes: Any) -> dict[str, Any]:
    """A valid claim set at ``NOW``; ``changes`` override (``None`` removes a claim)."""
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "usr_01JD0000000000000000000000",
        "client_id": "cli_01JD0000000000000000000000",
        "app_id": "app_01JD0000000000000000000000",
        "scope": "chat:read chat:write",
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 300,
        "jti": "tok_01JD0000000000000000000000",
    }
    for name, value in changes.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return base


def signed(ring: KeyRing, body: dict[str, Any], **header: Any) -> str:
    """Sign with the ring's real active key; ``header`` overrides (``None`` removes)."""
    head: dict[str, Any] = {"alg": ring.alg, "typ": "at+jwt", "kid": ring.active.kid}
    for name, value in header.items():
        if value is None:
            head.pop(name, None)
        else:
            head[name] = value
    return jwt.encode(head, body, ring.active, algorithms=[ring.alg])


def decode(ring: KeyRing, token: str, *, now: int = NOW) -> dict[str, Any]:
    """Verify ``token`` as this server would."""
    return rfc9068.decode(
        token,
        ring.verification,
        algorithms=[ring.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        now=now,
        leeway=LEEWAY,
    )


def assert_rejected(ring: KeyRing, token: str, *, now: int = NOW) -> None:
    """The token is refused with the one opaque error, carrying no reason."""
    with pytest.raises(rfc9068.InvalidAccessTokenError) as caught:
        decode(ring, token, now=now)
    assert type(caught.value) is rfc9068.InvalidAccessTokenError
    assert caught.value.args == ()


def test_accepts_a_good_token(ring: KeyRing) -> None:
    """A token signed by our active key with every claim right verifies and returns its claims."""
    assert decode(ring, signed(ring, claims())) == claims()


def test_encode_produces_what_decode_accepts(ring: KeyRing) -> None:
    """``encode`` writes an ``at+jwt`` header with our alg and kid, and round-trips."""
    token = rfc9068.encode(ring.active, ring.alg, claims())
    header = jws.extract_compact(token.encode()).protected
    assert header == {"alg": ring.alg, "typ": "at+jwt", "kid": ring.active.kid}
    assert decode(ring, token)["sub"] == claims()["sub"]


def test_accepts_the_long_media_type_form_of_typ(ring: KeyRing) -> None:
    """``typ: application/at+jwt`` is the same type (RFC 9068 §2.1) and is accepted."""
    assert decode(ring, signed(ring, claims(), typ="application/at+jwt"))["jti"]


def test_accepts_an_audience_list_that_contains_us(ring: KeyRing) -> None:
    """``aud`` may be an array; it only has to contain our identifier."""
    token = signed(ring, claims(aud=["https://other.example", AUDIENCE]))
    assert decode(ring, token)["aud"] == ["https://other.example", AUDIENCE]


def test_accepts_expiry_within_the_leeway(ring: KeyRing) -> None:
    """A token that expired less than ``leeway`` seconds ago still verifies (clock skew)."""
    token = signed(ring, claims(exp=NOW - LEEWAY + 1))
    assert decode(ring, token)["exp"] == NOW - LEEWAY + 1


def test_rejects_alg_none(ring: KeyRing) -> None:
    """RFC 9068 §4: a JWT with ``alg: none`` MUST be rejected."""
    assert_rejected(ring, unsigned(claims()))


def test_rejects_alg_none_with_our_kid_and_a_signature(ring: KeyRing) -> None:
    """``alg: none`` stays refused even dressed up with our kid and a junk signature."""
    head = {"alg": "none", "typ": "at+jwt", "kid": ring.active.kid}
    token = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims()).encode())}.c2ln"
    assert_rejected(ring, token)


def test_rejects_hs256_keyed_with_our_public_key(ring: KeyRing) -> None:
    """RFC 8725 §2.1: the asymmetric→HMAC confusion attack fails."""
    assert_rejected(ring, hmac_with_public_key(ring, claims()))


def test_rejects_hs256_even_when_hs256_is_named_by_the_token_only(es_ring: KeyRing) -> None:
    """The algorithm comes from our allow-list, not from the token header."""
    secret = OctKey.import_key(b"0123456789abcdef0123456789abcdef")
    head = {"alg": "HS256", "typ": "at+jwt", "kid": es_ring.active.kid}
    assert_rejected(es_ring, jwt.encode(head, claims(), secret, algorithms=["HS256"]))


def test_rejects_a_key_not_in_the_set(ring: KeyRing, tmp_path: Path) -> None:
    """A well-formed token signed by another server's key (its own kid) is refused."""
    other = SigningKeyStore(tmp_path / "other", None).load_or_create(ring.alg)
    assert other.active.kid != ring.active.kid
    assert_rejected(ring, signed(other, claims()))


def test_rejects_a_key_not_in_the_set_claiming_our_kid(ring: KeyRing, tmp_path: Path) -> None:
    """Another key that claims our kid fails the signature check."""
    other = SigningKeyStore(tmp_path / "other", None).load_or_create(ring.alg)
    assert_rejected(ring, signed(other, claims(), kid=ring.active.kid))


def test_rejects_a_stranger_key_of_our_algorithm(es_ring: KeyRing) -> None:
    """An ES256 token from a stranger key is refused, with its own kid or with ours."""
    assert_rejected(es_ring, with_stranger_key(claims()))
    assert_rejected(es_ring, with_stranger_key(claims(), kid=es_ring.active.kid))


def test_rejects_an_embedded_jwk_header(es_ring: KeyRing) -> None:
    """RFC 8725 §3.10: a ``jwk`` in the header is never used as the verification key."""
    stranger = ECKey.generate_key("P-256", auto_kid=True)
    head = {
        "alg": "ES256",
        "typ": "at+jwt",
        "kid": stranger.kid,
        "jwk": stranger.as_dict(private=False),
        "jku": "https://attacker.example/jwks.json",
    }
    assert_rejected(es_ring, jwt.encode(head, claims(), stranger, algorithms=["ES256"]))


@pytest.mark.parametrize("kid", ["unknown-kid", "../../etc/passwd", "' OR 1=1 --", ""])
def test_rejects_an_unknown_kid(ring: KeyRing, kid: str) -> None:
    """Our real signature under a kid we do not know (or a hostile kid) is refused."""
    assert_rejected(ring, signed(ring, claims(), kid=kid))


def test_a_missing_kid_is_refused_even_with_our_signature(ring: KeyRing, tmp_path: Path) -> None:
    """The kid must name one of our keys (RFC 8725 §3.10): no kid, no guessing among keys."""
    assert_rejected(ring, signed(ring, claims(), kid=None))
    other = SigningKeyStore(tmp_path / "other", None).load_or_create(ring.alg)
    assert_rejected(ring, signed(other, claims(), kid=None))


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://evil.example/jwks.json"},
        {"x5u": "https://evil.example/cert.pem"},
        {"x5c": ["MIIB"]},
    ],
)
def test_rejects_key_source_and_crit_headers_even_with_our_signature(
    ring: KeyRing, header: dict[str, object]
) -> None:
    """jku/x5u/x5c are never followed: a token naming its own key source is refused."""
    assert_rejected(ring, signed(ring, claims(), **header))


def test_rejects_a_key_registered_for_another_algorithm(tmp_path: Path) -> None:
    """One algorithm per key: a key listed for ES256 never verifies an ES384 header."""
    es = SigningKeyStore(tmp_path / "es", None).load_or_create("ES256")
    ring = KeyRing(active=es.active, verification=es.verification, alg="ES256")
    token = signed(es, claims())
    _, rest = token.split(".", 1)
    forged = dict(jws.extract_compact(token.encode()).protected, alg="ES384")
    new_head = b64(json.dumps(forged).encode())
    with pytest.raises(rfc9068.InvalidAccessTokenError):
        rfc9068.decode(
            f"{new_head}.{rest}",
            ring.verification,
            algorithms=["ES256", "ES384"],
            issuer=ISSUER,
            audience=AUDIENCE,
            now=NOW,
            leeway=LEEWAY,
        )


def test_rejects_another_of_our_algorithms(tmp_path: Path) -> None:
    """With ES256 configured, a token in another algorithm is refused even if its key is ours."""
    ed = SigningKeyStore(tmp_path / "ed", None).load_or_create("Ed25519")
    es = SigningKeyStore(tmp_path / "es", None).load_or_create("ES256")
    mixed = KeyRing(active=es.active, verification=ed.verification, alg="ES256")
    with pytest.raises(rfc9068.InvalidAccessTokenError):
        decode(mixed, signed(ed, claims()))


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+JWT-not", "id_token", "dpop+jwt"])
def test_rejects_a_wrong_or_missing_typ(ring: KeyRing, typ: str | None) -> None:
    """RFC 9068 §4 / RFC 8725 §3.11: only ``at+jwt`` is an access token."""
    assert_rejected(ring, signed(ring, claims(), typ=typ))


@pytest.mark.parametrize(
    "iss", ["https://evil.example", f"{ISSUER}/", ISSUER.upper(), f"{ISSUER}?x=1", ""]
)
def test_rejects_a_wrong_issuer(ring: KeyRing, iss: str) -> None:
    """``iss`` must match exactly (no trailing slash, case or query variants)."""
    assert_rejected(ring, signed(ring, claims(iss=iss)))


@pytest.mark.parametrize(
    "aud", ["https://other.example", f"{AUDIENCE}/", ["https://other.example"], [], ""]
)
def test_rejects_a_wrong_audience(ring: KeyRing, aud: str | list[str]) -> None:
    """``aud`` must contain our identifier exactly (RFC 8725 §3.9)."""
    assert_rejected(ring, signed(ring, claims(aud=aud)))


@pytest.mark.parametrize("exp", [NOW - LEEWAY, NOW - LEEWAY - 1, NOW - 3600, 0])
def test_rejects_expiry_beyond_the_leeway(ring: KeyRing, exp: int) -> None:
    """A token whose ``exp`` is at least ``leeway`` seconds in the past is refused."""
    assert_rejected(ring, signed(ring, claims(exp=exp, iat=exp - 300, nbf=exp - 300)))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_rejects_nbf_or_iat_in_the_future(ring: KeyRing, claim: str) -> None:
    """A token not yet valid, or issued in the future beyond the leeway, is refused."""
    future = NOW + LEEWAY + 1
    assert_rejected(ring, signed(ring, claims(exp=future + 300, **{claim: future})))


@pytest.mark.parametrize("claim", REQUIRED)
def test_rejects_a_missing_required_claim(ring: KeyRing, claim: str) -> None:
    """RFC 9068 §2.2 and our profile: iss, exp, aud, sub, client_id, iat, jti and scope."""
    assert_rejected(ring, signed(ring, claims(**{claim: None})))


@pytest.mark.parametrize("scope", [["chat:read"], ["chat:read", "chat:write"], 1, {}, True])
def test_rejects_a_non_string_scope(ring: KeyRing, scope: object) -> None:
    """``scope`` is a space-delimited string (RFC 9068 §2.2.3), not an array or number."""
    assert_rejected(ring, signed(ring, claims(scope=scope)))


def test_accepts_an_empty_scope(ring: KeyRing) -> None:
    """A token granted nothing carries ``scope: ""``: present, well typed, accepted."""
    assert decode(ring, signed(ring, claims(scope="")))["scope"] == ""


@pytest.mark.parametrize("exp", [str(NOW + 300), float(NOW + 300), True, [NOW + 300]])
def test_rejects_a_non_integer_exp(ring: KeyRing, exp: object) -> None:
    """``exp`` must be a JSON integer, not a string, float, boolean or array."""
    assert_rejected(ring, signed(ring, claims(exp=exp)))


@pytest.mark.parametrize("claim", ["sub", "client_id", "jti"])
def test_rejects_a_non_string_identifier_claim(ring: KeyRing, claim: str) -> None:
    """``sub``, ``client_id`` and ``jti`` must be strings."""
    assert_rejected(ring, signed(ring, claims(**{claim: 12345})))


def test_rejects_an_over_long_token(ring: KeyRing) -> None:
    """A validly signed token over 8 KiB is refused before any parsing."""
    token = signed(ring, claims(padding="x" * 9000))
    assert len(token) > 8192
    assert_rejected(ring, token)


def test_rejects_jwe_shaped_input(ring: KeyRing) -> None:
    """A five-part (JWE compact) string is not an access token."""
    head = b64(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM", "typ": "at+jwt"}).encode())
    assert_rejected(ring, f"{head}.a2V5.aXY.Y2lwaGVy.dGFn")


@pytest.mark.parametrize(
    "token", ["", ".", "..", "a.b.c", "not-a-jwt", "e30.e30.", "e30.e30", "e30.e30.e30.e30"]
)
def test_rejects_garbage(ring: KeyRing, token: str) -> None:
    """Malformed strings raise the same opaque error, never a parser exception."""
    assert_rejected(ring, token)


def test_rejects_a_tampered_payload(ring: KeyRing) -> None:
    """Changing one claim without re-signing breaks the signature."""
    head, _, sig = signed(ring, claims()).split(".")
    body = b64(json.dumps(claims(scope="users:write chat:read chat:write")).encode())
    assert_rejected(ring, f"{head}.{body}.{sig}")


def test_rejects_a_non_object_payload(ring: KeyRing) -> None:
    """A signed payload that is not a JSON object is refused."""
    head = {"alg": ring.alg, "typ": "at+jwt", "kid": ring.active.kid}
    token = jws.serialize_compact(head, b"[1, 2, 3]", ring.active, algorithms=[ring.alg])
    assert_rejected(ring, token)
