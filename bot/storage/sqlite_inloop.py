"""SQLite for SQLAlchemy's async engine without a thread per connection.

SQLAlchemy's async SQLite dialect talks to aiosqlite, which runs every call (cursor, execute,
fetch, close, commit) in a worker thread and hands the result back through the event loop:
four or five thread hand-offs per statement. On a local file a statement takes tens of
microseconds, so the hand-offs cost far more than the work, and under load each one waits for
a busy event loop while the single SQLite writer is held (docs/BENCHMARKS.md has the figures).

This module gives the dialect (through ``create_async_engine(async_creator=...)``) a connection
with aiosqlite's interface whose methods run ``sqlite3`` directly in the event loop thread.

Why running sqlite3 in the loop's thread is acceptable: a statement on a local file takes
microseconds, writers of this process are already queued one at a time
(``Database.write_transaction``) and readers never wait in WAL mode. The one long wait —
another process (or another engine) holding the write lock, say a catalogue import run beside
the bot — must not block the loop, so SQLite's own busy handler is off (``busy_timeout=0``) and
a statement that finds the database locked is retried here after an ``asyncio.sleep``, with
backoff, until the timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

_FIRST_WAIT = 0.001  # seconds; doubles up to _LONGEST_WAIT while the database stays locked
_LONGEST_WAIT = 0.05


async def _patiently(timeout: float, function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function``; while SQLite says the database is locked, wait without blocking the
    event loop and try again, until ``timeout`` seconds have passed."""
    deadline = None
    wait = _FIRST_WAIT
    while True:
        try:
            return function(*args)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            now = time.monotonic()
            deadline = deadline or now + timeout
            if now >= deadline:
                raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, _LONGEST_WAIT)


class _Cursor:
    """aiosqlite's Cursor interface over a sqlite3 cursor."""

    __slots__ = ("_cursor", "_timeout")

    def __init__(self, cursor: sqlite3.Cursor, timeout: float) -> None:
        self._cursor = cursor
        self._timeout = timeout

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict = ()) -> _Cursor:
        await _patiently(self._timeout, self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        # Retrying after a partial run would repeat rows: executemany waits on the first row
        # only because SQLite takes the write lock there, before any row is written.
        await _patiently(self._timeout, self._cursor.executemany, sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set isolation_level."""

    def put_nowait(self, item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller, as aiosqlite does
            future.set_exception(exc)


class InLoopConnection:
    """aiosqlite's Connection interface over a sqlite3 connection, in the calling thread."""

    def __init__(self, connection: sqlite3.Connection, timeout: float) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # falsy once closed
        self._timeout = timeout
        self._tx = _RunNow()

    def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor(), self._timeout)

    async def execute(self, sql: str, parameters: Sequence[Any] | dict = ()) -> _Cursor:
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    async def commit(self) -> None:
        await _patiently(self._timeout, self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value


def async_creator(path: str, timeout: float) -> Callable[[], Any]:
    """The ``async_creator`` for ``create_async_engine``: opens ``path`` in this thread."""

    async def connect() -> InLoopConnection:
        # timeout=0: SQLite's busy handler would sleep in the loop's thread; we wait instead.
        # check_same_thread=False: SQLAlchemy may close a pooled connection from the garbage
        # collector; every other use is on the event loop's thread.
        return InLoopConnection(sqlite3.connect(path, timeout=0, check_same_thread=False), timeout)

    return connect
