"""200 messages of one chat arriving together are handled one at a time and none is lost.

A test-only route reads a counter from the conversation state, yields to the event loop, then
writes counter + 1. Without the per-conversation lock the reads interleave and updates are lost;
an in-flight gauge also catches two handlers of the same chat running at once.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import build_web_app
from bot.channels.web import COOKIE
from bot.core import Context, Reply, Router
from tests.conftest import make_engine

MESSAGES = 200


def counting_router(gauge: dict[str, int]) -> Router:
    router = Router("counting")

    @router.payload("test:count")
    async def count(ctx: Context) -> Reply:
        gauge["in_flight"] += 1
        gauge["max_in_flight"] = max(gauge["max_in_flight"], gauge["in_flight"])
        try:
            seen = ctx.state.data.get("n", 0)
            await asyncio.sleep(0.001)  # let every other waiting message run if it can
            ctx.state.data["n"] = seen + 1
            return Reply(str(seen + 1))
        finally:
            gauge["in_flight"] -= 1

    return router


async def send_all(urls: list[str], token: str) -> list[int]:
    """POST MESSAGES messages at once, spread over the given servers, all as one chat."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, cookies={COOKIE: token}) as session:

        async def one(i: int) -> int:
            async with session.post(urls[i % len(urls)], json={"payload": "test:count"}) as resp:
                assert resp.status == 200
                data = await resp.json()
                return int(data["replies"][0]["text"])

        return await asyncio.gather(*(one(i) for i in range(MESSAGES)))


async def test_one_chat_is_serialised_through_the_web_endpoint(databases) -> None:
    gauge = {"in_flight": 0, "max_in_flight": 0}
    engine = make_engine(await databases.open(), extra=[counting_router(gauge)])
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        counts = await send_all([str(server.make_url("/api/messages"))], "t" * 32)
    assert sorted(counts) == list(range(1, MESSAGES + 1)), "lost or duplicated updates"
    assert gauge["max_in_flight"] == 1


async def test_two_processes_sharing_the_database_still_serialise(databases) -> None:
    """Two engines with their own pools and in-process locks stand for two worker processes;
    only the database lock can keep them apart."""
    gauge = {"in_flight": 0, "max_in_flight": 0}
    engines = [
        make_engine(await databases.open(), extra=[counting_router(gauge)]) for _ in range(2)
    ]
    async with (
        TestServer(build_web_app(engines[0].services.settings, engines[0])) as first,
        TestServer(build_web_app(engines[1].services.settings, engines[1])) as second,
    ):
        urls = [str(first.make_url("/api/messages")), str(second.make_url("/api/messages"))]
        counts = await send_all(urls, "u" * 32)
    assert sorted(counts) == list(range(1, MESSAGES + 1)), "lost or duplicated updates"
    assert gauge["max_in_flight"] == 1


async def test_different_chats_do_not_wait_for_each_other(sqlite_db) -> None:
    """Locks are per conversation: many chats progress together and each keeps its own count."""
    gauge = {"in_flight": 0, "max_in_flight": 0}
    engine = make_engine(sqlite_db, extra=[counting_router(gauge)])
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        url = str(server.make_url("/api/messages"))
        results = await asyncio.gather(*(send_chat(url, f"chat{i:02d}" * 4) for i in range(5)))
    for counts in results:
        assert sorted(counts) == list(range(1, 11))


async def send_chat(url: str, token: str) -> list[int]:
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as session:

        async def one() -> int:
            async with session.post(url, json={"payload": "test:count"}) as resp:
                return int((await resp.json())["replies"][0]["text"])

        return await asyncio.gather(*(one() for _ in range(10)))


async def test_another_process_holding_the_sqlite_write_lock_does_not_freeze_the_bot(
    sqlite_db,
) -> None:
    """SQLite runs in the event loop's thread (bot/storage/sqlite_inloop.py); while another
    process holds the write lock the bot must wait without blocking its loop, then go on."""
    import subprocess
    import sys
    import time

    from bot.core import Incoming

    engine = make_engine(sqlite_db)
    await engine.handle(Incoming("test", "warm", "u", text="/start"))  # WAL file exists
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(1.0);"
            "c.execute('COMMIT')",
            sqlite_db.url.database,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout.readline().strip() == b"locked"
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        started = time.monotonic()
        beat = asyncio.create_task(ticker())
        replies = await engine.handle(Incoming("test", "blocked", "u", text="/help"))
        waited = time.monotonic() - started
        beat.cancel()
    finally:
        holder.wait(timeout=10)
    assert replies and "/help" in replies[0].text
    assert waited >= 0.5, "the turn should have waited for the other process"
    # The loop kept running while the turn waited: roughly one tick per 10 ms.
    assert ticks >= waited * 100 * 0.5, (ticks, waited)
