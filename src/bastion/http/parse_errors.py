"""Requests the HTTP parser refuses, answered with a problem document like every error.

uvicorn answers a request its HTTP/1.1 parser cannot read (an unknown method, a
negative ``Content-Length``, a malformed request line or header) before the
application sees it, with ``400 text/plain`` "Invalid HTTP request received.". These
protocol classes, given to ``uvicorn.Config(http=…)``, answer it as
``400 application/problem+json`` of type ``bad-request`` instead, with a request id of
its own, and close the connection as uvicorn does.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bastion.core.errors import InvalidRequest, problem
from bastion.core.ids import Kind, new_id

DETAIL = "The request is not valid HTTP/1.1."


def parse_error_response(problem_base: str, extra_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole HTTP/1.1 response to a request that could not be parsed."""
    request_id = new_id(Kind.REQUEST)
    body = json.dumps(
        problem(InvalidRequest(DETAIL), instance=request_id, base=problem_base)
    ).encode()
    headers = [
        *extra_headers,
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        (b"connection", b"close"),
    ]
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return b"HTTP/1.1 400 Bad Request\r\n" + head + b"\r\n" + body


class AnswersParseErrors(asyncio.Protocol):
    """Mixed into a uvicorn HTTP protocol: replaces its plain-text 400."""

    problem_base: ClassVar[str] = "/problems/"
    transport: asyncio.Transport
    server_state: Any

    def send_400_response(self, msg: str) -> None:
        """Write the problem response and close; ``msg`` is uvicorn's plain-text one."""
        defaults = list(getattr(self.server_state, "default_headers", []))
        self.transport.write(parse_error_response(self.problem_base, defaults))
        self.transport.close()


class ProblemHttpToolsProtocol(AnswersParseErrors, HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol, answering parse errors with a problem."""


class ProblemH11Protocol(AnswersParseErrors, H11Protocol):
    """uvicorn's h11 HTTP/1.1 protocol, answering parse errors with a problem."""


HTTP_PROTOCOLS: dict[str, type[AnswersParseErrors]] = {
    "auto": ProblemHttpToolsProtocol,
    "httptools": ProblemHttpToolsProtocol,
    "h11": ProblemH11Protocol,
}
"""uvicorn's ``http`` option names and the protocol class that replaces each."""


def bound(protocol: type[AnswersParseErrors], problem_base: str) -> type[AnswersParseErrors]:
    """``protocol`` with the server's problem base.

    uvicorn makes each connection's protocol from the class alone, so the base is bound
    as a class attribute of a subclass made once per server.
    """
    return type(protocol.__name__, (protocol,), {"problem_base": problem_base})
