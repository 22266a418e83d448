"""The contract every channel keeps: start, stop, send.

Webhook channels also add their routes to the one aiohttp application (see WebChannel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.core.messages import Button, Reply


class ChannelStartError(Exception):
    """A channel cannot start because of its configuration (e.g. a token the platform
    refuses); the operator must fix a setting."""

    def __init__(self, channel: str, reason: str) -> None:
        super().__init__(reason)
        self.channel = channel


class Channel(Protocol):
    name: str

    async def start(self) -> None:
        """Begin receiving messages (polling, or nothing for webhook channels)."""

    async def stop(self) -> None:
        """Stop receiving and finish what is in flight."""

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        """Push replies into a conversation outside of a request (e.g. a staff answer)."""


def numbered_lines(buttons: Sequence[Button], start: int = 1) -> list[str]:
    """Render buttons as "1. label" lines for channels that have no buttons."""
    return [f"  {number}. {button.label}" for number, button in enumerate(buttons, start)]
