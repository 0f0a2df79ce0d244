"""Keyword search over sealed messages: equal to a plaintext reference, only in the caller's
channels."""

from __future__ import annotations

import random

import httpx

from bastion.security.crypto.envelope import words
from tests.support.raw import sql
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User

VOCABULARY = [
    "apple", "Banana", "cherry", "délai", "ÉLAN", "straße", "kiwi", "mango", "zebra",
    "release", "deploy", "rollback", "incident", "42", "x9",
]  # fmt: skip


def reference(corpus: list[tuple[str, str, str]], channels: set[str], query: str) -> list[str]:
    """The plaintext answer: ids of messages in ``channels`` containing every query word,
    newest first (corpus entries are in send order)."""
    wanted = words(query)
    return [mid for mid, ch, text in reversed(corpus) if ch in channels and wanted <= words(text)]


async def search(http: httpx.AsyncClient, user: User, query: str) -> list[str]:
    """Message ids the API finds for ``user``."""
    response = await http.get(
        "/v1/search/messages", params={"q": query, "limit": 200}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


async def test_search_equals_a_plaintext_reference(
    http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, server: ServerThread
) -> None:
    """On a generated corpus, every user's results equal the reference over their channels."""
    rng = random.Random(5)  # noqa: S311 - a reproducible corpus, not a secret
    alice, bob, carol = [await tenant.user(n) for n in ("alice", "bob", "carol")]
    ab = str((await tenant.channel(alice, [bob], name="ab"))["id"])
    ac = str((await tenant.channel(alice, [carol], name="ac"))["id"])
    bc = str((await tenant.channel(bob, [carol], name="bc"))["id"])
    senders = {ab: alice, ac: carol, bc: bob}
    corpus: list[tuple[str, str, str]] = []
    for _ in range(90):
        channel = rng.choice([ab, ac, bc])
        text = " ".join(rng.choices(VOCABULARY, k=rng.randint(1, 6))) + rng.choice(["", "!", "?"])
        sent = await tenant.send(senders[channel], channel, text)
        corpus.append((str(sent["id"]), channel, text))
    # Another app uses the same words: its messages never appear.
    dave = await other_tenant.user("dave")
    theirs = str((await other_tenant.channel(dave, [], name="x"))["id"])
    await other_tenant.send(dave, theirs, "apple banana cherry release deploy")
    deleted = corpus.pop(3)
    gone = await http.delete(f"/v1/messages/{deleted[0]}", headers=senders[deleted[1]].headers)
    assert gone.status_code == 204
    membership = {alice.id: {ab, ac}, bob.id: {ab, bc}, carol.id: {ac, bc}}
    queries = ["apple", "BANANA", "Délai", "élan straße", "release deploy", "42", "kiwi zebra"]
    queries += [" ".join(rng.sample(VOCABULARY, 2)) for _ in range(6)]
    for query in queries:
        for user in (alice, bob, carol):
            expected = reference(corpus, membership[user.id], query)
            assert await search(http, user, query) == expected, (query, user.external_id)
    stored = sql(server, "SELECT term FROM message_terms WHERE channel_id = :c", c=ab)
    assert stored
    assert not any(word in row[0] for row in stored for word in ("apple", "release"))


async def test_search_never_leaves_the_callers_channels(
    http: httpx.AsyncClient, tenant: Tenant
) -> None:
    """A word in a channel the caller is not in, or has left, is not found for them."""
    alice, bob, eve = [await tenant.user(n) for n in ("alice", "bob", "eve")]
    private = str((await tenant.channel(alice, [bob], name="private"))["id"])
    await tenant.send(alice, private, "quarterly numbers attached")
    assert len(await search(http, bob, "quarterly")) == 1
    assert await search(http, eve, "quarterly") == []
    left = await http.delete(f"/v1/channels/{private}/members/{bob.id}", headers=alice.headers)
    assert left.status_code == 204
    assert await search(http, bob, "quarterly") == []


async def test_search_needs_words(http: httpx.AsyncClient, tenant: Tenant) -> None:
    """An empty or punctuation-only query is a 422 problem."""
    alice = await tenant.user("alice")
    response = await http.get("/v1/search/messages", params={"q": "?!"}, headers=alice.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
