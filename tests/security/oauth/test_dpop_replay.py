"""The DPoP jti replay cache shared through Redis: a proof used at one node is refused at
another, and an unreachable store refuses proofs (503) rather than letting replays in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bastion.app import dpop_replay_store
from bastion.core.settings import Settings
from bastion.security.oauth import rfc9449
from bastion.security.oauth.dpop_replay import RedisReplayStore
from tests.conftest import Databases, make_settings, start_server
from tests.support.dpop import DPoPKey
from tests.support.ratelimit import SHARED_REDIS, redis_answers
from tests.support.server import ServerThread, free_port
from tests.support.tenants import Tenant, new_tenant

needs_redis = pytest.mark.skipif(not redis_answers(), reason="no Redis at 127.0.0.1:6379")
# Both nodes answer for one public URL, as behind a load balancer: the same htu is
# valid at either.
PUBLIC = "http://bastion.test"
TOKEN_URL = PUBLIC + "/oauth/token"


def _cluster_settings(
    data_dir: Path, url: str, replay_url: str, nonce_secret: str | None = None
) -> Settings:
    nonces = {"dpop_nonce": True, "dpop_nonce_secret": nonce_secret} if nonce_secret else {}
    settings = make_settings(
        data_dir,
        url,
        resource_server={"dpop_replay_url": replay_url, **nonces},
        auth={"issuer": PUBLIC},
    )
    server = settings.server.model_copy(update={"public_url": PUBLIC})
    return settings.model_copy(update={"server": server})


@pytest.fixture(scope="module")
def nodes(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two nodes sharing the database, the keys and the Redis replay store."""
    if not redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379")
    data_dir = tmp_path_factory.mktemp("dpop-cluster")
    url = databases.new()
    first = start_server(_cluster_settings(data_dir, url, SHARED_REDIS))
    second = start_server(_cluster_settings(data_dir, url, SHARED_REDIS))
    yield first, second
    first.stop()
    second.stop()


async def _token_call(base_url: str, tenant: Tenant, proof: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        return await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(tenant.client_id, tenant.client_secret),
            headers={"DPoP": proof},
        )


@needs_redis
async def test_a_proof_used_at_one_node_is_refused_at_the_other(
    nodes: tuple[ServerThread, ServerThread],
) -> None:
    """Token endpoint: node A accepts the proof; node B sees the same jti as a replay."""
    node_a, node_b = nodes
    async with httpx.AsyncClient(base_url=node_a.base_url, timeout=10) as http:
        tenant = new_tenant(node_a, http)
        proof = DPoPKey().proof("POST", TOKEN_URL)
        first = await _token_call(node_a.base_url, tenant, proof)
        assert first.status_code == 200, first.text
        assert first.json()["token_type"] == "DPoP"
        replayed = await _token_call(node_b.base_url, tenant, proof)
        assert replayed.status_code == 400
        assert replayed.json()["error"] == "invalid_dpop_proof"
        # A fresh proof at node B is fine: the refusal is the replay, not the node.
        fresh = await _token_call(node_b.base_url, tenant, DPoPKey().proof("POST", TOKEN_URL))
        assert fresh.status_code == 200, fresh.text


@needs_redis
async def test_a_resource_request_replayed_at_the_other_node_is_refused(
    nodes: tuple[ServerThread, ServerThread],
) -> None:
    """Resource server: the same proof and bound token, replayed at node B, is a 401."""
    node_a, node_b = nodes
    async with httpx.AsyncClient(base_url=node_a.base_url, timeout=10) as http:
        tenant = new_tenant(node_a, http)
        key = DPoPKey()
        issued = await _token_call(node_a.base_url, tenant, key.proof("POST", TOKEN_URL))
        token = issued.json()["access_token"]
        proof = key.proof("GET", PUBLIC + "/v1/users", token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        assert (await http.get("/v1/users", headers=headers)).status_code == 200
    async with httpx.AsyncClient(base_url=node_b.base_url, timeout=10) as other:
        replayed = await other.get("/v1/users", headers=headers)
    assert replayed.status_code == 401
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]


@pytest.fixture(scope="module")
def nonce_nodes(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two nodes requiring DPoP nonces, each with its own data directory, one nonce secret."""
    if not redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379")
    url, secret = databases.new(), "a shared nonce secret, 32+ chars long"
    nodes = [
        start_server(_cluster_settings(tmp_path_factory.mktemp(name), url, SHARED_REDIS, secret))
        for name in ("nonce-a", "nonce-b")
    ]
    yield nodes[0], nodes[1]
    for node in nodes:
        node.stop()


@needs_redis
async def test_a_nonce_handed_out_by_one_node_is_accepted_by_the_other(
    nonce_nodes: tuple[ServerThread, ServerThread],
) -> None:
    """§8 behind a load balancer: the nonce node A demands is the one node B accepts."""
    node_a, node_b = nonce_nodes
    key = DPoPKey()
    async with httpx.AsyncClient(base_url=node_a.base_url, timeout=10) as http:
        tenant = new_tenant(node_a, http)
        demanded = await _token_call(node_a.base_url, tenant, key.proof("POST", TOKEN_URL))
    assert demanded.status_code == 400
    assert demanded.json()["error"] == "use_dpop_nonce"
    nonce = demanded.headers["dpop-nonce"]
    proof = key.proof("POST", TOKEN_URL, nonce=nonce)
    accepted = await _token_call(node_b.base_url, tenant, proof)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["token_type"] == "DPoP"
    stale = await _token_call(node_b.base_url, tenant, key.proof("POST", TOKEN_URL, nonce="x"))
    assert stale.json()["error"] == "use_dpop_nonce"
    assert stale.headers["dpop-nonce"] == nonce


@pytest.fixture(scope="module")
def unreachable_store(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A node whose shared replay store is configured but not listening."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = _cluster_settings(tmp_path_factory.mktemp("dpop-dead"), databases.new(), dead)
    node = start_server(settings)
    yield node
    node.stop()


async def test_an_unreachable_store_refuses_proofs_with_503(
    unreachable_store: ServerThread,
) -> None:
    """Fail closed: a proof that cannot be checked for replay is never accepted; bearer
    tokens, which need no replay check, keep working."""
    async with httpx.AsyncClient(base_url=unreachable_store.base_url, timeout=10) as http:
        tenant = new_tenant(unreachable_store, http)
        answer = await _token_call(
            unreachable_store.base_url, tenant, DPoPKey().proof("POST", TOKEN_URL)
        )
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in answer.headers
        assert "access_token" not in answer.text
        bearer = await tenant.token_request(grant_type="client_credentials")
        assert bearer.status_code == 200


async def test_the_store_follows_the_rate_limit_store_unless_set() -> None:
    """Empty dpop_replay_url: Redis when rate limits use Redis, else this process's memory."""
    local = Settings()
    assert isinstance(dpop_replay_store(local), rfc9449.ReplayCache)
    shared = Settings(ratelimit={"storage_url": SHARED_REDIS})
    assert shared.dpop_replay_url == SHARED_REDIS
    store = dpop_replay_store(shared)
    assert isinstance(store, RedisReplayStore)
    await store.close()
    pinned = Settings(
        ratelimit={"storage_url": SHARED_REDIS}, resource_server={"dpop_replay_url": "memory://"}
    )
    assert isinstance(dpop_replay_store(pinned), rfc9449.ReplayCache)
