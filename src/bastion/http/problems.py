"""Turns every error into RFC 9457 ``application/problem+json`` (RFC 6749 §5.2 for OAuth).

Unknown exceptions become a bare 500: the stack trace goes to the log, never to the
client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from bastion.core.errors import (
    BastionError,
    Conflict,
    FieldError,
    Forbidden,
    HeadersTooLarge,
    InsufficientScope,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    OAuthError,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    RequestTimeout,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    UriTooLong,
    ValidationFailed,
    problem,
)
from bastion.observe.logging import get_logger
from bastion.security.oauth import rfc6749, rfc6750, rfc9449

PROBLEM_JSON = "application/problem+json"
_REALM = "bastion"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_log = get_logger("bastion.errors")


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def problem_response(request: Request, error: BastionError) -> Response:
    """Render a Bastion error as a problem document with the headers its status needs.

    On the OAuth endpoints a refused request is an RFC 6749 §5.2 body instead.
    """
    refusal = rfc6749.request_refusal(request.scope["path"], error.status, _description(error))
    if refusal is not None:
        return oauth_response(refusal)
    base = request.app.state.services.settings.server.problem_base
    body = problem(error, instance=_request_id(request), base=base)
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=_headers(error),
    )


def _description(error: BastionError) -> str:
    """One line for ``error_description``: the first failing field, if there is one."""
    if isinstance(error, ValidationFailed) and error.errors:
        first = error.errors[0]
        return f"{first.field}: {first.message}"
    return error.detail


def _headers(error: BastionError) -> dict[str, str]:
    if isinstance(error, rfc9449.InvalidDPoPProof):
        return rfc9449.challenge(error)
    if isinstance(error, Unauthenticated):
        code = "invalid_token" if error.token_present else None
        return {"WWW-Authenticate": rfc6750.challenge(_REALM, code)}
    if isinstance(error, rfc6750.InvalidBearerRequest):
        return {"WWW-Authenticate": rfc6750.challenge(_REALM, error.error)}
    if isinstance(error, InsufficientScope):
        value = rfc6750.challenge(_REALM, "insufficient_scope", scope=error.scope)
        return {"WWW-Authenticate": value}
    if isinstance(error, RateLimited | Unavailable):
        return {"Retry-After": str(error.retry_after)}
    return {}


def oauth_response(error: OAuthError) -> Response:
    """RFC 6749 §5.2: ``{"error", "error_description"}``, never cached."""
    body = {"error": error.error, "error_description": error.description}
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache", **error.headers}
    return Response(
        json.dumps(body).encode(),
        status_code=error.status,
        media_type="application/json; charset=utf-8",
        headers=headers,
    )


_SAFE_PART = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_MESSAGE = 300


def safe_location(parts: Sequence[object]) -> str:
    """A field path fit to echo: a name the client made up is not repeated verbatim."""
    shown = [
        str(part) if isinstance(part, int) or _SAFE_PART.fullmatch(str(part)) else "(field)"
        for part in parts
    ]
    return ".".join(shown) or "request"


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    fields = []
    for item in exc.errors()[:50]:
        # The location and the message only: the offending input is never echoed back.
        message = str(item.get("msg", "Invalid value."))[:_MAX_MESSAGE]
        fields.append(FieldError(safe_location(item.get("loc", ())), message))
    return fields


async def _on_bastion_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BastionError)  # noqa: S101 - registered for this type only
    return problem_response(request, exc)


async def _on_oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for this type only
    return oauth_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    if any(item.get("type") == "json_invalid" for item in exc.errors()):
        return problem_response(request, InvalidRequest("The request body is not valid JSON."))
    return problem_response(request, ValidationFailed(_field_errors(exc)))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
    response = problem_response(request, framework_error(exc.status_code, exc.headers))
    allow = ", ".join(_allowed_methods(request)) if exc.status_code == 405 else ""
    for name, value in (exc.headers or {}).items():
        if name.lower() == "allow":
            response.headers["Allow"] = allow or value
    return response


def _retry_after(headers: Mapping[str, str] | None) -> int:
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), "")
    return int(value) if value.isdigit() else 1


_FRAMEWORK_ERRORS: dict[int, Callable[[Mapping[str, str] | None], BastionError]] = {
    400: lambda _: InvalidRequest("The request could not be processed."),
    401: lambda _: Unauthenticated(token_present=False),
    403: lambda _: Forbidden("This action is not allowed."),
    404: lambda _: NotFound("No such resource."),
    405: lambda _: MethodNotAllowed("This method is not allowed on this resource."),
    408: lambda _: RequestTimeout(),
    409: lambda _: Conflict(),
    412: lambda _: PreconditionFailed(),
    413: lambda _: PayloadTooLarge(),
    414: lambda _: UriTooLong(),
    415: lambda _: UnsupportedMediaType(),
    422: lambda _: ValidationFailed([]),
    429: lambda headers: RateLimited(_retry_after(headers)),
    431: lambda _: HeadersTooLarge(),
    503: lambda headers: Unavailable(retry_after=_retry_after(headers)),
}


def framework_error(status: int, headers: Mapping[str, str] | None = None) -> BastionError:
    """The problem for an HTTP error the framework raised, by its status.

    The framework's own detail text is not repeated. A status no problem type names
    becomes the nearest one: ``bad-request`` for a client error, ``internal-error``
    for a server error.
    """
    make = _FRAMEWORK_ERRORS.get(status)
    if make is not None:
        return make(headers)
    if 400 <= status < 500:
        return InvalidRequest("The request could not be processed.")
    return InternalError()


def _allowed_methods(request: Request) -> list[str]:
    """RFC 9110 §15.5.6: every method of the target resource, across all its routes.

    The router's own 405 names only the methods of the first route whose path matched.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]
    if "GET" in allowed and "HEAD" not in allowed:
        # bastion.http.head answers HEAD wherever GET is answered.
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return allowed


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    _log.error("unhandled error", request_id=_request_id(request), exc_info=exc)
    return problem_response(request, InternalError())


def install(app: FastAPI) -> None:
    """Register the handlers that replace the framework's default error bodies."""
    app.add_exception_handler(BastionError, _on_bastion_error)
    app.add_exception_handler(OAuthError, _on_oauth_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)


def describe(error_type: type[BastionError]) -> dict[str, Any]:
    """What the problem page for a type says."""
    return {
        "type": error_type.type,
        "title": error_type.title,
        "status": error_type.status,
        "description": (error_type.__doc__ or "").strip(),
    }
