"""What each mounted route declares: the listing behind the route walker and the docs.

``declared(api)`` walks the mounted routes and reads the permission each one's
``requires(...)`` dependency checks. ``reference_markdown(api)`` renders the
permission reference table of ``docs/authorization.md`` from the policy and these
declarations; a test keeps the two in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from bastion.http.deps import declared_permission
from bastion.security.policy import Policy, reference_rows


@dataclass(frozen=True, slots=True)
class RouteDeclaration:
    """One method and path and the permission it declares (None: declares none)."""

    method: str
    path: str
    permission: str | None


def _permissions(dependant: Dependant) -> set[str]:
    found = set()
    own = declared_permission(dependant.call)
    if own is not None:
        found.add(own)
    for sub in dependant.dependencies:
        found |= _permissions(sub)
    return found


def declared(api: FastAPI) -> list[RouteDeclaration]:
    """Every mounted HTTP route with the one permission it declares."""
    result = []
    for context in iter_route_contexts(api.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not context.path:
            continue
        found = _permissions(route.dependant)
        if len(found) > 1:
            raise ValueError(f"{context.path} declares several permissions: {sorted(found)}")
        permission = next(iter(found), None)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            result.append(RouteDeclaration(method, context.path, permission))
    return result


def reference_markdown(api: FastAPI, policy: Policy | None = None) -> str:
    """The permission reference table: permission, scope, default roles, routes, meaning."""
    routes: dict[str, list[str]] = {}
    for item in declared(api):
        if item.permission is not None:
            routes.setdefault(item.permission, []).append(f"`{item.method} {item.path}`")
    lines = [
        "| permission | scope | roles (default) | routes | allows |",
        "|---|---|---|---|---|",
    ]
    for name, scope, description, roles in reference_rows(policy):
        used = "<br>".join(sorted(routes.get(name, []))) or "(checked in the domain)"
        held = ", ".join(roles) or "—"
        lines.append(f"| `{name}` | `{scope}` | {held} | {used} | {description} |")
    return "\n".join(lines) + "\n"
