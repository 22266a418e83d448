"""The machine's ceiling for bench/telegram_webhook.py: the least a webhook bot can do.

An aiohttp server that, for each update, parses the JSON, answers 200, and sends one
sendMessage to the Bot API with a shared aiohttp client — no python-telegram-bot, no database,
no dialogue. Run as a subprocess by the benchmark; prints "ready <port>" when listening.

    python bench/_bare_webhook.py API_BASE_URL TOKEN
"""

from __future__ import annotations

import asyncio
import json
import sys

from aiohttp import ClientSession, TCPConnector, web


async def main(api: str, token: str) -> None:
    client = ClientSession(connector=TCPConnector(limit=256))
    pending: set[asyncio.Task] = set()

    async def reply(chat_id: int, text: str) -> None:
        async with client.post(
            f"{api}/bot{token}/sendMessage", data={"chat_id": str(chat_id), "text": text}
        ) as response:
            await response.read()

    async def webhook(request: web.Request) -> web.Response:
        update = json.loads(await request.read())
        message = update["message"]
        task = asyncio.create_task(reply(message["chat"]["id"], "ok: " + message["text"]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        return web.Response()

    app = web.Application()
    app.router.add_post("/telegram/webhook", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(f"ready {runner.addresses[0][1]}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await client.close()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except KeyboardInterrupt:
        pass
