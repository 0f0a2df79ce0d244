"""A token of each kind, and the one a route needs, chosen by the permission it declares."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bastion.core.ids import Kind, new_id
from bastion.security import scopes
from bastion.security.policy import Policy, decide
from tests.support.operators import operator_headers
from tests.support.roles import ALL_USER_SCOPES, user_with_roles
from tests.support.tenants import Tenant, User


@dataclass(frozen=True, slots=True)
class Credential:
    """A bearer token with the roles and scopes the policy sees behind it."""

    name: str
    token: str
    roles: frozenset[str]
    scopes: frozenset[str]

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header carrying the token."""
        return {"Authorization": f"Bearer {self.token}"}


_SAMPLE_IDS = {
    "channel_id": new_id(Kind.CHANNEL),
    "message_id": new_id(Kind.MESSAGE),
    "user_id": new_id(Kind.USER),
    "client_id": new_id(Kind.CLIENT),
    "reaction": "%F0%9F%91%8D",
    "role": "member",
    "policy": "reads",
}


def sample_url(path: str) -> str:
    """``path`` (an OpenAPI template) with well-formed values that name nothing."""
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE_IDS[m.group(1)], path)


def _token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def credentials(tenant: Tenant, member: User) -> list[Credential]:
    """``member`` (chat scopes), the app's backend, an admin user with every user scope
    and an operator client (audit and metrics): the order ``for_permission`` tries."""
    backend = await tenant.token_request(grant_type="client_credentials")
    assert backend.status_code == 200, backend.text
    admin = await user_with_roles(tenant, "credentials-admin", "admin")
    granted = (scopes.AUDIT_READ, scopes.METRICS_READ)
    operator = await operator_headers(tenant, *granted)
    service = frozenset({"service"})
    return [
        Credential("member", member.token, frozenset({"member"}), scopes.DEFAULT_USER_SCOPES),
        Credential(
            "backend",
            backend.json()["access_token"],
            service,
            scopes.parse(backend.json()["scope"]),
        ),
        Credential("admin", admin.token, frozenset({"admin"}), scopes.parse(ALL_USER_SCOPES)),
        Credential("operator", _token_of(operator), service, frozenset(granted)),
    ]


def for_permission(permission: str | None, found: list[Credential]) -> Credential | None:
    """The first credential the default policy lets use ``permission`` (None: public)."""
    if permission is None:
        return None
    policy = Policy.default()
    for credential in found:
        if decide(policy, credential.roles, credential.scopes, permission).allowed:
            return credential
    raise AssertionError(f"no test credential may use {permission}")
