"""Requests the HTTP parser refuses get a problem document, through a real server socket."""

from __future__ import annotations

import json
import socket

import pytest

from bastion.http.parse_errors import DETAIL
from tests.support.server import ServerThread

MALFORMED = [
    b"FOO /v1/users HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /v1/users HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /v1/users HTTP/9.9\r\nHost: x\r\n\r\n",
]


def _exchange(server: ServerThread, raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Send raw bytes and read the whole answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


@pytest.mark.parametrize("raw", MALFORMED, ids=["method", "length", "header", "version"])
def test_an_unparsable_request_is_a_problem(server: ServerThread, raw: bytes) -> None:
    """400 application/problem+json of type bad-request, never uvicorn's plain text."""
    status_line, headers, body = _exchange(server, raw)
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert headers[b"content-type"] == b"application/problem+json"
    assert headers[b"connection"] == b"close"
    assert int(headers[b"content-length"]) == len(body)
    problem = json.loads(body)
    assert problem == {
        "type": "/problems/bad-request",
        "title": "Bad request",
        "status": 400,
        "detail": DETAIL,
        "instance": headers[b"x-request-id"].decode(),
    }
    assert b"Invalid HTTP request received." not in body
