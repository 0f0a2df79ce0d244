"""The permission reference in docs/authorization.md is the one the code generates."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute, iter_route_contexts

from bastion.http.deps import Authorized
from bastion.http.permissions import declared, reference_markdown
from bastion.security.policy import PERMISSIONS
from tests.support.server import ServerThread

DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"
BEGIN, END = "<!-- permissions:begin -->\n", "<!-- permissions:end -->"


def test_reference_table_matches_the_policy_and_routes(server: ServerThread) -> None:
    """Regenerate with ``bastion.http.permissions.reference_markdown`` when this fails."""
    text = DOC.read_text(encoding="utf-8")
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert documented == reference_markdown(server.app.api)


def test_every_permission_a_route_declares_is_in_the_vocabulary(server: ServerThread) -> None:
    """No route names a permission the policy does not know."""
    used = {d.permission for d in declared(server.app.api) if d.permission}
    assert used <= set(PERMISSIONS)


def test_a_permission_check_is_one_dependency_and_the_bearer_scheme(server: ServerThread) -> None:
    """Each route's permission check runs as a single dependency with nothing beneath it
    but the request, and is itself the bearer scheme the OpenAPI document names."""
    routes = [context.original_route for context in iter_route_contexts(server.app.api.routes)]
    checks = [
        dependant
        for route in routes
        if isinstance(route, APIRoute)
        for dependant in route.dependant.dependencies
        if isinstance(dependant.call, Authorized)
    ]
    assert checks
    for dependant in checks:
        assert dependant.dependencies == []
    schemes = server.app.api.openapi()["components"]["securitySchemes"]
    assert schemes == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "RFC 9068 access token",
        }
    }
