"""Terminal chat: type a message, read the replies; buttons are numbered choices."""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import BinaryIO, TextIO

from bot.channels.base import numbered_lines
from bot.core.engine import DialogueEngine
from bot.core.messages import Incoming, Reply
from bot.i18n import translator


class ConsoleChannel:
    """Reads lines from stdin until end of input and prints the bot's replies."""

    name = "console"

    def __init__(
        self,
        engine: DialogueEngine,
        *,
        conversation_id: str | None = None,
        stdin: BinaryIO | None = None,
        stdout: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self.engine = engine
        self.conversation_id = conversation_id or _local_user()
        self.stdin = stdin or sys.stdin.buffer
        self.stdout = stdout or sys.stdout
        self.interactive = sys.stdin.isatty() if interactive is None else interactive

    async def run(self) -> None:
        """Chat until end of input (Ctrl+D) or Ctrl+C."""
        if self.interactive:
            t = translator(self.engine.default_locale)
            self._print(t("Type a message and press Enter. Press Ctrl+D to quit."))
            await self._turn("/start")
        while True:
            if self.interactive:
                self.stdout.write("> ")
                self.stdout.flush()
            raw = await asyncio.to_thread(self.stdin.readline)
            if not raw:
                break
            await self._turn(raw.decode("utf-8", errors="replace").rstrip("\n"))

    async def _turn(self, text: str) -> None:
        incoming = Incoming(
            channel=self.name,
            conversation_id=self.conversation_id,
            user_id=self.conversation_id,
            text=text,
        )
        await self.send(self.conversation_id, await self.engine.handle(incoming))

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        """Print replies; buttons are numbered across the whole turn, as the engine counts them."""
        number = 1
        for reply in replies:
            lines = [reply.text, *numbered_lines(reply.buttons, number)]
            number += len(reply.buttons)
            self._print("\n".join(lines))

    async def start(self) -> None:
        await self.run()

    async def stop(self) -> None:
        """Nothing to release: the loop ends with its input."""

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n\n")
        self.stdout.flush()


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "local"
