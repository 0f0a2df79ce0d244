"""Permissions as data: the vocabulary, the default role policy, and the decision rule.

A permission names one kind of action (``message:send``). A policy maps each app role
to the permissions it holds. A caller may perform an action when one of its roles
holds the permission **and** its token carries the permission's OAuth scope: roles
grant, scopes only narrow. The object-level check (may the caller touch *this*
channel or message?) follows in the domain, with :mod:`bastion.security.acl`.

Everything here is pure: no I/O, no framework, no knowledge of chat objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bastion.security import scopes


class AppRole(StrEnum):
    """The built-in app roles."""

    ADMIN = "admin"
    MODERATOR = "moderator"
    MEMBER = "member"
    AUDITOR = "auditor"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of the vocabulary: its name, the scope it needs, and what it allows."""

    name: str
    scope: str
    description: str
    sensitive: bool = False


def _p(name: str, scope: str, description: str, *, sensitive: bool = False) -> Permission:
    return Permission(name, scope, description, sensitive)


VOCABULARY: tuple[Permission, ...] = (
    _p("channel:create", scopes.CHAT_WRITE, "Create channels and open direct channels."),
    _p("channel:read", scopes.CHAT_READ, "Read the channels one may see."),
    _p("channel:update", scopes.CHAT_WRITE, "Rename, describe or archive a channel one manages."),
    _p("member:read", scopes.CHAT_READ, "List and read the members of a visible channel."),
    _p("member:add", scopes.CHAT_WRITE, "Add members to a channel one moderates."),
    _p("member:update", scopes.CHAT_WRITE, "Change member roles in a channel one moderates."),
    _p("member:remove", scopes.CHAT_WRITE, "Remove members one outranks, or leave."),
    _p("member:ban", scopes.CHAT_WRITE, "Ban and unban members of a channel one moderates."),
    _p("member:mute", scopes.CHAT_WRITE, "Mute and unmute members of a channel one moderates."),
    _p("message:read", scopes.CHAT_READ, "Read the messages of a visible channel."),
    _p("message:send", scopes.CHAT_WRITE, "Post where the channel role or ACL allows writing."),
    _p("message:edit:own", scopes.CHAT_WRITE, "Edit one's own messages."),
    _p("message:delete:own", scopes.CHAT_WRITE, "Delete one's own messages."),
    _p(
        "message:delete:any",
        scopes.CHAT_WRITE,
        "Delete anyone's message in any channel of the app.",
        sensitive=True,
    ),
    _p("reaction:write", scopes.CHAT_WRITE, "Add and remove one's own reactions."),
    _p("receipt:write", scopes.CHAT_READ, "Move one's own read position."),
    _p("profile:read", scopes.CHAT_READ, "Read one's own user profile."),
    _p(
        "channel:moderate:any",
        scopes.CHAT_WRITE,
        "Ban, mute and remove members of any channel of the app, without membership.",
        sensitive=True,
    ),
    _p(
        "acl:manage",
        scopes.CHAT_WRITE,
        "Read and change channel ACLs (channel owners; admins in any channel).",
        sensitive=True,
    ),
    _p(
        "acl:manage:any",
        scopes.CHAT_WRITE,
        "Read and change the ACL of any channel of the app.",
        sensitive=True,
    ),
    _p("user:read", scopes.USERS_READ, "Read the app's users (backends)."),
    _p("user:write", scopes.USERS_WRITE, "Create, update and deactivate users (backends)."),
    _p("user:read:private", scopes.USERS_READ, "See private user fields.", sensitive=True),
    _p("app:read", scopes.CLIENTS_READ, "Read the app itself: its id, name and status."),
    _p("client:read", scopes.CLIENTS_READ, "Read the app's OAuth clients (backends)."),
    _p(
        "client:write",
        scopes.CLIENTS_WRITE,
        "Register OAuth clients, change them and rotate their secrets (backends).",
        sensitive=True,
    ),
    _p(
        "token:revoke",
        scopes.USERS_WRITE,
        "Revoke the tokens of the app, or of one user, issued before a time.",
        sensitive=True,
    ),
    _p(
        "ratelimit:read", scopes.USERS_READ, "Read the rate-limit policies and the app's overrides."
    ),
    _p(
        "ratelimit:manage",
        scopes.USERS_WRITE,
        "Override rate-limit quotas for the app or one of its users, within the ceiling.",
        sensitive=True,
    ),
    _p("role:read", scopes.ADMIN_READ, "Read app role assignments.", sensitive=True),
    _p("role:manage", scopes.ADMIN_WRITE, "Assign and revoke app roles.", sensitive=True),
    _p(
        "policy:read",
        scopes.ADMIN_READ,
        "Read the permission vocabulary, the role policy and the MFA policy.",
    ),
    _p("policy:manage", scopes.ADMIN_WRITE, "Change the app's role policy.", sensitive=True),
    _p(
        "mfa:manage",
        scopes.ADMIN_WRITE,
        "Set who in the app must use a second factor at login (above the server's floor).",
        sensitive=True,
    ),
    _p("audit:read", scopes.AUDIT_READ, "Read the audit log.", sensitive=True),
    _p(
        "metrics:read",
        scopes.METRICS_READ,
        "Scrape the server's Prometheus metrics (monitoring clients).",
        sensitive=True,
    ),
)
"""Every permission Bastion knows, in reference order."""

PERMISSIONS: Mapping[str, Permission] = {p.name: p for p in VOCABULARY}

_MEMBER = frozenset(
    {
        "channel:create",
        "channel:read",
        "channel:update",
        "member:read",
        "member:add",
        "member:update",
        "member:remove",
        "member:ban",
        "member:mute",
        "message:read",
        "message:send",
        "message:edit:own",
        "message:delete:own",
        "reaction:write",
        "receipt:write",
        "profile:read",
        "acl:manage",
    }
)

DEFAULT_POLICY: Mapping[str, frozenset[str]] = {
    AppRole.ADMIN: frozenset(PERMISSIONS),
    AppRole.MODERATOR: _MEMBER | {"message:delete:any", "channel:moderate:any"},
    AppRole.MEMBER: _MEMBER,
    AppRole.AUDITOR: frozenset({"audit:read", "metrics:read"}),
    # A backend gets no more than its client's scopes allow: only monitoring clients
    # carry audit:read or metrics:read.
    AppRole.SERVICE: frozenset(
        {
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
    ),
}
"""The documented default: what each built-in role holds in a new app."""

ROLE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
"""Custom role names: lower-case words, at most 32 characters."""


class PolicyViolation(ValueError):
    """A requested policy or role change is invalid (unknown role or permission)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Escalation(PolicyViolation):
    """A requested change would grant (or take away) more than the granter holds."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check: allowed or not, and a stable reason code."""

    allowed: bool
    reason: str


ALLOW = Decision(allowed=True, reason="granted")


@dataclass(frozen=True, slots=True)
class Policy:
    """One app's role → permissions map: the defaults with the app's overrides applied."""

    grants: Mapping[str, frozenset[str]]

    @classmethod
    def default(cls) -> Policy:
        """The shipped default policy."""
        return cls(dict(DEFAULT_POLICY))

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, frozenset[str]]) -> Policy:
        """The default policy with some roles replaced (admin is never overridden)."""
        grants = dict(DEFAULT_POLICY)
        for role, permissions in overrides.items():
            if role != AppRole.ADMIN:
                grants[role] = frozenset(permissions) & frozenset(PERMISSIONS)
        return cls(grants)

    def permissions_of(self, roles: Iterable[str]) -> frozenset[str]:
        """Everything the roles hold together; unknown roles hold nothing."""
        held: frozenset[str] = frozenset()
        for role in roles:
            held |= self.grants.get(role, frozenset())
        return held

    def roles(self) -> list[str]:
        """The roles this policy defines, built-in first."""
        builtin = [r.value for r in AppRole]
        return builtin + sorted(set(self.grants) - set(builtin))


def decide(
    policy: Policy, roles: Iterable[str], token_scopes: frozenset[str], permission: str
) -> Decision:
    """May a caller holding ``roles`` and ``token_scopes`` use ``permission``?

    Both must agree: the token carries the permission's scope, and a role of the
    caller holds the permission. Unknown permissions are always denied.
    """
    known = PERMISSIONS.get(permission)
    if known is None:
        return Decision(allowed=False, reason="unknown_permission")
    # The token is checked first: a token without the scope gets the standard
    # RFC 6750 insufficient_scope answer, whatever the roles behind it.
    if known.scope not in token_scopes:
        return Decision(allowed=False, reason="insufficient_scope")
    if permission not in policy.permissions_of(roles):
        return Decision(allowed=False, reason="role_lacks_permission")
    return ALLOW


def check_role_definition(
    policy: Policy, granter_roles: Iterable[str], role: str, permissions: Iterable[str]
) -> frozenset[str]:
    """Validate a new definition of ``role``; return its permissions.

    Nobody may grant what they do not hold themselves, and ``admin`` is fixed so an
    app can never lock itself out.
    """
    if role == AppRole.ADMIN:
        raise Escalation("path.role", "The admin role always holds every permission.")
    if not ROLE_NAME.match(role):
        raise PolicyViolation("path.role", "A role name is 1-32 of a-z, 0-9 and '-'.")
    wanted = frozenset(permissions)
    unknown = sorted(wanted - set(PERMISSIONS))
    if unknown:
        raise PolicyViolation("body.permissions", f"Unknown permission: {unknown[0]}")
    lacking = sorted(wanted - policy.permissions_of(granter_roles))
    if lacking:
        raise Escalation(
            "body.permissions", f"You cannot grant a permission you do not hold: {lacking[0]}"
        )
    return wanted


def check_role_assignment(
    policy: Policy, granter_roles: Iterable[str], before: Iterable[str], after: Iterable[str]
) -> None:
    """Validate changing someone's roles from ``before`` to ``after``.

    The granter must hold every permission of each role they add or remove, so no one
    can hand out (or take away) more power than they have. ``service`` belongs to
    backend clients only.
    """
    changed = set(before) ^ set(after)
    if AppRole.SERVICE in changed:
        raise Escalation("body.roles", "The service role belongs to backend clients.")
    undefined = sorted(r for r in changed if r not in policy.grants)
    if undefined:
        raise PolicyViolation("body.roles", f"No such role: {undefined[0]}")
    held = policy.permissions_of(granter_roles)
    for role in sorted(changed):
        if not policy.grants[role] <= held:
            raise Escalation(
                "body.roles", f"You cannot grant or revoke a role stronger than yours: {role}"
            )


def reference_rows(policy: Policy | None = None) -> list[tuple[str, str, str, list[str]]]:
    """``(permission, scope, description, roles holding it)`` for the reference table."""
    chosen = policy or Policy.default()
    return [
        (p.name, p.scope, p.description, [r for r in chosen.roles() if p.name in chosen.grants[r]])
        for p in VOCABULARY
    ]
