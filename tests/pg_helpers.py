"""Throwaway PostgreSQL databases for a bot in a subprocess (which cannot be given the search
path of the fixtures' throwaway schemas), for tests and benchmarks."""

from __future__ import annotations

import contextlib
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
