"""A real PostgreSQL server for the store tests: fresh databases on the server ``.ci/run`` starts.

``.ci/run`` starts a throwaway PostgreSQL (``.ci/postgres``) and exports its DSN as
``ACCELBENCH_TEST_PG_DSN``; without it (or without psycopg) the PostgreSQL tests skip, saying
why. No mock stands in for the database. Every test gets a database of its own, dropped after.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV = "ACCELBENCH_TEST_PG_DSN"
ROOT = Path(__file__).resolve().parents[1]


def admin_dsn() -> str:
    """The server's DSN, or skip (with the reason) when this run has no server or no driver."""
    dsn = os.environ.get(ENV)
    if not dsn:
        pytest.skip(f"no PostgreSQL server: {ENV} is not set (.ci/run starts one)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'accelbench[postgres]')")
    return dsn


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@contextmanager
def fresh_database(dsn: str | None = None) -> Iterator[str]:
    """A new empty database on the server; yields its URL, drops it afterwards."""
    import psycopg

    dsn = dsn or admin_dsn()
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(dsn, name)
    finally:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    """Run one statement on the database at ``url`` (outside accelbench) and return its rows."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(query, params)
        return cur.fetchall() if cur.description else []


class PrivateServer:
    """A server of the test's own (``.ci/postgres``), for tests that stop and restart it."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as
        # the postgres user, which must reach its data folder.
        self.folder = Path(tempfile.mkdtemp(prefix="accelbench-pg-")) / "server"
        os.chmod(self.folder.parent, 0o755)
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH")
        out = subprocess.run([str(ROOT / ".ci" / "postgres"), "start", str(self.folder)],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            pytest.skip(f"could not start a private PostgreSQL server: {out.stderr.strip()}")
        self.dsn = out.stdout.strip()

    def _pg_ctl(self, *args: str) -> None:
        cmd = ["pg_ctl", "-D", str(self.folder / "data"), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def kill(self) -> None:
        """Stop at once, as a crash would (``-m immediate``: no checkpoint, clients cut off)."""
        self._pg_ctl("-m", "immediate", "-w", "stop")

    def start(self) -> None:
        port = urlsplit(self.dsn).port
        self._pg_ctl("-l", str(self.folder / "server.log"), "-w", "-t", "30", "-o",
                     f"-c listen_addresses=127.0.0.1 -p {port} "
                     f"-c unix_socket_directories='{self.folder}' -c fsync=off", "start")

    def remove(self) -> None:
        subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", str(self.folder)],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.folder.parent, ignore_errors=True)
