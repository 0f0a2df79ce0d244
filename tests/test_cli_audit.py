"""``bastion audit export`` from the shell: the export is itself recorded, before it runs."""

from __future__ import annotations

import json

from bastion.security import scopes
from tests.support.audit import block_audit_inserts, unblock_audit_inserts
from tests.support.cli import bastion
from tests.support.operators import execute_sql, operator_headers
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def test_an_export_from_the_shell_is_recorded(server: ServerThread, tenant: Tenant) -> None:
    """The app's export lists its changes and ends with its own audit.export record."""
    await tenant.user("alice")
    exported = bastion(server, "audit", "export", "--app", tenant.app_id)
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert "data.change" in {r["action"] for r in records}
    last = records[-1]
    assert (last["action"], last["subject"]) == ("audit.export", "operator")
    assert last["details"]["via"] == "cli"
    auditor = await operator_headers(tenant, scopes.AUDIT_READ)
    found = await tenant.http.get(
        "/v1/audit/events", params={"action": "audit.export"}, headers=auditor
    )
    assert [r["seq"] for r in found.json()["data"]] == [last["seq"]]


async def test_a_command_the_audit_log_cannot_record_fails_with_one_line(
    server: ServerThread, tenant: Tenant
) -> None:
    """Fail closed from the shell: exit 1, one line saying why, no traceback, no export."""
    url = server.settings.database_url
    execute_sql(url, *block_audit_inserts(url))
    try:
        exported = bastion(server, "audit", "export", "--app", tenant.app_id)
    finally:
        execute_sql(url, *unblock_audit_inserts(url))
    assert exported.returncode == 1
    assert "The audit log could not record this command" in exported.stderr
    assert "Traceback" not in exported.stderr
    assert exported.stdout == ""
