"""The ``bastion`` command: help, ``config show``, ``init``, ``migrate``, ``serve``,
production refusals and an unreachable database, over every command of the tree."""

from __future__ import annotations

import inspect
import json
import os
import sqlite3
import ssl
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
import typer
from argon2 import PasswordHasher
from typer.testing import CliRunner
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bastion.cli import cli, server_config
from bastion.core.ids import Kind, is_id, new_id
from bastion.core.settings import CONFIG_FILE_ENV, Settings
from tests.support.server import free_port
from tests.support.settings import env_name, secret_fields, url_fields

DB_PASSWORD = "hunter2-db-secret"
PASSPHRASE = "correct horse battery staple"


def _tree(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command path under ``command`` (groups too), with its click command."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _tree(sub, (*path, name))


TREE = dict(_tree(typer.main.get_command(cli)))
COMMANDS = [list(path) for path in TREE]
LEAVES = [list(path) for path, command in TREE.items() if not hasattr(command, "commands")]
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


def test_the_command_tree_is_walked() -> None:
    """The walk finds the groups and commands (so the tests over it are not vacuous)."""
    assert len(COMMANDS) >= 48
    for expected in (["serve"], ["audit", "verify"], ["apps", "disable"], ["keys", "shred"]):
        assert expected in LEAVES


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


def test_the_refusal_is_a_clean_list(tmp_path: Path) -> None:
    """Each finding is one bullet line; none of pydantic's boilerplate is shown."""
    result = run_bastion(
        "config",
        "show",
        "--data-dir",
        str(tmp_path),
        env={"BASTION_ENVIRONMENT": "production", "BASTION_DEBUG": "true"},
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Invalid configuration:"
    assert lines[1] == "refusing to run in production with an insecure configuration:"
    assert "  - debug is on (BASTION_DEBUG): it must be off in production" in lines
    bullets = [line for line in lines[2:] if line.startswith("  - ")]
    assert len(bullets) == len(lines) - 2 >= 3
    for boilerplate in ("validation error", "Value error", "errors.pydantic.dev", "type="):
        assert boilerplate not in result.stderr


def test_an_invalid_setting_is_one_line_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    """A malformed value names its setting and what is wrong, without boilerplate."""
    result = runner.invoke(
        cli, ["config", "show", "--data-dir", str(tmp_path)], env={"BASTION_SERVER__PORT": "70000"}
    )
    assert result.exit_code == 2
    assert "- server.port: Input should be less than or equal to 65535" in result.stderr
    assert "errors.pydantic.dev" not in result.stderr


def _argument(name: str, annotation: Any, tmp_path: Path) -> str:
    """A well-formed value for a required parameter, so only the settings can refuse."""
    ids = {"app": Kind.APP, "user": Kind.USER, "client": Kind.CLIENT, "channel": Kind.CHANNEL}
    for prefix, kind in ids.items():
        if name.startswith(prefix):
            return new_id(kind)
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else None
    if base is int:
        return "1"
    if base is Path:
        existing = tmp_path / "existing-file"
        existing.write_text("x", encoding="utf-8")
        return str(existing)
    return "10/second"


def _required(command: Any, tmp_path: Path) -> list[str]:
    """Values for the command's required options and arguments."""
    signature = inspect.signature(command.callback, eval_str=True)
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = _argument(param.name, signature.parameters[param.name].annotation, tmp_path)
        args += [param.opts[0], value] if param.opts[0].startswith("--") else [value]
    return args


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_command_refuses_insecure_production(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    """No command starts, prints secrets or touches data with an insecure production
    configuration: exit 2 with the findings, never a traceback."""
    data = tmp_path / "data"
    args = [*command, *_required(TREE[tuple(command)], tmp_path), "--data-dir", str(data)]
    result = runner.invoke(cli, args, env={"BASTION_ENVIRONMENT": "production"})
    assert result.exit_code == 2, result.output
    assert "refusing to run in production" in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert not data.exists()


@pytest.mark.parametrize("command", LEAVES, ids=" ".join)
def test_every_command_takes_a_data_dir(command: list[str]) -> None:
    """``--data-dir`` means the same on every command."""
    options = {opt for param in TREE[tuple(command)].params for opt in param.opts}
    assert "--data-dir" in options


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "nonexistent.toml, which is not a file"),
        ("[server\nport = 1\n", "is not valid TOML"),
        ("[auth]\nleway = 5\n", "auth.leway: Extra inputs are not permitted"),
    ],
)
def test_a_bad_config_file_is_refused(
    runner: CliRunner, tmp_path: Path, content: str | None, message: str
) -> None:
    """A missing, malformed or misspelt config file: exit 2 with one clear message."""
    config = tmp_path / "nonexistent.toml"
    if content is not None:
        config.write_text(content, encoding="utf-8")
    result = runner.invoke(
        cli, ["config", "show", "--data-dir", str(tmp_path)], env={CONFIG_FILE_ENV: str(config)}
    )
    assert result.exit_code == 2
    assert "Invalid configuration" in result.stderr
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_config_show_hides_every_secret_and_url_credential(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Every secret setting and every URL setting's password and query values are hidden."""
    env: dict[str, str] = {}
    hidden: list[str] = []
    for number, name in enumerate(secret_fields()):
        env[env_name(name)] = f"SECRET{number:02d}-0123456789abcdef"
        hidden.append(env[env_name(name)])
    for number, name in enumerate(url_fields()):
        scheme = "redis" if name.endswith("dpop_replay_url") else "https"
        env[env_name(name)] = (
            f"{scheme}://user:PASS{number:02d}@h.example:1/p?password=QUERY{number:02d}"
            f"&token=TOKEN{number:02d}"
        )
        hidden += [f"PASS{number:02d}", f"QUERY{number:02d}", f"TOKEN{number:02d}"]
    env.update(
        {
            "BASTION_DATABASE__URL": "postgresql+asyncpg://u:PGPASSWORD1@h/db?password=QPASS",
            "BASTION_RATELIMIT__STORAGE_URL": "redis://:REDISPASS1@127.0.0.1:6379/0",
            "BASTION_MONITOR__WEBHOOK_URL": "https://hooks.example/x?token=WEBHOOKTOKEN",
        }
    )
    hidden += ["PGPASSWORD1", "QPASS", "REDISPASS1", "WEBHOOKTOKEN"]
    result = runner.invoke(cli, ["config", "show", "--data-dir", str(tmp_path)], env=env)
    assert result.exit_code == 0, result.output
    assert [secret for secret in hidden if secret in result.output] == []
    shown = json.loads(result.stdout)
    assert shown["ratelimit"]["storage_url"] == "redis://:**********@127.0.0.1:6379/0"
    assert shown["database"]["url"] == "postgresql+asyncpg://u:**********@h/db?password=**********"


@pytest.mark.parametrize(
    "command", [["migrate"], ["serve"], ["audit", "verify"], ["apps", "list"]], ids=" ".join
)
def test_an_unreachable_database_is_one_line(command: list[str], tmp_path: Path) -> None:
    """A database nobody answers for: one line naming host and port (not the password),
    exit 1, no traceback."""
    port = free_port()
    url = f"postgresql+asyncpg://postgres:{DB_PASSWORD}@127.0.0.1:{port}/bastion"
    result = run_bastion(*command, "--data-dir", str(tmp_path), env={"BASTION_DATABASE__URL": url})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Cannot reach the database at 127.0.0.1:{port} (")
    assert DB_PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_serve_builds_uvicorn_on_uvloop_and_httptools(tmp_path: Path) -> None:
    """The server ``serve`` runs uses uvloop and httptools, on the configured interface."""
    settings = Settings(server={"data_dir": tmp_path, "host": "127.0.0.2", "port": 8123})
    config = server_config(settings, None)
    assert config.loop == "uvloop"
    assert (config.host, config.port) == ("127.0.0.2", 8123)
    config.load()
    # httptools, through the subclass that answers unparsable requests with a problem.
    assert issubclass(config.http_protocol_class, HttpToolsProtocol)


def test_serve_listens_where_asked_and_keeps_data_there(tmp_path: Path) -> None:
    """A real ``bastion serve --host --port --data-dir``: it answers on that interface
    only, and its database, keys and certificate are in that folder."""
    port, data = free_port(), tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASTION_")}
    args = ["serve", "--host", "127.0.0.2", "--port", str(port), "--data-dir", str(data)]
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [bastion_executable(), *args],
        cwd=tmp_path,
        env={**env, "BASTION_AUTH__ARGON2_MEMORY_KIB": "1024"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        context = ssl.create_default_context(cafile=None)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        ready = _wait_ready(f"https://127.0.0.2:{port}/readyz", context)
        assert ready, (tmp_path / "serve.log").read_text(encoding="utf-8")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"https://127.0.0.1:{port}/readyz", verify=context, timeout=2)
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert (data / "bastion.db").is_file()
    assert (data / "tls" / "server.crt").is_file()
    assert (data / "keys").is_dir()
    assert not (tmp_path / "var").exists()


def _wait_ready(url: str, context: ssl.SSLContext) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, verify=context, timeout=1).status_code == 200:
                return True
        except (httpx.TransportError, OSError):
            time.sleep(0.1)
    return False


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
