"""Discovery and key sets of external providers against a hostile provider (OWASP API10).

A small real HTTP server on loopback plays the provider: wrong issuer, plain-http or
redirecting key URLs, huge, slow or malformed documents. None of it may be trusted,
and none of it may stall verification past the configured timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from bastion.core.clock import FakeClock
from bastion.core.settings import ExternalIssuerSettings
from bastion.security.fetch import FetchError, JsonFetcher, check_url
from bastion.security.issuers import ExternalIssuer, parse_jwks
from bastion.security.oauth.rfc9068 import InvalidAccessTokenError
from bastion.security.outbound import OutboundGuard, OutboundPolicy
from tests.support.oidc_provider import new_key

AUDIENCE = "https://chat.example.com"


@dataclass(slots=True)
class Reply:
    """What the fake provider answers on one path."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Hostile:
    """A loopback HTTP server answering whatever the test puts in ``replies``."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                reply = outer.replies.get(self.path, Reply(b"{}", status=404))
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def serve_json(self, path: str, document: object, **reply: Any) -> None:
        """Answer ``document`` as JSON on ``path``."""
        self.replies[path] = Reply(json.dumps(document).encode(), **reply)

    def provider(self, key: ECKey, *, issuer: str | None = None) -> None:
        """A well-behaved provider: discovery and a JWKS holding ``key``."""
        self.serve_json(
            "/.well-known/openid-configuration",
            {"issuer": issuer or self.url, "jwks_uri": f"{self.url}/jwks"},
        )
        self.serve_json("/jwks", {"keys": [key.as_dict(private=False)]})


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """A fresh fake provider for the test."""
    server = Hostile()
    yield server
    server.server.shutdown()
    server.server.server_close()


def issuer_for(
    hostile: Hostile, clock: FakeClock, *, timeout: float = 2.0, max_bytes: int = 65_536
) -> ExternalIssuer:
    """An ``ExternalIssuer`` for the fake provider, http allowed on loopback."""
    config = ExternalIssuerSettings(
        issuer=hostile.url, app_id="app_01JD0000000000000000000000", algorithms=["ES256"]
    )
    fetcher = JsonFetcher(timeout=timeout, max_bytes=max_bytes, allow_http_loopback=True)
    return ExternalIssuer(
        config,
        fetcher=fetcher,
        clock=clock,
        default_audience=AUDIENCE,
        leeway=30,
        max_token_bytes=8192,
        cache_seconds=3600,
        min_refresh_seconds=60,
    )


def token(key: ECKey, issuer: str, clock: FakeClock, **header: Any) -> str:
    """An access token of ``issuer`` signed with ``key``."""
    now = int(clock.timestamp())
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300}
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(head, claims, key, algorithms=["ES256"])


async def test_a_well_behaved_provider_is_trusted(hostile: Hostile) -> None:
    """The control: discovery, JWKS and a token under the published key."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    claims = await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))
    assert claims["sub"] == "u1"


async def test_a_provider_token_needs_no_scope_string(hostile: Hostile) -> None:
    """Bastion's own profile requires a ``scope`` string; a provider's token may omit it
    (the control above) or send another shape, which the role mapping ignores."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    now = int(clock.timestamp())
    claims = {"iss": hostile.url, "aud": AUDIENCE, "sub": "u1", "iat": now, "exp": now + 300}
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid}
    listed = jwt.encode(head, {**claims, "scope": ["chat"]}, key, algorithms=["ES256"])
    verified = await issuer_for(hostile, clock).verify_access_token(listed)
    assert verified["scope"] == ["chat"]


async def test_discovery_with_another_issuer_is_not_used(hostile: Hostile) -> None:
    """OIDC Discovery §4.3: a metadata issuer that differs in any way aborts."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key, issuer=hostile.url + "/")
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))
    assert hostile.hits.get("/jwks") is None


@pytest.mark.parametrize(
    "jwks_uri",
    ["http://idp.example.com/jwks", "file:///etc/passwd", "https://user:pw@idp.example/jwks"],
)
async def test_a_plain_http_or_odd_jwks_uri_is_refused(hostile: Hostile, jwks_uri: str) -> None:
    """The advertised key URL must be https (loopback http only in test mode)."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.serve_json(
        "/.well-known/openid-configuration", {"issuer": hostile.url, "jwks_uri": jwks_uri}
    )
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))


async def test_a_redirect_is_not_followed(hostile: Hostile) -> None:
    """A 302 from the provider is an error, not a new place to fetch keys from."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    hostile.replies["/jwks"] = Reply(b"", status=302, headers={"Location": "/elsewhere"})
    hostile.serve_json("/elsewhere", {"keys": [key.as_dict(private=False)]})
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))
    assert hostile.hits.get("/elsewhere") is None


async def test_a_huge_jwks_is_refused(hostile: Hostile) -> None:
    """A document over the size cap is dropped while streaming, declared or not."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    padding = {"keys": [key.as_dict(private=False)], "pad": "x" * 200_000}
    hostile.serve_json("/jwks", padding)
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))


async def test_a_slow_provider_cannot_stall_verification(hostile: Hostile) -> None:
    """A provider that takes longer than the timeout is abandoned on time."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    hostile.replies["/jwks"].delay = 3.0
    started = time.monotonic()
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock, timeout=0.5).verify_access_token(
            token(key, hostile.url, clock)
        )
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("body", [b"<html>", b"[1, 2]", b"\xff\xfe", b'{"keys": "nope"}'])
async def test_malformed_documents_give_no_keys(hostile: Hostile, body: bytes) -> None:
    """Non-JSON, non-object or ill-shaped key sets never verify anything."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    hostile.replies["/jwks"] = Reply(body)
    with pytest.raises(InvalidAccessTokenError):
        await issuer_for(hostile, clock).verify_access_token(token(key, hostile.url, clock))


async def test_unknown_kids_refetch_at_most_once_per_interval(hostile: Hostile) -> None:
    """A flood of forged kids costs one refetch per interval, then rotation is picked up."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.provider(key)
    issuer = issuer_for(hostile, clock)
    await issuer.verify_access_token(token(key, hostile.url, clock))
    rotated = new_key()
    clock.advance(61)
    for _ in range(20):
        with pytest.raises(InvalidAccessTokenError):
            await issuer.verify_access_token(token(new_key(), hostile.url, clock))
    assert hostile.hits["/jwks"] == 2
    hostile.serve_json("/jwks", {"keys": [rotated.as_dict(private=False)]})
    clock.advance(61)
    claims = await issuer.verify_access_token(token(rotated, hostile.url, clock))
    assert claims["sub"] == "u1"
    assert hostile.hits["/jwks"] == 3


def test_check_url_allows_http_only_for_loopback_in_test_mode() -> None:
    """https anywhere; http only for 127.0.0.1 and only when allowed."""
    check_url("https://idp.example.com/jwks", allow_http_loopback=False)
    check_url("http://127.0.0.1:8080/jwks", allow_http_loopback=True)
    for url, allowed in [
        ("http://127.0.0.1:8080/jwks", False),
        ("http://localhost/jwks", True),
        ("http://10.0.0.1/jwks", True),
        ("https://idp.example.com/jwks#frag", False),
    ]:
        with pytest.raises(FetchError):
            check_url(url, allow_http_loopback=allowed)


def test_parse_jwks_keeps_only_usable_signing_keys() -> None:
    """No kid, encryption use, symmetric, private or disallowed-algorithm keys are dropped."""
    good = new_key()
    no_alg = ECKey.generate_key("P-256", auto_kid=True).as_dict(private=False)
    no_alg.pop("alg", None)
    rsa = RSAKey.generate_key(2048, parameters={"alg": "RS256"}, auto_kid=True)
    entries = [
        good.as_dict(private=False),
        no_alg,
        {**good.as_dict(private=False), "kid": None},
        {**new_key().as_dict(private=False), "use": "enc"},
        OctKey.generate_key(256, auto_kid=True).as_dict(),
        new_key().as_dict(private=True),
        rsa.as_dict(private=False),
    ]
    keys = parse_jwks({"keys": entries}, ["ES256"])
    assert sorted(k.kid or "" for k in keys.keys) == sorted([good.kid or "", no_alg["kid"]])
    assert all(k.alg == "ES256" for k in keys.keys)


@pytest.mark.parametrize(
    "jwks_uri",
    ["https://169.254.169.254/latest/meta-data", "https://10.0.0.1/jwks", "https://[::1]/jwks"],
)
async def test_the_outbound_guard_refuses_a_jwks_uri_on_a_private_address(
    hostile: Hostile, jwks_uri: str
) -> None:
    """SSRF: a provider cannot make Bastion fetch cloud metadata or internal hosts."""
    clock, key = FakeClock(time.time()), new_key()
    hostile.serve_json(
        "/.well-known/openid-configuration", {"issuer": hostile.url, "jwks_uri": jwks_uri}
    )
    policy = OutboundPolicy.of(
        allow_http=True,
        allow_networks=["127.0.0.1/32"],
        timeout_seconds=2.0,
        max_bytes=65_536,
        max_redirects=0,
    )
    fetcher = JsonFetcher(
        timeout=2.0, max_bytes=65_536, allow_http_loopback=True, guard=OutboundGuard(policy)
    )
    config = ExternalIssuerSettings(issuer=hostile.url, app_id="app_x", algorithms=["ES256"])
    issuer = ExternalIssuer(
        config,
        fetcher=fetcher,
        clock=clock,
        default_audience=AUDIENCE,
        leeway=30,
        max_token_bytes=8192,
        cache_seconds=3600,
        min_refresh_seconds=60,
    )
    started = time.monotonic()
    with pytest.raises(InvalidAccessTokenError):
        await issuer.verify_access_token(token(key, hostile.url, clock))
    assert time.monotonic() - started < 1.0
    assert hostile.hits["/.well-known/openid-configuration"] == 1
