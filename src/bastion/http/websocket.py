"""The WebSocket protocol at ``/v1/ws``: live events for the channels a user belongs to.

Frames are JSON objects ``{"type", "id", "data"}``. The token comes in the
``Authorization`` header of the upgrade or in a first ``auth`` frame, never in the
URL. Server events carry a per-connection ``seq`` and the event ``id``; after a
reconnect, ``resume`` replays what was missed. Close codes are documented in
``docs/api.md``.

One task reads client frames and answers commands; another (the writer) sends the
events the broker queues, heartbeat pings and ``resume`` replays, so a replay and the
live events around it keep one order and one ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from bastion.core.errors import (
    BastionError,
    Forbidden,
    InvalidRequest,
    RateLimited,
    Unauthenticated,
    Unavailable,
    problem,
)
from bastion.core.ids import Kind, is_id, new_id
from bastion.http import liveness
from bastion.http.deps import Services, check_dpop, require_binding
from bastion.observe import metrics
from bastion.observe.events import Actor, Origin
from bastion.observe.logging import get_logger
from bastion.realtime.broker import Event
from bastion.security import scopes
from bastion.security.oauth import rfc6750, rfc8705, rfc9449
from bastion.security.principal import Principal
from bastion.security.ratelimit.identity import Caller, network_of
from bastion.security.ratelimit.sockets import FrameBudget
from bastion.security.tokens import Revoked

router = APIRouter()

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011
CLOSE_AUTH = 4001
CLOSE_FORBIDDEN = 4003
CLOSE_RATE_LIMITED = 4008
CLOSE_TOO_MANY = 4009
REASON_DEACTIVATED = "user deactivated"

_log = get_logger("bastion.websocket")


class _ClosedError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ConnectionRegistry:
    """Counts live sockets per user, to cap them, and wakes them when tokens are revoked."""

    def __init__(self, per_user: int) -> None:
        self._per_user = per_user
        self._counts: Counter[tuple[str, str]] = Counter()
        self._live: set[Connection] = set()

    def add(self, connection: Connection) -> None:
        """Track a serving connection, so a revocation can reach it."""
        self._live.add(connection)

    def remove(self, connection: Connection) -> None:
        """Stop tracking a connection."""
        self._live.discard(connection)

    def on_revoked(self, revoked: Revoked) -> None:
        """Wake every socket the revocation may concern; each re-checks its own token."""
        for conn in list(self._live):
            principal = conn.principal
            if revoked.app_id not in (None, principal.app_id):
                continue
            if revoked.subject not in (None, principal.subject):
                continue
            if revoked.token_id not in (None, principal.token_id):
                continue
            conn.wake()

    def acquire(self, principal: Principal) -> None:
        """Count a new socket, or refuse it with close code 4009."""
        key = (principal.app_id, principal.subject)
        if self._counts[key] >= self._per_user:
            raise _ClosedError(CLOSE_TOO_MANY, "too many connections")
        self._counts[key] += 1

    def release(self, principal: Principal) -> None:
        """Forget a closed socket."""
        key = (principal.app_id, principal.subject)
        self._counts[key] -= 1
        if self._counts[key] <= 0:
            del self._counts[key]


class Connection:
    """One authenticated socket: a broker subscriber with its own send queue.

    ``mark`` is the newest event published before the broker attached it: every later
    one reached the queue (or was not for this user), so ``resume`` replays up to it.
    """

    def __init__(self, principal: Principal, queue_max: int) -> None:
        self.app_id = principal.app_id
        self.user_id = principal.subject
        self.channels: set[str] = set()
        self.principal = principal
        self.id = new_id(Kind.CONNECTION)
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(queue_max)
        self.overflowed = False
        self.seq = 0
        self.mark = ""

    def deliver(self, event: Event) -> None:
        """Queue an event; a client too slow to keep up is disconnected, not waited for."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    def wake(self) -> None:
        """Wake the writer without an event (it then notices why)."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self.overflowed = True

    def may_see(self, event: Event) -> bool:
        """Events of the user's channels, or addressed to the user, but not their echoes."""
        if event.except_user == self.user_id:
            return False
        return (event.channel_id in self.channels) or (self.user_id in event.user_ids)

    def frame(self, event: Event) -> str:
        """The event's shared frame with this connection's sequence number in front."""
        self.seq += 1
        return f'{{"seq":{self.seq},' + event.frame[1:]


@dataclass(slots=True)
class _Session:
    svc: Services
    ws: WebSocket
    conn: Connection
    last_heard: float
    frames: FrameBudget
    last_ping: float = 0.0
    ticker: asyncio.TimerHandle | None = None
    expiry: asyncio.TimerHandle | None = None
    resumes: deque[tuple[str, Any]] = field(default_factory=deque)
    """``resume`` commands (cursor, command id) waiting for the writer."""

    def wake_at_expiry(self) -> None:
        """Wake the writer when the current token expires, to close the socket then."""
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, _seconds_left(self))
        self.expiry = asyncio.get_running_loop().call_later(delay, self.conn.wake)

    def start_heartbeat(self, interval: float) -> None:
        """Wake the writer every ``interval`` seconds to ping and check liveness.

        Timers instead of a timeout around every queue wait: with a thousand sockets on
        one channel, each event then costs one queue wake-up per socket and nothing more.
        """
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.conn.wake()
            self.ticker = loop.call_later(interval, tick)

        self.ticker = loop.call_later(interval, tick)

    def stop_timers(self) -> None:
        """Cancel every pending wake-up."""
        for timer in (self.ticker, self.expiry):
            if timer is not None:
                timer.cancel()


WS_PATH = "/v1/ws"


@router.websocket(WS_PATH)
async def websocket_endpoint(websocket: WebSocket) -> None:
    """Authenticate, subscribe to the user's channels, and stream events."""
    svc: Services = websocket.app.state.services
    registry: ConnectionRegistry = websocket.app.state.connections
    request_id: str = websocket.scope["state"]["request_id"]
    await websocket.accept(headers=[(b"x-request-id", request_id.encode())])
    try:
        principal = await _authenticate(svc, websocket)
        registry.acquire(principal)
    except _ClosedError as closed:
        await _close(websocket, closed.code, closed.reason)
        return
    try:
        await _serve(svc, websocket, principal, registry)
    finally:
        registry.release(principal)


async def _authenticate(svc: Services, websocket: WebSocket) -> Principal:
    if "access_token" in websocket.query_params:
        raise _ClosedError(CLOSE_AUTH, "send the token in a header or an auth frame")
    try:
        header = rfc6750.authorization_header(websocket.headers.getlist("authorization"))
        if header is not None:
            dpop_token = rfc9449.parse_authorization(header)
            token = dpop_token or rfc6750.bearer_token(header)
            proofs = websocket.headers.getlist("dpop")
        else:
            wait = svc.settings.realtime.auth_timeout_seconds
            token, proofs = await _auth_frame(websocket, wait)
        principal = await _verified(svc, token, proofs, websocket.scope)
    except Unavailable as exc:
        raise _ClosedError(CLOSE_SERVER_ERROR, "try again shortly") from exc
    except (BastionError, WebSocketDisconnect) as exc:
        raise _ClosedError(CLOSE_AUTH, "authentication failed") from exc
    return await _socket_principal(svc, principal, websocket)


def _require_socket_scope(principal: Principal) -> None:
    """Sockets are for users with ``chat:read``, at connect and at every re-auth (4003)."""
    if principal.user_id is None or scopes.CHAT_READ not in principal.scopes:
        raise _ClosedError(CLOSE_FORBIDDEN, "a user token with chat:read is required")


async def _socket_principal(svc: Services, principal: Principal, websocket: WebSocket) -> Principal:
    """The socket's route-level check: like ``GET /v1/channels``, it needs ``channel:read``
    (an auditor-only user gets 4003); the principal keeps its app roles for the ACLs."""
    _require_socket_scope(principal)
    origin = Origin(
        ip=websocket.client.host if websocket.client else None,
        user_agent=websocket.headers.get("user-agent"),
    )
    try:
        return await svc.authz.authorize(principal, "channel:read", origin)
    except Forbidden as exc:
        raise _ClosedError(CLOSE_FORBIDDEN, "your role may not read chat") from exc
    except Unavailable as exc:
        raise _ClosedError(CLOSE_SERVER_ERROR, "try again shortly") from exc


async def _receive_text(websocket: WebSocket) -> str:
    """The next text frame; binary frames break the protocol (1008)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", CLOSE_NORMAL))
    text = message.get("text")
    if not isinstance(text, str):
        raise _ClosedError(CLOSE_POLICY, "only text frames are accepted")
    return text


async def _auth_frame(websocket: WebSocket, wait: float) -> tuple[str, list[str]]:
    try:
        async with asyncio.timeout(wait):
            raw = await _receive_text(websocket)
    except TimeoutError as exc:
        raise Unauthenticated("no auth frame") from exc
    frame = _parse(raw)
    token = frame.get("token") or _data(frame).get("token")
    if frame.get("type") != "auth" or not isinstance(token, str):
        raise Unauthenticated("the first frame must be an auth frame")
    return token, _proofs(frame)


def _proofs(frame: dict[str, Any]) -> list[str]:
    """The DPoP proof an auth frame carries (``dpop``), as a header list would."""
    proof = frame.get("dpop", _data(frame).get("dpop"))
    return [proof] if isinstance(proof, str) else []


async def _verified(
    svc: Services, token: str, proofs: list[str], scope: Mapping[str, Any]
) -> Principal:
    """The token's principal; a DPoP-bound token also needs its proof (htm GET, /v1/ws),
    and a certificate-bound one the certificate on this connection (RFC 8705 §3)."""
    principal = await svc.authenticator.authenticate(token)
    rfc8705.check_binding(principal.x5t, rfc8705.certificate_of(scope))
    if principal.jkt is not None or proofs:
        url = svc.settings.public_url + WS_PATH
        await check_dpop(svc, principal, proofs, "GET", url, token)
    else:
        require_binding(svc, principal)
    return principal


async def _serve(
    svc: Services, websocket: WebSocket, principal: Principal, registry: ConnectionRegistry
) -> None:
    connection = Connection(principal, svc.settings.realtime.send_queue_max)
    registry.add(connection)
    try:
        # Attached for the user before the channels are read: a membership or access
        # change published meanwhile is applied to what the read returns.
        connection.mark = await svc.broker.attach(
            connection, lambda: svc.chat.channels.ids_of_caller(principal)
        )
        await _run(svc, websocket, connection)
    except _ClosedError as closed:
        await _close(websocket, closed.code, closed.reason)
    except WebSocketDisconnect:
        return  # the client went away: nothing left to close
    except BastionError:
        # The database or another backing service failed: tell the client to retry later.
        await _close(websocket, CLOSE_SERVER_ERROR, "server error")
    except Exception:  # noqa: BLE001 - logged, and the socket still gets a documented close
        # A bug, not the client's doing.
        _log.exception("websocket_failed", connection_id=connection.id)
        await _close(websocket, CLOSE_SERVER_ERROR, "server error")
    finally:
        registry.remove(connection)
        await svc.broker.detach(connection)


async def _run(svc: Services, websocket: WebSocket, connection: Connection) -> None:
    """Send ``ready``, then serve the socket until it closes (raising why)."""
    principal = connection.principal
    caller = Caller(
        network_of(websocket.client.host if websocket.client else None),
        principal.user_id,
        principal.client_id,
        principal.app_id,
    )
    frames = svc.ratelimit.frame_budget(connection.id, caller)
    session = _Session(svc, websocket, connection, asyncio.get_running_loop().time(), frames)
    reader = asyncio.create_task(_read_loop(session))
    # Wake the writer when the reader ends (client closed, protocol error, re-auth refused).
    reader.add_done_callback(lambda _task: connection.wake())
    session.start_heartbeat(svc.settings.realtime.heartbeat_seconds)
    session.wake_at_expiry()
    try:
        await _send_json(
            websocket,
            {
                "type": "ready",
                "data": {
                    "connection_id": connection.id,
                    "user_id": connection.user_id,
                    "heartbeat_seconds": svc.settings.realtime.heartbeat_seconds,
                },
            },
        )
        await _write_loop(session, reader)
    finally:
        session.stop_timers()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _write_loop(session: _Session, reader: asyncio.Task[None]) -> None:
    conn = session.conn
    heartbeat = session.svc.settings.realtime.heartbeat_seconds
    loop = asyncio.get_running_loop()
    session.last_ping = loop.time()
    while True:
        event = await conn.queue.get()
        if event is not None:
            await _deliver(session, event)
            continue
        # A wake-up: the reader ended, a resume came in, a heartbeat is due, or the
        # token may have expired.
        if reader.done():
            reader.result()  # re-raises the reader's closing reason
            return
        while session.resumes:
            await _replay(session, *session.resumes.popleft())
        now = loop.time()
        _check_alive(session, now, heartbeat)
        if now - session.last_ping >= heartbeat * 0.99:
            session.last_ping = now
            await _send_json(session.ws, {"type": "ping"})


async def _deliver(session: _Session, event: Event) -> None:
    conn = session.conn
    if conn.overflowed:
        raise _ClosedError(CLOSE_POLICY, "too slow to receive events")
    if event.type == "user.deactivated" and conn.user_id in event.user_ids:
        raise _ClosedError(CLOSE_AUTH, REASON_DEACTIVATED)
    if conn.may_see(event):
        await session.ws.send_text(conn.frame(event))
        if event.type == "message.new":
            metrics.message_delivered(event.id, time.time())


def _check_alive(session: _Session, now: float, heartbeat: float) -> None:
    if now - _last_heard(session) > 2 * heartbeat:
        raise _ClosedError(CLOSE_POLICY, "heartbeat timeout")
    if _seconds_left(session) <= 0:
        raise _ClosedError(CLOSE_AUTH, "token expired")
    revocations = session.svc.tokens.revocations
    principal = session.conn.principal
    if revocations.is_revoked(principal):
        # Every token of a deactivated user is refused: say why, whichever comes first,
        # this wake-up or the user.deactivated event.
        deactivated = revocations.is_subject_revoked(principal)
        raise _ClosedError(CLOSE_AUTH, REASON_DEACTIVATED if deactivated else "token revoked")


def _last_heard(session: _Session) -> float:
    """When the client last sent anything: a message, or (as the transport reports it)
    a protocol-level ping or pong."""
    heard = liveness.last_heard(session.ws.scope)
    return session.last_heard if heard is None else max(heard, session.last_heard)


def _seconds_left(session: _Session) -> float:
    """Seconds until the connection's token expires (re-authenticate before then)."""
    return session.conn.principal.expires_at - session.svc.chat.ctx.clock.timestamp()


async def _read_loop(session: _Session) -> None:
    ws = session.ws
    loop = asyncio.get_running_loop()
    while True:
        raw = await _receive_text(ws)
        session.last_heard = loop.time()
        if not await _admitted(session, raw):
            continue
        try:
            frame = _parse(raw)
            reply = await _command(session, frame)
        except BastionError as exc:
            reply = _error_frame(session, frame_id(raw), exc)
        if reply is not None:
            await _send_json(ws, reply)


async def _admitted(session: _Session, raw: str) -> bool:
    """Count an inbound frame; a refused one gets an error frame, persistent abuse 4008."""
    if not session.svc.settings.ratelimit.enabled:
        return True
    admission = await session.frames.admit()
    if admission.allowed:
        return True
    if admission.first_refusal:
        await session.svc.ratelimit.throttle.events.emit(
            "ratelimit.block",
            "denied",
            actor=Actor(app_id=session.conn.app_id, subject=session.conn.user_id),
            reason="inbound frame rate",
            details={"policy": "ws-frames", "scope": "connection"},
        )
    if admission.close:
        raise _ClosedError(CLOSE_RATE_LIMITED, "rate limited")
    error = RateLimited(admission.retry_after, "Too many frames: slow down.")
    reply = _error_frame(session, frame_id(raw), error)
    reply["data"]["retry_after"] = admission.retry_after
    await _send_json(session.ws, reply)
    return False


def frame_id(raw: str) -> str | None:
    """The ``id`` of a client frame, if it has a usable one."""
    with contextlib.suppress(ValueError, AttributeError):
        value = json.loads(raw).get("id")
        if isinstance(value, str) and len(value) <= 64:
            return value
    return None


def _error_frame(session: _Session, command_id: str | None, error: BastionError) -> dict[str, Any]:
    base = session.svc.settings.server.problem_base
    return {"type": "error", "id": command_id, "data": problem(error, instance=None, base=base)}


async def _command(session: _Session, frame: dict[str, Any]) -> dict[str, Any] | None:
    kind, command_id, data = frame.get("type"), frame.get("id"), _data(frame)
    handler = _COMMANDS.get(kind if isinstance(kind, str) else "")
    if handler is None:
        raise InvalidRequest(f"Unknown frame type: {str(kind)[:32]!r}.")
    result = await handler(session, data, frame)
    if result is None:
        return None
    return {"type": result.pop("type", "ack"), "id": command_id, "data": result}


async def _on_ping(_s: _Session, _d: dict[str, Any], _f: dict[str, Any]) -> dict[str, Any]:
    return {"type": "pong"}


async def _on_pong(_s: _Session, _d: dict[str, Any], _f: dict[str, Any]) -> None:
    return None


async def _on_typing(s: _Session, data: dict[str, Any], _f: dict[str, Any]) -> dict[str, Any]:
    channel_id = _channel_field(data)
    state = data.get("state", "start")
    if state not in ("start", "stop"):
        raise InvalidRequest("state must be 'start' or 'stop'.")
    active = state == "start"
    coalesce = s.svc.settings.ratelimit.typing_coalesce_seconds
    if not s.frames.typing_is_news(channel_id, active, coalesce):
        return {"coalesced": True}
    await s.svc.chat.receipts.typing(s.conn.principal, channel_id, active=active)
    return {}


async def _on_read(s: _Session, data: dict[str, Any], _f: dict[str, Any]) -> dict[str, Any]:
    channel_id = _channel_field(data)
    message_id = data.get("message_id")
    if not isinstance(message_id, str):
        raise InvalidRequest("message_id is required.")
    state = await s.svc.chat.receipts.mark_read(s.conn.principal, channel_id, message_id)
    return {"channel_id": channel_id, "unread_count": state.unread_count}


async def _on_resume(s: _Session, data: dict[str, Any], frame: dict[str, Any]) -> None:
    """Hand a resume to the writer, which answers it between two live events."""
    after = data.get("after", frame.get("after"))
    if not isinstance(after, str) or not is_id(Kind.EVENT, after):
        raise InvalidRequest("after must be an event id.")
    s.resumes.append((after, frame.get("id")))
    s.conn.wake()


async def _replay(s: _Session, after: str, command_id: Any) -> None:
    """Send the events missed before this connection was attached, then the ack.

    Only events up to the connection's mark: every later one was delivered live (or
    was not for this user), so nothing is sent twice. Live events that arrive while the
    replay is sent wait in the queue behind it.
    """
    missed = await s.svc.broker.recent(s.conn.app_id, after, s.conn.mark)
    if missed is None:
        await _send_json(s.ws, {"type": "resync_required", "id": command_id, "data": {}})
        return
    replayed = 0
    for event in missed:
        if event.replayable and s.conn.may_see(event):
            await s.ws.send_text(s.conn.frame(event))
            replayed += 1
    await _send_json(s.ws, {"type": "ack", "id": command_id, "data": {"replayed": replayed}})


async def _on_auth(s: _Session, data: dict[str, Any], frame: dict[str, Any]) -> dict[str, Any]:
    token = data.get("token", frame.get("token"))
    if not isinstance(token, str):
        raise InvalidRequest("token is required.")
    try:
        principal = await _verified(s.svc, token, _proofs(frame), s.ws.scope)
    except Unauthenticated as exc:
        raise _ClosedError(CLOSE_AUTH, "authentication failed") from exc
    old = s.conn.principal
    if (principal.app_id, principal.subject) != (old.app_id, old.subject):
        raise _ClosedError(CLOSE_AUTH, "the new token is for another user")
    s.conn.principal = await _socket_principal(s.svc, principal, s.ws)
    s.wake_at_expiry()
    return {"expires_at": principal.expires_at}


_COMMANDS = {
    "ping": _on_ping,
    "pong": _on_pong,
    "typing": _on_typing,
    "read": _on_read,
    "resume": _on_resume,
    "auth": _on_auth,
}


def _channel_field(data: dict[str, Any]) -> str:
    channel_id = data.get("channel_id")
    if not isinstance(channel_id, str) or not is_id(Kind.CHANNEL, channel_id):
        raise InvalidRequest("channel_id must be a channel id.")
    return channel_id


def _parse(raw: str) -> dict[str, Any]:
    try:
        frame = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest("Frames are JSON objects.") from exc
    if not isinstance(frame, dict):
        raise InvalidRequest("Frames are JSON objects.")
    return frame


def _data(frame: dict[str, Any]) -> dict[str, Any]:
    data = frame.get("data")
    return data if isinstance(data, dict) else {}


async def _send_json(websocket: WebSocket, payload: dict[str, Any]) -> None:
    await websocket.send_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code, reason=reason)
