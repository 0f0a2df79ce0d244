"""App roles for test users: granted the way an operator does, with matching tokens."""

from __future__ import annotations

from bastion.chat.app_roles import grant_as_operator
from bastion.core.clock import SystemClock
from tests.support.tenants import Tenant, User

ALL_USER_SCOPES = "chat:read chat:write admin:read admin:write audit:read"


def grant(tenant: Tenant, user_id: str, *roles: str) -> None:
    """Give a user these app roles (replacing theirs), effective at once."""
    services = tenant.server.services
    tenant.server.run(
        grant_as_operator(services.db, SystemClock(), tenant.app_id, user_id, frozenset(roles))
    )
    services.authz.forget_roles(tenant.app_id, user_id)


async def user_with_roles(tenant: Tenant, external_id: str, *roles: str) -> User:
    """A new user holding ``roles``, with a token carrying every user scope."""
    user = await tenant.user(external_id)
    if roles:
        grant(tenant, user.id, *roles)
    user.token = await tenant.user_token(user.id, scope=ALL_USER_SCOPES)
    return user
