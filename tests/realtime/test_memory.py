"""MemoryBroker on its own: routing, subscription moves, attaching while changes happen,
detach, and the resume history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest

from bastion.core.ids import Kind, new_id
from bastion.realtime.broker import Event
from bastion.realtime.memory import MemoryBroker

APP = "app_A"
OTHER_APP = "app_B"


@dataclass(eq=False)
class FakeSubscriber:
    """A connection as the broker sees it, recording what it was handed."""

    app_id: str
    user_id: str
    channels: set[str] = field(default_factory=set)
    received: list[Event] = field(default_factory=list)

    def deliver(self, event: Event) -> None:
        """Record the event."""
        self.received.append(event)

    @property
    def types(self) -> list[str]:
        """The types of the events received, in order."""
        return [event.type for event in self.received]


async def attach(broker: MemoryBroker, *subscribers: FakeSubscriber) -> None:
    """Attach each subscriber with the channels it was made with (as read at once)."""
    for subscriber in subscribers:
        wanted = set(subscriber.channels)

        async def load(channels: set[str] = wanted) -> Iterable[str]:
            return channels

        await broker.attach(subscriber, load)


def event(
    type_: str = "message.new",
    *,
    app_id: str = APP,
    channel_id: str | None = None,
    user_ids: tuple[str, ...] = (),
    joins: tuple[tuple[str, str], ...] = (),
    leaves: tuple[tuple[str, str], ...] = (),
) -> Event:
    """A fresh event (ids increase in creation order)."""
    return Event.create(
        event_id=new_id(Kind.EVENT),
        app_id=app_id,
        type=type_,
        data={"n": 1},
        channel_id=channel_id,
        user_ids=user_ids,
        joins=joins,
        leaves=leaves,
    )


async def test_channel_events_reach_only_that_channels_subscribers_of_that_app() -> None:
    """A channel event goes to subscribers of that channel in that app, nobody else."""
    broker = MemoryBroker(history=100)
    in_room = FakeSubscriber(APP, "usr_1", {"ch_room"})
    elsewhere = FakeSubscriber(APP, "usr_2", {"ch_other"})
    same_ids_other_app = FakeSubscriber(OTHER_APP, "usr_1", {"ch_room"})
    await attach(broker, in_room, elsewhere, same_ids_other_app)

    sent = event(channel_id="ch_room")
    await broker.publish(sent)

    assert in_room.received == [sent]
    assert elsewhere.received == []
    assert same_ids_other_app.received == []


async def test_user_events_reach_every_socket_of_the_named_users_only() -> None:
    """An event naming users goes to all their subscribers, once each, and to no one else."""
    broker = MemoryBroker(history=100)
    phone = FakeSubscriber(APP, "usr_1", {"ch_room"})
    laptop = FakeSubscriber(APP, "usr_1")
    someone_else = FakeSubscriber(APP, "usr_2", {"ch_room"})
    same_id_other_app = FakeSubscriber(OTHER_APP, "usr_1")
    await attach(broker, phone, laptop, someone_else, same_id_other_app)

    personal = event("user.updated", user_ids=("usr_1",))
    await broker.publish(personal)
    both = event(channel_id="ch_room", user_ids=("usr_1",))
    await broker.publish(both)

    assert phone.received == [personal, both]  # in the channel and named: delivered once
    assert laptop.received == [personal, both]
    assert someone_else.received == [both]
    assert same_id_other_app.received == []


async def test_joins_are_applied_before_delivery() -> None:
    """A user joining with an event receives that event and the channel's later ones."""
    broker = MemoryBroker(history=100)
    joiner = FakeSubscriber(APP, "usr_new")
    other_app_namesake = FakeSubscriber(OTHER_APP, "usr_new")
    await attach(broker, joiner, other_app_namesake)

    await broker.publish(event("message.new", channel_id="ch_room"))
    added = event("member.added", channel_id="ch_room", joins=(("usr_new", "ch_room"),))
    await broker.publish(added)
    later = event("message.new", channel_id="ch_room")
    await broker.publish(later)

    assert joiner.received == [added, later]
    assert joiner.channels == {"ch_room"}
    assert other_app_namesake.received == []
    assert other_app_namesake.channels == set()


async def test_leaves_are_applied_after_delivery() -> None:
    """A user leaving with an event receives that event and nothing later from the channel."""
    broker = MemoryBroker(history=100)
    leaver = FakeSubscriber(APP, "usr_old", {"ch_room", "ch_stay"})
    stayer = FakeSubscriber(APP, "usr_stay", {"ch_room"})
    await attach(broker, leaver, stayer)

    removed = event("member.removed", channel_id="ch_room", leaves=(("usr_old", "ch_room"),))
    await broker.publish(removed)
    later = event("message.new", channel_id="ch_room")
    await broker.publish(later)
    kept = event("message.new", channel_id="ch_stay")
    await broker.publish(kept)

    assert leaver.received == [removed, kept]
    assert leaver.channels == {"ch_stay"}
    assert stayer.received == [removed, later]


async def test_moves_for_users_without_a_live_connection_are_harmless() -> None:
    """Joins and leaves of users with no subscriber change nothing for anyone else."""
    broker = MemoryBroker(history=100)
    watcher = FakeSubscriber(APP, "usr_watch", {"ch_room"})
    await attach(broker, watcher)

    joined = event("member.added", channel_id="ch_room", joins=(("usr_offline", "ch_room"),))
    left = event("member.removed", channel_id="ch_room", leaves=(("usr_offline", "ch_room"),))
    await broker.publish(joined)
    await broker.publish(left)

    assert watcher.received == [joined, left]
    assert watcher.channels == {"ch_room"}


async def test_detached_subscribers_receive_nothing() -> None:
    """After detach, neither channel nor user events reach the subscriber."""
    broker = MemoryBroker(history=100)
    gone = FakeSubscriber(APP, "usr_1", {"ch_room"})
    other_socket = FakeSubscriber(APP, "usr_1", {"ch_room"})
    await attach(broker, gone, other_socket)

    await broker.detach(gone)
    await broker.publish(event(channel_id="ch_room"))
    await broker.publish(event("user.updated", user_ids=("usr_1",)))
    await broker.publish(event(channel_id="ch_room", joins=(("usr_1", "ch_new"),)))

    assert gone.received == []
    assert gone.channels == {"ch_room"}  # a detached subscriber is not moved either
    assert other_socket.channels == {"ch_room", "ch_new"}
    assert other_socket.types == ["message.new", "user.updated", "message.new"]
    await broker.detach(gone)  # detaching twice is harmless


async def test_recent_returns_the_apps_events_after_the_given_id() -> None:
    """recent() replays, in order, the app's events newer than the cursor, and only the app's."""
    broker = MemoryBroker(history=100)
    cursor = new_id(Kind.EVENT)
    first = event(channel_id="ch_room")
    await broker.publish(first)
    await broker.publish(event(app_id=OTHER_APP, channel_id="ch_room"))
    second = event("user.updated", user_ids=("usr_1",))
    await broker.publish(second)

    assert await broker.recent(APP, cursor) == [first, second]
    assert await broker.recent(APP, first.id) == [second]
    assert await broker.recent(APP, second.id) == []
    assert await broker.recent("app_quiet", new_id(Kind.EVENT)) == []


async def test_recent_refuses_ids_from_before_the_broker_started() -> None:
    """An event id older than the broker cannot be resumed from: None (re-sync)."""
    before_start = new_id(Kind.EVENT)
    broker = MemoryBroker(history=100)
    await broker.publish(event(channel_id="ch_room"))

    assert await broker.recent(APP, before_start) is None
    assert await broker.recent("app_quiet", before_start) is None
    assert await broker.recent(APP, "evt_00000000000000000000000000") is None


async def test_recent_after_eviction_is_none_only_for_lost_events() -> None:
    """Once the bounded history drops events, cursors before them get None; later ones work."""
    broker = MemoryBroker(history=3)
    cursor = new_id(Kind.EVENT)
    events = [event(channel_id="ch_room") for _ in range(3)]
    for item in events:
        await broker.publish(item)
    assert await broker.recent(APP, cursor) == events  # full, nothing dropped yet

    newer = [event(channel_id="ch_room") for _ in range(2)]
    for item in newer:
        await broker.publish(item)
    kept = [events[2], *newer]

    assert await broker.recent(APP, cursor) is None
    assert await broker.recent(APP, events[0].id) is None  # events[1] was dropped
    assert await broker.recent(APP, events[1].id) == kept  # the newest dropped one: nothing lost
    assert await broker.recent(APP, events[2].id) == newer
    assert await broker.recent(APP, newer[-1].id) == []
    # Another app's history is unaffected by this app's eviction.
    other = event(app_id=OTHER_APP, channel_id="ch_room")
    await broker.publish(other)
    assert await broker.recent(OTHER_APP, cursor) == [other]


async def test_zero_history_keeps_nothing_to_resume() -> None:
    """With no history, any cursor older than the newest event must re-sync."""
    broker = MemoryBroker(history=0)
    cursor = new_id(Kind.EVENT)
    published = event(channel_id="ch_room")
    await broker.publish(published)

    assert await broker.recent(APP, cursor) is None
    assert await broker.recent(APP, published.id) == []
    assert await broker.recent(OTHER_APP, cursor) == []


async def test_close_forgets_subscribers_and_history() -> None:
    """After close(), nothing is delivered to old subscribers and old events are gone."""
    broker = MemoryBroker(history=10)
    sub = FakeSubscriber(APP, "usr_1", {"ch_room"})
    await attach(broker, sub)
    cursor = new_id(Kind.EVENT)
    before = event(channel_id="ch_room")
    await broker.publish(before)

    await broker.close()
    after = event(channel_id="ch_room")
    await broker.publish(after)

    assert sub.received == [before]
    assert await broker.recent(APP, cursor) == [after]


# --- attaching while subscriptions change --------------------------------------------------


def removal(user_id: str, channel_id: str) -> Event:
    """The event that removes ``user_id`` from ``channel_id``."""
    return event(
        "member.removed",
        channel_id=channel_id,
        user_ids=(user_id,),
        leaves=((user_id, channel_id),),
    )


def addition(user_id: str, channel_id: str) -> Event:
    """The event that adds ``user_id`` to ``channel_id``."""
    return event(
        "member.added", channel_id=channel_id, user_ids=(user_id,), joins=((user_id, channel_id),)
    )


async def attach_while(
    broker: MemoryBroker, subscriber: FakeSubscriber, read: set[str], *during: Event
) -> str:
    """Attach, publishing ``during`` while the channels are read; the read returns ``read``."""

    async def load() -> Iterable[str]:
        for item in during:
            await broker.publish(item)
        return read

    return await broker.attach(subscriber, load)


async def test_a_removal_published_while_channels_are_read_is_applied() -> None:
    """A read from before the removal's commit still lists the channel: the removal wins."""
    broker = MemoryBroker(history=100)
    ivy = FakeSubscriber(APP, "usr_ivy")
    removed = removal("usr_ivy", "ch_room")
    await attach_while(broker, ivy, {"ch_room", "ch_stay"}, removed)
    later = event(channel_id="ch_room")
    await broker.publish(later)

    assert ivy.channels == {"ch_stay"}
    assert ivy.received == [removed]


async def test_an_addition_published_while_channels_are_read_is_applied() -> None:
    """A read from before the addition's commit misses the channel: the addition wins."""
    broker = MemoryBroker(history=100)
    ivy = FakeSubscriber(APP, "usr_ivy")
    added = addition("usr_ivy", "ch_room")
    await attach_while(broker, ivy, set(), added)
    later = event(channel_id="ch_room")
    await broker.publish(later)

    assert ivy.channels == {"ch_room"}
    assert ivy.received == [added, later]


async def test_a_read_that_already_saw_the_change_agrees_with_it() -> None:
    """A read after the commit gives the same answer as the event."""
    broker = MemoryBroker(history=100)
    removed_user, added_user = FakeSubscriber(APP, "usr_a"), FakeSubscriber(APP, "usr_b")
    await attach_while(broker, removed_user, set(), removal("usr_a", "ch_room"))
    await attach_while(broker, added_user, {"ch_room"}, addition("usr_b", "ch_room"))

    assert removed_user.channels == set()
    assert added_user.channels == {"ch_room"}


async def test_the_last_of_several_changes_meanwhile_wins() -> None:
    """Removed then re-added: subscribed; added then removed: not."""
    broker = MemoryBroker(history=100)
    back, gone = FakeSubscriber(APP, "usr_back"), FakeSubscriber(APP, "usr_gone")
    await attach_while(
        broker,
        back,
        {"ch_room"},
        removal("usr_back", "ch_room"),
        addition("usr_back", "ch_room"),
    )
    await attach_while(
        broker, gone, set(), addition("usr_gone", "ch_room"), removal("usr_gone", "ch_room")
    )

    assert back.channels == {"ch_room"}
    assert gone.channels == set()


async def test_events_published_while_channels_are_read_are_delivered_in_order() -> None:
    """Nothing published after registration is lost: the events of the channels read, the
    user's own, and those of a channel up to the user's removal from it, in order."""
    broker = MemoryBroker(history=100)
    bob = FakeSubscriber(APP, "usr_bob")
    in_room = event(channel_id="ch_room")
    elsewhere = event(channel_id="ch_other")
    personal = event("user.updated", user_ids=("usr_bob",))
    before_leaving = event(channel_id="ch_left")
    left = removal("usr_bob", "ch_left")
    after_leaving = event(channel_id="ch_left")
    await attach_while(
        broker,
        bob,
        {"ch_room"},
        in_room,
        elsewhere,
        personal,
        before_leaving,
        left,
        after_leaving,
    )

    assert bob.received == [in_room, personal, before_leaving, left]
    assert bob.channels == {"ch_room"}


async def test_attach_returns_the_newest_event_before_it_as_the_resume_mark() -> None:
    """recent() up to the mark replays what came before the subscriber, nothing after."""
    broker = MemoryBroker(history=100)
    cursor = new_id(Kind.EVENT)
    first_sub = FakeSubscriber(APP, "usr_1", {"ch_room"})
    empty_mark = await broker.attach(first_sub, lambda: _channels({"ch_room"}))
    before = [event(channel_id="ch_room") for _ in range(2)]
    for item in before:
        await broker.publish(item)
    sub = FakeSubscriber(APP, "usr_1")
    mark = await broker.attach(sub, lambda: _channels({"ch_room"}))
    after = event(channel_id="ch_room")
    await broker.publish(after)

    assert mark == before[-1].id
    assert await broker.recent(APP, cursor, mark) == before
    assert await broker.recent(APP, before[0].id, mark) == [before[1]]
    assert await broker.recent(APP, after.id, mark) == []
    assert await broker.recent(APP, cursor, empty_mark) == []
    assert await broker.recent(APP, cursor) == [*before, after]


async def _channels(channels: set[str]) -> Iterable[str]:
    return channels


async def test_recent_follows_publish_order_not_id_order() -> None:
    """An event created first but published second comes after the one published first."""
    broker = MemoryBroker(history=100)
    cursor = new_id(Kind.EVENT)
    created_first = event(channel_id="ch_room")
    created_second = event(channel_id="ch_room")
    await broker.publish(created_second)
    await broker.publish(created_first)

    assert await broker.recent(APP, cursor) == [created_second, created_first]
    assert await broker.recent(APP, created_second.id) == [created_first]
    assert await broker.recent(APP, cursor, created_second.id) == [created_second]


async def test_a_failed_channel_read_leaves_nothing_attached() -> None:
    """If reading the channels fails, the subscriber gets nothing; a retry works."""
    broker = MemoryBroker(history=100)
    sub = FakeSubscriber(APP, "usr_1")

    async def failing() -> Iterable[str]:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await broker.attach(sub, failing)
    await broker.publish(event("user.updated", user_ids=("usr_1",)))
    assert sub.received == []

    await attach(broker, sub)
    personal = event("user.updated", user_ids=("usr_1",))
    await broker.publish(personal)
    assert sub.received == [personal]
