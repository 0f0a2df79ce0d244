"""What every ``bastion`` command shares: the ``--data-dir`` option, loading the settings,
and reporting the two failures an operator meets first as one clear message.

An invalid or insecure configuration (production mode) is printed as a short list and
the command exits 2 before it touches anything; a database that cannot be reached is
one line naming its host and port (never its password) and exit 1, not a traceback.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, NoReturn

import asyncpg
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from typer.core import TyperGroup

from bastion.core.settings import ConfigFileError, InsecureProduction, Settings, load_settings
from bastion.observe.logging import configure as configure_logging

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder for the SQLite database and keys (default: server.data_dir, ./var).",
    ),
]
"""The ``--data-dir`` option every command takes."""

_console = Console(stderr=True)
# The settings the running command loaded: an unreachable database is named from them.
_loaded: ContextVar[Settings | None] = ContextVar("bastion_cli_settings", default=None)
_DRIVERS = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3")
# SQLSTATE classes of a database that cannot be used at all: connection exceptions (08),
# refused credentials (28), a database that does not exist (3D), one still starting (57P03).
_UNREACHABLE_STATES = ("08", "28", "3D", "57P03")


def load_settings_or_exit(
    data_dir: Path | None = None, *, logs: bool = False, **server: Any
) -> Settings:
    """The settings for one command, with ``--data-dir`` and other ``server`` options.

    An invalid configuration, a missing or malformed config file, or an insecure one in
    production is reported as a list and the command exits 2. With ``logs`` the log
    follows the settings (level, JSON) on stderr; stdout carries the command's output.
    """
    overrides = {name: value for name, value in server.items() if value is not None}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        settings = load_settings(server=overrides) if overrides else load_settings()
    except ValidationError as exc:
        _refuse(_problems(exc))
    except ConfigFileError as exc:
        _refuse([str(exc)])
    _loaded.set(settings)
    if logs:
        configure_logging(settings.log.level, json_output=settings.log.json_output)
    return settings


def _problems(exc: ValidationError) -> list[str]:
    """One line per problem: the production findings, or ``setting: what is wrong``."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InsecureProduction):
            problems.append("refusing to run in production with an insecure configuration:")
            problems += [f"  - {finding}" for finding in cause.findings]
            continue
        where = ".".join(str(part) for part in error["loc"])
        message = str(cause) if isinstance(cause, ValueError) else error["msg"]
        problems.append(f"- {where}: {message}" if where else f"- {message}")
    return problems


def _refuse(problems: list[str]) -> NoReturn:
    _console.print("[red]Invalid configuration:[/red]")
    for line in problems:
        _console.print(escape(line), soft_wrap=True, emoji=False)
    raise typer.Exit(2)


class CommandGroup(TyperGroup):
    """The ``bastion`` command group: a database that cannot be reached ends the command
    with one line instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:
        """Run the chosen command; report an unreachable database and exit 1."""
        started = _loaded.set(None)
        try:
            return super().invoke(ctx)
        except Exception as exc:
            cause = database_failure(exc)
            if cause is None:
                raise
            settings = _loaded.get()
            where = database_location(settings) if settings is not None else None
            message = (
                f"Cannot reach the database{f' at {where}' if where else ''} "
                f"({_reason(cause)}): check database.url and that the database is running."
            )
            _console.print(f"[red]{escape(message)}[/red]", soft_wrap=True, emoji=False)
            raise typer.Exit(1) from None
        finally:
            _loaded.reset(started)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        # As Python shows tracebacks: a context hidden by ``raise ... from None`` is not
        # what went wrong (a command that already reported the failure and exits).
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)


def database_failure(exc: BaseException) -> BaseException | None:
    """The driver error that says the database cannot be reached at all, if that is what
    ``exc`` (or an error it was raised from) is; None for any other failure."""
    return next((error for error in _chain(exc) if _unreachable(error)), None)


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, asyncpg.PostgresError):
        return str(error.sqlstate).startswith(_UNREACHABLE_STATES)
    if isinstance(error, sqlite3.OperationalError):
        return "unable to open database file" in str(error)
    return isinstance(error, OSError) and _raised_by_driver(error)


def _raised_by_driver(error: BaseException) -> bool:
    """Whether the database driver was connecting when ``error`` was raised."""
    frames = traceback.extract_tb(error.__traceback__)
    return any(f"/{driver}/" in frame.filename for frame in frames for driver in _DRIVERS)


def database_location(settings: Settings) -> str | None:
    """``host:port`` of the configured database, or its file for SQLite; never a secret."""
    try:
        url = make_url(settings.database_url)
    except ArgumentError:
        return None
    if url.get_backend_name() == "sqlite":
        return url.database
    port = url.port or (5432 if url.get_backend_name() == "postgresql" else None)
    return f"{url.host}:{port}" if port else url.host


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
