"""The broker interface: domain code publishes events; connections subscribe.

An event goes to every subscriber of its channel, and to every subscriber of the
users it names directly. Membership changes travel with the event that announces
them (``joins``/``leaves``), so the broker moves subscriptions at the exact point
in the stream where the change happened: nothing is delivered to a user after the
event removing them, and nothing is missed after the event adding them.

Everything but ``publish`` may wait on the network in a broker shared between nodes
(subscribing, reading the history), so the whole interface is asynchronous; the
in-process broker never actually waits.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

EPHEMERAL_TYPES = frozenset({"typing"})
"""Events that only matter the moment they happen."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, to deliver to the connections that may see it.

    ``except_user`` names a user none of whose connections should get the event (the
    one who caused it, for echoes nobody needs, such as their own typing).
    """

    id: str
    app_id: str
    type: str
    data: dict[str, Any]
    channel_id: str | None = None
    user_ids: tuple[str, ...] = ()
    joins: tuple[tuple[str, str], ...] = ()
    leaves: tuple[tuple[str, str], ...] = ()
    frame: str = field(default="", compare=False)
    except_user: str | None = None

    @property
    def replayable(self) -> bool:
        """Whether a client resuming after a reconnect should get it: not a typing
        indicator, which is stale by then (it is kept only as a resume position)."""
        return self.type not in EPHEMERAL_TYPES

    @staticmethod
    def create(
        *,
        event_id: str,
        app_id: str,
        type: str,
        data: dict[str, Any],
        channel_id: str | None = None,
        user_ids: tuple[str, ...] = (),
        joins: tuple[tuple[str, str], ...] = (),
        leaves: tuple[tuple[str, str], ...] = (),
        except_user: str | None = None,
    ) -> Event:
        """Build an event with its wire frame serialised once, for every recipient."""
        frame = json.dumps(
            {"type": type, "id": event_id, "channel_id": channel_id, "data": data},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return Event(
            event_id, app_id, type, data, channel_id, user_ids, joins, leaves, frame, except_user
        )


class Subscriber(Protocol):
    """A live connection, as the broker sees it.

    The broker keeps ``channels`` up to date: the channels whose events the connection
    receives.
    """

    app_id: str
    user_id: str
    channels: set[str]

    def deliver(self, event: Event) -> None:
        """Queue an event for sending; must not block."""
        ...


ChannelLoader = Callable[[], Awaitable[Iterable[str]]]
"""Reads the channels a subscriber may see (from the database) when it attaches."""


class Broker(Protocol):
    """Fans events out to subscribers and remembers recent ones for resume."""

    async def publish(self, event: Event) -> None:
        """Deliver an event to every subscriber entitled to it."""
        ...

    async def attach(self, subscriber: Subscriber, load: ChannelLoader) -> str:
        """Start delivering to a subscriber, with the channels ``load`` returns.

        The subscriber is registered for its user *before* ``load`` runs, and the
        subscription changes and events published while it runs are applied on top of
        its result: a user added or removed while connecting is neither missed nor
        kept, and every event published from registration on is delivered or rightly
        withheld. Returns the resume mark: the newest event published before
        registration (an id that precedes every event, if there was none), the last
        one a ``resume`` on this connection may replay.
        """
        ...

    async def detach(self, subscriber: Subscriber) -> None:
        """Stop delivering to a subscriber."""
        ...

    async def recent(self, app_id: str, after: str, until: str | None = None) -> list[Event] | None:
        """Events of the app published after the event ``after`` and, if ``until`` is
        given, up to and including the event ``until``, in publish order; None if some
        of them are no longer kept."""
        ...

    async def close(self) -> None:
        """Release whatever the broker holds."""
        ...
