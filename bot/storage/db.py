"""Database engine and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.storage.sqlite_inloop import async_creator
from bot.storage.turns import SessionTurns, SqliteTurns

# Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT = 30

# PostgreSQL connections per process (MOTCUA_DATABASE_POOL_SIZE), and how many more it may open
# for a moment. Processes × (pool + overflow) must stay under the server's max_connections.
DEFAULT_POOL_SIZE = 15
POOL_OVERFLOW = 5

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str | URL) -> URL:
    """Return ``url`` with an async driver (sqlite -> aiosqlite, postgresql -> asyncpg).

    Raises ValueError with a short reason when the URL cannot be used.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except Exception as exc:  # sqlalchemy raises ArgumentError for garbage
        raise ValueError(f"not a database URL ({exc})") from None
    backend = parsed.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database '{backend}' (use sqlite or postgresql)")
    wanted = ASYNC_DRIVERS[backend]
    if parsed.drivername not in (backend, wanted):
        raise ValueError(f"driver '{parsed.drivername}' is not async; use '{wanted}://'")
    parsed = parsed.set(drivername=wanted)
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ValueError("an in-memory SQLite database cannot be shared; give a file path")
    if backend == "postgresql" and not parsed.database:
        raise ValueError("the PostgreSQL URL names no database")
    return parsed


class Database:
    """One async engine plus a session factory."""

    def __init__(
        self,
        url: str | URL,
        *,
        connect_args: dict[str, Any] | None = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.url = async_url(url)
        kwargs: dict[str, Any] = {"connect_args": dict(connect_args or {})}
        if self.is_sqlite:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            timeout = kwargs["connect_args"].pop("timeout", SQLITE_BUSY_TIMEOUT)
            # sqlite3 in the loop's thread instead of aiosqlite's worker thread: see the module.
            kwargs["async_creator"] = async_creator(self.url.database, timeout)
        else:
            kwargs["pool_pre_ping"] = True
            # Connections kept open per process. Under load turns overlap (a turn's statements
            # wait for the event loop between them); past the pool, SQLAlchemy opens "overflow"
            # connections and closes them again, and each one costs PostgreSQL a new backend.
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = POOL_OVERFLOW
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_on_connect)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing writers here, rather than letting each
        # connection poll the busy timeout with growing sleeps, keeps latency flat under load.
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None
        self._turns: SqliteTurns | SessionTurns | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def session(self) -> AsyncSession:
        return self.sessionmaker()

    def sqlite_writer(self) -> contextlib.AbstractAsyncContextManager:
        """This process's queue of SQLite writers (a no-op on PostgreSQL)."""
        return self._sqlite_writer if self._sqlite_writer is not None else _NO_LOCK

    @property
    def turns(self) -> SqliteTurns | SessionTurns:
        """Where dialogue turns write (bot/storage/turns.py)."""
        if self._turns is None:
            self._turns = SqliteTurns(self) if self.is_sqlite else SessionTurns(self)
        return self._turns

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that will write; committed on success, else rolled back."""
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.sqlite_writer())
            session = await stack.enter_async_context(self.session())
            await stack.enter_async_context(session.begin())
            yield session

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return self.url.render_as_string(hide_password=True)

    async def dispose(self) -> None:
        if self._turns is not None:
            await self._turns.close()
            self._turns = None
        await self.engine.dispose()


_NO_LOCK = contextlib.nullcontext()
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "is full")


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the database could not be reached or used
    right now — refused or dropped connections, a server shutting down or starting up, a pool
    or lock timeout — rather than a fault in what was asked of it: worth trying again shortly."""
    from sqlalchemy import exc as sa_exc

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, sqlite3.OperationalError):
            # SQLite says "no such table" with the same class as "database is locked".
            return any(word in str(exc).lower() for word in _SQLITE_UNAVAILABLE)
        if isinstance(exc, sa_exc.OperationalError) and isinstance(exc.orig, sqlite3.Error):
            exc, seen = exc.orig, seen + 1
            continue
        if isinstance(
            exc,
            (
                sa_exc.OperationalError,
                sa_exc.InterfaceError,
                sa_exc.TimeoutError,
                sa_exc.DisconnectionError,
                ConnectionError,
                TimeoutError,
            ),
        ):
            return True
        if type(exc).__module__.startswith("asyncpg") and _asyncpg_unavailable(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def unavailable_reason(exc: BaseException) -> str:
    """The error's class and first line, for a log line: without SQLAlchemy's statement and
    parameters, which may hold what a citizen wrote."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).splitlines()[0][:200] if str(orig) else ""
    return f"{type(orig).__name__}: {first}"


def _asyncpg_unavailable(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        (
            asyncpg.exceptions.PostgresConnectionError,  # incl. "the database is starting up"
            asyncpg.exceptions.OperatorInterventionError,  # incl. "terminating connection"
            asyncpg.exceptions.ConnectionDoesNotExistError,
            asyncpg.exceptions.InternalClientError,
        ),
    )


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work while one writer writes; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
