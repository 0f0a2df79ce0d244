"""``bastion serve`` for the encryption benchmark, optionally with sealing switched off.

    python -m bench.crypto_server [--plaintext] serve --port N

With ``--plaintext`` the column cipher stores values as they are and indexes nothing:
the baseline that ``bench.crypto`` compares the real send path against. Benchmark use
only; nothing in Bastion can turn encryption off.
"""

from __future__ import annotations

import sys
from typing import Any

import bastion.app.storage
from bastion.cli import main


class PlaintextCipher:
    """A ``ColumnCipher`` that does nothing: values are stored as given, no index terms."""

    async def seal(self, _conn: Any, _cell: Any, _owner: Any, plaintext: str) -> str:
        """Store as is."""
        return plaintext

    async def open(self, _conn: Any, _cell: Any, stored: str) -> str:
        """Read as is."""
        return stored

    async def terms(self, _conn: Any, _app_id: str, _channel_id: str, _text: str) -> list[str]:
        """No index."""
        return []

    async def query_terms(self, _conn: Any, _app_id: str, _channel_id: str, _text: str) -> None:
        """Nothing indexed."""


if __name__ == "__main__":
    if "--plaintext" in sys.argv:
        sys.argv.remove("--plaintext")
        bastion.app.storage.column_cipher = lambda _settings, _clock: PlaintextCipher()  # type: ignore[assignment,return-value]
    main()
