"""DPoP (RFC 9449) on resource requests: stolen bound tokens and replayed proofs get nothing.

The tokens are signed by the server's own key with ``cnf.jkt``, exactly as the token
endpoint binds them; each attack changes one thing against a control that succeeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from joserfc import jwt
from websockets.asyncio.client import connect

from bastion.observe.events import MemorySink
from tests.http.test_websocket import closed_with
from tests.support.dpop import DPoPKey
from tests.support.server import ServerThread
from tests.support.tenants import Tenant
from tests.support.tokens import claims_for, sign

PATH = "/v1/channels"


class Bound:
    """A user's DPoP key and an access token bound to it."""

    def __init__(self, server: ServerThread, tenant: Tenant, user_id: str) -> None:
        self.server = server
        self.key = DPoPKey()
        self.url = server.settings.public_url + PATH
        settings = server.settings
        claims = claims_for(
            issuer=settings.issuer,
            audience=settings.audience,
            app_id=tenant.app_id,
            subject=user_id,
            client_id=tenant.client_id,
            scope="chat:read chat:write",
            cnf={"jkt": self.key.jkt},
        )
        self.token = sign(server.services.keys, claims)

    def headers(self, proof: str, scheme: str = "DPoP") -> dict[str, str]:
        """Authorization with the bound token and one DPoP proof."""
        return {"Authorization": f"{scheme} {self.token}", "DPoP": proof}

    def good_proof(self) -> str:
        """A valid proof for GET on the protected URL."""
        return self.key.proof("GET", self.url, token=self.token)


@pytest.fixture
async def bound(server: ServerThread, tenant: Tenant) -> Bound:
    """A DPoP-bound token for a fresh user."""
    alice = await tenant.user("alice")
    return Bound(server, tenant, alice.id)


def assert_invalid_proof(response: httpx.Response) -> None:
    """401 with the DPoP challenge naming invalid_dpop_proof (§7.1)."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('DPoP error="invalid_dpop_proof"'), challenge
    assert "algs=" in challenge
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_control_request_succeeds(http: httpx.AsyncClient, bound: Bound) -> None:
    """Bound token, DPoP scheme, a fresh proof for this method, URL and token: 200."""
    response = await http.get(PATH, headers=bound.headers(bound.good_proof()))
    assert response.status_code == 200, response.text


async def test_a_replayed_proof_is_refused(http: httpx.AsyncClient, bound: Bound) -> None:
    """The same proof twice: the second use is a replay (jti cache)."""
    proof = bound.good_proof()
    assert (await http.get(PATH, headers=bound.headers(proof))).status_code == 200
    assert_invalid_proof(await http.get(PATH, headers=bound.headers(proof)))


PROOF_ATTACKS: dict[str, Callable[[Bound], str]] = {
    "wrong htu (another path)": lambda b: b.key.proof(
        "GET", b.url.replace(PATH, "/v1/users/me"), token=b.token
    ),
    "wrong htu (another host)": lambda b: b.key.proof(
        "GET", "https://evil.example" + PATH, token=b.token
    ),
    "wrong htm": lambda b: b.key.proof("POST", b.url, token=b.token),
    "no ath": lambda b: b.key.proof("GET", b.url),
    "ath of another token": lambda b: b.key.proof("GET", b.url, token=b.token + "x"),
    "stale iat": lambda b: b.key.proof("GET", b.url, token=b.token, iat=int(time.time()) - 600),
    "future iat": lambda b: b.key.proof("GET", b.url, token=b.token, iat=int(time.time()) + 600),
    "another key": lambda b: DPoPKey().proof("GET", b.url, token=b.token),
    "typ JWT": lambda b: b.key.proof("GET", b.url, token=b.token, header={"typ": "JWT"}),
    "no jti": lambda b: b.key.proof("GET", b.url, token=b.token, jti=""),
    "garbage": lambda _b: "not.a.proof",
}


@pytest.mark.parametrize("attack", list(PROOF_ATTACKS))
async def test_a_bad_proof_is_refused(http: httpx.AsyncClient, bound: Bound, attack: str) -> None:
    """Each proof differs from the control in one property and is refused."""
    proof = PROOF_ATTACKS[attack](bound)
    assert_invalid_proof(await http.get(PATH, headers=bound.headers(proof)))


async def test_two_proofs_are_refused(http: httpx.AsyncClient, bound: Bound) -> None:
    """§4.3: exactly one DPoP header."""
    headers: list[tuple[str, str]] = [
        ("Authorization", f"DPoP {bound.token}"),
        ("DPoP", bound.good_proof()),
        ("DPoP", bound.good_proof()),
    ]
    assert_invalid_proof(await http.get(PATH, headers=headers))


async def test_a_missing_proof_is_refused(http: httpx.AsyncClient, bound: Bound) -> None:
    """The DPoP scheme without a proof."""
    response = await http.get(PATH, headers={"Authorization": f"DPoP {bound.token}"})
    assert_invalid_proof(response)


async def test_a_stolen_bound_token_is_useless_as_a_bearer_token(
    http: httpx.AsyncClient, bound: Bound
) -> None:
    """§7.1: the bound token under the Bearer scheme is refused (invalid_token)."""
    response = await http.get(PATH, headers={"Authorization": f"Bearer {bound.token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_an_unbound_token_is_refused_under_the_dpop_scheme(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """A bearer token presented with a proof is not silently upgraded."""
    bob = await tenant.user("bob")
    key = DPoPKey()
    url = server.settings.public_url + PATH
    headers = {"Authorization": f"DPoP {bob.token}", "DPoP": key.proof("GET", url, token=bob.token)}
    response = await http.get(PATH, headers=headers)
    assert response.status_code == 401


def ws_proof(bound: Bound) -> str:
    """A proof for the WebSocket upgrade (htm GET, htu the /v1/ws URL)."""
    url = bound.server.settings.public_url + "/v1/ws"
    return bound.key.proof("GET", url, token=bound.token)


async def test_a_bound_token_opens_a_socket_with_its_proof(bound: Bound) -> None:
    """Auth frame with token and dpop proof, or the DPoP headers on the upgrade: ready."""
    async with connect(bound.server.ws_url, open_timeout=5) as conn:
        await conn.send(json.dumps({"type": "auth", "token": bound.token, "dpop": ws_proof(bound)}))
        assert json.loads(await conn.recv())["type"] == "ready"
    headers = {"Authorization": f"DPoP {bound.token}", "DPoP": ws_proof(bound)}
    async with connect(bound.server.ws_url, additional_headers=headers, open_timeout=5) as conn:
        assert json.loads(await conn.recv())["type"] == "ready"


@pytest.mark.parametrize("proof", ["none", "replayed", "wrong htu"])
async def test_a_bound_token_without_a_good_proof_is_closed_4001(bound: Bound, proof: str) -> None:
    """No proof, a replayed one, or one for another URL: the socket closes with 4001."""
    used = ws_proof(bound)
    if proof == "replayed":
        async with connect(bound.server.ws_url, open_timeout=5) as conn:
            await conn.send(json.dumps({"type": "auth", "token": bound.token, "dpop": used}))
            assert json.loads(await conn.recv())["type"] == "ready"
    frame: dict[str, str] = {"type": "auth", "token": bound.token}
    if proof != "none":
        frame["dpop"] = used if proof == "replayed" else bound.good_proof()
    async with connect(bound.server.ws_url, open_timeout=5) as conn:
        await conn.send(json.dumps(frame))
        code, _ = await closed_with(conn)
    assert code == 4001


async def test_the_token_endpoint_binds_tokens_to_the_proof_key(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """RFC 9449 §5: a proof at /oauth/token gives a DPoP token with cnf.jkt of that key."""
    key = DPoPKey()
    base = server.settings.public_url
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(tenant.client_id, tenant.client_secret),
        headers={"DPoP": key.proof("POST", base + "/oauth/token")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    claims = jwt.decode(token, server.services.keys.verification).claims
    assert claims["cnf"] == {"jkt": key.jkt}
    proof = key.proof("GET", base + "/v1/users", token=token)
    users = await http.get("/v1/users", headers={"Authorization": f"DPoP {token}", "DPoP": proof})
    assert users.status_code == 200, users.text
    bearer = await http.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401


@pytest.mark.parametrize("attack", ["wrong htu", "wrong htm", "replay"])
async def test_a_bad_proof_at_the_token_endpoint_is_invalid_dpop_proof(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant, attack: str
) -> None:
    """§5.2: the token endpoint answers 400 invalid_dpop_proof and issues nothing."""
    key = DPoPKey()
    url = server.settings.public_url + "/oauth/token"
    proof = {
        "wrong htu": key.proof("POST", url.replace("/oauth/token", "/oauth/other")),
        "wrong htm": key.proof("GET", url),
        "replay": key.proof("POST", url),
    }[attack]

    async def request() -> httpx.Response:
        return await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.client_id, tenant.client_secret),
            headers={"DPoP": proof},
        )

    if attack == "replay":
        assert (await request()).status_code == 200
    response = await request()
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_a_refused_proof_is_a_security_event(
    http: httpx.AsyncClient, server: ServerThread, bound: Bound
) -> None:
    """auth.dpop failure, with the reason code and the user, never the token or proof."""
    sink = MemorySink()
    server.services.events.add_sink(sink)
    proof = bound.good_proof()
    await http.get(PATH, headers=bound.headers(proof))
    await http.get(PATH, headers=bound.headers(proof))
    events = sink.of("auth.dpop")
    assert [e.reason for e in events] == ["invalid_dpop_proof"]
    assert proof not in str(events[0].as_dict())
    assert bound.token not in str(events[0].as_dict())
