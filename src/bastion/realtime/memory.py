"""The in-process broker: one node, no network, delivery in publish order."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from itertools import islice

from bastion.core.ids import Kind, new_id
from bastion.realtime.broker import ChannelLoader, Event, Subscriber


@dataclass(eq=False, slots=True)
class _Attaching:
    """A subscriber whose channels are being read: the app's events published meanwhile."""

    user_id: str
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class _History:
    """One app's most recent events, in publish order, with their publish positions."""

    events: deque[Event]
    positions: dict[str, int] = field(default_factory=dict)
    first: int = 0
    """The publish position of ``events[0]``."""

    def index_after(self, event_id: str) -> int:
        """The index just past ``event_id``; for an id not kept, past every older id."""
        position = self.positions.get(event_id)
        if position is not None:
            return position - self.first + 1
        return sum(1 for event in self.events if event.id <= event_id)


class MemoryBroker:
    """Routes events to subscribers of this process and keeps a bounded history."""

    def __init__(self, history: int) -> None:
        self._by_channel: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self._by_user: dict[tuple[str, str], set[Subscriber]] = defaultdict(set)
        self._history: dict[str, _History] = {}
        self._attaching: dict[str, list[_Attaching]] = {}
        # Per app, the newest event published, and the newest one dropped from the
        # history: a cursor older than that is lost.
        self._newest: dict[str, str] = {}
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
        for attaching in self._attaching.get(event.app_id, ()):
            attaching.events.append(event)

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
        self._newest[event.app_id] = event.id
        if self._history_size == 0:
            self._dropped[event.app_id] = event.id
            return
        history = self._history.get(event.app_id)
        if history is None:
            history = self._history[event.app_id] = _History(deque())
        if len(history.events) == self._history_size:
            dropped = history.events.popleft().id
            self._dropped[event.app_id] = dropped
            del history.positions[dropped]
            history.first += 1
        history.positions[event.id] = history.first + len(history.events)
        history.events.append(event)

    async def attach(self, subscriber: Subscriber, load: ChannelLoader) -> str:
        """Register the subscriber, read its channels, then catch up on what happened
        while they were read (see :meth:`bastion.realtime.broker.Broker.attach`)."""
        app_id = subscriber.app_id
        mark = self._newest.get(app_id, self._started)
        attaching = _Attaching(subscriber.user_id)
        self._attaching.setdefault(app_id, []).append(attaching)
        try:
            loaded = set(await load())
        finally:
            waiting = self._attaching[app_id]
            waiting.remove(attaching)
            if not waiting:
                del self._attaching[app_id]
        channels = _catch_up(subscriber, loaded, attaching.events)
        subscriber.channels.clear()
        subscriber.channels.update(channels)
        self._by_user[(app_id, subscriber.user_id)].add(subscriber)
        for channel_id in channels:
            self._by_channel[(app_id, channel_id)].add(subscriber)
        return mark

    async def detach(self, subscriber: Subscriber) -> None:
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

    async def recent(self, app_id: str, after: str, until: str | None = None) -> list[Event] | None:
        """Events after ``after`` (through ``until``), or None if some are no longer kept.

        Positions, not ids, order the answer: two commands may publish in the other
        order than the one they created their events in.
        """
        history = self._history.get(app_id)
        kept = history is not None and after in history.positions
        dropped = self._dropped.get(app_id)
        lost_before_start = after < self._started
        lost_by_eviction = dropped is not None and after < dropped
        if not kept and (lost_before_start or lost_by_eviction):
            return None
        if history is None:
            return []
        start = history.index_after(after)
        stop = len(history.events) if until is None else history.index_after(until)
        return list(islice(history.events, start, max(start, stop)))

    async def close(self) -> None:
        """Forget every subscriber and all history."""
        self._by_channel.clear()
        self._by_user.clear()
        self._history.clear()
        self._attaching.clear()


def _catch_up(subscriber: Subscriber, loaded: set[str], events: list[Event]) -> set[str]:
    """Apply what was published while the channels were read, delivering what the
    subscriber may see; return its channels afterwards.

    ``loaded`` may or may not include a change published meanwhile (the read may have
    come before or after its commit), so a channel changed meanwhile starts in the state
    its first change found it in: removed first means it was in; added first, out.
    """
    user_id = subscriber.user_id
    first: dict[str, bool] = {}
    for event in events:
        for uid, channel_id in event.joins:
            if uid == user_id:
                first.setdefault(channel_id, True)
        for uid, channel_id in event.leaves:
            if uid == user_id:
                first.setdefault(channel_id, False)
    channels = {c for c in loaded if c not in first} | {c for c, j in first.items() if not j}
    for event in events:
        channels.update(c for uid, c in event.joins if uid == user_id)
        if event.channel_id in channels or user_id in event.user_ids:
            subscriber.deliver(event)
        channels.difference_update(c for uid, c in event.leaves if uid == user_id)
    return channels
