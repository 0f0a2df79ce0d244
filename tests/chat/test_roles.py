"""The pure role rules: who may post, manage, own and assign roles in each channel type."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.chat import roles
from bastion.chat.roles import ChannelType, Role
from bastion.core.errors import Forbidden
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
        assert roles.can_post(channel(type_), member(role)) is (role in allowed)
        if role in allowed:
            roles.require_post(channel(type_), member(role))
        else:
            with pytest.raises(Forbidden):
                roles.require_post(channel(type_), member(role))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_participation_manager_and_owner_checks(role: Role) -> None:
    """require_participate/manager/owner pass exactly for the roles they name."""
    checks = (
        (roles.require_participate, role != Role.READ_ONLY),
        (roles.require_manager, role in (Role.OWNER, Role.MODERATOR)),
        (roles.require_owner, role == Role.OWNER),
    )
    for check, passes in checks:
        if passes:
            check(member(role))
        else:
            with pytest.raises(Forbidden):
                check(member(role))


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
