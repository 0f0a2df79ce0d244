"""The broker interface: domain code publishes events; connections subscribe.

An event goes to every subscriber of its channel, and to every subscriber of the
users it names directly. Membership changes travel with the event that announces
them (``joins``/``leaves``), so the broker moves subscriptions at the exact point
in the stream where the change happened: nothing is delivered to a user after the
event removing them, and nothing is missed after the event adding them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, to deliver to the connections that may see it."""

    id: str
    app_id: str
    type: str
    data: dict[str, Any]
    channel_id: str | None = None
    user_ids: tuple[str, ...] = ()
    joins: tuple[tuple[str, str], ...] = ()
    leaves: tuple[tuple[str, str], ...] = ()
    frame: str = field(default="", compare=False)

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
    ) -> Event:
        """Build an event with its wire frame serialised once, for every recipient."""
        frame = json.dumps(
            {"type": type, "id": event_id, "channel_id": channel_id, "data": data},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return Event(event_id, app_id, type, data, channel_id, user_ids, joins, leaves, frame)


class Subscriber(Protocol):
    """A live connection, as the broker sees it."""

    app_id: str
    user_id: str
    channels: set[str]

    def deliver(self, event: Event) -> None:
        """Queue an event for sending; must not block."""
        ...


class Broker(Protocol):
    """Fans events out to subscribers and remembers recent ones for resume."""

    async def publish(self, event: Event) -> None:
        """Deliver an event to every subscriber entitled to it."""
        ...

    def attach(self, subscriber: Subscriber) -> None:
        """Start delivering to a subscriber (its user and its ``channels``)."""
        ...

    def detach(self, subscriber: Subscriber) -> None:
        """Stop delivering to a subscriber."""
        ...

    def recent(self, app_id: str, after: str) -> list[Event] | None:
        """Events of the app after the event id ``after``; None if they are no longer kept."""
        ...

    async def close(self) -> None:
        """Release whatever the broker holds."""
        ...
