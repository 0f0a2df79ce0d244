"""OAuth clients for auditors and monitoring (``audit:read``, ``metrics:read``)."""

from __future__ import annotations

from dataclasses import dataclass

from bastion.core.clock import Clock
from bastion.core.ids import Kind, new_id
from bastion.security import scopes
from bastion.security.passwords import SecretHasher
from bastion.store.db import Database
from bastion.store.repos import apps as repo


@dataclass(frozen=True, slots=True)
class OperatorClient:
    """A created client; ``secret`` is shown this once only."""

    client_id: str
    secret: str
    scopes: frozenset[str]


async def create_operator_client(
    db: Database,
    hasher: SecretHasher,
    clock: Clock,
    *,
    app_id: str,
    granted: frozenset[str],
    name: str = "auditor",
) -> OperatorClient:
    """Register a client of ``app_id`` holding only monitoring scopes."""
    if not granted or not granted <= scopes.OPERATOR_SCOPES:
        raise ValueError(f"scopes must be among {sorted(scopes.OPERATOR_SCOPES)}")
    secret = hasher.new_secret()
    client_id = new_id(Kind.CLIENT)
    async with db.write() as conn:
        await repo.insert_client(
            conn,
            app_id=app_id,
            client_id=client_id,
            name=name,
            secret_hash=hasher.hash(secret),
            scopes=granted,
            now=clock.now(),
        )
    return OperatorClient(client_id, secret, granted)
