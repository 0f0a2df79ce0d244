"""``bastion keys`` from the shell: operator key work lands in the server's audit log."""

from __future__ import annotations

from bastion.security import scopes
from tests.support.cli import bastion
from tests.support.operators import operator_headers
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_shredding_from_the_shell_is_audited(server: ServerThread, tenant: Tenant) -> None:
    """`keys shred` records key.shred in the audit log the app's auditor reads."""
    alice = await tenant.user("alice")
    shredded = bastion(server, "keys", "shred", "--app", tenant.app_id, "--user", alice.id, "--yes")
    assert shredded.returncode == 0, shredded.stderr
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    found = await tenant.http.get(
        "/v1/audit/events", params={"action": "key.shred"}, headers=auditor
    )
    assert found.status_code == 200, found.text
    (record,) = found.json()["data"]
    assert record["resource"] == f"user:{alice.id}"
    assert record["subject"] == "operator"
    assert record["details"]["keys_destroyed"] >= 1
