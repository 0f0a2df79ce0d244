"""Cross-tenant sweeps: the timed roles that ended in a window of time, whatever the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bastion.store.records import MemberRecord
from bastion.store.repos import cross_tenant
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User


async def _timed(tenant: Tenant, owner: User, path: str, ends: datetime | None) -> None:
    body = {"expires_at": ends.isoformat()} if ends is not None else {}
    response = await tenant.http.put(path, json=body, headers=owner.headers)
    assert response.status_code == 200, response.text


def _ended(server: ServerThread, after: datetime, until: datetime) -> list[MemberRecord]:
    async def query() -> list[MemberRecord]:
        async with server.services.db.read() as conn:
            return await cross_tenant.timed_roles_ended(conn, after, until)

    return server.run(query())


async def test_the_timed_roles_that_ended_in_a_window_are_found_once(
    server: ServerThread, tenant: Tenant, other_tenant: Tenant
) -> None:
    """A ban and a mute are found by the window their end falls in (after it, up to and
    including its end), in both apps; a permanent ban and a lifted one never are."""
    alice, bob, carol, dave, erin = [
        await tenant.user(n) for n in ("alice", "bob", "carol", "dave", "erin")
    ]
    cid = (await tenant.channel(alice, [bob, carol, dave, erin]))["id"]
    olga, pat = await other_tenant.user("olga"), await other_tenant.user("pat")
    other = (await other_tenant.channel(olga, [pat]))["id"]
    now = datetime.now(UTC).replace(microsecond=0) + timedelta(days=365)
    hour = timedelta(hours=1)
    await _timed(tenant, alice, f"/v1/channels/{cid}/bans/{bob.id}", now + hour)
    await _timed(tenant, alice, f"/v1/channels/{cid}/mutes/{carol.id}", now + 2 * hour)
    await _timed(tenant, alice, f"/v1/channels/{cid}/bans/{dave.id}", None)
    await _timed(tenant, alice, f"/v1/channels/{cid}/bans/{erin.id}", now + hour)
    lifted = await tenant.http.delete(f"/v1/channels/{cid}/bans/{erin.id}", headers=alice.headers)
    assert lifted.status_code == 204, lifted.text
    await _timed(other_tenant, olga, f"/v1/channels/{other}/bans/{pat.id}", now + hour)

    def found(after: datetime, until: datetime) -> set[tuple[str, str, str]]:
        return {(m.user_id, m.role, m.app_id) for m in _ended(server, after, until)}

    assert found(now, now + hour / 2) == set()
    assert found(now, now + hour) == {
        (bob.id, "banned", tenant.app_id),
        (pat.id, "banned", other_tenant.app_id),
    }
    assert found(now + hour, now + 3 * hour) == {(carol.id, "read-only", tenant.app_id)}
    assert found(now + 3 * hour, now + 1000 * hour) == set()
