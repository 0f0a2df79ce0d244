"""A real uvicorn server running Bastion in a background thread, on its own event loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import uvicorn

from bastion.app import Bastion, create_app
from bastion.core.clock import Clock
from bastion.core.settings import Settings
from bastion.http.deps import Services
from bastion.http.serving import Tls, connection_protocols, prepare_tls

T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """Runs the app under uvicorn until stopped; runs coroutines on the server's loop."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.port = settings.server.port
        self.app: Bastion = create_app(settings, clock)
        self.tls: Tls | None = prepare_tls(settings, datetime.now(UTC))
        tls_options: dict[str, Any] = {}
        if self.tls is not None:
            context = self.tls.context
            tls_options["ssl_context_factory"] = lambda _config, _default: context
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            ws_max_size=settings.realtime.max_frame_bytes,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            lifespan="on",
            **tls_options,
            **connection_protocols(settings),
        )
        self._server = uvicorn.Server(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="bastion-test-server", daemon=True)

    @property
    def base_url(self) -> str:
        """The server's HTTP URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The server's WebSocket endpoint."""
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/v1/ws"

    @property
    def services(self) -> Services:
        """The running app's services."""
        services: Services = self.app.api.state.services
        return services

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._server.serve())
        self._loop.close()

    def start(self) -> None:
        """Start serving and wait until the server accepts connections."""
        self._thread.start()
        for _ in range(500):
            if self._server.started:
                return
            if not self._thread.is_alive():
                raise RuntimeError("the test server failed to start")
            threading.Event().wait(0.01)
        raise RuntimeError("the test server did not start in time")

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (where its database engine lives)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)
