"""Conversation state as handlers see it; persisted in the ``conversations`` table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UNIT_KEY = "unit"  # in ``data``: see ConversationState.unit


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

    @property
    def unit(self) -> str | None:
        """The unit the citizen chose (deployments serving several communes), kept across
        flows; None: the deployment's default unit."""
        value = self.data.get(UNIT_KEY)
        return value if isinstance(value, str) else None

    @unit.setter
    def unit(self, value: str | None) -> None:
        if value:
            self.data[UNIT_KEY] = value
        else:
            self.data.pop(UNIT_KEY, None)

    def clear_flow(self) -> None:
        """Leave any multi-step flow (the chosen unit stays)."""
        unit = self.unit
        self.step = None
        self.data = {}
        self.unit = unit
