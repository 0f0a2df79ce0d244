"""What every domain service needs, built once by the composition root."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.chat.indexer import SearchIndexer
from bastion.core.clock import Clock
from bastion.core.errors import LimitExceeded, PreconditionFailed
from bastion.core.ids import Kind, new_id
from bastion.core.settings import LimitSettings
from bastion.observe.events import Detail, Origin, SecurityEvents
from bastion.realtime.broker import Broker, Event
from bastion.security.authz import Authorizer, actor_of
from bastion.security.principal import Principal
from bastion.security.tokens import Revocations
from bastion.store.db import Database


@dataclass(frozen=True, slots=True)
class ChatContext:
    """Database, broker, clock, limits, token revocations, the authorizer, the
    security events and the search indexer, shared by the services."""

    db: Database
    broker: Broker
    clock: Clock
    limits: LimitSettings
    revocations: Revocations
    authz: Authorizer
    events: SecurityEvents
    indexer: SearchIndexer


@dataclass(slots=True)
class Outbox:
    """Events a command produced, published only once its transaction has committed."""

    events: list[Event] = field(default_factory=list)

    def add(
        self,
        app_id: str,
        type_: str,
        data: dict[str, Any],
        *,
        channel_id: str | None = None,
        user_ids: tuple[str, ...] = (),
        joins: tuple[tuple[str, str], ...] = (),
        leaves: tuple[tuple[str, str], ...] = (),
        except_user: str | None = None,
    ) -> None:
        """Queue an event for the channel's members and/or the named users (but none of
        ``except_user``'s connections)."""
        event = Event.create(
            event_id=new_id(Kind.EVENT),
            app_id=app_id,
            type=type_,
            data=data,
            channel_id=channel_id,
            user_ids=user_ids,
            joins=joins,
            leaves=leaves,
            except_user=except_user,
        )
        self.events.append(event)

    async def publish(self, broker: Broker) -> None:
        """Send every queued event, in order."""
        for event in self.events:
            await broker.publish(event)


async def record_change(
    ctx: ChatContext,
    caller: Principal,
    origin: Origin,
    resource: str,
    details: Mapping[str, Detail],
) -> None:
    """Record an administrative or moderation change as an ``admin.change`` event.

    ``details`` names the change (``change``) and, where it has them, the values before
    and after. Emitted inside the change's transaction, it commits with it.
    """
    await ctx.events.emit(
        "admin.change",
        "success",
        actor=actor_of(caller),
        origin=origin,
        resource=resource,
        details=details,
    )


def check_name(ctx: ChatContext, field: str, name: str | None) -> None:
    """Names (display names, channel names) are capped by ``limits.name_max_chars``."""
    cap = ctx.limits.name_max_chars
    if name is not None and len(name) > cap:
        raise LimitExceeded(field, f"At most {cap} characters.")


def check_version(current: int, if_match: int | None) -> None:
    """Raise ``PreconditionFailed`` when an ``If-Match`` version is stale."""
    if if_match is not None and if_match != current:
        raise PreconditionFailed("The object has changed; fetch it again and retry.")
