"""The turn's transaction (bot/storage/turns.py): on SQLite the engine's statements run on the
driver's connection and a handler's ORM session joins them only when asked for; everything a
turn writes is committed together or not at all, and reads back as the ORM would have written
it. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.core import Context, Incoming, Reply, Router
from bot.search_log import record_search
from bot.storage.db import Database
from bot.storage.models import Conversation, InboundMessage, SearchLogEntry, as_utc, utcnow
from tests.conftest import make_engine


def writing_router() -> Router:
    router = Router("writing")

    @router.payload("t:state")
    async def state(ctx: Context) -> Reply:
        ctx.state.step = "thử.bước"
        ctx.state.data = {"tên": "Nguyễn Văn Â", "n": [1, 2.5, None], "ok": True}
        ctx.set_locale("en")
        await record_search(
            ctx.store, channel="telegram", unit="xa-a", query="giấy khai sinh", codes=["1.1"]
        )
        return Reply("state")

    @router.payload("t:orm")
    async def orm(ctx: Context) -> Reply:
        ctx.session.add(SearchLogEntry(channel="telegram", unit="xa-a", query="qua ORM", results=0))
        ctx.state.data["orm"] = 1
        return Reply("orm")

    @router.payload("t:read")
    async def read(ctx: Context) -> Reply:
        count = await ctx.session.scalar(select(func.count()).select_from(SearchLogEntry))
        return Reply(f"{count} searches")

    @router.payload("t:fail")
    async def fail(ctx: Context) -> Reply:
        ctx.session.add(SearchLogEntry(channel="telegram", unit="", query="lost", results=0))
        await ctx.session.flush()
        await record_search(ctx.store, channel="telegram", unit="", query="lost", codes=[])
        ctx.state.data["lost"] = True
        raise RuntimeError("the handler broke after writing")

    @router.payload("t:fail-direct")
    async def fail_direct(ctx: Context) -> Reply:
        await record_search(ctx.store, channel="telegram", unit="", query="lost too", codes=[])
        raise RuntimeError("the handler broke after writing, without the ORM")

    @router.payload("t:touch")
    async def touch(ctx: Context) -> Reply:
        assert ctx.session is not None  # opened, never used
        ctx.state.data["touched"] = True
        return Reply("touched")

    @router.payload("t:conflict")
    async def conflict(ctx: Context) -> Reply:
        # A row that already exists: the flush fails inside the database.
        ctx.session.add(InboundMessage(channel="telegram", message_id="m:1", received_at=utcnow()))
        await ctx.session.flush()
        return Reply("unreachable")

    return router


def message(payload: str, message_id: str) -> Incoming:
    return Incoming("telegram", "chat-9", "user-9", payload=payload, message_id=message_id)


async def conversation(db: Database) -> Conversation:
    async with db.session() as session:
        return await session.get(Conversation, ("telegram", "chat-9"))


async def searches(db: Database) -> list[str]:
    async with db.session() as session:
        return list(await session.scalars(select(SearchLogEntry.query).order_by(SearchLogEntry.id)))


async def test_what_a_turn_writes_reads_back_as_the_orm_wrote_it(databases) -> None:
    db = await databases.open()
    engine = make_engine(db, extra=[writing_router()])
    before = utcnow()
    assert [r.text for r in await engine.handle(message("t:state", "m:1"))] == ["state"]
    row = await conversation(db)
    assert row.step == "thử.bước" and row.locale == "en" and row.message_count == 1
    assert row.data == {"tên": "Nguyễn Văn Â", "n": [1, 2.5, None], "ok": True}
    assert row.choices == [] and row.user_id == "user-9"
    assert as_utc(row.updated_at) >= before.replace(microsecond=0)
    async with db.session() as session:
        entry = await session.scalar(select(SearchLogEntry))
        inbound = await session.scalar(select(InboundMessage))
    assert (entry.channel, entry.unit, entry.query, entry.top_code, entry.results) == (
        "telegram",
        "xa-a",
        "giấy khai sinh",
        "1.1",
        1,
    )
    assert as_utc(entry.created_at) >= before.replace(microsecond=0)
    assert inbound.message_id == "m:1" and as_utc(inbound.received_at) >= before.replace(
        microsecond=0
    )


async def test_a_handlers_session_commits_with_the_state(databases) -> None:
    db = await databases.open()
    engine = make_engine(db, extra=[writing_router()])
    assert [r.text for r in await engine.handle(message("t:orm", "m:1"))] == ["orm"]
    assert [r.text for r in await engine.handle(message("t:read", "m:2"))] == ["1 searches"]
    assert await searches(db) == ["qua ORM"]
    row = await conversation(db)
    assert row.data == {"orm": 1} and row.message_count == 2


async def test_a_failing_handler_leaves_nothing_and_the_next_turn_works(databases) -> None:
    db = await databases.open()
    engine = make_engine(db, extra=[writing_router()])
    await engine.handle(message("t:state", "m:1"))
    failed = await engine.handle_turn(message("t:fail", "m:2"))
    assert "Sorry" in failed.replies[0].text  # in the conversation's language (English)
    conflict = await engine.handle_turn(message("t:conflict", "m:3"))
    assert "Sorry" in conflict.replies[0].text
    direct = await engine.handle_turn(message("t:fail-direct", "m:4"))
    assert "Sorry" in direct.replies[0].text
    # Nothing of either turn stayed: rows, state, message ids (so a re-delivery is handled).
    assert await searches(db) == ["giấy khai sinh"]
    row = await conversation(db)
    assert "lost" not in row.data and row.message_count == 1
    async with db.session() as session:
        ids = set(await session.scalars(select(InboundMessage.message_id)))
    assert ids == {"m:1"}
    assert [r.text for r in await engine.handle(message("t:orm", "m:2"))] == ["orm"]
    assert await searches(db) == ["giấy khai sinh", "qua ORM"]


async def test_after_a_turn_another_process_can_write_at_once(databases) -> None:
    """Whatever a handler did with the session (here: only read), the turn ends its
    transaction: on SQLite another connection gets the write lock without waiting."""
    db = await databases.open()
    engine = make_engine(db, extra=[writing_router()])
    await engine.handle(message("t:read", "m:1"))
    await engine.handle(message("t:state", "m:2"))
    await engine.handle(message("t:touch", "m:3"))
    if db.is_sqlite:  # a writer that gives up after half a second
        other = Database(db.url, connect_args={"timeout": 0.5})
    else:
        other = await databases.open()
    async with other.write_transaction() as session:
        session.add(SearchLogEntry(channel="web", unit="", query="other", results=0))
    if db.is_sqlite:
        await other.dispose()
    assert await searches(db) == ["giấy khai sinh", "other"]
    row = await conversation(db)
    assert row.message_count == 3 and row.data["touched"] is True
