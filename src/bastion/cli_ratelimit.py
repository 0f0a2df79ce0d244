"""``bastion ratelimit``: the operator's overrides, for any app and any policy."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from bastion.app import database
from bastion.cli_support import DataDir, load_settings_or_exit
from bastion.core.clock import SystemClock
from bastion.core.errors import BastionError
from bastion.core.ids import Kind, is_id
from bastion.core.settings import Settings
from bastion.security.ratelimit.admin import OverrideAdmin
from bastion.security.ratelimit.overrides import Overrides
from bastion.security.ratelimit.policies import PolicySet

ratelimit_cli = typer.Typer(help="Rate-limit overrides (operator).", no_args_is_help=True)

AppOption = Annotated[str, typer.Option("--app", help="The app (tenant) id, app_…")]
UserOption = Annotated[str | None, typer.Option("--user", help="Only this user (usr_…).")]


def _ids(app_id: str, user_id: str | None) -> None:
    if not is_id(Kind.APP, app_id) or (user_id is not None and not is_id(Kind.USER, user_id)):
        raise typer.BadParameter("--app takes an app_… id and --user a usr_… id")


async def _run(
    settings: Settings,
    action: str,
    app_id: str,
    user_id: str | None,
    policy: str,
    quotas: tuple[str, ...],
) -> None:
    db = database(settings)
    rl = settings.ratelimit
    admin = OverrideAdmin(
        db, PolicySet.from_settings(rl), Overrides(), SystemClock(), rl.override_max_factor
    )
    try:
        if action == "set":
            await admin.put(app_id, user_id, policy, quotas, operator=True)
        else:
            await admin.delete(app_id, user_id, policy)
    except BastionError as exc:
        raise typer.BadParameter(exc.detail) from exc
    finally:
        await db.close()


@ratelimit_cli.command("set")
def set_override(
    policy: Annotated[str, typer.Argument(help="The policy name.")],
    quotas: Annotated[list[str], typer.Argument(help='Quotas such as "10/second" "600/minute".')],
    app_id: AppOption,
    user_id: UserOption = None,
    data_dir: DataDir = None,
) -> None:
    """Override a policy's quotas for an app or one of its users (any policy, no ceiling).

    Running servers apply it within ratelimit.override_refresh_seconds.
    """
    settings = load_settings_or_exit(data_dir)
    _ids(app_id, user_id)
    asyncio.run(_run(settings, "set", app_id, user_id, policy, tuple(quotas)))
    typer.echo(
        json.dumps({"app_id": app_id, "user_id": user_id, "policy": policy, "quotas": quotas})
    )


@ratelimit_cli.command("clear")
def clear_override(
    policy: Annotated[str, typer.Argument(help="The policy name.")],
    app_id: AppOption,
    user_id: UserOption = None,
    data_dir: DataDir = None,
) -> None:
    """Remove an override: the configured (or the app's) quotas apply again."""
    settings = load_settings_or_exit(data_dir)
    _ids(app_id, user_id)
    asyncio.run(_run(settings, "clear", app_id, user_id, policy, ()))
    typer.echo(
        json.dumps({"app_id": app_id, "user_id": user_id, "policy": policy, "cleared": True})
    )
