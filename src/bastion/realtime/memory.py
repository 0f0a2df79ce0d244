"""The in-process broker: one node, no network, delivery in publish order."""

from __future__ import annotations

from collections import defaultdict, deque

from bastion.core.ids import Kind, new_id
from bastion.realtime.broker import Event, Subscriber


class MemoryBroker:
    """Routes events to subscribers of this process and keeps a bounded history."""

    def __init__(self, history: int) -> None:
        self._by_channel: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self._by_user: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self._history: dict[str, deque[Event]] = defaultdict(lambda: deque(maxlen=history))
        # Per app, the newest event dropped from the history: a cursor older is lost.
        self._dropped: dict[str, str] = {}
        self._history_size = history
        # Events from before this id happened before the process started: never kept.
        self._started = new_id(Kind.EVENT)

    async def publish(self, event: Event) -> None:
        """Deliver an event, applying its subscription changes around the delivery."""
        self._move(event.app_id, event.joins, join=True)
        for subscriber in self._recipients(event):
            subscriber.deliver(event)
        self._move(event.app_id, event.leaves, join=False)
        self._remember(event)

    def _recipients(self, event: Event) -> set[Subscriber]:
        found: set[Subscriber] = set()
        if event.channel_id is not None:
            found.update(self._by_channel.get((event.app_id, event.channel_id), ()))
        for user_id in event.user_ids:
            found.update(self._by_user.get((event.app_id, user_id), ()))
        return found

    def _move(self, app_id: str, changes: tuple[tuple[str, str], ...], *, join: bool) -> None:
        for user_id, channel_id in changes:
            for subscriber in tuple(self._by_user.get((app_id, user_id), ())):
                key = (app_id, channel_id)
                if join:
                    subscriber.channels.add(channel_id)
                    self._by_channel[key].add(subscriber)
                else:
                    subscriber.channels.discard(channel_id)
                    self._discard(self._by_channel, key, subscriber)

    def _remember(self, event: Event) -> None:
        if self._history_size == 0:
            self._dropped[event.app_id] = event.id
            return
        history = self._history[event.app_id]
        if len(history) == history.maxlen:
            self._dropped[event.app_id] = history[0].id
        history.append(event)

    def attach(self, subscriber: Subscriber) -> None:
        """Start delivering to a subscriber."""
        self._by_user[(subscriber.app_id, subscriber.user_id)].add(subscriber)
        for channel_id in subscriber.channels:
            self._by_channel[(subscriber.app_id, channel_id)].add(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        """Stop delivering to a subscriber."""
        self._discard(self._by_user, (subscriber.app_id, subscriber.user_id), subscriber)
        for channel_id in subscriber.channels:
            self._discard(self._by_channel, (subscriber.app_id, channel_id), subscriber)

    @staticmethod
    def _discard(
        index: dict[tuple[str, str], set[Subscriber]], key: tuple[str, str], sub: Subscriber
    ) -> None:
        members = index.get(key)
        if members is not None:
            members.discard(sub)
            if not members:
                del index[key]

    def recent(self, app_id: str, after: str) -> list[Event] | None:
        """Events after ``after``, or None if some of them are no longer kept."""
        history = self._history.get(app_id, deque())
        dropped = self._dropped.get(app_id)
        lost_before_start = after < self._started
        lost_by_eviction = dropped is not None and after < dropped
        if lost_before_start or lost_by_eviction:
            return None
        return [event for event in history if event.id > after]

    async def close(self) -> None:
        """Forget every subscriber and all history."""
        self._by_channel.clear()
        self._by_user.clear()
        self._history.clear()
