"""Admin API schemas: permissions, the role policy, role assignments, the MFA policy."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from bastion.http.schemas.common import RequestModel, ResponseModel

RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,31}$")]
PermissionName = Annotated[str, StringConstraints(pattern=r"^[a-z]+(:[a-z]+){1,2}$")]


class PermissionOut(ResponseModel):
    """One permission of the vocabulary."""

    name: str
    scope: str
    description: str
    sensitive: bool


class PermissionList(ResponseModel):
    """The permission vocabulary."""

    data: list[PermissionOut]


class RoleOut(ResponseModel):
    """One role of the app's policy."""

    role: str
    permissions: list[str]
    customised: bool


class PolicyOut(ResponseModel):
    """The app's effective policy: every role with its permissions."""

    data: list[RoleOut]


class RoleDefinition(RequestModel):
    """Define a role for this app: the complete list of its permissions."""

    permissions: list[PermissionName] = Field(max_length=100)


class AssignmentOut(ResponseModel):
    """A user's app roles; ``assigned`` is false while they hold the default role."""

    user_id: str
    roles: list[str]
    assigned: bool


class AssignmentPage(ResponseModel):
    """A page of users with assigned roles."""

    data: list[AssignmentOut]
    next_cursor: str | None


class AssignmentUpdate(RequestModel):
    """Replace a user's app roles."""

    roles: list[RoleName] = Field(min_length=1, max_length=20)


class MfaRuleOut(ResponseModel):
    """Who must use a second factor: everyone, or the holders of these app roles."""

    required_for_everyone: bool
    required_roles: list[str]


class MfaPolicyOut(MfaRuleOut):
    """The app's MFA policy, the server's floor it cannot lower, and what login enforces."""

    server_floor: MfaRuleOut
    effective: MfaRuleOut


class MfaPolicyUpdate(RequestModel):
    """Replace the app's MFA policy (the server's floor still applies on top)."""

    required_for_everyone: bool
    required_roles: list[RoleName] = Field(default_factory=list, max_length=20)
