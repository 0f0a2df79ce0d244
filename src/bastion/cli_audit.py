"""``bastion audit``: verify the chain, write a checkpoint, export, hash, create an auditor."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from joserfc.jwk import KeySet
from rich.console import Console
from rich.table import Table

from bastion.app import audit_log, checkpoints, database, secret_hasher
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.settings import Settings
from bastion.observe.events import Actor, SecurityEvents
from bastion.security import scopes
from bastion.security.audit import keys as audit_keys
from bastion.security.audit.operators import create_operator_client
from bastion.security.audit.reader import AuditReader, stored_time
from bastion.security.audit.records import Redactor
from bastion.security.audit.verify import Report, verify
from bastion.store.db import Database
from bastion.store.repos.audit import AuditFilter

audit_cli = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
_err = Console(stderr=True)
T = TypeVar("T")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings(data_dir: Path | None) -> Settings:
    # Logs go to stderr: stdout carries exports and reports.
    return load_settings_or_exit(data_dir, logs=True)


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = database(settings)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _print_report(report: Report) -> None:
    if report.intact:
        _err.print(
            f"[green]Intact:[/green] {report.records} records, {report.checkpoints} signed "
            f"checkpoints, {report.unsigned_tail} records after the last checkpoint."
        )
        return
    table = Table(title=f"Audit log: {len(report.findings)} problem(s)")
    for column in ("kind", "seq", "what"):
        table.add_column(column)
    for finding in report.findings:
        table.add_row(finding.kind, str(finding.seq or "-"), finding.message)
    _err.print(table)


@audit_cli.command("verify")
def verify_command(
    data_dir: DataDir = None,
    as_json: AsJson = False,
    public_keys: Annotated[
        Path | None,
        typer.Option(help="JWK Set of checkpoint keys, kept off the server (default: local)."),
    ] = None,
) -> None:
    """Check every record and checkpoint; exit 1 and say where if anything was tampered with."""
    settings = _settings(data_dir)
    if public_keys is not None:
        keyset = KeySet.import_key_set(json.loads(public_keys.read_text(encoding="utf-8")))
    else:
        passphrase = settings.auth.keys_passphrase
        ring = audit_keys.checkpoint_keys(
            settings.server.data_dir, passphrase.get_secret_value() if passphrase else None
        )
        keyset = ring.verification
    report = _with_db(settings, lambda db: verify(db, keyset, audit_keys.CHECKPOINT_ALG))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if report.intact else 1)


@audit_cli.command("checkpoint")
def checkpoint_command(data_dir: DataDir = None) -> None:
    """Sign the records written since the last checkpoint, now."""
    settings = _settings(data_dir)
    row = _with_db(settings, lambda db: checkpoints(settings, db, SystemClock()).create())
    if row is None:
        _err.print("Nothing new to sign.")
        return
    _err.print(f"Checkpoint {row['number']} signs records {row['first_seq']}..{row['last_seq']}.")


@audit_cli.command("rotate-key")
def rotate_key_command(data_dir: DataDir = None) -> None:
    """Start signing checkpoints with a new key (after a suspected key compromise)."""
    settings = _settings(data_dir)
    passphrase = settings.auth.keys_passphrase
    kid = audit_keys.rotate_checkpoint_key(
        settings.server.data_dir, passphrase.get_secret_value() if passphrase else None
    )

    async def record(db: Database) -> None:
        events = SecurityEvents(SystemClock(), [audit_log(settings, db)])
        await events.emit("key.rotate", "success", resource=f"audit-key:{kid}")

    _with_db(settings, record)
    _err.print(f"Checkpoints are now signed with key {kid}; export the public keys again.")


@audit_cli.command("public-keys")
def public_keys_command(data_dir: DataDir = None) -> None:
    """Print the checkpoint verification keys (a JWK Set) to keep off the server."""
    settings = _settings(data_dir)
    passphrase = settings.auth.keys_passphrase
    ring = audit_keys.checkpoint_keys(
        settings.server.data_dir, passphrase.get_secret_value() if passphrase else None
    )
    typer.echo(json.dumps(ring.jwks(), indent=2))


@audit_cli.command("export")
def export_command(
    data_dir: DataDir = None,
    app: Annotated[str | None, typer.Option("--app", help="Only this app id.")] = None,
    since: Annotated[datetime | None, typer.Option(help="RFC 3339 start (inclusive).")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action.")] = None,
) -> None:
    """Write the audit log as JSON lines to standard output."""
    settings = _settings(data_dir)
    where = AuditFilter(app_id=app, action=action, since=stored_time(since) if since else None)

    async def run(db: Database) -> None:
        # Recorded first, as the auditor API does: an export the log cannot record is refused.
        events = SecurityEvents(SystemClock(), [audit_log(settings, db)])
        await events.emit(
            "audit.export",
            "success",
            actor=Actor(app_id=app, subject="operator"),
            details={
                "via": "cli",
                "app": app,
                "action": action,
                "since": since.isoformat() if since else None,
            },
        )
        async for line in AuditReader(db).export(where):
            sys.stdout.write(line)

    _with_db(settings, run)


@audit_cli.command("hash")
def hash_command(value: str, data_dir: DataDir = None) -> None:
    """Print the HMAC the audit log stores for ``value`` (to search for it)."""
    settings = _settings(data_dir)
    configured = settings.audit.hmac_key
    key = audit_keys.load_hmac_key(
        settings.server.data_dir, configured.get_secret_value() if configured else None
    )
    typer.echo(Redactor(key, (), "full").hash(value))


@audit_cli.command("client")
def client_command(
    app: Annotated[str, typer.Option("--app", help="The app id the client belongs to.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="audit:read and/or metrics:read.")
    ] = None,
    name: Annotated[str, typer.Option(help="A name for the client.")] = "auditor",
    data_dir: DataDir = None,
) -> None:
    """Create an OAuth client for an auditor or a Prometheus scraper (secret shown once)."""
    settings = _settings(data_dir)
    granted = frozenset(scope or [scopes.AUDIT_READ])
    try:
        created = _with_db(
            settings,
            lambda db: create_operator_client(
                db,
                secret_hasher(settings),
                SystemClock(),
                app_id=app,
                granted=granted,
                name=name,
            ),
        )
    except ValueError as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    typer.echo(f"client_id={created.client_id}\nclient_secret={created.secret}")
