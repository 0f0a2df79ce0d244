"""``bastion keys`` and ``bastion backup``: key rotation, crypto-shredding, encrypted backups."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bastion.app import audit_log, column_cipher, database, key_source
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.ids import Kind, is_id
from bastion.core.settings import Settings, redact_url
from bastion.observe.events import Actor, LogSink, SecurityEvents
from bastion.security.crypto import backups, rotation
from bastion.security.crypto.backup import BackupRefused
from bastion.security.crypto.errors import KeySourceDown, KeyUnavailable
from bastion.security.crypto.shredding import shred
from bastion.store.db import Database
from bastion.store.repos import data_keys
from bastion.store.sealing import Owner

keys_cli = typer.Typer(
    help="Rotate, rewrap, re-encrypt and shred encryption keys.", no_args_is_help=True
)
backup_cli = typer.Typer(help="Encrypted backups: create, verify, restore.", no_args_is_help=True)
_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def report_key_failure(exc: KeySourceDown | KeyUnavailable) -> None:
    """Print a key-source failure as one line for the operator (the reason holds no secret)."""
    if isinstance(exc, KeySourceDown):
        message = f"Key source unavailable: {exc.reason}"
    else:
        message = f"Key unavailable: {exc}"
    _console.print(f"[red]{escape(message)}[/red]", emoji=False, soft_wrap=True)


def operator_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report key-source failures (Vault down, token refused, key retired) as one clear
    line and exit 1, never as a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (KeySourceDown, KeyUnavailable) as exc:
            report_key_failure(exc)
            raise typer.Exit(1) from None

    return run


def _load(data_dir: Path | None) -> Settings:
    # Security events go to the log on stderr; stdout carries only the command's result.
    return load_settings_or_exit(data_dir, logs=True)


def _events(settings: Settings, db: Database) -> SecurityEvents:
    """The log on stderr and the audit log: an operator's key and backup work is audited."""
    return SecurityEvents(SystemClock(), [LogSink(), audit_log(settings, db)])


def _emit(settings: Settings, action: str, resource: str, **details: str | int) -> None:
    async def run() -> None:
        db = database(settings)
        try:
            await _events(settings, db).emit(
                action,
                "success",
                actor=Actor(subject="operator"),
                resource=resource,
                details=details,
            )
        finally:
            await db.close()

    asyncio.run(run())


@contextmanager
def _bar(description: str) -> Iterator[Progress]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=_console,
    ) as progress:
        yield progress


@keys_cli.command("status")
@operator_errors
def status(data_dir: DataDir = None) -> None:
    """Show KEK versions and ages (never key material)."""
    settings = _load(data_dir)
    source = key_source(settings)
    info = source.status()
    now = dt.datetime.now(dt.UTC)
    typer.echo(f"key source {source.name}")
    for version, created in info.versions:
        marks = []
        if version == info.primary:
            marks.append("primary")
        if version < info.min_decryption_version:
            marks.append("retired")
        age = (now - created).days
        typer.echo(f"kek v{version}  created {created.isoformat()}  age {age} d  {' '.join(marks)}")
    typer.echo(f"min_decryption_version {info.min_decryption_version}")
    typer.echo(f"backup key v{info.backup_primary}")


@keys_cli.command("check")
@operator_errors
def check(data_dir: DataDir = None) -> None:
    """Warn (exit 1) when the KEK in use is older than encryption.kek_max_age_days."""
    settings = _load(data_dir)
    info = key_source(settings).status()
    age = info.primary_age(dt.datetime.now(dt.UTC))
    limit = settings.encryption.kek_max_age_days
    if age > dt.timedelta(days=limit):
        _console.print(
            f"[yellow]crypto.W001: KEK v{info.primary} is {age.days} days old "
            f"(policy: {limit}); run `bastion keys rotate`, then `keys rewrap`.[/yellow]"
        )
        raise typer.Exit(1)
    typer.echo(f"KEK v{info.primary} is {age.days} days old (policy: {limit}): OK")


@keys_cli.command("rotate")
@operator_errors
def rotate(
    backup: Annotated[
        bool, typer.Option("--backup", help="Rotate the backup key instead of the KEK.")
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Add a KEK version (new data keys are wrapped under it), or with --backup a backup
    key version (new backups use it)."""
    settings = _load(data_dir)
    source = key_source(settings)
    now = dt.datetime.now(dt.UTC)
    if backup:
        version = source.rotate_backup(now)
        _emit(settings, "key.rotate", f"backup-key:v{version}", version=version)
        typer.echo(f"Backup key v{version} is now used for new backups.")
        return
    version = source.rotate(now)
    _emit(settings, "key.rotate", f"kek:v{version}", version=version)
    typer.echo(f"KEK v{version} is now primary. Run `bastion keys rewrap` to move data keys to it.")


@keys_cli.command("rewrap")
@operator_errors
def rewrap(
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500, data_dir: DataDir = None
) -> None:
    """Re-wrap every data key under the newest KEK (data is not touched)."""
    settings = _load(data_dir)
    ring = key_source(settings)

    async def run() -> rotation.RewrapResult:
        db = database(settings)
        try:
            with _bar("Rewrapping data keys") as progress:
                task = progress.add_task("Rewrapping data keys", total=None)

                def advance(_phase: str, n: int, total: int | None) -> None:
                    progress.update(task, advance=n, total=total)

                return await rotation.rewrap(db, ring, batch=batch, progress=advance)
        finally:
            await db.close()

    result = asyncio.run(run())
    _emit(settings, "key.rewrap", f"kek:v{result.version}", rewrapped=result.rewrapped)
    typer.echo(f"{result.rewrapped} data keys now wrapped under KEK v{result.version}.")


@keys_cli.command("reencrypt")
@operator_errors
def reencrypt(
    batch: Annotated[int, typer.Option(min=1, max=10_000)] = 500,
    throttle: Annotated[
        float, typer.Option(min=0, help="Seconds to pause between batches (eases a busy server).")
    ] = 0.0,
    data_dir: DataDir = None,
) -> None:
    """Re-encrypt all sealed data under fresh data keys, online; resumes after a crash."""
    settings = _load(data_dir)
    clock = SystemClock()

    async def run() -> int:
        db = database(settings)
        try:
            with _bar("Re-encrypting") as progress:
                tasks: dict[str, object] = {}

                def advance(phase: str, n: int, total: int | None) -> None:
                    if phase not in tasks:
                        tasks[phase] = progress.add_task(f"reencrypt: {phase}", total=total)
                    progress.update(tasks[phase], advance=n, total=total)  # type: ignore[arg-type]

                job = await rotation.Reencryption(
                    db,
                    column_cipher(settings, clock),
                    clock,
                    batch=batch,
                    throttle=throttle,
                    progress=advance,
                ).run()
                return job.done
        finally:
            await db.close()

    done = asyncio.run(run())
    _emit(settings, "key.reencrypt", "data", rows=done)
    typer.echo(f"Re-encryption complete: {done} values checked.")


@keys_cli.command("retire")
@operator_errors
def retire(
    min_version: Annotated[
        int, typer.Option("--min-version", min=1, help="Oldest KEK version still usable.")
    ],
    destroy: Annotated[
        bool,
        typer.Option(
            "--destroy", help="Also erase the older versions' key material (cannot be undone)."
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Set min_decryption_version: older KEK versions stop decrypting (after a rewrap)."""
    settings = _load(data_dir)
    ring = key_source(settings)

    async def remaining() -> int:
        db = database(settings)
        try:
            async with db.read() as conn:
                return await data_keys.count_below_version(conn, min_version)
        finally:
            await db.close()

    left = asyncio.run(remaining())
    if left:
        _console.print(
            f"[red]{left} data keys are still wrapped under older versions: "
            "run `keys rewrap` first.[/red]"
        )
        raise typer.Exit(1)
    ring.set_min_decryption_version(min_version)
    _emit(settings, "key.retire", f"kek:v{min_version}", min_decryption_version=min_version)
    typer.echo(f"KEK versions below {min_version} are retired.")
    if destroy:
        removed = ring.destroy_versions_below(min_version)
        _emit(settings, "key.destroy", f"kek:below-v{min_version}", destroyed=len(removed))
        typer.echo(f"Destroyed KEK versions {removed}: data keys wrapped only under them are gone.")


@keys_cli.command("shred")
@operator_errors
def shred_command(
    app_id: Annotated[str, typer.Option("--app", help="The app (tenant) id.")],
    user: Annotated[str | None, typer.Option(help="Destroy this user's data key.")] = None,
    channel: Annotated[str | None, typer.Option(help="Destroy this channel's keys.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Crypto-shredding: destroy a user's or channel's keys; what they sealed is unreadable."""
    settings = _load(data_dir)
    if (user is None) == (channel is None):
        raise typer.BadParameter("name exactly one of --user or --channel")
    owner = Owner("user", user) if user else Owner("channel", channel or "")
    if not is_id(Kind.USER if user else Kind.CHANNEL, owner.id) or not is_id(Kind.APP, app_id):
        raise typer.BadParameter("not a valid id")
    if not yes:
        raise typer.BadParameter("shredding cannot be undone: add --yes")

    async def run() -> int:
        db = database(settings)
        try:
            cipher = column_cipher(settings, SystemClock())
            events = _events(settings, db)
            return await shred(db, cipher, events, app_id, owner, SystemClock().now())
        finally:
            await db.close()

    destroyed = asyncio.run(run())
    typer.echo(f"Destroyed {destroyed} keys of {owner.kind} {owner.id}.")


@backup_cli.command("create")
@operator_errors
def backup_create(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Default: encryption.backup_dir.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Snapshot the database, compress, encrypt in authenticated chunks, keep the newest N."""
    settings = _load(data_dir)
    target = directory or settings.encryption.backup_dir or settings.server.data_dir / "backups"
    with _bar("Backing up") as progress:
        task = progress.add_task("Encrypting snapshot", total=None)
        info = backups.create(
            settings.database_url,
            key_source(settings),
            target,
            now=dt.datetime.now(dt.UTC),
            chunk_bytes=settings.encryption.backup_chunk_bytes,
            keep=settings.encryption.backup_keep,
            advance=lambda n, total: progress.update(task, advance=n, total=total),
        )
    _emit(settings, "backup.create", f"backup:{info.header.backup_id}", bytes=info.size)
    typer.echo(str(info.path))


@backup_cli.command("verify")
@operator_errors
def backup_verify(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)], data_dir: DataDir = None
) -> None:
    """Check every chunk of a backup (key, header, order, truncation, integrity)."""
    settings = _load(data_dir)
    try:
        info = backups.verify(path, key_source(settings))
    except BackupRefused as exc:
        _console.print(f"[red]Backup refused: {exc}[/red]")
        raise typer.Exit(1) from exc
    typer.echo(
        f"OK: backup {info.header.backup_id} of {info.header.created_at} "
        f"({info.header.source}) verifies."
    )


@backup_cli.command("restore")
@operator_errors
def backup_restore(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    to: Annotated[str, typer.Option("--to", help="Database URL of a fresh, empty location.")],
    data_dir: DataDir = None,
) -> None:
    """Restore into a fresh location; a bad backup is refused and nothing is written."""
    settings = _load(data_dir)
    try:
        info = backups.restore(path, key_source(settings), to)
    except BackupRefused as exc:
        _console.print(f"[red]Backup refused, nothing restored: {exc}[/red]")
        raise typer.Exit(1) from exc
    except FileExistsError as exc:
        _console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    _emit(settings, "backup.restore", f"backup:{info.header.backup_id}")
    typer.echo(f"Restored backup {info.header.backup_id} into {redact_url(to)}.")
