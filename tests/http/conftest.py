"""Fixtures for the HTTP tests: the security events the session's server emits."""

from __future__ import annotations

import pytest

from bastion.observe.events import MemorySink
from tests.support.server import ServerThread


@pytest.fixture(scope="session")
def events(server: ServerThread) -> MemorySink:
    """Every security event the session's server emits after first use (filter by app)."""
    memory = MemorySink()
    server.services.events.add_sink(memory)
    return memory
