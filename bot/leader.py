"""Which process of a deployment runs the once-only background jobs.

With several processes on one PostgreSQL database (``motcua run --workers N``, or separate
machines), the outbox dispatcher, the dossier notifier and housekeeping run in one of them: the
holder of a session-level advisory lock, taken on a connection of its own and kept for the
process's life. If that process dies, PostgreSQL ends its session, which frees the lock, and
another process takes it at its next try (every job tick asks). If the database restarts, the
holder's connection breaks; it stops leading until it wins the lock again.

On SQLite there is one process per database file (``--workers`` is refused there), so it
always leads. The jobs are safe to run twice anyway (rows are claimed with conditional
updates); the lock saves the duplicate work and keeps one process pushing to each chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.db import Database

log = logging.getLogger("motcua.leader")

LOCK_KEY = 0x6D6F7463756100  # "motcua" in hex: one key for the whole deployment


class Leadership:
    def __init__(self, db: Database, key: int = LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._connection: AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self.leading = db.is_sqlite

    async def check(self) -> bool:
        """Whether this process leads now; tries to take the lock if nobody holds it."""
        if self.db.is_sqlite:
            return True
        # One question at a time: the jobs share this object, and a second connection of
        # this process asking at the same moment would be refused the lock the first holds.
        async with self._lock:
            return await self._check()

    async def _check(self) -> bool:
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return self._set(True)
            except Exception:
                log.warning("lost the database connection that held the leader lock")
                await self._drop()
        try:
            connection = await self.db.engine.connect()
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            won = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
        except Exception as exc:
            log.warning("could not ask for the leader lock (%s)", type(exc).__name__)
            return self._set(False)
        if won:
            self._connection = connection
        else:
            await connection.close()
        return self._set(bool(won))

    def _set(self, leading: bool) -> bool:
        if leading != self.leading:
            log.info("this process %s the background jobs", "now runs" if leading else "left")
        self.leading = leading
        return leading

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self._set(False)
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.invalidate()
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        """Give the lock up (another process takes over at its next try)."""
        if self._connection is not None:
            try:
                await self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
                )
                await self._connection.close()
            except Exception:
                await self._drop()
            self._connection = None
        self.leading = self.db.is_sqlite
