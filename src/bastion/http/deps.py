"""FastAPI dependencies: the services, who is calling, and parameters shared by routes.

Every non-public route declares the permission it needs with ``requires(permission)``,
which authenticates the bearer token, resolves the caller's app roles and checks both
the role policy and the token's scope (:mod:`bastion.security.policy`).
:func:`bastion.http.permissions.declared` lists the declarations, and the route walker in
the test suite fails on any route without one that is not explicitly public.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.requests import HTTPConnection

from bastion.chat.service import Chat
from bastion.core.errors import (
    FieldError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from bastion.core.ids import Kind, is_id
from bastion.core.settings import Settings
from bastion.http.idempotency import Idempotency
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.observe.monitoring import Monitoring
from bastion.realtime.broker import Broker
from bastion.security.audit.checkpoints import Checkpoints
from bastion.security.audit.context import CALLER_KEY
from bastion.security.audit.log import AuditLog
from bastion.security.authenticator import Authenticator
from bastion.security.authz import Authorizer
from bastion.security.keys import KeyRing
from bastion.security.oauth import rfc6750, rfc8705, rfc9449
from bastion.security.oauth.authserver import AuthServer
from bastion.security.oauth.server import TokenEndpoint
from bastion.security.outbound import OutboundGuard
from bastion.security.policy import PERMISSIONS
from bastion.security.principal import Principal
from bastion.security.ratelimit.service import RateLimiting
from bastion.security.tokens import AccessTokens
from bastion.store.db import Database


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a request may need, built once by the composition root."""

    settings: Settings
    db: Database
    chat: Chat
    tokens: AccessTokens
    token_endpoint: TokenEndpoint
    keys: KeyRing
    broker: Broker
    idempotency: Idempotency
    events: SecurityEvents
    ratelimit: RateLimiting
    audit: AuditLog
    checkpoints: Checkpoints
    authz: Authorizer
    outbound: OutboundGuard
    authenticator: Authenticator
    authserver: AuthServer
    dpop: rfc9449.ProofValidator
    monitoring: Monitoring


async def services(request: Request) -> Services:
    """The process's services."""
    found: Services = request.app.state.services
    return found


ServicesDep = Annotated[Services, Depends(services)]


def origin_of(request: Request) -> Origin:
    """Where a request came from, for security events."""
    state = request.scope.get("state", {})
    return Origin(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=state.get("request_id"),
    )


# Documents the scheme in OpenAPI; the header is parsed by RFC 6750 rules below.
_bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="RFC 9068 access token")


async def authenticate(request: Request, svc: Services) -> Principal:
    """Turn the request's access token into a principal, or raise ``Unauthenticated``.

    ``Authorization: Bearer`` (RFC 6750) for bearer tokens; ``Authorization: DPoP`` with
    a ``DPoP`` proof (RFC 9449 §7) for tokens bound to a key. A token bound to a client
    certificate (RFC 8705 §3) must also come over a connection presenting it.
    """
    rfc6750.refuse_query_token(set(request.query_params.keys()))
    authorization = rfc6750.authorization_header(request.headers.getlist("authorization"))
    dpop_token = rfc9449.parse_authorization(authorization)
    if dpop_token is None:
        principal = await svc.authenticator.authenticate(rfc6750.bearer_token(authorization))
        require_binding(svc, principal)
    else:
        principal = await svc.authenticator.authenticate(dpop_token)
        url = svc.settings.public_url + request.url.path
        proofs = request.headers.getlist("dpop")
        try:
            await check_dpop(svc, principal, proofs, request.method, url, dpop_token)
        except rfc9449.InvalidDPoPProof as exc:
            actor = Actor(app_id=principal.app_id, subject=principal.subject)
            origin = origin_of(request)
            await svc.events.emit(
                "auth.dpop", "failure", actor=actor, origin=origin, reason=exc.error
            )
            raise
    rfc8705.check_binding(principal.x5t, rfc8705.certificate_of(request.scope))
    state = request.scope.setdefault("state", {})
    state["principal"] = principal.subject
    state[CALLER_KEY] = principal
    return principal


def require_binding(svc: Services, principal: Principal) -> None:
    """Refuse a bearer use of a bound token, or an unbound token of a DPoP-only client."""
    if principal.jkt is not None:
        # RFC 9449 §7.1: a DPoP-bound token presented as a bearer token is refused.
        raise Unauthenticated("This access token is bound to a DPoP key.")
    if principal.client_id in svc.settings.resource_server.dpop_required_clients:
        raise Unauthenticated("This client's access tokens must be DPoP-bound.")


async def check_dpop(
    svc: Services, principal: Principal, proofs: list[str], method: str, url: str, token: str
) -> None:
    """RFC 9449 §7.1: the proof is valid for this request and made with the bound key."""
    if principal.jkt is None:
        raise Unauthenticated("This access token is not bound to a DPoP key; use Bearer.")
    proof = await svc.dpop.validate(proofs, method=method, url=url, access_token=token)
    if proof.jkt != principal.jkt:
        raise rfc9449.InvalidDPoPProof("The DPoP proof is not signed by the token's key.")


async def _caller(
    security_scopes: SecurityScopes,
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    principal = await authenticate(request, request.app.state.services)
    for scope in security_scopes.scopes:
        principal.require(scope)
    return principal


def scoped(scope: str) -> Any:
    """A dependency: the authenticated caller, whose token must carry ``scope``."""
    return Security(_caller, scopes=[scope])


PERMISSION_ATTRIBUTE = "bastion_permission"
"""Where ``requires`` marks its dependency with the permission it checks."""


class Authorized(HTTPBearer):
    """The dependency ``requires`` makes: the caller, authenticated and allowed one permission.

    Being the bearer scheme itself, it documents the route's security in OpenAPI and runs
    as one dependency, instead of over a second one that parsed the header again only to
    be documented.
    """

    def __init__(self, permission: str) -> None:
        super().__init__(
            auto_error=False,
            bearerFormat="JWT",
            description=_bearer.model.description,
            scheme_name=_bearer.scheme_name,
        )
        self.permission = permission
        setattr(self, PERMISSION_ATTRIBUTE, permission)

    async def __call__(  # type: ignore[override]  # a principal, not the bare credentials
        self, request: Request
    ) -> Principal:
        """Authenticate the request's token and check the permission."""
        svc: Services = request.app.state.services
        principal = await authenticate(request, svc)
        return await svc.authz.authorize(principal, self.permission, origin_of(request))


def requires(permission: str) -> Any:
    """A dependency: the authenticated caller, whose role and token allow ``permission``.

    The declaration is data the router can list (see ``bastion.http.permissions``); the
    permission's scope is also declared as an OAuth scope, so OpenAPI documents it.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return Security(Authorized(permission), scopes=[PERMISSIONS[permission].scope])


def declared_permission(call: Callable[..., Awaitable[Any]] | Any) -> str | None:
    """The permission a dependency made by ``requires`` checks, else None."""
    value = getattr(call, PERMISSION_ATTRIBUTE, None)
    return value if isinstance(value, str) else None


_QUERY_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")
# RFC 6750 §2.3: a token in the query is refused by the authentication layer, with its
# own error; it is not reported as an unknown parameter.
_REPORTED_ELSEWHERE = frozenset({"access_token"})
_declared: dict[int, frozenset[str]] = {}


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared_query(route: Any) -> frozenset[str]:
    """The query parameter names a route and its dependencies declare (cached per route)."""
    key = id(route)
    if key not in _declared:
        dependant = getattr(route, "dependant", None)
        _declared[key] = frozenset(_query_names(dependant) if dependant else ())
    return _declared[key]


async def known_query(connection: HTTPConnection) -> None:
    """Refuse query parameters the route does not declare (an allow-list of filters).

    A misspelt filter (``?actve=false``) would otherwise be ignored silently and the
    client would act on an unfiltered answer.
    """
    allowed = _declared_query(connection.scope.get("route")) | _REPORTED_ELSEWHERE
    unknown = sorted(set(connection.query_params) - allowed)
    if unknown:
        raise ValidationFailed(
            [
                FieldError(
                    f"query.{name}" if _QUERY_NAME.fullmatch(name) else "query",
                    "Unknown query parameter.",
                )
                for name in unknown[:20]
            ]
        )


def path_id(kind: Kind, value: str, what: str) -> str:
    """A path id of the wrong shape names nothing: 404, exactly like a missing id."""
    if not is_id(kind, value):
        raise NotFound(f"No such {what}.")
    return value


@dataclass(frozen=True, slots=True)
class Page:
    """A validated page size."""

    limit: int


async def page(
    svc: ServicesDep,
    limit: Annotated[int | None, Query(ge=1, description="Page size.")] = None,
) -> Page:
    """The page size: the configured default, never above the configured maximum."""
    limits = svc.settings.limits
    if limit is None:
        return Page(limits.page_size_default)
    if limit > limits.page_size_max:
        raise LimitExceeded("query.limit", f"limit must be at most {limits.page_size_max}.")
    return Page(limit)


PageDep = Annotated[Page, Depends(page)]

_ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')


async def if_match(request: Request) -> int | None:
    """The version named by ``If-Match`` (an ETag ``"<version>"``), if any."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    match = _ETAG.match(raw.strip())
    if match is None:
        raise InvalidRequest('If-Match must be an ETag of the form "<version>".')
    return int(match.group(1))


IfMatch = Annotated[int | None, Depends(if_match)]


def cursor_id(kind: Kind, value: str | None, field: str) -> str | None:
    """An id used as a cursor must be well formed (422, since it is a query parameter)."""
    if value is not None and not is_id(kind, value):
        raise ValidationFailed([FieldError(field, "Invalid cursor.")])
    return value
