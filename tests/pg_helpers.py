"""Throwaway PostgreSQL databases for a bot in a subprocess (which cannot be given the search
path of the fixtures' throwaway schemas), for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import AsyncIterator


def _dsn(admin_url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", admin_url)


async def _admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(admin_url: str, prefix: str = "motcua_t") -> str:
    """Create an empty database on the server of ``admin_url``; its URL (libpq form)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    await _admin(admin_url, f'CREATE DATABASE "{name}"')
    return _dsn(admin_url).rsplit("/", 1)[0] + "/" + name


async def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str, prefix: str = "motcua_t") -> AsyncIterator[str]:
    """A throwaway database, dropped at the end."""
    url = await create_database(admin_url, prefix)
    try:
        yield url
    finally:
        await drop_database(admin_url, url)


class PrivatePostgres:
    """A PostgreSQL server of our own (initdb in a temporary folder, its own port), for fault
    tests that stop and restart it under load without touching the shared server.

    Needs the Debian server binaries and, when run as root (PostgreSQL refuses to), the
    ``postgres`` system account to run it as. ``available()`` says why not, if not.
    """

    def __init__(self) -> None:
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="motcua-pg-")
        self.data = f"{self.dir}/data"
        self.port = 0

    @staticmethod
    def binaries() -> str | None:
        import glob

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        return found[-1].rsplit("/", 1)[0] if found else None

    @staticmethod
    def runuser() -> str | None:
        import shutil

        for candidate in (shutil.which("runuser"), "/usr/sbin/runuser", "/sbin/runuser"):
            if candidate and os.path.exists(candidate):
                return candidate
        return None

    @classmethod
    def available(cls) -> str | None:
        """None if a private server can be run here, else the reason."""
        import pwd

        if cls.binaries() is None:
            return "the PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root and there is no postgres account to run the server as"
            if cls.runuser() is None:
                return "running as root and runuser (util-linux) is missing"
        return None

    def _run(self, *args: str, check: bool = True) -> None:
        import subprocess

        command = [f"{self.binaries()}/{args[0]}", *args[1:]]
        if os.geteuid() == 0:
            command = [self.runuser(), "-u", "postgres", "--", *command]
        subprocess.run(command, check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        import shutil
        import socket

        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-w", "-l", f"{self.dir}/log", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        import shutil

        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
