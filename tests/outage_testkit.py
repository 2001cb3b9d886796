"""Servers of a test's own for outage tests (issue 22): a PostgreSQL cluster and a Redis on free
ports, in the test's temporary folder, that the test stops and starts at will. The shared
servers (../shared/SERVICES.md) are never stopped.

PostgreSQL refuses to run as root: as root the cluster is run by the ``postgres`` user
(``runuser``), in a folder of its own under the system's temporary folder (pytest's are the
root user's alone), removed by :meth:`PrivatePostgres.close`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from market_testkit import free_port, wait_until

__all__ = ["PrivatePostgres", "PrivateRedis", "postgres_bin", "private_postgres", "private_redis"]


def postgres_bin() -> Path | None:
    """The folder of the newest installed PostgreSQL's server programs (initdb, pg_ctl)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: ``start``/``stop`` it, ``url`` for SQLAlchemy."""

    def __init__(self) -> None:
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.bin = binaries
        self.root = Path(tempfile.mkdtemp(prefix="cdb-test-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed: {result.stderr.strip() or result.stdout}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        """Stop it if it runs, and remove its folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A Redis of the test's own: ``start``/``stop`` it, ``url`` for the bus. Its streams
    outlive a stop (append-only file, fsynced on every write), as a production Redis's do."""

    def __init__(self, root: Path, password: str | None = None) -> None:
        self.root = root / "redis"
        self.root.mkdir()
        self.port = free_port()
        self.password = password
        """With one, the server requires it (``requirepass``) and ``url`` carries it."""
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.root),
                *(["--requirepass", self.password] if self.password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, 10, "the test's Redis to start")

    def _answers(self) -> bool:
        env = {**os.environ, "REDISCLI_AUTH": self.password} if self.password else None
        ping = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False, env=env
        )
        return ping.stdout.strip() == b"PONG"

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None

    def close(self) -> None:
        self.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started PostgreSQL of the test's own (skips without PostgreSQL's server programs,
    fails instead with ``CDB_REQUIRE_SERVICES=1``); removed afterwards."""
    if postgres_bin() is None:
        if os.environ.get("CDB_REQUIRE_SERVICES") == "1":
            pytest.fail("PostgreSQL's server programs are not installed")
        pytest.skip("PostgreSQL's server programs are not installed")
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started Redis of the test's own, in ``tmp_path``; stopped afterwards."""
    server = PrivateRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.close()
