"""Messages pushed into a web chat: queued in the outbox, taken by the page's poll of
/api/updates exactly once, and only by the chat whose cookie they were queued for."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.app import _background_tasks, build_web_app
from bot.channels.web import COOKIE, WebChannel, conversation_id
from bot.core import Button, Reply
from bot.outbox import OutboxDispatcher, enqueue, take_pending
from bot.storage.models import OutboxMessage
from tests.conftest import make_engine


def web_app(engine):
    return build_web_app(engine.services.settings, engine)


async def queue(db, chat: str, *replies: Reply) -> None:
    async with db.write_transaction() as session:
        enqueue(session, "web", chat, replies, "test")


async def open_chat(client) -> str:
    """Say hello like the page does; return the new chat's conversation id."""
    response = await client.post("/api/messages", json={"payload": "menu"})
    assert response.status == 200
    return conversation_id(response.cookies[COOKIE].value)


async def poll(client) -> list[dict]:
    response = await client.get("/api/updates")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    return (await response.json())["messages"]


async def test_a_pushed_message_is_returned_once_with_its_buttons(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    chat = await open_chat(client)
    assert await poll(client) == []

    answer = Reply("Cán bộ đã trả lời phản ánh của bạn.", [Button("Về menu", "menu")])
    await queue(engine.db, chat, answer, Reply("Cảm ơn bạn."))
    assert await poll(client) == [
        {
            "text": "Cán bộ đã trả lời phản ánh của bạn.",
            "buttons": [{"label": "Về menu", "payload": "menu"}],
        },
        {"text": "Cảm ơn bạn.", "buttons": []},
    ]
    assert await poll(client) == []

    # A pushed button answers like any other: its payload goes back through POST /api/messages.
    data = await (await client.post("/api/messages", json={"payload": "menu"})).json()
    assert data["replies"][0]["text"].startswith("Xin chào! Tôi là trợ lý ảo")


async def test_messages_come_in_the_order_they_were_queued(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    chat = await open_chat(client)
    for n in range(3):
        await queue(engine.db, chat, Reply(f"tin {n}"))
    assert [m["text"] for m in await poll(client)] == ["tin 0", "tin 1", "tin 2"]
    async with engine.db.session() as session:
        sent = await session.scalars(select(OutboxMessage.sent_at))
        assert all(when is not None for when in sent)


async def test_another_chat_or_no_cookie_gets_nothing(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    chat = await open_chat(client)
    await queue(engine.db, chat, Reply("chỉ cho bạn"))

    stranger = await aiohttp_client(web_app(engine))
    await open_chat(stranger)
    assert await poll(stranger) == []

    nobody = await aiohttp_client(web_app(engine))
    response = await nobody.get("/api/updates")
    assert response.status == 200 and await response.json() == {"messages": []}
    assert COOKIE not in response.cookies, "a poll must never start a conversation"
    forged = await nobody.get("/api/updates", cookies={COOKIE: "<script>"})
    assert await forged.json() == {"messages": []}
    assert COOKIE not in forged.cookies

    # A message for a Telegram chat with the same id is not the web chat's either.
    async with engine.db.write_transaction() as session:
        enqueue(session, "telegram", chat, [Reply("telegram")], "test")
    assert [m["text"] for m in await poll(client)] == ["chỉ cho bạn"]


async def test_concurrent_polls_take_each_message_once(databases) -> None:
    """Polls of one chat race over two servers with their own pools (two processes)."""
    engines = [make_engine(await databases.open()) for _ in range(2)]
    async with (
        TestServer(web_app(engines[0])) as first,
        TestServer(web_app(engines[1])) as second,
    ):
        urls = [str(server.make_url("/api/updates")) for server in (first, second)]
        token = "t" * 32
        chat = conversation_id(token)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, cookies={COOKIE: token}) as session:

            async def one(url: str) -> list[str]:
                async with session.get(url) as response:
                    assert response.status == 200
                    return [m["text"] for m in (await response.json())["messages"]]

            for round_ in range(5):
                expected = [f"{round_}.{n}" for n in range(3)]
                for text in expected:
                    await queue(engines[0].db, chat, Reply(text))
                taken = await asyncio.gather(*(one(urls[i % 2]) for i in range(8)))
                assert sorted(text for texts in taken for text in texts) == expected
                for texts in taken:  # each poll's share keeps the queue's order
                    assert texts == sorted(texts)


async def test_the_dispatcher_leaves_web_messages_to_the_page(db, engine) -> None:
    channel = WebChannel(engine)
    assert channel.can_push and channel.pull
    assert await channel.send("chat", [Reply("x")]) is False
    await queue(db, "chat", Reply("chờ trang web"))
    dispatcher = OutboxDispatcher(db, {"web": channel})
    assert await dispatcher.run_once() == 0
    assert [replies[0].text for _id, replies in await take_pending(db, "web", "chat")] == [
        "chờ trang web"
    ]


async def test_the_web_chat_may_offer_notifications(db, engine) -> None:
    """The app counts the web chat among the push channels, yet no dispatcher sends to it."""
    services = engine.services
    tasks = _background_tasks(services.settings, db, services, [WebChannel(engine)])
    assert "web" in services.push_channels
    dispatcher = next(task for task in tasks if isinstance(task, OutboxDispatcher))
    assert dispatcher.channels == {}
