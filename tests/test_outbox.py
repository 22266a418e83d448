"""The outbox: queued pushes survive until delivered; a failed delivery is retried later and
given up after MAX_ATTEMPTS; two dispatchers (two processes) never send one message twice."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, update

from bot.channels.telegram import TelegramChannel
from bot.core import Button, Reply
from bot.outbox import MAX_ATTEMPTS, OutboxDispatcher, enqueue
from bot.storage.models import OutboxMessage, as_utc, utcnow
from tests.conftest import make_engine
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram_helpers import TOKEN, webhook_settings


@pytest.fixture
async def api():
    fake = FakeBotAPI(TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def telegram(api, db):
    settings = webhook_settings(api, db)
    channel = TelegramChannel(make_engine(db), settings)
    channel.retry_delay = 0.01
    await channel.start()
    yield channel
    await channel.stop()


async def queue(db, chat: int, text: str) -> None:
    async with db.write_transaction() as session:
        enqueue(session, "telegram", f"{chat}:{chat}", [Reply(text, [Button("OK", "menu")])], "t")


async def rows(db) -> list[OutboxMessage]:
    async with db.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_queued_messages_are_sent_in_order_and_marked(api, telegram, db) -> None:
    for n in range(3):
        await queue(db, 77, f"tin {n}")
    assert await OutboxDispatcher(db, {"telegram": telegram}).run_once() == 3
    assert [c.text for c in api.sent(77)] == ["tin 0", "tin 1", "tin 2"]
    assert api.sent(77)[0].buttons == [("OK", "menu")]
    assert all(row.sent_at is not None for row in await rows(db))
    # Nothing is sent twice.
    assert await OutboxDispatcher(db, {"telegram": telegram}).run_once() == 0


async def test_a_failed_delivery_is_retried_later_then_given_up(api, telegram, db) -> None:
    await queue(db, 78, "xin chào")
    dispatcher = OutboxDispatcher(db, {"telegram": telegram})
    api.fail("sendMessage", "blocked")  # 403: the user blocked the bot (not retried at once)
    assert await dispatcher.run_once() == 0
    (row,) = await rows(db)
    assert row.attempts == 1 and row.sent_at is None and as_utc(row.next_attempt_at) > utcnow()
    assert await dispatcher.run_once() == 0  # not due yet
    async with db.write_transaction() as session:
        await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
    assert await dispatcher.run_once() == 1
    assert [c.text for c in api.sent(78)] == ["xin chào"]

    await queue(db, 79, "không tới được")
    for _ in range(MAX_ATTEMPTS):
        api.fail("sendMessage", "blocked")
        async with db.write_transaction() as session:
            await session.execute(update(OutboxMessage).values(next_attempt_at=utcnow()))
        await dispatcher.run_once()
    last = (await rows(db))[-1]
    assert last.attempts == MAX_ATTEMPTS and last.failed_at is not None and last.sent_at is None


async def test_two_dispatchers_send_each_message_once(api, telegram, databases) -> None:
    db = telegram.engine.db
    other_db = await databases.open()  # another process's connection pool
    for n in range(20):
        await queue(db, 80, f"tin {n}")
    first = OutboxDispatcher(db, {"telegram": telegram})
    second = OutboxDispatcher(other_db, {"telegram": telegram})
    sent = await asyncio.gather(first.run_once(), second.run_once())
    assert sum(sent) == 20
    await api.quiet(0.2)
    assert sorted(c.text for c in api.sent(80)) == sorted(f"tin {n}" for n in range(20))
