"""The ``bastion`` command: serve, migrate, init, config show."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from bastion.app import create_app, database, key_source, secret_hasher, signing_keys
from bastion.auth_cli import clients_cli, register_key_commands
from bastion.chat.apps import create_app as create_tenant
from bastion.cli_apps import apps_cli
from bastion.cli_audit import audit_cli
from bastion.cli_crypto import backup_cli, keys_cli, operator_errors, report_key_failure
from bastion.cli_logs import logs_cli
from bastion.cli_ratelimit import ratelimit_cli
from bastion.cli_roles import roles_cli
from bastion.cli_support import CommandGroup, DataDir, load_settings_or_exit
from bastion.cli_tokens import tokens_cli
from bastion.core.clock import SystemClock
from bastion.core.settings import Settings
from bastion.http import serving
from bastion.observe.logging import configure as configure_logging
from bastion.security.audit.log import AuditUnavailable
from bastion.security.crypto.errors import KeySourceDown
from bastion.store import migrate as migrations

cli = typer.Typer(
    name="bastion",
    help="Bastion: a self-hostable, secure-by-design in-app chat API server.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)
config_cli = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
cli.add_typer(config_cli, name="config")
cli.add_typer(apps_cli, name="apps")
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(backup_cli, name="backup")
cli.add_typer(audit_cli, name="audit")
cli.add_typer(roles_cli, name="roles")
cli.add_typer(ratelimit_cli, name="ratelimit")
register_key_commands(keys_cli)
cli.add_typer(clients_cli, name="clients")
cli.add_typer(logs_cli, name="logs")
console = Console(stderr=True)


def _migrate(settings: Settings) -> str | None:
    async def run() -> str | None:
        db = database(settings)
        try:
            await migrations.upgrade(db.engine)
            return await migrations.current_revision(db.engine)
        finally:
            await db.close()

    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True
    ) as progress:
        progress.add_task("Applying database migrations…", total=None)
        return asyncio.run(run())


@cli.command()
def migrate(data_dir: DataDir = None) -> None:
    """Bring the database schema up to date (also done by `serve` at start)."""
    settings = load_settings_or_exit(data_dir)
    revision = _migrate(settings)
    console.print(f"Database schema at revision [bold]{revision}[/bold].")


@cli.command()
def init(
    data_dir: DataDir = None,
    name: Annotated[str, typer.Option(help="A name for the app.")] = "My app",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the app and its credentials as one JSON object.")
    ] = False,
) -> None:
    """Create an app and print its backend client id and secret (shown only once)."""
    settings = load_settings_or_exit(data_dir)
    _migrate(settings)

    async def run() -> dict[str, str]:
        db = database(settings)
        try:
            created = await create_tenant(db, secret_hasher(settings), SystemClock(), name=name)
        finally:
            await db.close()
        return {
            "app_id": created.app.id,
            "app_name": created.app.name,
            "client_id": created.client.id,
            "client_secret": created.client_secret,
            "scope": " ".join(sorted(created.client.scopes)),
            "token_endpoint": f"{settings.issuer}/oauth/token",
        }

    result = asyncio.run(run())
    if as_json:
        typer.echo(json.dumps(result))
        return
    console.print(f"Created app [bold]{result['app_name']}[/bold] ({result['app_id']}).")
    console.print("Backend client credentials — the secret is shown only this once:")
    typer.echo(f"client_id={result['client_id']}\nclient_secret={result['client_secret']}")


@cli.command()
@operator_errors
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run the server: migrate, load or create keys, then serve HTTPS and WebSocket."""
    settings = load_settings_or_exit(data_dir, host=host, port=port)
    # The key source must answer before anything is served: a wrong Vault address or
    # token stops the start with one clear line.
    key_source(settings).status()
    _migrate(settings)
    signing_keys(settings)
    server = settings.server
    tls = serving.prepare_tls(settings, SystemClock().now())
    _report_tls(tls)
    scheme = "https" if tls else "http"
    console.print(
        f"Bastion listening on {scheme}://{server.host}:{server.port} "
        f"(data in {server.data_dir.resolve()})"
    )
    config = server_config(settings, tls)
    if tls is not None:
        tls.reloader.start()
    uvicorn.Server(config).run()


def server_config(settings: Settings, tls: serving.Tls | None) -> uvicorn.Config:
    """What ``serve`` runs: the app on uvloop and httptools, where the settings say."""
    return serving.uvicorn_config(
        create_app(settings), settings, tls, loop="uvloop", http="httptools"
    )


def _report_tls(tls: serving.Tls | None) -> None:
    if tls is None:
        console.print("[yellow]TLS is off (transport.tls): serving plain HTTP.[/yellow]")
        return
    cert = tls.certificate
    if cert.self_signed:
        made = "Created" if cert.created else "Using"
        console.print(
            f"{made} a self-signed certificate for localhost: {cert.cert_file} "
            "(trust it in your client, or configure transport.cert_file/key_file)."
        )
    else:
        console.print(f"Serving certificate {cert.cert_file} (reloaded when it changes).")
    # emoji=False: a fingerprint pair such as :CD: must not become an emoji code.
    console.print(
        f"Certificate SHA-256 fingerprint: {cert.fingerprint}", soft_wrap=True, emoji=False
    )


@config_cli.command("show")
def config_show(data_dir: DataDir = None) -> None:
    """Print the effective configuration as JSON, with secrets redacted."""
    settings = load_settings_or_exit(data_dir)
    typer.echo(json.dumps(settings.redacted(), indent=2))


def main() -> None:
    """Entry point of the ``bastion`` console script."""
    # Until a command loads its settings: logs go to stderr (stdout carries command
    # output such as exports), escaped like the server's.
    configure_logging("info", json_output=False)
    try:
        cli()
    except KeySourceDown as exc:
        # Any command that touched sealed data while Vault was unreachable or refused.
        report_key_failure(exc)
        raise SystemExit(1) from None
    except AuditUnavailable:
        # Fail closed: an operator action whose audit record cannot be written is
        # reported, not hidden behind a traceback (the log line above says why).
        console.print("[red]The audit log could not record this command; see the log.[/red]")
        raise SystemExit(1) from None
