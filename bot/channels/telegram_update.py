"""The parts of a Telegram Update the bot reads, taken straight from the Bot API's JSON.

python-telegram-bot's ``Update.de_json`` builds and freezes an object for every part of an
update (user, chat, message, entities, photo sizes...); in the webhook that cost more CPU than
the dialogue turn's database work (docs/BENCHMARKS.md, Telegram webhook). The bot reads a dozen
fields, so the webhook reads those, checking each one's type: an update of the wrong shape is
refused (``ValueError``, the webhook answers 400) instead of failing half-way. Polling still
receives PTB ``Update`` objects; ``read_update(update.to_dict())`` gives the same view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Message kinds the bot cannot read; the user is told so instead of getting silence.
UNSUPPORTED_KINDS = (
    "voice",
    "audio",
    "video",
    "video_note",
    "sticker",
    "animation",
    "location",
    "contact",
    "poll",
    "dice",
)


@dataclass(frozen=True)
class FileRef:
    """A photo or document the user sent: enough to fetch it with getFile."""

    file_id: str
    file_unique_id: str
    file_size: int | None
    file_name: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class User:
    id: int
    is_bot: bool
    language_code: str | None


@dataclass(frozen=True)
class Chat:
    id: int
    type: str


@dataclass(frozen=True)
class MessageView:
    chat: Chat
    from_user: User | None
    text: str  # the text, or the caption of a photo or document
    photo: FileRef | None  # the largest size
    document: FileRef | None
    unsupported: tuple[str, ...]  # kinds from UNSUPPORTED_KINDS present in the message
    reply_to_user_id: int | None  # author of the message this one replies to


@dataclass(frozen=True)
class CallbackView:
    id: str
    from_user: User
    data: str
    chat: Chat | None  # of the message with the button; absent for inline-mode messages


@dataclass(frozen=True)
class UpdateView:
    update_id: int
    message: MessageView | None  # a new message (other kinds of updates are not read)
    callback_query: CallbackView | None

    @property
    def user(self) -> User | None:
        if self.callback_query is not None:
            return self.callback_query.from_user
        return self.message.from_user if self.message else None


def read_update(data: Any) -> UpdateView:
    """The view of one update; ValueError when a field the bot reads has the wrong type."""
    update_id = _required(data, "update_id", int)
    message = _optional(data, "message", dict)
    query = _optional(data, "callback_query", dict)
    return UpdateView(
        update_id=update_id,
        message=_message(message) if message is not None else None,
        callback_query=_callback(query) if query is not None else None,
    )


def _message(data: dict) -> MessageView:
    author = _optional(data, "from", dict)
    replied = _optional(data, "reply_to_message", dict)
    replied_author = _optional(replied, "from", dict) if replied is not None else None
    photos = _optional(data, "photo", list) or []
    document = _optional(data, "document", dict)
    text = _optional(data, "text", str)
    if text is None:
        text = _optional(data, "caption", str)
    return MessageView(
        chat=_chat(_required(data, "chat", dict)),
        from_user=_user(author) if author is not None else None,
        text=text or "",
        photo=_file(_check(photos[-1], dict)) if photos else None,
        document=_file(document, named=True) if document is not None else None,
        unsupported=tuple(kind for kind in UNSUPPORTED_KINDS if data.get(kind)),
        reply_to_user_id=_required(replied_author, "id", int) if replied_author else None,
    )


def _callback(data: dict) -> CallbackView:
    message = _optional(data, "message", dict)
    chat = _optional(message, "chat", dict) if message is not None else None
    return CallbackView(
        id=_required(data, "id", str),
        from_user=_user(_required(data, "from", dict)),
        data=_optional(data, "data", str) or "",
        chat=_chat(chat) if chat is not None else None,
    )


def _user(data: dict) -> User:
    return User(
        id=_required(data, "id", int),
        is_bot=bool(_optional(data, "is_bot", bool)),
        language_code=_optional(data, "language_code", str),
    )


def _chat(data: dict) -> Chat:
    return Chat(id=_required(data, "id", int), type=_required(data, "type", str))


def _file(data: dict, *, named: bool = False) -> FileRef:
    return FileRef(
        file_id=_required(data, "file_id", str),
        file_unique_id=_required(data, "file_unique_id", str),
        file_size=_optional(data, "file_size", int),
        file_name=_optional(data, "file_name", str) if named else None,
        mime_type=_optional(data, "mime_type", str) if named else None,
    )


def _check(value: Any, kind: type) -> Any:
    # bool is an int in Python; an id or a size of true/false is as wrong as a string.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _required(data: Any, key: str, kind: type) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise ValueError(f"missing {key}")
    return _check(data[key], kind)


def _optional(data: Any, key: str, kind: type) -> Any:
    if not isinstance(data, dict):
        raise ValueError("expected an object")
    value = data.get(key)
    return None if value is None else _check(value, kind)
