"""The transaction of one dialogue turn: the engine's own statements and the handler's writes,
committed together.

Every message runs the same three statements (record the platform's message id, lock the
conversation and read its state, save the new state) and most handlers write nothing else, or
one search-log row. Through SQLAlchemy's ORM session those cost about 0.75 ms of CPU per
message on SQLite — several times the statements themselves — and the bot's throughput per
process is bounded by CPU (docs/BENCHMARKS.md, Telegram webhook). So there are two stores:

- ``SqliteTurns``: one connection kept for turns (SQLite has one writer at a time, and this
  process queues its writers anyway: ``Database.write_transaction``). The statements are
  SQLAlchemy Core statements compiled once for the dialect and run on the sqlite3 connection
  itself, with SQLAlchemy's own type processing (JSON, DATETIME), so what they write reads back
  exactly as if the ORM had written it. A handler that asks for ``session`` gets an ORM session
  on the same connection, in the same transaction, opened only then.
- ``SessionTurns`` (PostgreSQL, and any other database): the same statements through an ORM
  session, which is the turn's session. PostgreSQL deployments scale out with worker processes.

Both hand out ``TurnTransaction``: ``first_delivery``, ``lock_conversation``, ``save_state``,
``insert`` and ``session``. The engine's tests run on both databases.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from bot.storage.models import Conversation, InboundMessage, utcnow

if TYPE_CHECKING:
    from bot.storage.db import Database

# Conversation columns that make up the dialogue state, in this order.
STATE_COLUMNS = ("locale", "step", "data", "choices", "message_count")


class _Statements:
    """The engine's SQL for one dialect, built once: building SQLAlchemy statements costs more
    than running them on a warm connection."""

    def __init__(self, dialect: str) -> None:
        insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = Conversation.__table__
        self.returned = [table.c[name] for name in STATE_COLUMNS]
        upsert = insert_for(table).values(
            channel=bindparam("channel"),
            conversation_id=bindparam("conversation_id"),
            user_id=bindparam("user_id"),
            data={},
            choices=[],
            message_count=0,
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        # The upsert is the first write of the transaction after the message id: on SQLite it
        # holds the database write lock (writers are also queued in process), on PostgreSQL it
        # locks the row until commit; either way a second process handling the same chat waits
        # here, and RETURNING saves a separate SELECT ... FOR UPDATE.
        self.upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.channel, table.c.conversation_id],
            set_={"updated_at": upsert.excluded.updated_at},
        ).returning(*self.returned)
        self.save = (
            update(table)
            .where(
                table.c.channel == bindparam("b_channel"),
                table.c.conversation_id == bindparam("b_conversation_id"),
            )
            .values(
                user_id=bindparam("b_user_id"),
                updated_at=bindparam("b_now"),
                **{
                    name: bindparam(f"b_{name}", type_=table.c[name].type) for name in STATE_COLUMNS
                },
            )
        )
        inbound = InboundMessage.__table__
        self.inbound = (
            insert_for(inbound)
            .values(
                channel=bindparam("channel"),
                message_id=bindparam("message_id"),
                received_at=bindparam("now"),
            )
            .on_conflict_do_nothing(index_elements=[inbound.c.channel, inbound.c.message_id])
        )


def _inbound_params(channel: str, message_id: str) -> dict[str, Any]:
    return {"channel": channel, "message_id": message_id, "now": utcnow()}


def _lock_params(channel: str, conversation_id: str, user_id: str) -> dict[str, Any]:
    return {
        "channel": channel,
        "conversation_id": conversation_id,
        "user_id": user_id,
        "now": utcnow(),
    }


def _save_params(
    channel: str, conversation_id: str, user_id: str, state: dict[str, Any]
) -> dict[str, Any]:
    params = {f"b_{name}": state[name] for name in STATE_COLUMNS}
    params.update(
        b_channel=channel, b_conversation_id=conversation_id, b_user_id=user_id, b_now=utcnow()
    )
    return params


class TurnTransaction:
    """What the engine and the handlers of one turn write through (see the module)."""

    async def first_delivery(self, channel: str, message_id: str) -> bool:
        """Record the platform's id of a message; False if it was recorded before."""
        raise NotImplementedError

    async def lock_conversation(
        self, channel: str, conversation_id: str, user_id: str
    ) -> dict[str, Any]:
        """Create the conversation row if missing, lock it until commit, return its state
        (``STATE_COLUMNS``)."""
        raise NotImplementedError

    async def save_state(
        self, channel: str, conversation_id: str, user_id: str, state: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    async def insert(self, table: Table, values: dict[str, Any]) -> None:
        """Add one row in this transaction. Give every value: column defaults are not applied
        on SQLite's direct path."""
        raise NotImplementedError

    @property
    def session(self) -> AsyncSession:
        """An ORM session in this transaction (opened on first use on SQLite)."""
        raise NotImplementedError


# -- any database, through the ORM session ---------------------------------------------------


class _SessionTransaction(TurnTransaction):
    def __init__(self, session: AsyncSession, statements: _Statements) -> None:
        self._session = session
        self._sql = statements

    @property
    def session(self) -> AsyncSession:
        return self._session

    async def first_delivery(self, channel: str, message_id: str) -> bool:
        result = await self._session.execute(
            self._sql.inbound, _inbound_params(channel, message_id)
        )
        return result.rowcount == 1

    async def lock_conversation(
        self, channel: str, conversation_id: str, user_id: str
    ) -> dict[str, Any]:
        params = _lock_params(channel, conversation_id, user_id)
        row = (await self._session.execute(self._sql.upsert, params)).one()
        return dict(zip(STATE_COLUMNS, row, strict=True))

    async def save_state(
        self, channel: str, conversation_id: str, user_id: str, state: dict[str, Any]
    ) -> None:
        params = _save_params(channel, conversation_id, user_id, state)
        await self._session.execute(self._sql.save, params)

    async def insert(self, table: Table, values: dict[str, Any]) -> None:
        await self._session.execute(insert(table).values(**values))


class SessionTurns:
    """Turns through an ORM session in ``Database.write_transaction``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._statements = _Statements(db.engine.dialect.name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[TurnTransaction]:
        async with self.db.write_transaction() as session:
            yield _SessionTransaction(session, self._statements)

    async def close(self) -> None:
        return None


# -- SQLite, on the driver's connection --------------------------------------------------------


class _Compiled:
    """A Core statement compiled once for SQLite and run on the sqlite3 connection, with the
    bind and result processing SQLAlchemy itself would apply."""

    def __init__(self, statement: Any, dialect: Any, returned: Sequence[Column] = ()) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self._binds = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            processor = dialect.type_descriptor(bind.type).bind_processor(dialect)
            self._binds.append((name, bind.value, processor))
        self._results = [
            dialect.type_descriptor(column.type).result_processor(dialect, None)
            for column in returned
        ]

    def parameters(self, values: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, default, processor in self._binds:
            value = values[name] if name in values else default
            out.append(processor(value) if processor is not None else value)
        return tuple(out)

    def row(self, raw: Sequence[Any]) -> list[Any]:
        return [
            processor(value) if processor is not None else value
            for processor, value in zip(self._results, raw, strict=True)
        ]


class _SqliteTransaction(TurnTransaction):
    def __init__(self, turns: SqliteTurns, connection: AsyncConnection, driver: Any) -> None:
        self._turns = turns
        self._connection = connection
        self._driver = driver  # bot.storage.sqlite_inloop.InLoopConnection
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            # Same connection: its statements join the sqlite3 transaction the direct
            # statements opened, and one commit (below) ends both.
            self._session = AsyncSession(bind=self._connection, expire_on_commit=False)
        return self._session

    async def _run(self, compiled: _Compiled, values: dict[str, Any]) -> Any:
        return await self._driver.execute(compiled.sql, compiled.parameters(values))

    async def first_delivery(self, channel: str, message_id: str) -> bool:
        cursor = await self._run(self._turns.inbound, _inbound_params(channel, message_id))
        return cursor.rowcount == 1

    async def lock_conversation(
        self, channel: str, conversation_id: str, user_id: str
    ) -> dict[str, Any]:
        params = _lock_params(channel, conversation_id, user_id)
        cursor = await self._run(self._turns.upsert, params)
        row = await cursor.fetchone()
        await cursor.close()
        return dict(zip(STATE_COLUMNS, self._turns.upsert.row(row), strict=True))

    async def save_state(
        self, channel: str, conversation_id: str, user_id: str, state: dict[str, Any]
    ) -> None:
        params = _save_params(channel, conversation_id, user_id, state)
        await self._run(self._turns.save, params)

    async def insert(self, table: Table, values: dict[str, Any]) -> None:
        await self._run(self._turns.insert_for(table, values), values)

    async def commit(self) -> None:
        if self._session is not None:
            # Flushes what the handler added and, if the session started a transaction of its
            # own on the connection, commits it (the sqlite3 transaction under it).
            await self._session.commit()
        if self._driver.in_transaction:
            await self._driver.commit()

    async def rollback(self) -> None:
        try:
            if self._session is not None:
                await self._session.rollback()
        finally:
            await self._driver.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class SqliteTurns:
    """Turns on one SQLite connection kept for them (see the module)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.engine.sync_engine.dialect
        self._dialect = dialect
        sql = _Statements("sqlite")
        self.inbound = _Compiled(sql.inbound, dialect)
        self.upsert = _Compiled(sql.upsert, dialect, sql.returned)
        self.save = _Compiled(sql.save, dialect)
        self._inserts: dict[tuple[str, tuple[str, ...]], _Compiled] = {}
        self._connection: AsyncConnection | None = None
        self._driver: Any = None  # the sqlite3 adapter under _connection

    def insert_for(self, table: Table, values: dict[str, Any]) -> _Compiled:
        key = (table.name, tuple(values))
        found = self._inserts.get(key)
        if found is None:
            statement = insert(table).values({name: bindparam(name) for name in values})
            found = self._inserts[key] = _Compiled(statement, self._dialect)
        return found

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[TurnTransaction]:
        async with self.db.sqlite_writer():
            if self._connection is None:
                self._connection = await self.db.engine.connect()
                self._driver = (await self._connection.get_raw_connection()).driver_connection
            connection, driver = self._connection, self._driver
            tx = _SqliteTransaction(self, connection, driver)
            try:
                yield tx
                await tx.commit()
            except BaseException:
                try:
                    await tx.rollback()
                except Exception:
                    # A connection that cannot even roll back is dropped; the next turn opens
                    # a new one.
                    self._connection = None
                    with contextlib.suppress(Exception):
                        await connection.invalidate()
                raise
            finally:
                await tx.close()

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()
