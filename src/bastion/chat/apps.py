"""Apps (tenants) and the OAuth clients of their backends."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.ids import Kind, new_id
from bastion.security import scopes
from bastion.security.passwords import SecretHasher
from bastion.store.db import Database
from bastion.store.records import AppRecord, ClientRecord
from bastion.store.repos import apps as repo


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
