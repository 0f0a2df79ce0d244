"""``bastion roles grant``: the operator makes an app's first admin."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import cli
from bastion.core.ids import Kind, new_id
from tests.test_cli import FAST_ARGON2


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``BASTION_*`` variable from the caller's shell leaks into the command."""
    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)


def _app_with_user(tmp_path: Path) -> tuple[str, str]:
    """An app made by ``init`` and one user row in it."""
    result = CliRunner().invoke(
        cli, ["init", "--json", "--data-dir", str(tmp_path)], env=FAST_ARGON2
    )
    assert result.exit_code == 0, result.output
    app_id = json.loads(result.stdout)["app_id"]
    user_id = new_id(Kind.USER)
    now = datetime.now(UTC).replace(tzinfo=None)
    with sqlite3.connect(tmp_path / "bastion.db") as db:
        db.execute(
            "INSERT INTO users (id, app_id, external_id, display_name, active, created_at,"
            " updated_at, version) VALUES (?, ?, 'root', 'Root', 1, ?, ?, 1)",
            (user_id, app_id, now, now),
        )
    return app_id, user_id


def test_grant_assigns_roles(tmp_path: Path) -> None:
    """The roles land in app_roles for that user."""
    app_id, user_id = _app_with_user(tmp_path)
    args = ["roles", "grant", "--app", app_id, "--user", user_id, "--role", "admin"]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(tmp_path / "bastion.db") as db:
        stored = db.execute("SELECT roles FROM app_roles WHERE user_id = ?", (user_id,)).fetchall()
    assert stored == [("admin",)]


@pytest.mark.parametrize(("role", "code"), [("service", 1), ("nosuchrole", 1)])
def test_grant_refuses_unassignable_roles(tmp_path: Path, role: str, code: int) -> None:
    """The backend's service role and unknown roles cannot be granted to a user."""
    app_id, user_id = _app_with_user(tmp_path)
    args = ["roles", "grant", "--app", app_id, "--user", user_id, "--role", role]
    result = CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == code, result.output


def test_grant_checks_id_shapes_and_the_user(tmp_path: Path) -> None:
    """Malformed ids are exit 2; a user of no such app is exit 1."""
    app_id, _ = _app_with_user(tmp_path)
    bad = CliRunner().invoke(
        cli,
        [
            "roles",
            "grant",
            "--app",
            "x",
            "--user",
            "y",
            "--role",
            "admin",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert bad.exit_code == 2
    unknown_user = ["--user", new_id(Kind.USER), "--role", "admin", "--data-dir", str(tmp_path)]
    missing = CliRunner().invoke(cli, ["roles", "grant", "--app", app_id, *unknown_user])
    assert missing.exit_code == 1
