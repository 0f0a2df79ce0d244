"""Run the ``bastion`` console script against the session's server data and database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.server import ServerThread

BIN = Path(sys.executable).parent


def bastion(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    """``bastion <args>`` in a child process sharing the server's data folder and database."""
    env = {
        **os.environ,
        "BASTION_SERVER__DATA_DIR": str(server.settings.server.data_dir),
        "BASTION_DATABASE__URL": server.settings.database_url,
    }
    return subprocess.run(  # noqa: S603 - our own console script
        [str(BIN / "bastion"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
