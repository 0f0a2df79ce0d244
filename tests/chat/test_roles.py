"""The pure channel-role rules: the levels each role gives in each channel type, timed
roles, and who may assign which role."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bastion.chat import access, roles
from bastion.chat.roles import ChannelType, Role
from bastion.core.errors import Forbidden
from bastion.security.acl import Level, Subject, evaluate
from bastion.store.records import ChannelRecord, MemberRecord

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ALL_ROLES = list(Role)


def member(role: Role) -> MemberRecord:
    """A membership with ``role``."""
    return MemberRecord(
        channel_id="ch_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        user_id="usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        app_id="app_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        role=role.value,
        joined_at=NOW,
        last_read_seq=0,
        last_read_message_id=None,
        last_read_at=None,
    )


def channel(type_: ChannelType) -> ChannelRecord:
    """A channel of ``type_``."""
    return ChannelRecord(
        id="ch_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        app_id="app_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        type=type_.value,
        name=None,
        description=None,
        created_by="usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        member_count=2,
        last_message_id=None,
        last_message_at=None,
        activity_at=NOW,
        archived=False,
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )


def levels(type_: ChannelType, role: str) -> frozenset[Level]:
    """What a channel role gives, with no ACL (the evaluator closes levels downwards)."""
    return evaluate(Subject(None, frozenset()), access.baseline(type_, role), [])


def test_roles_are_ranked_strongest_first() -> None:
    """owner > moderator > member > read-only, and the enum lists them in that order."""
    ranks = [roles.rank(role) for role in Role]
    assert ranks == sorted(ranks, reverse=True)
    assert len(set(ranks)) == len(ranks)
    assert roles.rank("owner") > roles.rank("moderator") > roles.rank("member")
    assert roles.rank("member") > roles.rank("read-only")


def test_unknown_role_has_no_rank() -> None:
    """A role string that is not a role is an error, never a silent rank."""
    with pytest.raises(ValueError, match="admin"):
        roles.rank("admin")


def test_wire_names() -> None:
    """Role and channel type values are the strings the API uses."""
    assert [r.value for r in Role] == ["owner", "moderator", "member", "read-only"]
    assert [t.value for t in ChannelType] == ["direct", "group", "broadcast"]


@pytest.mark.parametrize(
    ("type_", "allowed"),
    [
        (ChannelType.DIRECT, {Role.OWNER, Role.MODERATOR, Role.MEMBER}),
        (ChannelType.GROUP, {Role.OWNER, Role.MODERATOR, Role.MEMBER}),
        (ChannelType.BROADCAST, {Role.OWNER, Role.MODERATOR}),
    ],
)
def test_who_may_post(type_: ChannelType, allowed: set[Role]) -> None:
    """Read-only never posts; in broadcast channels only owners and moderators do."""
    for role in Role:
        direct_reader = type_ is ChannelType.DIRECT and role is Role.READ_ONLY
        assert (Level.WRITE in levels(type_, role)) is (role in allowed or direct_reader)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_levels_of_each_role_in_a_group(role: Role) -> None:
    """Moderating needs moderator or owner; managing needs owner; banned holds nothing."""
    held = levels(ChannelType.GROUP, role)
    assert (Level.MODERATE in held) is (role in (Role.OWNER, Role.MODERATOR))
    assert (Level.MANAGE in held) is (role == Role.OWNER)
    assert Level.READ in held
    assert levels(ChannelType.GROUP, access.BANNED) == frozenset()


def test_a_broadcast_audience_reacts_but_read_only_members_do_not() -> None:
    """Reactions: whoever writes, plus a broadcast channel's plain members."""
    for type_, role, reacts in (
        (ChannelType.BROADCAST, Role.MEMBER, True),
        (ChannelType.BROADCAST, Role.READ_ONLY, False),
        (ChannelType.GROUP, Role.READ_ONLY, False),
        (ChannelType.GROUP, Role.MEMBER, True),
    ):
        found = access.ChannelAccess(channel(type_), member(role), levels(type_, role))
        assert found.may_react() is reacts


def test_expired_timed_roles_return_to_the_role_before() -> None:
    """A ban past its expiry is the previous role again; one still running stays."""
    banned = dataclasses.replace(
        member(Role.MEMBER), role="banned", role_expires_at=NOW, role_after="moderator"
    )
    assert access.effective(banned, NOW).role == "moderator"
    assert access.effective(banned, NOW - timedelta(seconds=1)).role == "banned"


@pytest.mark.parametrize("assign", ALL_ROLES)
@pytest.mark.parametrize("current", [None, *ALL_ROLES])
def test_owner_may_assign_anything(assign: Role, current: Role | None) -> None:
    """Owners assign every role to every member, owners included."""
    roles.require_may_assign(member(Role.OWNER), assign, current)


@pytest.mark.parametrize("assign", ALL_ROLES)
@pytest.mark.parametrize("current", [None, *ALL_ROLES])
def test_moderator_assigns_only_below_itself(assign: Role, current: Role | None) -> None:
    """Moderators manage only members and read-only members, giving only those roles."""
    lower = {Role.MEMBER, Role.READ_ONLY}
    allowed = assign in lower and (current is None or current in lower)
    if allowed:
        roles.require_may_assign(member(Role.MODERATOR), assign, current)
    else:
        with pytest.raises(Forbidden):
            roles.require_may_assign(member(Role.MODERATOR), assign, current)


@pytest.mark.parametrize("actor", [Role.MEMBER, Role.READ_ONLY])
@pytest.mark.parametrize("assign", ALL_ROLES)
@pytest.mark.parametrize("current", [None, *ALL_ROLES])
def test_members_assign_nothing(actor: Role, assign: Role, current: Role | None) -> None:
    """Members and read-only members cannot assign any role, not even a lower one."""
    with pytest.raises(Forbidden):
        roles.require_may_assign(member(actor), assign, current)
