"""Forged, expired and mis-addressed access tokens against protected routes (OWASP API2).

Every forgery must get the same 401 problem with ``error="invalid_token"``, so an
attacker learns nothing about which check failed. A control token built by the same
helpers but signed correctly must succeed, proving the forgeries differ only in the
one property under attack.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bastion.core.ids import Kind, new_id
from bastion.security.keys import KeyRing
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.tokens import (
    b64,
    claims_for,
    hmac_with_public_key,
    sign,
    tamper,
    unsigned,
    with_stranger_key,
)

INVALID_TOKEN = 'Bearer realm="bastion", error="invalid_token"'
CHALLENGE = 'Bearer realm="bastion"'


@dataclass(frozen=True, slots=True)
class Target:
    """A protected route and the shape of token it expects."""

    path: str
    subject: str
    scope: str
    real_token: str
    keys: KeyRing
    issuer: str
    audience: str
    app_id: str
    client_id: str

    def claims(self, **changes: Any) -> dict[str, Any]:
        """A valid claim set for this route, with ``changes`` applied."""
        values: dict[str, Any] = {
            "issuer": self.issuer,
            "audience": self.audience,
            "app_id": self.app_id,
            "subject": self.subject,
            "client_id": self.client_id,
            "scope": self.scope,
        }
        extra = {k: v for k, v in changes.items() if k not in values and k != "ttl"}
        values.update({k: v for k, v in changes.items() if k in values})
        return claims_for(**values, ttl=changes.get("ttl", 300), **extra)


def _alg_variant(alg: str) -> Callable[[Target], str]:
    def build(target: Target) -> str:
        head = {"alg": alg, "typ": "at+jwt", "kid": target.keys.active.kid}
        payload = json.dumps(target.claims()).encode()
        return f"{b64(json.dumps(head).encode())}.{b64(payload)}."

    return build


def _strip_signature(target: Target) -> str:
    head, body, _ = target.real_token.split(".")
    return f"{head}.{body}."


def _swap_header_alg(target: Target) -> str:
    _, body, sig = target.real_token.split(".")
    head = {"alg": "HS256", "typ": "at+jwt", "kid": target.keys.active.kid}
    return f"{b64(json.dumps(head).encode())}.{body}.{sig}"


def _now() -> int:
    return int(time.time())


FORGERIES: dict[str, Callable[[Target], str]] = {
    "alg none": lambda t: unsigned(t.claims()),
    "alg None": _alg_variant("None"),
    "alg NONE with our kid": _alg_variant("NONE"),
    "HS256 keyed with our public key": lambda t: hmac_with_public_key(t.keys, t.claims()),
    "header alg swapped to HS256": _swap_header_alg,
    "stranger key, own kid": lambda t: with_stranger_key(t.claims()),
    "stranger key, our kid": lambda t: with_stranger_key(t.claims(), kid=t.keys.active.kid),
    "our key, unknown kid": lambda t: sign(t.keys, t.claims(), kid="not-our-kid"),
    "signature stripped": _strip_signature,
    "tampered payload": lambda t: tamper(t.real_token),
    "truncated signature": lambda t: t.real_token[:-10],
    "expired": lambda t: sign(t.keys, t.claims(ttl=-120, iat=_now() - 600, nbf=_now() - 600)),
    "nbf in the future": lambda t: sign(t.keys, t.claims(nbf=_now() + 3600, ttl=7200)),
    "iat in the future": lambda t: sign(t.keys, t.claims(iat=_now() + 3600, ttl=7200)),
    "wrong iss": lambda t: sign(t.keys, t.claims(issuer="https://evil.example")),
    "iss with trailing slash": lambda t: sign(t.keys, t.claims(issuer=t.issuer + "/")),
    "wrong aud": lambda t: sign(t.keys, t.claims(audience="https://other-api.example")),
    "wrong typ JWT": lambda t: sign(t.keys, t.claims(), typ="JWT"),
    "ID token typ": lambda t: sign(t.keys, t.claims(), typ="id_token+jwt"),
    "null jti": lambda t: sign(t.keys, {**t.claims(), "jti": None}),
    "string exp": lambda t: sign(t.keys, {**t.claims(), "exp": str(_now() + 300)}),
    "non-string app_id": lambda t: sign(t.keys, t.claims(app_id=["app_x"])),
    # Our profile requires scope: without it the token is invalid (401), not merely
    # unprivileged (403 insufficient_scope).
    "no scope": lambda t: sign(t.keys, {k: v for k, v in t.claims().items() if k != "scope"}),
    "scope as an array": lambda t: sign(t.keys, {**t.claims(), "scope": t.scope.split()}),
    "jku injection": lambda t: with_stranger_key(t.claims(), jku="https://evil.example/jwks"),
    "jku header on our signature": lambda t: sign(t.keys, t.claims(), jku="https://evil.example/j"),
    "x5u header on our signature": lambda t: sign(t.keys, t.claims(), x5u="https://evil.example/c"),
    "embedded jwk": lambda t: with_stranger_key(t.claims(), embed=True),
    "kid path traversal": lambda t: sign(t.keys, t.claims(), kid="../../keys/signing"),
    "no kid": lambda t: sign(t.keys, t.claims(), kid=None),
    "oversized": lambda t: sign(t.keys, t.claims(pad="x" * 9000)),
    # RFC 7800 `kid` confirmation: a method Bastion does not implement (jkt and x5t#S256 it does).
    "unknown cnf binding": lambda t: sign(t.keys, t.claims(cnf={"kid": "abc"})),
}


@pytest.fixture(params=["user", "backend"])
async def target(request: pytest.FixtureRequest, server: ServerThread, tenant: Tenant) -> Target:
    """GET /v1/channels with a user-shaped token, or GET /v1/users with a backend one."""
    settings = server.settings

    def make(path: str, subject: str, scope: str, real_token: str) -> Target:
        return Target(
            path=path,
            subject=subject,
            scope=scope,
            real_token=real_token,
            keys=server.services.keys,
            issuer=settings.issuer,
            audience=settings.audience,
            app_id=tenant.app_id,
            client_id=tenant.client_id,
        )

    if request.param == "user":
        alice = await tenant.user("alice")
        return make("/v1/channels", alice.id, "chat:read chat:write", alice.token)
    backend = await tenant.backend_token()
    return make("/v1/users", tenant.client_id, "tokens:exchange users:read users:write", backend)


def assert_invalid_token(response: httpx.Response) -> dict[str, Any]:
    """401 problem+json with the RFC 6750 ``invalid_token`` challenge; returns the body."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == INVALID_TOKEN
    body: dict[str, Any] = response.json()
    assert body["status"] == 401
    assert body["type"].endswith("invalid-token")
    return body


def bearer(token: str) -> dict[str, str]:
    """An Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def test_the_control_token_is_accepted(http: httpx.AsyncClient, target: Target) -> None:
    """A token built by the same helpers and correctly signed reaches the route (200)."""
    response = await http.get(target.path, headers=bearer(sign(target.keys, target.claims())))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_forged_token_is_invalid_token(
    http: httpx.AsyncClient, target: Target, forgery: str
) -> None:
    """Each forgery gets 401 problem+json with ``error="invalid_token"``."""
    token = FORGERIES[forgery](target)
    assert_invalid_token(await http.get(target.path, headers=bearer(token)))


async def test_all_forgeries_get_the_same_answer(http: httpx.AsyncClient, target: Target) -> None:
    """The 401 bodies are identical apart from ``instance``: no oracle for which check failed."""
    bodies = []
    for build in FORGERIES.values():
        body = assert_invalid_token(await http.get(target.path, headers=bearer(build(target))))
        body.pop("instance", None)
        bodies.append(body)
    assert all(body == bodies[0] for body in bodies)


async def test_a_foreign_user_under_our_signature_sees_nothing_foreign(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A correctly signed token naming another app's user under this app id sees none of
    the other app's data: its channel list is empty and the other app's channel is a 404
    identical to a channel that does not exist."""
    bob = await other_tenant.user("bob")
    carol = await other_tenant.user("carol")
    secret = await other_tenant.channel(bob, [carol], name="other app's secret room")
    await other_tenant.send(bob, secret["id"], "for the other app only")

    token = sign(
        server.services.keys,
        claims_for(
            issuer=server.settings.issuer,
            audience=server.settings.audience,
            app_id=tenant.app_id,
            subject=bob.id,
            client_id=tenant.client_id,
            scope="chat:read chat:write",
        ),
    )
    headers = bearer(token)
    listed = await http.get("/v1/channels", headers=headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []
    assert "secret room" not in listed.text

    foreign = await http.get(f"/v1/channels/{secret['id']}", headers=headers)
    missing = await http.get(f"/v1/channels/{new_id(Kind.CHANNEL)}", headers=headers)
    assert foreign.status_code == missing.status_code == 404
    foreign_body, missing_body = foreign.json(), missing.json()
    foreign_body.pop("instance", None)
    missing_body.pop("instance", None)
    assert foreign_body == missing_body
    messages = await http.get(f"/v1/channels/{secret['id']}/messages", headers=headers)
    assert messages.status_code == 404
    assert "for the other app only" not in messages.text


async def test_no_token_is_a_bare_challenge(http: httpx.AsyncClient, target: Target) -> None:
    """RFC 6750 §3.1: without credentials, 401 with a challenge that has no error code."""
    response = await http.get(target.path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 401


async def test_a_token_in_the_query_is_400(http: httpx.AsyncClient, target: Target) -> None:
    """RFC 6750 §2.3: ``?access_token=`` is refused (400), even holding a valid token."""
    response = await http.get(target.path, params={"access_token": target.real_token})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400
    assert target.real_token not in response.text


async def test_basic_credentials_are_401(
    http: httpx.AsyncClient, target: Target, tenant: Tenant
) -> None:
    """Even the app's real client id and secret in Basic do not open a resource route."""
    raw = base64.b64encode(f"{tenant.client_id}:{tenant.client_secret}".encode()).decode()
    response = await http.get(target.path, headers={"Authorization": f"Basic {raw}"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    # RFC 6750 §3.1: an unsupported method is answered like no credentials at all.
    assert response.headers["www-authenticate"] == CHALLENGE


async def test_scheme_case_and_extra_spaces_are_tolerated(
    http: httpx.AsyncClient, target: Target
) -> None:
    """Documented behaviour: ``bearer`` (any case, RFC 9110 §11.1) and several spaces work."""
    for value in (
        f"bearer {target.real_token}",
        f"BEARER {target.real_token}",
        f"Bearer  {target.real_token}",
    ):
        response = await http.get(target.path, headers={"Authorization": value})
        assert response.status_code == 200, (value[:10], response.text)


@pytest.mark.parametrize(
    "template", ["Bearer {t} extra", "Bearer {t},x", "Bearer{t}", 'Bearer "{t}"', "{t}"]
)
async def test_malformed_authorization_is_401(
    http: httpx.AsyncClient, target: Target, template: str
) -> None:
    """A real token wrapped in a malformed header value is not accepted."""
    value = template.format(t=target.real_token)
    response = await http.get(target.path, headers={"Authorization": value})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(CHALLENGE)
