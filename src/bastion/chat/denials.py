"""Object-level refusals: what the client is told, and the decision event recorded.

A check on a loaded object (membership, ban, channel role, ACL, ownership) refuses by
raising :class:`Hidden` (404: the caller may not know the object exists) or
:class:`Refused` (403: the object is visible, the action is not allowed), each naming
the resource and a reason code. A service method declares the permission it exercises
with :func:`reports`; a refusal leaving it is recorded through the authorizer as an
``authz.decision`` event, the same event (and the same
``bastion_authz_denials_total`` counter) as a route-level denial.

Reason codes: ``not_found`` (no such object in the caller's app: missing, or another
app's), ``not_member``, ``banned``, ``acl_deny``, ``read_only``, ``channel_role`` (the
channel role gives too little), ``rank`` (moderators manage only members below them),
``not_owner`` (someone else's message), ``not_a_user`` (a backend token in a chat
action).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from bastion.chat.context import ChatContext
from bastion.core.errors import Forbidden, NotFound
from bastion.security.principal import Principal


@dataclass(frozen=True, slots=True)
class Denial:
    """Which object was refused and why; ``permission`` overrides the method's own."""

    resource: str | None
    reason: str
    permission: str | None = None


class Hidden(NotFound):
    """404 for an object the caller may not know exists, with the denial behind it."""

    def __init__(self, detail: str, denial: Denial) -> None:
        super().__init__(detail)
        self.denial = denial


class Refused(Forbidden):
    """403 for an action on a visible object, with the denial behind it."""

    def __init__(self, detail: str, denial: Denial) -> None:
        super().__init__(detail)
        self.denial = denial


class _Service(Protocol):
    _ctx: ChatContext


S = TypeVar("S", bound=_Service)
P = ParamSpec("P")
R = TypeVar("R")
Method = Callable[Concatenate[S, Principal, P], Coroutine[Any, Any, R]]


def reports(permission: str) -> Callable[[Method[S, P, R]], Method[S, P, R]]:
    """Decorate a service method: record each object-level refusal it raises."""

    def wrap(method: Method[S, P, R]) -> Method[S, P, R]:
        @functools.wraps(method)
        async def checked(self: S, caller: Principal, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(self, caller, *args, **kwargs)
            except (Hidden, Refused) as refusal:
                denial = refusal.denial
                await self._ctx.authz.deny(
                    caller, denial.permission or permission, denial.resource, denial.reason
                )
                raise

        return checked

    return wrap
