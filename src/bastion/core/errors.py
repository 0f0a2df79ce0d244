"""The error hierarchy every layer raises; ``bastion.http.problems`` renders it.

Each class carries its RFC 9457 problem ``type`` slug, ``title`` and HTTP ``status``
as plain data, so raising one needs no HTTP import::

    BastionError
    ├── InvalidRequest            400  bad-request
    ├── Unauthenticated           401  invalid-token     (RFC 6750 WWW-Authenticate)
    ├── Forbidden                 403  forbidden
    │   └── InsufficientScope     403  insufficient-scope
    ├── NotFound                  404  not-found
    ├── MethodNotAllowed          405  method-not-allowed
    ├── RequestTimeout            408  request-timeout
    ├── Conflict                  409  conflict
    ├── PreconditionFailed        412  precondition-failed
    ├── PayloadTooLarge           413  payload-too-large
    ├── UriTooLong                414  uri-too-long
    ├── UnsupportedMediaType      415  unsupported-media-type
    ├── ValidationFailed          422  validation-failed  (lists each failing field)
    │   └── LimitExceeded         422  limit-exceeded
    ├── RateLimited               429  quota-exceeded
    │   └── Blocked               429  blocked           (repeated malformed requests)
    ├── HeadersTooLarge           431  headers-too-large
    ├── InternalError             500  internal-error    (a bug; the detail says nothing)
    ├── IntegrityFailure          500  integrity-failure
    └── Unavailable               503  unavailable
        └── ReducedCapacity       503  temporary-reduced-capacity
    OAuthError                         RFC 6749 §5.2 body, not problem+json
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failing input field: where it is and what is wrong with it."""

    field: str
    message: str


class BastionError(Exception):
    """Base of every error Bastion reports to a client."""

    type: ClassVar[str] = "about:blank"
    title: ClassVar[str] = "Error"
    status: ClassVar[int] = 500

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InvalidRequest(BastionError):
    """The request is malformed in a way no field error describes."""

    type = "bad-request"
    title = "Bad request"
    status = 400


class Unauthenticated(BastionError):
    """No valid access token: missing, malformed, expired, revoked or not for us."""

    type = "invalid-token"
    title = "Authentication required"
    status = 401

    def __init__(self, detail: str | None = None, *, token_present: bool = True) -> None:
        super().__init__(detail or "A valid access token is required.")
        # RFC 6750 §3.1: with no credentials at all, the challenge carries no error code.
        self.token_present = token_present


class Forbidden(BastionError):
    """The caller is known and the object visible, but the action is not allowed."""

    type = "forbidden"
    title = "Forbidden"
    status = 403


class InsufficientScope(Forbidden):
    """The token lacks a scope the route requires (RFC 6750 §3.1)."""

    type = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This action requires the '{scope}' scope.")
        self.scope = scope


class NotFound(BastionError):
    """No such object, or one the caller may not know exists: the answer is the same."""

    type = "not-found"
    title = "Not found"
    status = 404


class MethodNotAllowed(BastionError):
    """The path exists but does not accept this method."""

    type = "method-not-allowed"
    title = "Method not allowed"
    status = 405


class RequestTimeout(BastionError):
    """The client sent its request too slowly: the body did not arrive in time."""

    type = "request-timeout"
    title = "Request timeout"
    status = 408


class Conflict(BastionError):
    """The request conflicts with the current state of the object."""

    type = "conflict"
    title = "Conflict"
    status = 409


class PreconditionFailed(BastionError):
    """An ``If-Match`` precondition did not hold: the object changed meanwhile."""

    type = "precondition-failed"
    title = "Precondition failed"
    status = 412


class PayloadTooLarge(BastionError):
    """The request body is larger than the configured maximum."""

    type = "payload-too-large"
    title = "Payload too large"
    status = 413


class UriTooLong(BastionError):
    """The request target (path and query) is longer than the configured maximum."""

    type = "uri-too-long"
    title = "URI too long"
    status = 414


class UnsupportedMediaType(BastionError):
    """The request body is not in a media type this route accepts."""

    type = "unsupported-media-type"
    title = "Unsupported media type"
    status = 415


class ValidationFailed(BastionError):
    """One or more input fields are invalid; ``errors`` says which and why."""

    type = "validation-failed"
    title = "Validation failed"
    status = 422

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "The request has invalid fields.")
        self.errors = errors


class LimitExceeded(ValidationFailed):
    """A configured limit (members per group, page size, body length…) was exceeded."""

    type = "limit-exceeded"
    title = "Limit exceeded"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__([FieldError(field_name, message)], detail=message)


class RateLimited(BastionError):
    """Too many requests; ``retry_after`` says when to try again."""

    type = "quota-exceeded"
    title = "Too many requests"
    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many requests.")
        self.retry_after = retry_after


class Blocked(RateLimited):
    """This address sent too many malformed requests and is blocked for a while."""

    type = "blocked"
    title = "Temporarily blocked"


class HeadersTooLarge(BastionError):
    """Too many request header fields, or too many bytes of them (RFC 6585 §5)."""

    type = "headers-too-large"
    title = "Request header fields too large"
    status = 431


class InternalError(BastionError):
    """The server failed in a way it did not expect; the details went to its log only."""

    type = "internal-error"
    title = "Internal server error"
    status = 500

    def __init__(self) -> None:
        super().__init__("An internal error occurred.")


class Unavailable(BastionError):
    """A backing service (database, broker) cannot be reached right now."""

    type = "unavailable"
    title = "Service unavailable"
    status = 503

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail or "The service is temporarily unavailable.")
        self.retry_after = retry_after


class ReducedCapacity(Unavailable):
    """The server is shedding load or cannot check rate limits; retry after ``retry_after``."""

    type = "temporary-reduced-capacity"
    title = "Temporarily reduced capacity"
    status = 503


@dataclass(slots=True)
class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` is the wire code, ``status`` the HTTP status."""

    error: str
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.error}: {self.description}"


class IntegrityFailure(BastionError):
    """Stored data failed its integrity check (a sealed value was altered or moved)."""

    type = "integrity-failure"
    title = "Stored data failed its integrity check"
    status = 500


PROBLEM_TYPES: tuple[type[BastionError], ...] = (
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    PreconditionFailed,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    ValidationFailed,
    LimitExceeded,
    RateLimited,
    Blocked,
    HeadersTooLarge,
    Unavailable,
    ReducedCapacity,
    InternalError,
    IntegrityFailure,
)
"""Every problem type the server can answer with; each is documented at /problems/{type}."""


def problem(error: BastionError, *, instance: str | None, base: str) -> dict[str, object]:
    """The RFC 9457 body for an error: ``status`` always equals the HTTP status."""
    body: dict[str, object] = {
        "type": f"{base}{error.type}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
    }
    if instance:
        body["instance"] = instance
    if isinstance(error, ValidationFailed):
        body["errors"] = [{"field": e.field, "message": e.message} for e in error.errors]
    return body
