"""Apps (tenants) and the OAuth clients of their backends.

An app is one customer application: it owns its OAuth clients, users, channels, roles
and rate-limit overrides, and no query ever crosses from one app to another. The
operator creates apps (``bastion init``) and lists, renames, disables and enables them
(``bastion apps``); an app's backend reads its own app (``GET /v1/app``).

Disabling an app stops it at once: its clients can no longer get tokens, every token
it holds is refused (the app is on the revocation list every node re-reads), and its
open sockets close. Enabling it again lets its clients get new tokens; tokens issued
before it was disabled stay refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.core.clock import Clock, rfc3339
from bastion.core.errors import FieldError, NotFound, ValidationFailed
from bastion.core.ids import Kind, is_id, new_id
from bastion.observe.events import Actor, SecurityEvents
from bastion.security import scopes
from bastion.security.passwords import SecretHasher
from bastion.security.principal import Principal
from bastion.store.db import Connection, Database
from bastion.store.records import AppRecord, ClientRecord
from bastion.store.repos import apps as repo
from bastion.store.repos import cutoffs as cutoffs_repo

NAME_MAX_CHARS = 200
"""Longest app name (the column's size)."""


@dataclass(frozen=True, slots=True)
class NewApp:
    """A created app with its first client; ``client_secret`` is shown this once only."""

    app: AppRecord
    client: ClientRecord
    client_secret: str


async def create_app(db: Database, hasher: SecretHasher, clock: Clock, *, name: str) -> NewApp:
    """Create an app and a backend client holding every backend scope."""
    secret = hasher.new_secret()
    secret_hash = hasher.hash(secret)
    now = clock.now()
    async with db.write() as conn:
        app = await repo.insert_app(conn, app_id=new_id(Kind.APP), name=name, now=now)
        client = await repo.insert_client(
            conn,
            app_id=app.id,
            client_id=new_id(Kind.CLIENT),
            name=f"{name} backend",
            secret_hash=secret_hash,
            scopes=scopes.BACKEND_SCOPES,
            now=now,
        )
    return NewApp(app=app, client=client, client_secret=secret)


class ClientDirectory:
    """The ``ClientStore`` the token endpoint uses, over the database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_client(self, client_id: str) -> ClientRecord | None:
        """Return the client with this id, or None."""
        async with self._db.read() as conn:
            return await repo.get_client(conn, client_id)


@dataclass(frozen=True, slots=True)
class AppDetails:
    """An app with how many users and OAuth clients it has."""

    app: AppRecord
    users: int
    clients: int


def app_view(app: AppRecord) -> dict[str, Any]:
    """An app as the API and the command line show it."""
    view: dict[str, Any] = {
        "id": app.id,
        "name": app.name,
        "status": "active" if app.active else "disabled",
        "created_at": rfc3339(app.created_at),
    }
    if app.disabled_at is not None:
        view["disabled_at"] = rfc3339(app.disabled_at)
    return view


async def own_app(db: Database, caller: Principal) -> AppRecord:
    """The app the caller's token belongs to."""
    async with db.read() as conn:
        app = await repo.get_app(conn, caller.app_id)
    if app is None:
        raise NotFound("No such app.")
    return app


class AppAdmin:
    """The operator's work on apps: list, show, rename, disable, enable.

    Each change is recorded as an ``admin.change`` event by the operator, in the same
    transaction as the change: a change the audit log cannot record is not made.
    """

    def __init__(self, db: Database, clock: Clock, events: SecurityEvents) -> None:
        self._db = db
        self._clock = clock
        self._events = events

    async def list(self) -> list[AppRecord]:
        """Every app, oldest first."""
        async with self._db.read() as conn:
            return await repo.list_apps(conn)

    async def show(self, app_id: str) -> AppDetails:
        """One app with its user and client counts."""
        async with self._db.read() as conn:
            app = await _load(conn, app_id)
            users, clients = await repo.count_of_app(conn, app_id)
        return AppDetails(app, users, clients)

    async def rename(self, app_id: str, name: str) -> AppRecord:
        """Give the app a new name (1 to 200 characters, trimmed)."""
        name = name.strip()
        if not 0 < len(name) <= NAME_MAX_CHARS:
            message = f"An app name has 1 to {NAME_MAX_CHARS} characters."
            raise ValidationFailed([FieldError("name", message)])
        async with self._db.write() as conn:
            app = await _load(conn, app_id)
            if app.name == name:
                return app
            await repo.update_app(conn, app_id, name=name)
            return await self._recorded(conn, app, "app.rename")

    async def disable(self, app_id: str) -> AppRecord:
        """Disable the app: no new tokens for its clients, every token of it refused."""
        now = self._clock.now()
        async with self._db.write() as conn:
            app = await _load(conn, app_id)
            if not app.active:
                return app
            await repo.update_app(conn, app_id, disabled_at=now)
            # Tokens issued until now stay refused even once the app is enabled again.
            await cutoffs_repo.raise_cutoff(conn, app_id, cutoffs_repo.WHOLE_APP, now, now)
            return await self._recorded(conn, app, "app.disable")

    async def enable(self, app_id: str) -> AppRecord:
        """Enable a disabled app again: its clients may get new tokens."""
        async with self._db.write() as conn:
            app = await _load(conn, app_id)
            if app.active:
                return app
            await repo.update_app(conn, app_id, disabled_at=None)
            return await self._recorded(conn, app, "app.enable")

    async def _recorded(self, conn: Connection, before: AppRecord, change: str) -> AppRecord:
        """The app as changed, after recording the change as the operator's."""
        after = await _load(conn, before.id)
        await self._events.emit(
            "admin.change",
            "success",
            actor=Actor(app_id=before.id, subject="operator"),
            resource=f"app:{before.id}",
            details={"change": change, "before": _state(before), "after": _state(after)},
        )
        return after


def _state(app: AppRecord) -> str:
    return f"{app.name} ({'active' if app.active else 'disabled'})"


async def _load(conn: Connection, app_id: str) -> AppRecord:
    app = await repo.get_app(conn, app_id) if is_id(Kind.APP, app_id) else None
    if app is None:
        raise NotFound(f"No app {app_id}.")
    return app
