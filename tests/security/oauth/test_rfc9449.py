"""RFC 9449 §4.3 proof checks, called directly on ``ProofValidator``."""

from __future__ import annotations

import base64
import json
import time

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from bastion.core.clock import FakeClock
from bastion.security.oauth import rfc9449
from tests.support.dpop import DPoPKey

URL = "https://chat.example.com/v1/channels"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.e30.sig"


SECRET = b"n" * 32


def validator(*, nonces: bool = False, clock: FakeClock | None = None) -> rfc9449.ProofValidator:
    """A validator at the real time (proofs carry real ``iat``)."""
    clock = clock or FakeClock(time.time())
    return rfc9449.ProofValidator(
        clock=clock,
        algorithms=["ES256", "EdDSA"],
        max_age=60,
        replay=rfc9449.ReplayCache(),
        nonces=rfc9449.Nonces(SECRET, clock) if nonces else None,
    )


def test_ath_matches_the_rfc_definition() -> None:
    """§4.2: base64url of SHA-256 of the token's ASCII, unpadded (RFC 9449 §7.1 example)."""
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert rfc9449.ath(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


async def test_a_valid_proof_gives_the_key_thumbprint() -> None:
    """The control: the result is the RFC 7638 thumbprint of the header key."""
    key = DPoPKey()
    proof = await validator().validate(
        [key.proof("GET", URL, token=TOKEN)], method="GET", url=URL, access_token=TOKEN
    )
    assert proof.jkt == key.jkt


@pytest.mark.parametrize(
    "htu",
    [
        "https://CHAT.example.com/v1/channels",
        "https://chat.example.com:443/v1/channels",
        "https://chat.example.com/v1/channels?x=1",
        "https://chat.example.com/v1/channels#frag",
    ],
)
async def test_htu_is_compared_without_query_fragment_or_default_port(htu: str) -> None:
    """§4.3 (9): equivalent URLs match."""
    key = DPoPKey()
    await validator().validate([key.proof("GET", htu)], method="GET", url=URL)


async def test_a_replay_is_refused_and_forgotten_after_the_window() -> None:
    """The jti cache refuses a second use within the window only."""
    clock = FakeClock(time.time())
    check = validator(clock=clock)
    proof = DPoPKey().proof("GET", URL)
    await check.validate([proof], method="GET", url=URL)
    with pytest.raises(rfc9449.InvalidDPoPProof, match="used before"):
        await check.validate([proof], method="GET", url=URL)
    clock.advance(600)
    with pytest.raises(rfc9449.InvalidDPoPProof, match="too old"):
        await check.validate([proof], method="GET", url=URL)


async def test_a_nonce_is_demanded_then_accepted() -> None:
    """§8: without the server nonce the answer is use_dpop_nonce with the nonce to use."""
    check = validator(nonces=True)
    key = DPoPKey()
    with pytest.raises(rfc9449.UseDPoPNonce) as demanded:
        await check.validate([key.proof("GET", URL)], method="GET", url=URL)
    headers = rfc9449.challenge(demanded.value)
    assert headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
    assert headers["DPoP-Nonce"] == demanded.value.nonce
    await check.validate([key.proof("GET", URL, nonce=demanded.value.nonce)], method="GET", url=URL)
    with pytest.raises(rfc9449.UseDPoPNonce):
        await check.validate([key.proof("GET", URL, nonce="made-up")], method="GET", url=URL)


def test_nonces_are_the_same_on_every_node_with_the_secret() -> None:
    """Two nodes sharing the secret agree on the nonce; another secret's nonce is refused."""
    clock = FakeClock(1_800_000_000)
    node_a, node_b = rfc9449.Nonces(SECRET, clock), rfc9449.Nonces(SECRET, clock)
    stranger = rfc9449.Nonces(b"x" * 32, clock)
    assert node_a.current() == node_b.current()
    assert node_b.valid(node_a.current())
    assert not node_b.valid(stranger.current())
    assert not node_b.valid(None)
    assert len(node_a.current()) == 43  # 32 bytes, base64url without padding


def test_a_nonce_lives_for_its_step_and_the_next_only() -> None:
    """The previous step's nonce is still accepted; two steps later it is refused."""
    clock = FakeClock(1_800_000_000)
    nonces = rfc9449.Nonces(SECRET, clock, lifetime=300)
    handed_out = nonces.current()
    clock.advance(300)
    assert nonces.current() != handed_out
    assert nonces.valid(handed_out)
    clock.advance(300)
    assert not nonces.valid(handed_out)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def test_alg_none_and_hmac_proofs_are_refused() -> None:
    """Only asymmetric algorithms from the list; a MAC proves no key possession."""
    key = DPoPKey()
    claims = {"jti": "a", "htm": "GET", "htu": URL, "iat": int(time.time())}
    none = f"{_b64({'typ': 'dpop+jwt', 'alg': 'none', 'jwk': key.public})}.{_b64(claims)}."
    secret = OctKey.generate_key(256)
    head = {"typ": "dpop+jwt", "alg": "HS256", "jwk": secret.as_dict()}
    hmac = jwt.encode(head, claims, secret, algorithms=["HS256"])
    for proof in (none, hmac):
        with pytest.raises(rfc9449.InvalidDPoPProof):
            await validator().validate([proof], method="GET", url=URL)


async def test_a_private_key_in_the_header_is_refused() -> None:
    """The header must carry the public key only."""
    key = DPoPKey()
    proof = key.proof("GET", URL, header={"jwk": key.key.as_dict(private=True)})
    with pytest.raises(rfc9449.InvalidDPoPProof, match="public key"):
        await validator().validate([proof], method="GET", url=URL)


@pytest.mark.parametrize(
    ("value", "token"),
    [("DPoP abc.def.ghi", "abc.def.ghi"), ("dpop  abc", "abc"), ("Bearer abc", None), (None, None)],
)
def test_parse_authorization(value: str | None, token: str | None) -> None:
    """The DPoP scheme is matched case-insensitively; other schemes are not ours."""
    assert rfc9449.parse_authorization(value) == token
