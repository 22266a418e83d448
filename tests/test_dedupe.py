"""A platform update delivered more than once (Telegram re-sends after a timeout or a restart)
is handled once: its id is recorded in the same transaction as the conversation's new state."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.core import Context, Incoming, Reply, Router
from bot.storage.models import InboundMessage
from tests.conftest import make_engine


def counting_router(counter: dict[str, int]) -> Router:
    router = Router("counting")

    @router.payload("test:count")
    async def count(ctx: Context) -> Reply:
        counter["calls"] += 1
        await asyncio.sleep(0.005)  # let a concurrent duplicate reach the database meanwhile
        ctx.state.data["n"] = ctx.state.data.get("n", 0) + 1
        return Reply(str(ctx.state.data["n"]))

    @router.payload("test:fail-once")
    async def fail_once(ctx: Context) -> Reply:
        counter["failures"] = counter.get("failures", 0) + 1
        if counter["failures"] == 1:
            raise RuntimeError("database went away")
        return Reply("ok")

    return router


def update(message_id: str | None, payload: str = "test:count", channel: str = "telegram"):
    return Incoming(channel, "chat-1", "u1", payload=payload, message_id=message_id)


async def test_a_redelivered_update_gets_no_second_answer(databases) -> None:
    counter = {"calls": 0}
    engine = make_engine(await databases.open(), extra=[counting_router(counter)])
    first = await engine.handle_turn(update("bot:1"))
    again = await engine.handle_turn(update("bot:1"))
    later = await engine.handle_turn(update("bot:2"))
    assert [r.text for r in first.replies] == ["1"] and not first.duplicate
    assert again.replies == [] and again.duplicate
    assert [r.text for r in later.replies] == ["2"]
    assert counter["calls"] == 2
    # The same id on another channel is another message; no id means no deduplication.
    assert (await engine.handle_turn(update("bot:1", channel="zalo"))).replies
    assert (await engine.handle_turn(update(None))).replies
    assert (await engine.handle_turn(update(None))).replies


async def test_concurrent_deliveries_to_two_processes_are_handled_once(databases) -> None:
    """Two engines with their own connection pools stand for two worker processes."""
    counter = {"calls": 0}
    engines = [
        make_engine(await databases.open(), extra=[counting_router(counter)]) for _ in range(2)
    ]
    turns = await asyncio.gather(
        *(engines[i % 2].handle_turn(update(f"bot:{i // 4}")) for i in range(40))
    )
    assert counter["calls"] == 10
    assert sum(not t.duplicate for t in turns) == 10
    assert sorted(int(t.replies[0].text) for t in turns if not t.duplicate) == list(range(1, 11))
    async with engines[0].db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(InboundMessage))
    assert stored == 10


async def test_a_failed_update_is_not_marked_handled(databases) -> None:
    """If handling fails the transaction rolls back, id included: the re-delivery is handled."""
    counter = {"calls": 0}
    engine = make_engine(await databases.open(), extra=[counting_router(counter)])
    failed = await engine.handle_turn(update("bot:9", payload="test:fail-once"))
    assert "Xin lỗi" in failed.replies[0].text and not failed.duplicate
    retried = await engine.handle_turn(update("bot:9", payload="test:fail-once"))
    assert [r.text for r in retried.replies] == ["ok"]
