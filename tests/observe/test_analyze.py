"""``bastion logs analyze``: the report's sections, from the live database and from an export."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bastion.cli import cli
from bastion.observe.analyze import analyze
from bastion.observe.events import Actor, Origin
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def record(action: str, outcome: str, at: datetime, **fields: Any) -> dict[str, Any]:
    """An audit record in the export shape."""
    base: dict[str, Any] = {
        "action": action,
        "outcome": outcome,
        "at": at.isoformat(),
        "app_id": "app_1",
        "subject": None,
        "client_id": None,
        "ip": None,
        "details": {},
    }
    return {**base, **fields}


def _history() -> list[dict[str, Any]]:
    old = NOW - timedelta(days=3)
    rows = [
        record(
            "auth.login",
            "success",
            old.replace(hour=9) + timedelta(minutes=i),
            subject="usr_alice",
            ip="192.0.2.10",
        )
        for i in range(12)
    ]
    recent = NOW - timedelta(hours=1)
    rows += [
        record("auth.login", "failure", recent, subject=f"usr_{i}", ip="203.0.113.7")
        for i in range(6)
    ]
    rows += [
        record("auth.login", "failure", recent, subject="usr_alice", ip="198.51.100.1"),
        record(
            "auth.login", "success", recent.replace(hour=3), subject="usr_alice", ip="198.51.100.1"
        ),
        record("authz.decision", "denied", recent, subject="usr_mallory", ip="192.0.2.66"),
        record("authz.decision", "denied", recent, subject="usr_mallory", ip="192.0.2.66"),
        record(
            "token.reuse_detected",
            "denied",
            recent,
            subject="usr_bob",
            client_id="cli_1",
            ip="192.0.2.77",
        ),
        record("auth.login", "failure", recent, app_id="app_2", subject="usr_x", ip="10.0.0.1"),
    ]
    return rows


def test_report_sections_over_records() -> None:
    """Each section finds what the records show, within the window and the app."""
    report = analyze(_history(), NOW - timedelta(days=1), app="app_1")
    assert report.top_failure_sources[0] == {"ip": "203.0.113.7", "failures": 6, "accounts": 6}
    assert "10.0.0.1" not in {row["ip"] for row in report.top_failure_sources}
    assert {"account": "usr_alice", "failures": 1, "sources": 1} in report.accounts_under_attack
    assert report.denied_by_principal[0] == {
        "principal": "usr_mallory",
        "denied": 2,
        "actions": {"authz.decision": 2},
    }
    assert report.new_ips_per_account == [{"account": "usr_alice", "new_ips": ["198.51.100.1"]}]
    assert {"account": "usr_alice", "hour_utc": 3, "events": 1} in report.unusual_hours
    assert report.tokens_revoked_for_reuse[0]["subject"] == "usr_bob"


def test_cli_reads_an_export_and_prints_tables_or_json(tmp_path: Path) -> None:
    """--input takes a JSON-lines export; --json prints the report; tables by default."""
    export = tmp_path / "audit.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in _history()), encoding="utf-8")
    runner = CliRunner()
    as_json = runner.invoke(
        cli,
        [
            "logs",
            "analyze",
            "--input",
            str(export),
            "--since",
            "2026-11-27T12:00:00Z",
            "--app",
            "app_1",
            "--json",
        ],
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["top_failure_sources"][0]["ip"] == "203.0.113.7"
    tables = runner.invoke(cli, ["logs", "analyze", "--input", str(export), "--app", "app_1"])
    assert tables.exit_code == 0, tables.output
    for title in ("Top sources of failures", "Accounts under attack", "Tokens revoked for reuse"):
        assert title in tables.stdout
    bad = runner.invoke(cli, ["logs", "analyze", "--input", str(export), "--since", "soon"])
    assert bad.exit_code == 2


def test_cli_reads_the_live_audit_log(server: ServerThread, tenant: Tenant) -> None:
    """Without --input the report comes from the server's database, limited by --app."""
    for i in range(4):
        server.run(
            server.services.events.emit(
                "auth.login",
                "failure",
                actor=Actor(app_id=tenant.app_id, subject=f"usr_target{i}"),
                origin=Origin(ip="203.0.113.99"),
            )
        )
    result = CliRunner().invoke(
        cli,
        [
            "logs",
            "analyze",
            "--since",
            "1h",
            "--app",
            tenant.app_id,
            "--json",
            "--data-dir",
            str(server.settings.server.data_dir),
        ],
        env={"BASTION_DATABASE__URL": server.settings.database_url},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["top_failure_sources"][0] == {"ip": "203.0.113.99", "failures": 4, "accounts": 4}
