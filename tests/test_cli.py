"""The ``bastion`` command: help, ``config show``, ``init``, ``migrate`` and production refusals."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from bastion.cli import cli
from bastion.core.ids import Kind, is_id

COMMANDS = [
    [],
    ["serve"],
    ["migrate"],
    ["init"],
    ["config"],
    ["config", "show"],
    ["tokens"],
    ["tokens", "revoke-before"],
    ["ratelimit"],
    ["ratelimit", "set"],
    ["ratelimit", "clear"],
    ["keys"],
    ["keys", "rotate-signing"],
    ["clients"],
    ["clients", "create"],
]
DB_PASSWORD = "hunter2-db-secret"
PASSPHRASE = "correct horse battery staple"
FAST_ARGON2 = {
    "BASTION_AUTH__ARGON2_TIME_COST": "1",
    "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024",
    "BASTION_AUTH__ARGON2_PARALLELISM": "1",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``BASTION_*`` variable from the caller's shell leaks into the command."""
    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def runner() -> CliRunner:
    """Runs the Typer app in-process, capturing stdout and stderr separately."""
    return CliRunner()


def bastion_executable() -> str:
    """The ``bastion`` console script of this virtualenv."""
    return str(Path(sys.executable).parent / "bastion")


def run_bastion(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real console script in a clean environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [bastion_executable(), *args],
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "bastion")
def test_help_works_for_every_command(runner: CliRunner, command: list[str]) -> None:
    """``--help`` exits 0 and prints usage for the top level and each command."""
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert " ".join(["bastion", *command]).strip() in " ".join(result.stdout.split())


def test_top_level_help_lists_the_commands(runner: CliRunner) -> None:
    """The top-level help names serve, migrate, init and config."""
    result = runner.invoke(cli, ["--help"])
    for name in ("serve", "migrate", "init", "config"):
        assert name in result.stdout


def test_no_arguments_shows_help(runner: CliRunner) -> None:
    """Running ``bastion`` bare prints the usage rather than doing anything."""
    result = runner.invoke(cli, [])
    assert "Usage" in result.output
    assert "init" in result.output


def test_config_show_prints_json_with_secrets_redacted(runner: CliRunner, tmp_path: Path) -> None:
    """``config show`` prints the effective configuration; DB password and passphrase hidden."""
    env = {
        "BASTION_DATABASE__URL": f"postgresql+asyncpg://bastion:{DB_PASSWORD}@db.internal/chat",
        "BASTION_AUTH__KEYS_PASSPHRASE": PASSPHRASE,
        "BASTION_SERVER__PORT": "9123",
    }
    result = runner.invoke(cli, ["config", "show", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert DB_PASSWORD not in result.output
    assert PASSPHRASE not in result.output
    shown = json.loads(result.stdout)
    assert shown["database"]["url"] == "postgresql+asyncpg://bastion:**********@db.internal/chat"
    assert shown["auth"]["keys_passphrase"] == "**********"
    assert shown["server"]["port"] == 9123
    assert shown["server"]["data_dir"] == str(tmp_path)


def test_init_prints_one_json_object_and_stores_only_a_hash(
    runner: CliRunner, tmp_path: Path
) -> None:
    """``init --json`` prints the credentials once; the database holds an argon2id hash only."""
    result = runner.invoke(
        cli, ["init", "--json", "--data-dir", str(tmp_path), "--name", "Acme"], env=FAST_ARGON2
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {
        "app_id",
        "app_name",
        "client_id",
        "client_secret",
        "scope",
        "token_endpoint",
    }
    assert is_id(Kind.APP, created["app_id"])
    assert is_id(Kind.CLIENT, created["client_id"])
    assert created["app_name"] == "Acme"
    assert created["scope"] == "clients:read clients:write tokens:exchange users:read users:write"
    assert created["token_endpoint"] == "https://127.0.0.1:8000/oauth/token"
    secret = created["client_secret"]
    assert len(secret) >= 43

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "bastion.db") as db:
        (stored,) = db.execute(
            "SELECT secret_hash FROM oauth_clients WHERE id = ?", (created["client_id"],)
        ).fetchone()
    assert stored.startswith("$argon2id$")
    assert PasswordHasher().verify(stored, secret)


def test_init_names_the_token_endpoint_on_the_configured_port(
    runner: CliRunner, tmp_path: Path
) -> None:
    """With no public URL, ``init`` prints the token endpoint on ``server.port`` (and
    plain http with TLS off): the URL the server started on that port advertises."""
    env = {**FAST_ARGON2, "BASTION_SERVER__PORT": "18444"}
    result = runner.invoke(cli, ["init", "--json", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["token_endpoint"] == "https://127.0.0.1:18444/oauth/token"
    env["BASTION_TRANSPORT__TLS"] = "false"
    result = runner.invoke(cli, ["init", "--json", "--data-dir", str(tmp_path)], env=env)
    assert json.loads(result.stdout)["token_endpoint"] == "http://127.0.0.1:18444/oauth/token"


def test_init_twice_makes_two_apps(runner: CliRunner, tmp_path: Path) -> None:
    """Each ``init`` creates a new app with new credentials."""
    args = ["init", "--json", "--data-dir", str(tmp_path)]
    first = json.loads(runner.invoke(cli, args, env=FAST_ARGON2).stdout)
    second = json.loads(runner.invoke(cli, args, env=FAST_ARGON2).stdout)
    assert first["app_id"] != second["app_id"]
    assert first["client_secret"] != second["client_secret"]


def test_init_without_json_shows_the_secret_once(runner: CliRunner, tmp_path: Path) -> None:
    """The human form prints ``client_id=`` and ``client_secret=`` lines on stdout."""
    result = runner.invoke(cli, ["init", "--data-dir", str(tmp_path)], env=FAST_ARGON2)
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert is_id(Kind.CLIENT, lines["client_id"])
    assert len(lines["client_secret"]) >= 43
    assert "shown only this once" in result.stderr


def test_migrate_creates_the_schema_and_is_idempotent(runner: CliRunner, tmp_path: Path) -> None:
    """``migrate`` creates the tables; running it again changes nothing."""
    first = runner.invoke(cli, ["migrate", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "Database schema at revision" in first.stderr
    with sqlite3.connect(tmp_path / "bastion.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"apps", "oauth_clients", "users", "alembic_version"} <= tables
    assert revision in first.stderr

    second = runner.invoke(cli, ["migrate", "--data-dir", str(tmp_path)])
    assert second.exit_code == 0, second.output
    assert revision in second.stderr


def test_production_with_an_insecure_config_exits_cleanly(tmp_path: Path) -> None:
    """The real command refuses production defaults: exit 2, every finding named, no traceback."""
    result = run_bastion(
        "migrate",
        "--data-dir",
        str(tmp_path),
        env={
            "BASTION_ENVIRONMENT": "production",
            "BASTION_DEBUG": "true",
            "BASTION_SERVER__PUBLIC_URL": "http://127.0.0.1:8000",
        },
    )
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "Invalid configuration" in message
    assert "refusing to run in production" in message
    assert "debug is on" in message
    assert "auth.keys_passphrase is not set" in message
    assert "is not an https:// URL" in message
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "bastion.db").exists()


@pytest.mark.parametrize("command", [["serve"], ["init"], ["config", "show"]])
def test_every_command_refuses_insecure_production(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    """No command starts (or prints secrets) with an insecure production configuration."""
    result = runner.invoke(
        cli, [*command, "--data-dir", str(tmp_path)], env={"BASTION_ENVIRONMENT": "production"}
    )
    assert result.exit_code == 2
    assert "refusing to run in production" in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert not (tmp_path / "bastion.db").exists()


def test_secure_production_config_show_works(runner: CliRunner, tmp_path: Path) -> None:
    """A production configuration with a passphrase and an https issuer is accepted."""
    env = {
        "BASTION_ENVIRONMENT": "production",
        "BASTION_AUTH__KEYS_PASSPHRASE": PASSPHRASE,
        "BASTION_ENCRYPTION__MASTER_PASSPHRASE": PASSPHRASE,
        "BASTION_SERVER__PUBLIC_URL": "https://chat.example.com",
    }
    result = runner.invoke(cli, ["config", "show", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["environment"] == "production"
    assert shown["auth"]["issuer"] == "https://chat.example.com"
    assert PASSPHRASE not in result.stdout
    assert shown["encryption"]["master_passphrase"] == "**********"


def test_clients_and_keys_commands(runner: CliRunner, tmp_path: Path) -> None:
    """Register a public and a confidential client, rotate a secret, list and rotate keys."""
    env = {**FAST_ARGON2, "BASTION_OAUTH__KEY_PUBLISH_SECONDS": "0"}
    created = runner.invoke(cli, ["init", "--json", "--data-dir", str(tmp_path)], env=env)
    app_id = json.loads(created.stdout)["app_id"]
    base = ["--data-dir", str(tmp_path), "--app", app_id]
    spa = runner.invoke(
        cli,
        [
            "clients",
            "create",
            *base,
            "--name",
            "SPA",
            "--public",
            "--redirect-uri",
            "https://app.example.com/cb",
        ],
        env=env,
    )
    assert spa.exit_code == 0, spa.output
    assert "client_secret" not in json.loads(spa.stdout)
    web = runner.invoke(
        cli,
        [
            "clients",
            "create",
            *base,
            "--name",
            "Web",
            "--redirect-uri",
            "https://app.example.com/cb",
        ],
        env=env,
    )
    secret = json.loads(web.stdout)["client_secret"]
    insecure = runner.invoke(
        cli,
        ["clients", "create", *base, "--name", "Bad", "--redirect-uri", "http://evil.example/cb"],
        env=env,
    )
    assert insecure.exit_code != 0
    client_id = json.loads(web.stdout)["client_id"]
    rotated = runner.invoke(
        cli,
        ["clients", "rotate-secret", client_id, "--overlap", "60", "--data-dir", str(tmp_path)],
        env=env,
    )
    assert json.loads(rotated.stdout)["client_secret"] != secret
    listed = json.loads(runner.invoke(cli, ["clients", "list", *base], env=env).stdout)
    assert {c["name"] for c in listed} >= {"SPA", "Web"}
    assert all("client_secret" not in c for c in listed)

    keys = json.loads(
        runner.invoke(cli, ["keys", "signing", "--data-dir", str(tmp_path)], env=env).stdout
    )
    assert sorted(k["state"] for k in keys) == ["active", "next"]
    rotation = runner.invoke(cli, ["keys", "rotate-signing", "--data-dir", str(tmp_path)], env=env)
    assert rotation.exit_code == 0, rotation.output
    done = json.loads(rotation.stdout)
    after = {
        k["kid"]: k["state"]
        for k in json.loads(
            runner.invoke(cli, ["keys", "signing", "--data-dir", str(tmp_path)], env=env).stdout
        )
    }
    assert after[done["active"]] == "active"
    assert after[done["retired"]] == "retired"
    assert after[done["next"]] == "next"


def test_clients_create_with_a_certificate_name(runner: CliRunner, tmp_path: Path) -> None:
    """--tls-subject-dn / --tls-san register tls_client_auth clients, only with mTLS on."""
    created = runner.invoke(cli, ["init", "--json", "--data-dir", str(tmp_path)], env=FAST_ARGON2)
    app_id = json.loads(created.stdout)["app_id"]
    base = ["clients", "create", "--data-dir", str(tmp_path), "--app", app_id, "--name", "svc"]
    backend = [*base, "--grant", "client_credentials", "--scope", "users:read"]
    mtls = {
        **FAST_ARGON2,
        "BASTION_TRANSPORT__MTLS": "tls",
        "BASTION_TRANSPORT__CLIENT_CA_FILE": str(tmp_path / "client-ca.pem"),
    }
    by_dn = runner.invoke(cli, [*backend, "--tls-subject-dn", "CN=svc,O=Example"], env=mtls)
    assert by_dn.exit_code == 0, by_dn.output
    shown = json.loads(by_dn.stdout)
    assert shown["auth_method"] == "tls_client_auth"
    assert shown["tls_client_auth_subject_dn"] == "CN=svc,O=Example"
    assert "client_secret" not in shown
    by_san = runner.invoke(cli, [*backend, "--tls-san", "ip:::1"], env=mtls)
    assert json.loads(by_san.stdout)["tls_client_auth_san_ip"] == "::1"
    assert runner.invoke(cli, [*backend, "--tls-san", "x500:CN=a"], env=mtls).exit_code == 2
    bad_dn = runner.invoke(cli, [*backend, "--tls-subject-dn", "no equals sign"], env=mtls)
    assert bad_dn.exit_code == 1
    assert "tls_client_auth_subject_dn" in bad_dn.output
    off = runner.invoke(cli, [*backend, "--tls-subject-dn", "CN=svc"], env=FAST_ARGON2)
    assert off.exit_code == 1
    assert "mutual TLS is not enabled" in off.output
