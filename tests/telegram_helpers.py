"""Running ``motcua run`` as a subprocess against the fake Bot API, for Telegram tests and bench."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.fakes.telegram_api import FakeBotAPI

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456789:TESTtokenABCDEFGHIJKLMNOPQRSTUVWXYZ01"
SECRET = "s3cret-webhook-token_0123456789"
WEBHOOK_URL = "https://bot.xa-minh-hoa.example/telegram/webhook"
_URL = re.compile(r"http://127\.0\.0\.1:(\d+)/")


@dataclass
class BotProcess:
    proc: asyncio.subprocess.Process
    port: int
    stdout: list[str]
    stderr: list[str] = field(default_factory=list)

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram/webhook"

    async def post(
        self,
        session: aiohttp.ClientSession,
        update: dict | bytes,
        secret: str | None = SECRET,
    ) -> int:
        """POST one update to the webhook as Telegram does; return the HTTP status."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        kwargs = {"data": update} if isinstance(update, bytes) else {"json": update}
        async with session.post(self.webhook, headers=headers, **kwargs) as response:
            await response.read()
            return response.status

    def log(self) -> str:
        return "".join(self.stderr)


def bot_env(api: FakeBotAPI, database_url: str, mode: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env.update(
        MOTCUA_DATABASE_URL=database_url,
        MOTCUA_TELEGRAM_TOKEN=TOKEN,
        MOTCUA_TELEGRAM_API_BASE_URL=api.base_url,
        MOTCUA_TELEGRAM_MODE=mode,
    )
    if mode == "webhook":
        env.update(MOTCUA_TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, MOTCUA_TELEGRAM_WEBHOOK_SECRET=SECRET)
    env.update(extra)
    return env


def webhook_settings(api: FakeBotAPI, db, **extra):
    """Settings of a bot in webhook mode against the fake Bot API, on ``db`` (a Database)."""
    from bot.config import load_settings

    return load_settings(
        database_url=db.url.render_as_string(hide_password=False),
        telegram_token=TOKEN,
        telegram_mode="webhook",
        telegram_webhook_url=WEBHOOK_URL,
        telegram_webhook_secret=SECRET,
        telegram_api_base_url=api.base_url,
        **extra,
    )


async def spawn_bot(env: dict[str, str], args: Sequence[str] = ()) -> asyncio.subprocess.Process:
    """Start ``motcua run --port 0 [args]`` with ``env``, its output piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--port",
        "0",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@contextlib.asynccontextmanager
async def running_bot(
    env: dict[str, str], *, timeout: float = 60, args: Sequence[str] = ()
) -> AsyncIterator[BotProcess]:
    """Start ``motcua run --port 0 [args]`` and wait until it prints that it is ready; stop it
    with SIGTERM at the end and check it exited cleanly."""
    proc = await spawn_bot(env, args)
    bot = BotProcess(proc, 0, [])

    async def drain() -> None:  # a full stderr pipe would block the bot
        async for line in proc.stderr:
            bot.stderr.append(line.decode("utf-8", "replace"))

    drainer = asyncio.create_task(drain())
    try:
        async with asyncio.timeout(timeout):
            while True:
                line = (await proc.stdout.readline()).decode()
                if not line:
                    await proc.wait()
                    await drainer
                    raise AssertionError(f"motcua run exited early:\n{bot.log()[-3000:]}")
                bot.stdout.append(line)
                found = _URL.search(line)
                if found:
                    bot.port = int(found.group(1))
                if "Ctrl+C" in line:
                    break
        yield bot
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        bot.stdout.extend(line.decode() for line in [await proc.stdout.read()] if line)
        await drainer
    assert proc.returncode == 0, bot.log()[-3000:]
    assert "Traceback" not in bot.log(), bot.log()[-3000:]
