"""``bastion logs analyze``: a report over the audit log (or an export) with rich tables."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bastion.app import database
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.settings import Settings
from bastion.observe.analyze import Report, analyze
from bastion.security.audit.reader import AuditReader
from bastion.store.repos.audit import AuditFilter

logs_cli = typer.Typer(help="Analyse the audit log.", no_args_is_help=True)
_out = Console()
_DURATION = re.compile(r"^(\d+)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

SECTIONS = {
    "top_failure_sources": ("Top sources of failures", ["ip", "failures", "accounts"]),
    "accounts_under_attack": ("Accounts under attack", ["account", "failures", "sources"]),
    "denied_by_principal": ("Denied actions by principal", ["principal", "denied", "actions"]),
    "new_ips_per_account": ("New IP addresses per account", ["account", "new_ips"]),
    "unusual_hours": ("Activity at unusual hours (UTC)", ["account", "hour_utc", "events"]),
    "tokens_revoked_for_reuse": ("Tokens revoked for reuse", ["at", "subject", "client_id", "ip"]),
}


def parse_since(value: str | None, now: datetime) -> datetime | None:
    """``24h``, ``30m``, ``7d`` (before now) or an RFC 3339 time."""
    if value is None:
        return None
    match = _DURATION.match(value)
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter("use 24h, 30m, 7d or an RFC 3339 time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_file(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _from_database(settings: Settings, app: str | None) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        db = database(settings)
        try:
            return [
                json.loads(line) async for line in AuditReader(db).export(AuditFilter(app_id=app))
            ]
        finally:
            await db.close()

    return asyncio.run(run())


def _render(report: Report) -> None:
    data = report.as_dict()
    start = report.window_start or "the beginning"
    _out.print(f"[bold]Audit log analysis[/bold]: {report.records} records since {start}")
    for key, (title, columns) in SECTIONS.items():
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in data[key]:
            table.add_row(*(_cell(row[column]) for column in columns))
        if not data[key]:
            table.add_row(*(["-"] * len(columns)))
        _out.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@logs_cli.command("analyze")
def analyze_command(
    since: Annotated[
        str | None, typer.Option(help="Window start: 24h, 30m, 7d or an RFC 3339 time.")
    ] = None,
    app: Annotated[str | None, typer.Option("--app", help="Only this app id.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="A JSON-lines export instead of the database.")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Top failure sources, accounts under attack, denials, new IPs, unusual hours, token reuse."""
    start = parse_since(since, datetime.now(UTC))
    if input_file is not None:
        records: Any = _from_file(input_file)
    else:
        settings = load_settings_or_exit(data_dir)
        records = _from_database(settings, app)
    report = analyze(records, start, app)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        _render(report)
