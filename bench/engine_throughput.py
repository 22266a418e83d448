"""Throughput and latency of the dialogue engine, through the real web endpoint.

Usage:
    python bench/engine_throughput.py [--database-url URL] [--chats 20] [--messages 50]

Sends ``chats x messages`` greetings over HTTP to an in-process aiohttp server (loopback),
each chat sending its messages one after another, all chats at once, and reports messages per
second and latency percentiles. The database is a fresh SQLite file unless --database-url is
given; on PostgreSQL the run works in a throwaway schema that is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import build_engine, build_web_app, open_database  # noqa: E402
from bot.channels.web import COOKIE  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402


async def chat(url: str, token: str, messages: int, latencies: list[float]) -> None:
    async with aiohttp.ClientSession(cookies={COOKIE: token}) as session:
        for _ in range(messages):
            started = time.perf_counter()
            async with session.post(url, json={"text": "xin chào"}) as response:
                assert response.status == 200
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--chats", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        settings = load_settings(database_url=url)
        schema = None
        if url.startswith("postgres"):
            schema = f"bench_{secrets.token_hex(4)}"
            admin = Database(url)
            async with admin.engine.begin() as conn:
                await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            db = Database(url, connect_args={"server_settings": {"search_path": schema}})
            await upgrade(db)
        else:
            db = await open_database(settings)
        engine = await build_engine(settings, db)
        latencies: list[float] = []
        async with TestServer(build_web_app(settings, engine)) as server:
            endpoint = str(server.make_url("/api/messages"))
            started = time.perf_counter()
            await asyncio.gather(
                *(
                    chat(endpoint, f"bench-chat-{i:04d}-xxxxxxxx", args.messages, latencies)
                    for i in range(args.chats)
                )
            )
            elapsed = time.perf_counter() - started
        await db.dispose()
        if schema:
            async with admin.engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.dispose()
    total = len(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    print(f"database: {db.url.get_backend_name()}")
    print(f"messages: {total} ({args.chats} chats x {args.messages}), elapsed {elapsed:.2f} s")
    print(f"throughput: {total / elapsed:.0f} messages/s")
    print(f"latency ms: p50 {cuts[49]:.1f}  p95 {cuts[94]:.1f}  max {max(latencies):.1f}")


if __name__ == "__main__":
    asyncio.run(main())
