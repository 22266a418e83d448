"""Conversation state as handlers see it; persisted in the ``conversations`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ConversationState:
    """What the bot remembers about one conversation between two messages."""

    locale: str | None = None
    step: str | None = None  # the named step of a multi-step flow, e.g. "feedback.content"
    data: dict[str, Any] = field(default_factory=dict)
    # Payloads of the buttons last shown, so that "2" can stand for the second button
    # on channels that show buttons as numbered lines.
    choices: list[str] = field(default_factory=list)
    message_count: int = 0

    def clear_flow(self) -> None:
        """Leave any multi-step flow."""
        self.step = None
        self.data = {}
