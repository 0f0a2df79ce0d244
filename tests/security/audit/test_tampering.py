"""Tampering with the audit log in the database is found by ``bastion audit verify``, in place.

Each test runs its own server on a fresh database, writes records through the HTTP
API, signs a checkpoint, then edits, deletes, inserts or reorders rows with plain SQL
(the append-only triggers dropped first, as a database superuser could) and runs the
real command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.cli import cli
from bastion.core.clock import SystemClock
from bastion.security.audit import records
from tests.conftest import Databases, make_settings, start_server
from tests.support.operators import drop_append_only_guards, execute_sql

USERS_BEFORE_CHECKPOINT = 4
USERS_AFTER_CHECKPOINT = 4


@dataclass(frozen=True, slots=True)
class AuditedServer:
    """A stopped server's data folder and database, holding a known audit log."""

    data_dir: Path
    url: str

    def rows(self) -> list[dict[str, Any]]:
        """Every record, in sequence order."""
        (result,) = execute_sql(self.url, "SELECT * FROM audit_log ORDER BY seq")
        return [dict(row._mapping) for row in result]

    def verify(self) -> dict[str, Any]:
        """Run ``bastion audit verify --json`` and return its report."""
        result = CliRunner().invoke(
            cli,
            ["audit", "verify", "--json", "--data-dir", str(self.data_dir)],
            env={"BASTION_DATABASE__URL": self.url},
        )
        report: dict[str, Any] = json.loads(result.stdout)
        assert result.exit_code == (0 if report["intact"] else 1)
        return report


def _create_users(client: httpx.Client, headers: dict[str, str], names: list[str]) -> None:
    for name in names:
        response = client.post(
            "/v1/users", json={"external_id": name, "display_name": name}, headers=headers
        )
        assert response.status_code == 201, response.text


@pytest.fixture
def audited(databases: Databases, tmp_path: Path) -> AuditedServer:
    """A log of user creations, the first half signed by a checkpoint."""
    url = databases.new()
    settings = make_settings(tmp_path, url, audit={"checkpoint_interval_seconds": 3600})
    server = start_server(settings)
    try:
        tenant = server.run(
            create_app(server.services.db, secret_hasher(settings), SystemClock(), name="t")
        )
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            # Minted directly: a token request would add a token.issue record to the log.
            token = server.services.tokens.issue(
                app_id=tenant.app.id,
                client_id=tenant.client.id,
                subject=tenant.client.id,
                scopes=frozenset({"users:write"}),
                ttl=600,
            ).token
            headers = {"Authorization": f"Bearer {token}"}
            _create_users(client, headers, [f"a{i}" for i in range(USERS_BEFORE_CHECKPOINT)])
            assert server.run(server.services.checkpoints.create()) is not None
            _create_users(client, headers, [f"b{i}" for i in range(USERS_AFTER_CHECKPOINT)])
    finally:
        server.stop()
    audited = AuditedServer(tmp_path, url)
    drop_append_only_guards(url)
    return audited


def _first(report: dict[str, Any]) -> tuple[str, int]:
    finding = report["findings"][0]
    return finding["kind"], finding["seq"]


def test_an_intact_log_verifies(audited: AuditedServer) -> None:
    """Every write made a record; the chain and the signed checkpoint check out."""
    report = audited.verify()
    assert report["intact"], report
    assert report["records"] == USERS_BEFORE_CHECKPOINT + USERS_AFTER_CHECKPOINT
    assert report["checkpoints"] == 1
    assert report["unsigned_tail"] == USERS_AFTER_CHECKPOINT
    actions = {row["action"] for row in audited.rows()}
    assert actions == {"data.change"}


def test_an_edited_record_is_reported_as_modified_at_its_seq(audited: AuditedServer) -> None:
    """Changing one field of record 3 breaks its own hash, and only that."""
    execute_sql(audited.url, "UPDATE audit_log SET subject = 'usr_someone_else' WHERE seq = 3")
    report = audited.verify()
    assert report["findings"] == [
        {"kind": "modified", "seq": 3, "message": "record 3 does not match its hash"}
    ]


def test_an_edited_and_rehashed_record_is_still_found(audited: AuditedServer) -> None:
    """Recomputing the edited record's hash breaks the next record's link instead."""
    row = audited.rows()[5]
    row["outcome"] = "failure"
    execute_sql(
        audited.url,
        "UPDATE audit_log SET outcome = 'failure', hash = :hash WHERE seq = :seq",
        hash=records.record_hash(row),
        seq=row["seq"],
    )
    assert _first(audited.verify()) == ("modified", 6)


def test_a_deleted_record_is_reported_where_it_was(audited: AuditedServer) -> None:
    """Removing record 6 leaves a gap the chain cannot bridge."""
    execute_sql(audited.url, "DELETE FROM audit_log WHERE seq = 6")
    report = audited.verify()
    assert report["findings"][0] == {
        "kind": "deleted",
        "seq": 6,
        "message": "records 6..6 are missing",
    }


def test_a_deleted_signed_record_is_caught_by_the_checkpoint(audited: AuditedServer) -> None:
    """Removing the newest signed record (4) is caught by the chain and the checkpoint."""
    execute_sql(audited.url, "DELETE FROM audit_log WHERE seq = 4")
    kinds = {(f["kind"], f["seq"]) for f in audited.verify()["findings"]}
    assert kinds == {("deleted", 4)}


def test_an_inserted_record_is_reported_at_its_place(audited: AuditedServer) -> None:
    """A forged, correctly hashed record squeezed in after 5 (the rest renumbered)."""
    rows = audited.rows()
    forged = dict(rows[4])
    forged.update(seq=6, subject="usr_forged", prev_hash=rows[4]["hash"])
    forged["hash"] = records.record_hash(forged)
    execute_sql(
        audited.url,
        "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 5",
        "UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000",
    )
    columns = ", ".join(forged)
    values = ", ".join(f":{name}" for name in forged)
    execute_sql(audited.url, f"INSERT INTO audit_log ({columns}) VALUES ({values})", **forged)  # noqa: S608 - test builds its own column list
    report = audited.verify()
    assert report["findings"] == [
        {"kind": "inserted", "seq": 6, "message": "record 6 is not part of the chain"}
    ]


def test_swapped_records_are_reported_as_reordered(audited: AuditedServer) -> None:
    """Records 6 and 7 trade places: their links point the other way."""
    execute_sql(
        audited.url,
        "UPDATE audit_log SET seq = -1 WHERE seq = 6",
        "UPDATE audit_log SET seq = 6 WHERE seq = 7",
        "UPDATE audit_log SET seq = 7 WHERE seq = -1",
    )
    report = audited.verify()
    assert _first(report) == ("reordered", 6)
    assert {f["kind"] for f in report["findings"]} == {"reordered"}
    assert report["findings"][0]["message"] == "record 6 belongs right after record 7"


def test_rewriting_the_whole_chain_is_caught_by_the_signed_checkpoint(
    audited: AuditedServer,
) -> None:
    """An attacker who re-hashes every record cannot re-sign the checkpoint."""
    prev = records.GENESIS
    statements, params = [], {}
    for row in audited.rows():
        row["reason"] = "rewritten" if row["seq"] == 2 else row["reason"]
        row["prev_hash"] = prev
        row["hash"] = prev = records.record_hash(row)
        n = row["seq"]
        statements.append(
            f"UPDATE audit_log SET reason = :r{n}, prev_hash = :p{n}, hash = :h{n} WHERE seq = {n}"  # noqa: S608 - integers only
        )
        params.update({f"r{n}": row["reason"], f"p{n}": row["prev_hash"], f"h{n}": row["hash"]})
    execute_sql(audited.url, *statements, **params)
    report = audited.verify()
    assert report["findings"] == [
        {
            "kind": "modified",
            "seq": 4,
            "message": "records up to 4 differ from what checkpoint 1 signed",
        }
    ]


def test_the_database_refuses_updates_while_the_guards_stand(
    databases: Databases, tmp_path: Path
) -> None:
    """Append-only: with the triggers in place, UPDATE and DELETE fail."""
    url = databases.new()
    start_server(make_settings(tmp_path, url)).stop()
    execute_sql(
        url,
        "INSERT INTO audit_log (seq, at, action, outcome, node, event_seq, roles, details, "
        "prev_hash, hash) VALUES (1, 'x', 'a', 'success', 'n', 1, '[]', '{}', :g, :g)",
        g=records.GENESIS,
    )
    for statement in ("UPDATE audit_log SET action = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            execute_sql(url, statement)


def test_a_rotated_key_signs_new_checkpoints_and_old_ones_still_verify(
    audited: AuditedServer,
) -> None:
    """rotate-key records key.rotate; the next checkpoint uses the new key; all verify."""
    runner = CliRunner()
    env = {"BASTION_DATABASE__URL": audited.url}
    args = ["--data-dir", str(audited.data_dir)]
    rotated = runner.invoke(cli, ["audit", "rotate-key", *args], env=env)
    assert rotated.exit_code == 0, rotated.output
    signed = runner.invoke(cli, ["audit", "checkpoint", *args], env=env)
    assert signed.exit_code == 0, signed.output
    keys = runner.invoke(cli, ["audit", "public-keys", *args], env=env)
    published = {key["kid"] for key in json.loads(keys.stdout)["keys"]}
    report = audited.verify()
    assert report["intact"], report
    assert report["checkpoints"] == 2
    assert report["unsigned_tail"] == 0
    assert audited.rows()[-1]["action"] == "key.rotate"
    (checkpoints,) = execute_sql(audited.url, "SELECT kid FROM audit_checkpoints ORDER BY number")
    signers = {row.kid for row in checkpoints}
    assert len(signers) == 2
    assert signers <= published


def test_another_process_appending_keeps_one_chain(databases: Databases, tmp_path: Path) -> None:
    """The CLI appends (key.rotate) while the server runs; the server continues the chain."""
    url = databases.new()
    settings = make_settings(tmp_path, url, audit={"checkpoint_interval_seconds": 3600})
    server = start_server(settings)
    try:
        tenant = server.run(
            create_app(server.services.db, secret_hasher(settings), SystemClock(), name="t")
        )
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            token = client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(tenant.client.id, tenant.client_secret),
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            _create_users(client, headers, ["before"])
            rotated = CliRunner().invoke(
                cli,
                ["audit", "rotate-key", "--data-dir", str(tmp_path)],
                env={"BASTION_DATABASE__URL": url},
            )
            assert rotated.exit_code == 0, rotated.output
            _create_users(client, headers, ["after1", "after2"])
    finally:
        server.stop()
    audited = AuditedServer(tmp_path, url)
    # The token request itself is audited too (token.issue); the chain order is the point.
    assert [row["action"] for row in audited.rows() if row["action"] != "token.issue"] == [
        "data.change",
        "key.rotate",
        "data.change",
        "data.change",
    ]
    assert audited.verify()["intact"]
