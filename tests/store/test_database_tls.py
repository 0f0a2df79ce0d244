"""TLS to PostgreSQL with verify-full, against a throwaway cluster with a certificate we make.

The shared PostgreSQL server is never touched: this starts its own cluster (initdb as
the ``postgres`` user) on a free port, with ``ssl = on`` and ``hostnossl ... reject``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from bastion.store.db import create_engine
from tests.conftest import make_settings, start_server
from tests.support.certs import Authority
from tests.support.server import free_port
from tests.support.tenants import new_tenant

pytestmark = pytest.mark.slow

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)


@dataclass(frozen=True, slots=True)
class TlsCluster:
    """A running TLS-only PostgreSQL cluster and the CA that signed its certificate."""

    port: int
    ca_file: Path
    other_ca_file: Path

    def url(self, host: str = "127.0.0.1") -> str:
        """A URL for the cluster's ``postgres`` database."""
        return f"postgresql+asyncpg://postgres@{host}:{self.port}/postgres"


def as_postgres(*args: str) -> None:
    """Run a PostgreSQL tool as the unprivileged ``postgres`` user (initdb refuses root)."""
    command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
    subprocess.run(command, check=True, capture_output=True, timeout=60)  # noqa: S603


@pytest.fixture(scope="module")
def cluster() -> Iterator[TlsCluster]:
    """initdb + ssl=on + TLS-only pg_hba, started on a free port; removed afterwards."""
    if PG_BIN is None:
        pytest.fail("PostgreSQL server binaries are not installed (/usr/lib/postgresql)")
    root = Path(tempfile.mkdtemp(prefix="bastion-pg-tls-"))
    root.chmod(0o755)
    data, certs = root / "data", root / "certs"
    certs.mkdir()
    authority = Authority.create()
    ca_file = authority.write_ca(root / "ca.crt")
    other_ca_file = Authority.create("Someone else's CA").write_ca(root / "other-ca.crt")
    authority.issue(["127.0.0.1"], certs / "server.crt", certs / "server.key")
    if os.geteuid() == 0:
        for item in (root, certs, *certs.iterdir()):
            shutil.chown(item, "postgres")
    as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
    )
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"ssl = on\nssl_cert_file = '{certs / 'server.crt'}'\n"
            f"ssl_key_file = '{certs / 'server.key'}'\nssl_min_protocol_version = 'TLSv1.2'\n"
        )
    (data / "pg_hba.conf").write_text(
        "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n"
    )
    port = free_port()
    log = root / "pg.log"
    as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w",
        "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start",
    )  # fmt: skip
    try:
        yield TlsCluster(port, ca_file, other_ca_file)
    finally:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


async def connection_is_tls(url: str, ca_file: Path) -> bool:
    """Connect with verify-full against ``ca_file`` and ask the server whether it is TLS."""
    engine = create_engine(url, tls_ca_file=ca_file)
    try:
        async with engine.connect() as conn:
            query = text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return bool((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def test_verify_full_connects_over_tls(cluster: TlsCluster) -> None:
    """With the right CA and host, the connection is TLS (the server says so)."""
    assert await connection_is_tls(cluster.url(), cluster.ca_file) is True


async def test_a_certificate_from_another_ca_is_refused(cluster: TlsCluster) -> None:
    """A server certificate that does not chain to the configured CA fails the connection."""
    with pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        await connection_is_tls(cluster.url(), cluster.other_ca_file)


async def test_a_host_name_mismatch_is_refused(cluster: TlsCluster) -> None:
    """verify-full checks the name: the certificate names 127.0.0.1, not localhost."""
    with pytest.raises(Exception, match=r"(?i)hostname|IP address mismatch|verify failed"):
        await connection_is_tls(cluster.url("localhost"), cluster.ca_file)


async def test_the_server_runs_on_a_tls_database(cluster: TlsCluster, tmp_path: Path) -> None:
    """Migrations, the token endpoint and a message send, all over verify-full TLS."""
    settings = make_settings(
        tmp_path, cluster.url(), transport={"database_ca_file": cluster.ca_file}
    )
    server = await asyncio.to_thread(start_server, settings)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            tenant = new_tenant(server, http)
            alice = await tenant.user("alice")
            channel = await tenant.channel(alice, [], name="over tls")
            sent = await tenant.send(alice, channel["id"], "hello over TLS")
            assert sent["text"] == "hello over TLS"
    finally:
        await asyncio.to_thread(server.stop)
