"""The role policy: decisions, escalation rules, and properties over random policies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.security import scopes
from bastion.security.policy import (
    DEFAULT_POLICY,
    PERMISSIONS,
    AppRole,
    Escalation,
    Policy,
    PolicyViolation,
    check_role_assignment,
    check_role_definition,
    decide,
)

perm_sets = st.frozensets(st.sampled_from(sorted(PERMISSIONS)))
role_names = st.sampled_from(["member", "moderator", "auditor", "team-lead", "support"])
all_scopes = frozenset(scopes.ALL_SCOPES)


def test_defaults_are_least_privilege() -> None:
    """Auditors only read audit data; moderators never manage roles or policy; members
    never moderate app-wide; a backend only reads its app and manages users and OAuth clients and
    (monitoring clients, by scope) reads the audit log and metrics."""
    assert DEFAULT_POLICY[AppRole.AUDITOR] == {"audit:read", "metrics:read"}
    for role in (AppRole.MODERATOR, AppRole.MEMBER, AppRole.AUDITOR, AppRole.SERVICE):
        assert not DEFAULT_POLICY[role] & {"role:manage", "policy:manage"}
    assert "channel:moderate:any" not in DEFAULT_POLICY[AppRole.MEMBER]
    assert DEFAULT_POLICY[AppRole.SERVICE] <= {
        "user:read",
        "user:write",
        "user:read:private",
        "token:revoke",
        "ratelimit:read",
        "ratelimit:manage",
        "app:read",
        "client:read",
        "client:write",
        "audit:read",
        "metrics:read",
    }
    assert DEFAULT_POLICY[AppRole.ADMIN] == frozenset(PERMISSIONS)


@pytest.mark.parametrize(
    ("roles", "token_scopes", "permission", "reason"),
    [
        ({"member"}, {"chat:write"}, "message:send", "granted"),
        ({"member"}, {"chat:read"}, "message:send", "insufficient_scope"),
        ({"auditor"}, {"chat:write"}, "message:send", "role_lacks_permission"),
        ({"admin"}, {"chat:read", "chat:write"}, "role:manage", "insufficient_scope"),
        ({"admin"}, {"admin:write"}, "role:manage", "granted"),
        ({"service"}, {"users:read"}, "user:read", "granted"),
        ({"member"}, all_scopes, "no:such", "unknown_permission"),
    ],
)
def test_decide_needs_both_role_and_scope(
    roles: set[str], token_scopes: set[str], permission: str, reason: str
) -> None:
    """A decision needs the role's permission and the token's scope."""
    decision = decide(Policy.default(), roles, frozenset(token_scopes), permission)
    assert decision.reason == reason
    assert decision.allowed == (reason == "granted")


@given(st.dictionaries(role_names, perm_sets), st.frozensets(role_names), perm_sets)
def test_scopes_only_narrow(
    overrides: dict[str, frozenset[str]], roles: frozenset[str], token_perms: frozenset[str]
) -> None:
    """Whatever the token's scopes, nothing is allowed that the roles do not hold."""
    policy = Policy.with_overrides(overrides)
    token_scopes = frozenset(PERMISSIONS[p].scope for p in token_perms)
    for permission in PERMISSIONS:
        if decide(policy, roles, token_scopes, permission).allowed:
            assert permission in policy.permissions_of(roles)
            assert PERMISSIONS[permission].scope in token_scopes


@given(
    st.dictionaries(role_names, perm_sets),
    role_names,
    perm_sets,
    st.sampled_from(sorted(PERMISSIONS)),
)
def test_removing_a_grant_never_widens(
    overrides: dict[str, frozenset[str]],
    role: str,
    granted: frozenset[str],
    removed: str,
) -> None:
    """Taking a permission out of a role's definition never allows anything new."""
    wide = Policy.with_overrides({**overrides, role: granted})
    narrow = Policy.with_overrides({**overrides, role: granted - {removed}})
    for holder in (frozenset({role}), frozenset({role, "member"})):
        assert narrow.permissions_of(holder) <= wide.permissions_of(holder)
        for permission in PERMISSIONS:
            if decide(narrow, holder, all_scopes, permission).allowed:
                assert decide(wide, holder, all_scopes, permission).allowed


@given(st.dictionaries(role_names, perm_sets), st.frozensets(role_names), role_names, perm_sets)
def test_a_definition_that_passes_grants_nothing_the_granter_lacks(
    overrides: dict[str, frozenset[str]],
    granter: frozenset[str],
    role: str,
    wanted: frozenset[str],
) -> None:
    """Escalation is impossible through role definitions."""
    policy = Policy.with_overrides(overrides)
    try:
        check_role_definition(policy, granter, role, wanted)
    except Escalation:
        assert not wanted <= policy.permissions_of(granter)
    else:
        assert wanted <= policy.permissions_of(granter)


@given(
    st.dictionaries(role_names, perm_sets),
    st.frozensets(role_names),
    st.frozensets(role_names),
    st.frozensets(role_names),
)
def test_an_assignment_that_passes_hands_out_nothing_stronger(
    overrides: dict[str, frozenset[str]],
    granter: frozenset[str],
    before: frozenset[str],
    after: frozenset[str],
) -> None:
    """Every added or removed role is within the granter's own permissions."""
    policy = Policy.with_overrides(overrides)
    try:
        check_role_assignment(policy, granter, before, after)
    except PolicyViolation:
        return
    held = policy.permissions_of(granter)
    for role in before ^ after:
        assert policy.grants[role] <= held


def test_admin_cannot_be_redefined_and_unknown_permissions_are_refused() -> None:
    """The admin role is fixed; permissions outside the vocabulary are invalid."""
    policy = Policy.default()
    with pytest.raises(Escalation):
        check_role_definition(policy, {"admin"}, "admin", [])
    with pytest.raises(PolicyViolation) as invalid:
        check_role_definition(policy, {"admin"}, "member", ["root:all"])
    assert not isinstance(invalid.value, Escalation)
    assert Policy.with_overrides({"admin": frozenset()}).grants["admin"] == frozenset(PERMISSIONS)
