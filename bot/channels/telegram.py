"""Telegram channel on python-telegram-bot v22: long polling or a webhook on the shared aiohttp app.

Path of one update: (webhook) secret token checked -> JSON parsed -> the fields the bot reads
(``telegram_update.read_update``; polling gets PTB ``Update`` objects and reads the same) ->
per-chat lock -> attachments fetched with getFile -> ``Incoming`` with ``message_id`` = the
update id -> DialogueEngine (which records the id in the same transaction as the new state, so
a re-delivered update is handled once, across restarts and processes) -> webhook answered ->
replies sent in the background, in order per chat, with flood control and retries.

The webhook is answered after the update's handling has committed: a crash before that leaves
Telegram to deliver it again, and a crash after it loses nothing the citizen was told.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web
from telegram import (
    BotCommand,
    InputFile,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.base import ChannelStartError
from bot.channels.split import split_text
from bot.channels.telegram_http import AiohttpRequest, call
from bot.channels.telegram_update import FileRef, MessageView, UpdateView, read_update
from bot.config import Settings
from bot.core.engine import DialogueEngine
from bot.core.locks import KeyedLocks
from bot.core.messages import Attachment, Button, Incoming, Reply
from bot.i18n import N_, SUPPORTED_LOCALES, translator

log = logging.getLogger("motcua.telegram")
# Durations as timedelta (PTB's coming default; read when used) rather than the deprecated
# integers; _seconds accepts both.
os.environ.setdefault("PTB_TIMEDELTA", "1")

MAX_TEXT = 4096  # Bot API limit for one message, in UTF-16 code units
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024  # the Bot API's getFile limit
ALLOWED_UPDATES = ["message", "callback_query"]
SEND_ATTEMPTS = 5  # per API call, for network errors; flood-control waits are on top
RETRY_DELAY = 0.5  # seconds before the first retry; doubles up to 8 s, with jitter
MAX_FLOOD_WAIT = 300.0  # seconds; Telegram asks for longer only after abuse
SHORT_LABEL = 18  # buttons with labels this short are laid out two per row
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The commands menu shown by Telegram's "/" button, in each language.
COMMANDS = (
    ("start", N_("Main menu")),
    ("hoso", N_("Check a dossier")),
    ("theodoi", N_("Dossiers you follow")),
    ("help", N_("How to use this assistant")),
    ("language", N_("Change the language")),
    ("donvi", N_("Choose your commune or ward")),  # only when several units are served
    ("cancel", N_("Stop what you are doing")),
)


@dataclass(frozen=True)
class _Target:
    chat_id: int
    conversation_id: str
    user_id: str


class TelegramChannel:
    """Receives updates (polling or webhook) and sends replies through the Bot API."""

    can_push = True  # send() reaches a chat outside of a turn (dossier updates, staff answers)
    accepts_files = True  # photos and documents arrive as attachments

    name = "telegram"

    def __init__(self, engine: DialogueEngine, settings: Settings) -> None:
        self.engine = engine
        self.mode = settings.telegram_mode
        self.several_units = len(settings.served_units) > 1
        self.ack_after_send = settings.workers > 1
        self.webhook_url = settings.telegram_webhook_url
        self.webhook_path = settings.telegram_webhook_path
        secret = settings.telegram_webhook_secret
        self._secret = secret.get_secret_value().encode() if secret else b""
        token = settings.telegram_token.get_secret_value()
        api = settings.telegram_api_base_url
        builder = (
            Application.builder()
            .token(token)
            .base_url(f"{api}/bot")
            .base_file_url(f"{api}/file/bot")
            .concurrent_updates(True)
            .request(AiohttpRequest(pool_size=64))
            # A second connection lets the final getUpdates at shutdown (which confirms the
            # last offset) go out while the long poll is still being torn down.
            .get_updates_request(AiohttpRequest(pool_size=2))
        )
        if self.mode == "webhook":
            builder = builder.updater(None)
        self.app = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_polled_update))
        self._chat_locks = KeyedLocks()
        self._send_locks = KeyedLocks()
        self._deliveries: set[asyncio.Task] = set()
        self._retry_start: asyncio.Task | None = None
        self.retry_delay = RETRY_DELAY
        self.ready = False
        self.username = ""
        self.bot_id = 0

    def add_routes(self, app: web.Application) -> None:
        if self.mode == "webhook":
            app.router.add_post(self.webhook_path, self.webhook)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token, publish the commands menu, then poll or register the webhook.

        A bad token stops start-up with ChannelStartError; an unreachable Bot API is retried
        in the background so that the web chat keeps serving meanwhile.
        """
        try:
            await self._connect()
        except InvalidToken as exc:
            raise ChannelStartError(
                self.name,
                "Telegram refused the bot token (MOTCUA_TELEGRAM_TOKEN). "
                "Copy it again from BotFather.",
            ) from exc
        except (NetworkError, TelegramError) as exc:
            log.warning("Telegram is not reachable yet (%s); retrying in the background", exc)
            self._retry_start = asyncio.create_task(self._connect_until_done())

    async def _connect(self) -> None:
        await self.app.initialize()
        me = self.app.bot
        self.username, self.bot_id = me.username or "", me.id
        await self._set_commands()
        if self.mode == "webhook":
            await self.app.bot.set_webhook(
                self.webhook_url,
                secret_token=self._secret.decode(),
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await self.app.start()
            await self.app.updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, error_callback=self._polling_error
            )
        self.ready = True
        log.info("telegram bot @%s ready (%s)", self.username, self.mode)

    async def _connect_until_done(self) -> None:
        delay = 2.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                return
            except InvalidToken:
                log.error("Telegram refused the bot token; fix MOTCUA_TELEGRAM_TOKEN")
                return
            except TelegramError as exc:
                delay = min(delay * 2, 60.0)
                log.warning("Telegram still not reachable (%s); next try in %.0f s", exc, delay)

    async def _set_commands(self) -> None:
        for locale in (None, *SUPPORTED_LOCALES):
            t = translator(locale or self.engine.default_locale)
            commands = [
                BotCommand(name, t(description))
                for name, description in COMMANDS
                if name != "donvi" or self.several_units
            ]
            await self.app.bot.set_my_commands(commands, language_code=locale)

    def _polling_error(self, exc: TelegramError) -> None:
        log.warning("Telegram polling failed (%s); PTB retries", exc)

    async def stop(self) -> None:
        """Stop receiving, finish sending what was already answered, close the HTTP clients."""
        self.ready = False
        if self._retry_start:
            self._retry_start.cancel()
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        if self._deliveries:
            await asyncio.wait(set(self._deliveries), timeout=10)
        await self.app.shutdown()

    # -- receiving ---------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """Take one update from Telegram; answer once it is handled (or known)."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            log.warning(
                "telegram webhook: rejected a request from %s without the right secret token",
                request.remote,
            )
            return web.Response(status=403)
        if not self.ready:
            return web.Response(status=503)  # Telegram tries again later
        try:
            update = read_update(json.loads(await request.read()))
        except (ValueError, RecursionError):
            # RecursionError: JSON nested deeper than the parser goes.
            log.warning("telegram webhook: rejected a malformed update")
            return web.Response(status=400)
        delivery = await self.handle_update(update)
        if delivery is not None and self.ack_after_send:
            await asyncio.shield(delivery)  # see Settings.workers
        return web.Response()

    async def _on_polled_update(self, update: object, _context: ContextTypes.DEFAULT_TYPE) -> None:
        if not isinstance(update, Update):
            return
        try:
            view = read_update(update.to_dict())
        except ValueError:
            log.warning("telegram: ignored a polled update it could not read")
            return
        await self.handle_update(view)

    async def handle_update(self, update: UpdateView) -> asyncio.Task | None:
        """Turn one update into an Incoming, handle it, and queue the replies for sending;
        the sending task, or None when there is nothing to send."""
        target = self._target(update)
        if target is None:
            return None
        # Nothing is awaited before this lock, so updates of one chat keep their arrival order.
        async with self._chat_locks.hold(target.conversation_id):
            incoming = await self._incoming(update, target)
            turn = await self.engine.handle_turn(incoming)
        if turn.duplicate:
            return None
        callback = update.callback_query.id if update.callback_query else None
        return self._queue(target.chat_id, turn.replies, callback)

    def _target(self, update: UpdateView) -> _Target | None:
        """Who the update is from and where to answer; None when it is not for the bot."""
        query = update.callback_query
        if query is not None:
            user, chat = query.from_user, query.chat
        else:
            message = update.message
            if message is None or message.from_user is None or message.from_user.is_bot:
                return None
            user, chat = message.from_user, message.chat
            if chat.type != ChatType.PRIVATE and not self._addressed(message):
                return None
        chat_id = chat.id if chat else user.id
        private = chat is None or chat.type == ChatType.PRIVATE
        # In a group each member has their own conversation with the bot.
        conversation_id = str(chat_id) if private else f"{chat_id}:{user.id}"
        return _Target(chat_id, conversation_id, str(user.id))

    def _addressed(self, message: MessageView) -> bool:
        """In a group, the bot answers commands, mentions of it, and replies to its messages."""
        text = message.text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            return "@" not in command or command.split("@", 1)[1].lower() == self._me()
        if f"@{self._me()}" in text.lower():
            return True
        return message.reply_to_user_id is not None and message.reply_to_user_id == self.bot_id

    def _me(self) -> str:
        return self.username.lower()

    async def _incoming(self, update: UpdateView, target: _Target) -> Incoming:
        user = update.user
        common = {
            "channel": self.name,
            "conversation_id": target.conversation_id,
            "user_id": target.user_id,
            "locale": user.language_code if user else None,
            "message_id": f"{self.bot_id}:{update.update_id}",
        }
        if update.callback_query is not None:
            return Incoming(payload=update.callback_query.data, **common)
        message = update.message
        text = message.text
        if self.username and message.chat.type != ChatType.PRIVATE:
            text = _strip_mention(text, self.username)
        return Incoming(text=text, attachments=await self._attachments(message), **common)

    async def _attachments(self, message: MessageView) -> tuple[Attachment, ...]:
        found = []
        if message.photo:
            photo = message.photo
            found.append((photo, "photo", f"photo-{photo.file_unique_id}.jpg", "image/jpeg"))
        if message.document:
            doc = message.document
            found.append(
                (
                    doc,
                    "document",
                    doc.file_name or "file",
                    doc.mime_type or "application/octet-stream",
                )
            )
        attachments = [await self._fetch(*item) for item in found]
        attachments.extend(Attachment("unsupported", kind, "", 0) for kind in message.unsupported)
        return tuple(attachments)

    async def _fetch(self, file: FileRef, kind: str, filename: str, mime_type: str) -> Attachment:
        """Download a file the user sent; too big or failed downloads keep only the metadata,
        so that the handler can say what went wrong."""
        size = file.file_size or 0
        data = None
        if size <= MAX_DOWNLOAD_BYTES:
            try:
                remote = await self.app.bot.get_file(file.file_id)
                data = bytes(await remote.download_as_bytearray())
                size = len(data)
            except TelegramError as exc:
                log.warning("could not download a %s from Telegram: %s", kind, exc)
        return Attachment(kind, filename[:200], mime_type, size, data)

    # -- sending -----------------------------------------------------------------------------

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool:
        """Push replies into a chat outside of an update (e.g. a staff answer); True if all
        were delivered."""
        chat_id = int(conversation_id.split(":", 1)[0])
        return await self._deliver(chat_id, list(replies), None)

    def _queue(self, chat_id: int, replies: list[Reply], callback_id: str | None) -> asyncio.Task:
        # Created in the order turns finish; each delivery then waits for the chat's send lock
        # (FIFO), so the replies of one chat go out in order while chats go out in parallel.
        task = asyncio.create_task(self._deliver(chat_id, replies, callback_id))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    async def _deliver(self, chat_id: int, replies: list[Reply], callback_id: str | None) -> bool:
        bot = self.app.bot
        async with self._send_locks.hold(chat_id):
            if callback_id:
                # Stops the spinner on the pressed button; harmless if it fails.
                await self._call(
                    lambda: call(bot, "answerCallbackQuery", {"callback_query_id": callback_id}),
                    chat_id,
                    "answerCallbackQuery",
                )
            for number, reply in enumerate(replies):
                if not await self._send_reply(chat_id, reply):
                    log.error(
                        "telegram: %d of %d replies not delivered to chat_id=%s",
                        len(replies) - number,
                        len(replies),
                        chat_id,
                    )
                    return False
        return True

    async def _send_reply(self, chat_id: int, reply: Reply) -> bool:
        bot = self.app.bot
        pieces = split_text(reply.text, MAX_TEXT) if reply.text.strip() else []
        if not pieces and reply.buttons:
            pieces = ["…"]  # Telegram needs text to hang buttons on
        for index, piece in enumerate(pieces):
            markup = keyboard(reply.buttons) if index == len(pieces) - 1 else None
            if not await self._call(
                lambda piece=piece, markup=markup: call(
                    bot, "sendMessage", {"chat_id": chat_id, "text": piece, "reply_markup": markup}
                ),
                chat_id,
                "sendMessage",
            ):
                return False
        for document in reply.documents:
            if not await self._call(
                lambda document=document: bot.send_document(
                    chat_id, InputFile(document.data, filename=document.filename)
                ),
                chat_id,
                "sendDocument",
            ):
                return False
        return True

    async def _call(self, make: Callable[[], Awaitable[object]], chat_id: int, what: str) -> bool:
        """Run one Bot API call: wait out flood control, retry network errors with backoff,
        give up on refusals (blocked bot, bad request); log the chat id when it fails."""
        delay = self.retry_delay
        attempt = 0
        while True:
            try:
                await make()
                return True
            except RetryAfter as exc:
                wait = _seconds(exc.retry_after)
                if wait > MAX_FLOOD_WAIT:
                    log.error(
                        "telegram: %s to chat_id=%s: flood wait %.0f s, giving up",
                        what,
                        chat_id,
                        wait,
                    )
                    return False
                log.warning("telegram: flood control, waiting %.1f s (chat_id=%s)", wait, chat_id)
                await asyncio.sleep(wait)
            except (BadRequest, Forbidden, ChatMigrated, InvalidToken) as exc:
                log.error("telegram: %s to chat_id=%s refused: %s", what, chat_id, exc)
                return False
            except NetworkError as exc:
                attempt += 1
                if attempt >= SEND_ATTEMPTS:
                    log.error(
                        "telegram: %s to chat_id=%s failed %d times, last: %s",
                        what,
                        chat_id,
                        attempt,
                        exc,
                    )
                    return False
                log.warning("telegram: %s to chat_id=%s failed (%s), retrying", what, chat_id, exc)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 16 * self.retry_delay)
            except TelegramError as exc:
                log.error("telegram: %s to chat_id=%s failed: %s", what, chat_id, exc)
                return False


def keyboard(buttons: Sequence[Button]) -> dict | None:
    """Inline keyboard (the Bot API's InlineKeyboardMarkup as JSON): one button per row, two per
    row when both labels are short."""
    if not buttons:
        return None
    rows: list[list[dict[str, str]]] = []
    for button in buttons:
        key = {"text": button.label, "callback_data": button.payload}
        last = rows[-1] if rows else None
        if (
            last is not None
            and len(last) == 1
            and len(button.label) <= SHORT_LABEL
            and len(last[0]["text"]) <= SHORT_LABEL
        ):
            last.append(key)
        else:
            rows.append([key])
    return {"inline_keyboard": rows}


def _strip_mention(text: str, username: str) -> str:
    """ "@MotCuaBot làm sổ đỏ" -> "làm sổ đỏ" (case-insensitive, anywhere in the text)."""
    mention = f"@{username}"
    lowered = text.lower()
    at = lowered.find(mention.lower())
    while at >= 0:
        text = text[:at] + text[at + len(mention) :]
        lowered = text.lower()
        at = lowered.find(mention.lower())
    return text.strip()


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
