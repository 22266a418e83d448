"""Neutral message types shared by every channel and handler.

A handler never sees a Telegram update or a Zalo event, only these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Telegram limits callback data to 64 bytes; every channel keeps to the smallest limit.
MAX_PAYLOAD_BYTES = 64


@dataclass(frozen=True)
class Attachment:
    """A file the user sent (photo, PDF...), already fetched or addressable by the channel."""

    kind: str  # "photo" | "document"
    filename: str
    mime_type: str
    size: int
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One message from a user, whatever the channel it came through."""

    channel: str
    conversation_id: str
    user_id: str
    text: str = ""
    payload: str | None = None  # set when the user pressed a button
    attachments: tuple[Attachment, ...] = ()
    locale: str | None = None  # the channel's first guess (e.g. Telegram language_code)
    message_id: str | None = None
    # The unit (commune/ward) this entry point speaks for, when it is not the deployment's
    # default: e.g. "demo" for the web chat's demonstration mode.
    unit: str | None = None


@dataclass(frozen=True)
class Button:
    """A choice offered to the user; channels without buttons show it as a numbered line."""

    label: str
    payload: str

    def __post_init__(self) -> None:
        if not self.payload or len(self.payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"button payload must be 1-{MAX_PAYLOAD_BYTES} bytes: {self.payload!r}"
            )


@dataclass(frozen=True)
class Document:
    """A file sent to the user."""

    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class Reply:
    """One message to send back."""

    text: str
    buttons: tuple[Button, ...] = field(default=())
    documents: tuple[Document, ...] = field(default=())

    def __post_init__(self) -> None:
        # Accept lists from handlers but keep the object immutable and hashable.
        object.__setattr__(self, "buttons", tuple(self.buttons))
        object.__setattr__(self, "documents", tuple(self.documents))
