"""Running ``motcua run`` as a subprocess with the Zalo channel pointed at the fake OA API, and
posting signed events to its webhook as Zalo does."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from tests.fakes.zalo_api import SIGNATURE_HEADER, FakeZaloAPI
from tests.telegram_helpers import BotProcess, running_bot

WEBHOOK_PATH = "/zalo/webhook"


def zalo_env(api: FakeZaloAPI, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of ``motcua run`` with the Zalo channel on the fake (and no Telegram)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_DATABASE_URL"] = database_url
    env.update({f"MOTCUA_{name.upper()}": value for name, value in api.settings().items()})
    env.update(extra)
    return env


@dataclass
class ZaloBot:
    """A running ``motcua run`` and the fake it talks to."""

    api: FakeZaloAPI
    process: BotProcess
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}{WEBHOOK_PATH}"

    async def post(
        self, event: dict | bytes, *, signature: str | None = "", headers: dict | None = None
    ) -> int:
        """POST one event to the webhook; return the HTTP status.

        ``signature``: "" signs the event as Zalo does, None sends no signature header, any
        other string is sent as it is. Raw bytes are posted unsigned unless a signature is
        given.
        """
        if isinstance(event, bytes):
            raw, sent = event, {"Content-Type": "application/json"}
            if signature:
                sent[SIGNATURE_HEADER] = signature
        else:
            raw, sent = self.api.signed(event)
            if signature is None:
                del sent[SIGNATURE_HEADER]
            elif signature:
                sent[SIGNATURE_HEADER] = signature
        sent.update(headers or {})
        async with self.http.post(self.url, data=raw, headers=sent) as response:
            await response.read()
            return response.status

    async def say(self, user: str, text: str) -> dict:
        """The citizen sends a text; the event (to re-deliver it) is returned."""
        event = self.api.text_event(user, text)
        assert await self.post(event) == 200
        return event

    async def tap(self, user: str, payload: str) -> None:
        """The citizen taps a list element whose action sends ``#mc:<payload>``."""
        assert await self.post(self.api.tap_event(user, payload)) == 200

    def log(self) -> str:
        return self.process.log()


@contextlib.asynccontextmanager
async def running_zalo_bot(
    api: FakeZaloAPI, database_url: str, **extra: str
) -> AsyncIterator[ZaloBot]:
    """``motcua run --port 0`` with the Zalo channel on ``api``; stopped (and checked to exit
    cleanly, with no traceback in its log) at the end."""
    async with running_bot(zalo_env(api, database_url, **extra)) as process:
        assert f"{WEBHOOK_PATH}" in "".join(process.stdout), process.stdout
        async with aiohttp.ClientSession() as http:
            yield ZaloBot(api, process, http)
