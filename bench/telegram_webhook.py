"""Updates per second and latency through the Telegram webhook, end to end, on loopback.

Usage:
    python bench/telegram_webhook.py [--chats 100] [--updates 50] [--rate 500]
        [--script conversation|start] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

What runs: the fake Bot API (tests/fakes/telegram_api.py) and the load generator share this
process; the bot is ``motcua run`` in webhook mode in its own process, exactly as deployed
(python-telegram-bot, the dialogue engine, the database; log level INFO). ``--chats`` simulated
citizens write at once, one HTTP connection each; every citizen sends an update, waits for the
webhook's 200 *and* for all of the bot's replies to reach the fake Bot API, then sends the next.
With ``--script conversation`` (default) the messages cycle through a short conversation:
/start, a search typed without diacritics, a button press on the card, /help, another search
(7 replies and one answerCallbackQuery per 5 updates). ``--script start`` sends only /start.

Each bot is measured twice: as fast as it goes (closed loop; latency there is mostly queueing,
100 citizens / throughput) and at a fixed offered rate (``--rate``, open loop; latency counts
from when each update was due). Reported: updates/s (updates whose replies all arrived,
divided by the wall time), latency to the webhook's answer ("ack") and to the last reply
arriving at the Bot API ("reply"), p50 and p99 in ms.

The same load against bench/_bare_webhook.py (aiohttp only: parse the JSON, answer, send one
sendMessage) is measured in the same run as the ceiling of this machine and this load
generator; the bot's figures are also given as a share of it.

The load generator runs with its garbage collector paused during each measured run (a full
collection of this process showed up as an ~80 ms stall in the bot's latency); the bot runs as
deployed. The database is a fresh SQLite file; with --postgres-url the run is repeated on a
throwaway PostgreSQL database created (and dropped) through that server.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import Call, FakeBotAPI  # noqa: E402
from tests.pg_helpers import create_database, drop_database  # noqa: E402
from tests.telegram_helpers import SECRET, TOKEN, bot_env, running_bot  # noqa: E402

# What one citizen sends, repeated: (kind, value).
SCRIPTS = {
    "conversation": [
        ("text", "/start"),
        ("text", "giay khai sinh cho con"),
        ("press", "proc:docs:1.001193"),
        ("text", "/help"),
        ("text", "dang ky ket hon"),
    ],
    "start": [("text", "/start")],
}
SCRIPT: list[tuple[str, str]] = []


@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    ack_ms: list[float] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.updates / self.seconds

    def row(self, ceiling: Result | None) -> str:
        share = f"{self.rate / ceiling.rate:.0%}" if ceiling and ceiling is not self else "—"
        if "offered" in self.name:
            share = "—"
        return (
            f"| {self.name} | {self.updates:,} | {self.rate:,.0f} | {share} | "
            f"{pct(self.ack_ms, 50):.1f} | {pct(self.ack_ms, 99):.1f} | "
            f"{pct(self.reply_ms, 50):.1f} | {pct(self.reply_ms, 99):.1f} |"
        )


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if values else 0.0


class Replies:
    """Counts sendMessage calls per chat and wakes whoever waits for the n-th one."""

    def __init__(self) -> None:
        self.count: dict[int, int] = {}
        self.waiting: dict[int, tuple[int, asyncio.Future]] = {}

    def __call__(self, call: Call) -> None:
        if call.method != "sendMessage":
            return
        chat = call.chat_id
        self.count[chat] = self.count.get(chat, 0) + 1
        wanted = self.waiting.get(chat)
        if wanted and self.count[chat] >= wanted[0] and not wanted[1].done():
            wanted[1].set_result(None)

    def expect(self, chat: int, more: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        target = self.count.get(chat, 0) + more
        if more <= 0 or self.count.get(chat, 0) >= target:
            future.set_result(None)
        self.waiting[chat] = (target, future)
        return future


def make_update(api: FakeBotAPI, chat: int, step: tuple[str, str], texts_only: bool) -> dict:
    kind, value = step
    if kind == "press" and not texts_only:
        return api.callback_update(chat, value)
    return api.text_update(chat, value if kind == "text" else "giay to can nop")


async def drive(
    api: FakeBotAPI,
    url: str,
    name: str,
    chats: int,
    per_chat: int,
    replies_per_step: list[int],
    texts_only: bool,
    first_chat: int,
    rate: float | None = None,
) -> Result:
    """Closed loop (rate None): every citizen sends as soon as its previous update is answered.
    Open loop (rate): updates are due at a fixed total rate, spread over the citizens; latency
    counts from when an update was due, so a bot that falls behind is not flattered."""
    replies = Replies()
    api.on_call = replies
    result = Result(name, chats * per_chat, 0.0)
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    connector = aiohttp.TCPConnector(limit=chats)

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def citizen(index: int) -> None:
            chat = first_chat + index
            for i in range(per_chat):
                step = i % len(SCRIPT)
                update = make_update(api, chat, SCRIPT[step], texts_only)
                done = replies.expect(chat, replies_per_step[step])
                started = time.perf_counter()
                if rate:
                    due = begin + (i * chats + index) / rate
                    if due > started:
                        await asyncio.sleep(due - started)
                    started = due
                async with session.post(url, json=update) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"{name}: webhook answered {response.status}")
                acked = time.perf_counter()
                await asyncio.wait_for(done, 60)
                finished = time.perf_counter()
                result.ack_ms.append((acked - started) * 1000)
                result.reply_ms.append((finished - started) * 1000)

        # The load generator must not pause: a full garbage collection of this process (the
        # fake API keeps every call it got) took ~80 ms and showed up as the bot's p99.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            begin = time.perf_counter()
            await asyncio.gather(*(citizen(c) for c in range(chats)))
            result.seconds = time.perf_counter() - begin
        finally:
            gc.enable()
    api.on_call = None
    return result


async def calibrate(api: FakeBotAPI, url: str) -> list[int]:
    """How many messages the bot sends for each step of the script (one citizen, slowly)."""
    chat = 9_000_000
    counts = []
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with aiohttp.ClientSession(headers=headers) as session:
        for step in SCRIPT:
            before = len(api.sent(chat))
            async with session.post(url, json=make_update(api, chat, step, False)) as response:
                assert response.status == 200, response.status
            await api.quiet(0.3)
            counts.append(len(api.sent(chat)) - before)
    return counts


async def run_bot(api: FakeBotAPI, database_url: str, name: str, args) -> list[Result]:
    env = bot_env(api, database_url, "webhook")
    async with running_bot(env) as bot:
        counts = await calibrate(api, bot.webhook)
        print(f"  {name}: replies per step {counts}", file=sys.stderr)
        await drive(api, bot.webhook, "warm-up", args.chats, len(SCRIPT), counts, False, 1_000_000)
        saturated = await drive(
            api,
            bot.webhook,
            f"{name}, as fast as it goes",
            args.chats,
            args.updates,
            counts,
            False,
            2_000_000,
        )
        paced = await drive(
            api,
            bot.webhook,
            f"{name}, {args.rate:g} updates/s offered",
            args.chats,
            args.updates,
            counts,
            False,
            3_000_000,
            rate=args.rate,
        )
        return [saturated, paced]


async def run_bare(api: FakeBotAPI, args) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "_bare_webhook.py"),
        api.base_url,
        TOKEN,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        port = int((await proc.stdout.readline()).decode().split()[1])
        url = f"http://127.0.0.1:{port}/telegram/webhook"
        ones = [1] * len(SCRIPT)
        await drive(api, url, "warm-up", args.chats, len(SCRIPT), ones, True, 3_000_000)
        return await drive(
            api,
            url,
            "bare aiohttp handler (ceiling), as fast as it goes",
            args.chats,
            args.updates,
            ones,
            True,
            4_000_000,
        )
    finally:
        proc.terminate()
        await proc.wait()


async def postgres_database(admin_url: str) -> tuple[str, Callable]:
    """A throwaway database on that server, and a coroutine function that drops it."""
    url = await create_database(admin_url, "motcua_bench")
    return url, lambda: drop_database(admin_url, url)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=100, help="citizens writing at once")
    parser.add_argument("--updates", type=int, default=50, help="updates per citizen")
    parser.add_argument(
        "--rate", type=float, default=500, help="offered updates/s for the paced run (target 500)"
    )
    parser.add_argument(
        "--script",
        choices=sorted(SCRIPTS),
        default="conversation",
        help="what citizens send: a conversation (default) or only /start",
    )
    parser.add_argument("--postgres-url", help="admin URL of a PostgreSQL server to also test")
    args = parser.parse_args()
    SCRIPT[:] = SCRIPTS[args.script]
    api = FakeBotAPI(TOKEN)
    await api.start()
    results = []
    try:
        ceiling = await run_bare(api, args)
        results.append(ceiling)
        with tempfile.TemporaryDirectory() as tmp:
            results += await run_bot(api, f"sqlite:///{tmp}/bench.sqlite3", "bot on SQLite", args)
        if args.postgres_url:
            url, drop = await postgres_database(args.postgres_url)
            try:
                results += await run_bot(api, url, "bot on PostgreSQL", args)
            finally:
                await drop()
    finally:
        await api.stop()
    print(
        f"script {args.script}, {args.chats} citizens at once, {args.updates} updates each, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print(
        "| run | updates | updates/s | share of ceiling | ack p50 ms | ack p99 ms "
        "| reply p50 ms | reply p99 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for result in results:
        print(result.row(ceiling))


if __name__ == "__main__":
    asyncio.run(main())
