"""Zalo Official Account channel: a webhook route on the shared aiohttp app, replies through the
OA API (``zalo_api.py``).

Path of one event: signature checked (``X-ZEvent-Signature`` = "mac=" + hex SHA-256 of app id
+ raw body + the event's timestamp + the OA secret key, compared in constant time; 403
otherwise) -> per-user lock -> files fetched -> ``Incoming`` with ``message_id`` = Zalo's msg_id
(recorded with the new state, so a re-delivered event is handled once) -> DialogueEngine ->
webhook answered -> replies sent in the background, in order per user.

Zalo lets an OA send free "reply" messages only for a while after the citizen's last message
(48 hours and 8 messages when this was written; both are settings). ``channel_contacts``
keeps when each citizen last wrote and how many messages went out since. A message pushed
outside a turn (a dossier change, a staff answer) that falls outside that window is answered
``HELD`` to the outbox; when the citizen writes again, the turn's replies go out and then the
held messages (``release_held``).

Buttons: Zalo has no inline keyboard. Each choice is a numbered line (typing the number picks
it, as on the console), and where the API allows (up to 5 choices) also a tappable element of
a "list" template whose action sends the choice's payload back, hidden, as a text message
starting with ``#mc:``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy import update

from bot.channels.base import numbered_lines
from bot.channels.split import split_text
from bot.channels.zalo_api import TokenStore, ZaloApi, ZaloError
from bot.config import Settings
from bot.core.engine import DialogueEngine
from bot.core.locks import KeyedLocks
from bot.core.messages import Attachment, Button, Incoming, Reply
from bot.feedback.attachments import MAX_BYTES
from bot.outbox import HELD, has_held, release_held
from bot.storage.db import Database
from bot.storage.models import ChannelContact, Conversation, utcnow

log = logging.getLogger("motcua.zalo")

SIGNATURE_HEADER = "X-ZEvent-Signature"
PAYLOAD_PREFIX = "#mc:"  # text a tapped list element sends back
MAX_TEXT = 2000  # characters in one Zalo text message
LIST_MAX = 5  # elements in one "list" template
LIST_TITLE = 100  # characters of an element's title
# Codes Zalo answers when the OA may not send a free message to that user now (outside the
# interaction window, or the user does not follow the OA / blocked it): the message waits.
OUTSIDE_WINDOW = frozenset({-230, -232})
# Events that carry a citizen's message, and what kind of file each brings.
_MESSAGE_EVENTS = {
    "user_send_text": None,
    "user_send_image": "photo",
    "user_send_file": "document",
    "user_send_link": "unsupported",
    "user_send_sticker": "unsupported",
    "user_send_gif": "unsupported",
    "user_send_audio": "unsupported",
    "user_send_video": "unsupported",
    "user_send_location": "unsupported",
    "user_send_business_card": "unsupported",
}
_MIME_BY_EXTENSION = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


class ZaloChannel:
    """Receives OA webhook events and sends replies through the OA API."""

    name = "zalo"
    can_push = True  # through the outbox, within Zalo's window (else held: see module doc)
    accepts_files = True
    windowed = True  # handlers tell citizens that late messages wait for their next message

    def __init__(self, engine: DialogueEngine, settings: Settings) -> None:
        self.engine = engine
        self.db: Database = engine.db
        self.path = settings.zalo_webhook_path
        self._app_id = (settings.zalo_app_id or "").encode()
        oa_secret = settings.zalo_oa_secret_key
        self._oa_secret = oa_secret.get_secret_value().encode() if oa_secret else b""
        access = settings.zalo_access_token.get_secret_value() if settings.zalo_access_token else ""
        refresh = (
            settings.zalo_refresh_token.get_secret_value() if settings.zalo_refresh_token else ""
        )
        app_secret = settings.zalo_app_secret_key
        self.api = ZaloApi(
            settings.zalo_api_base_url,
            settings.zalo_oauth_base_url,
            settings.zalo_app_id or "",
            app_secret.get_secret_value() if app_secret else "",
            TokenStore(self.db, access, refresh),
        )
        self.window = timedelta(hours=settings.zalo_reply_window_hours)
        self.quota = settings.zalo_replies_per_window
        self.list_buttons = settings.zalo_list_buttons
        self.ack_after_send = settings.workers > 1
        self.wake_outbox = lambda: None  # set by the app to the dispatcher's wake
        self._user_locks = KeyedLocks()
        self._send_locks = KeyedLocks()
        self._deliveries: set[asyncio.Task] = set()
        self.ready = False

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(self.path, self.webhook)

    async def start(self) -> None:
        await self.api.start()
        self.ready = True
        log.info("zalo OA channel ready at %s", self.path)

    async def stop(self) -> None:
        """Stop taking events, finish sending what was already answered, close the client."""
        self.ready = False
        if self._deliveries:
            _done, late = await asyncio.wait(set(self._deliveries), timeout=10)
            for task in late:  # Zalo unreachable: these replies are lost, say so
                task.cancel()
            if late:
                log.error("zalo: %d replies still unsent at shutdown were dropped", len(late))
                await asyncio.wait(late, timeout=1)
        await self.api.close()

    # -- receiving ---------------------------------------------------------------------------

    async def webhook(self, request: web.Request) -> web.Response:
        """Take one event from Zalo; answer once it is handled (or known)."""
        raw = await request.read()
        try:
            event = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
            event = None
        if not isinstance(event, dict):
            log.warning("zalo webhook: rejected a body that is not a JSON object")
            return web.Response(status=400)
        if not self._signed(raw, event, request.headers.get(SIGNATURE_HEADER, "")):
            log.warning(
                "zalo webhook: rejected an event with a wrong signature from %s", request.remote
            )
            return web.Response(status=403)
        if not self.ready:
            return web.Response(status=503)
        try:
            delivery = await self.handle_event(event)
        except _Malformed as exc:
            log.warning("zalo webhook: rejected a malformed %s event", exc)
            return web.Response(status=400)
        if delivery is not None and self.ack_after_send:
            await asyncio.shield(delivery)  # see Settings.workers
        return web.json_response({"error": 0})

    def _signed(self, raw: bytes, event: dict, header: str) -> bool:
        timestamp = event.get("timestamp")
        if not isinstance(timestamp, str | int) or isinstance(timestamp, bool):
            return False
        if not str(timestamp).isascii() or not str(timestamp).isdigit():
            return False  # milliseconds; a lone surrogate in JSON could not even be encoded
        digest = hashlib.sha256(
            self._app_id + raw + str(timestamp).encode() + self._oa_secret
        ).hexdigest()
        return hmac.compare_digest(header.strip().encode(), f"mac={digest}".encode())

    async def handle_event(self, event: dict) -> asyncio.Task | None:
        """Turn one event into an Incoming, handle it, queue the replies for sending; the
        sending task, or None."""
        name = event.get("event_name")
        if not isinstance(name, str):
            raise _Malformed(type(name).__name__)
        if name == "unfollow":
            user = _user_id(event, "follower")
            await self._touch(user, following=False)
            return None
        if name != "follow" and name not in _MESSAGE_EVENTS:
            return None  # delivery and "seen" receipts, OA-side events: nothing to do
        user = _user_id(event, "follower" if name == "follow" else "sender")
        async with self._user_locks.hold(user):
            incoming = await self._incoming(name, event, user)
            turn = await self.engine.handle_turn(incoming)
            await self._touch(user, at=_event_time(event))
        if turn.duplicate:
            return None
        return self._queue(user, list(turn.replies))

    async def _incoming(self, name: str, event: dict, user: str) -> Incoming:
        common = {"channel": self.name, "conversation_id": user, "user_id": user, "locale": "vi"}
        if name == "follow":
            # A new follower gets the welcome menu, once per follow event.
            return Incoming(
                payload="menu", message_id=f"follow:{user}:{event['timestamp']}", **common
            )
        message = event.get("message")
        if not isinstance(message, dict) or not _storable(message.get("msg_id")):
            raise _Malformed(name)
        text = message.get("text") if isinstance(message.get("text"), str) else ""
        payload = None
        if text.startswith(PAYLOAD_PREFIX):
            payload, text = text[len(PAYLOAD_PREFIX) :].strip() or None, ""
        attachments = await self._attachments(name, message)
        return Incoming(
            text=text,
            payload=payload,
            attachments=attachments,
            message_id=message["msg_id"],
            **common,
        )

    async def _attachments(self, name: str, message: dict) -> tuple[Attachment, ...]:
        kind = _MESSAGE_EVENTS[name]
        if kind is None:
            return ()
        if kind == "unsupported":  # the handler says politely what the bot can read
            return (Attachment("unsupported", name.removeprefix("user_send_"), "", 0),)
        found = []
        items = message.get("attachments")
        for item in items if isinstance(items, list) else []:
            payload = item.get("payload") if isinstance(item, dict) else None
            if not isinstance(payload, dict) or not isinstance(payload.get("url"), str):
                continue
            found.append(await self._fetch(kind, payload))
        return tuple(found)

    async def _fetch(self, kind: str, payload: dict) -> Attachment:
        """Download a file the citizen sent; too big or failed downloads keep only the
        metadata, so that the handler can say what went wrong."""
        if kind == "photo":
            name, mime = "photo.jpg", "image/jpeg"
        else:
            name = str(payload.get("name") or "file")[:200]
            extension = str(payload.get("type") or name.rsplit(".", 1)[-1]).lower()
            mime = _MIME_BY_EXTENSION.get(extension, "application/octet-stream")
        try:
            claimed = int(payload.get("size") or 0)
        except (TypeError, ValueError):
            claimed = 0
        data = None if claimed > MAX_BYTES else await self.api.download(payload["url"], MAX_BYTES)
        # Without the bytes, the claimed size tells "too big" from "could not be fetched".
        size = len(data) if data is not None else claimed
        return Attachment(kind, name, mime, size, data)

    # -- the reply window --------------------------------------------------------------------

    async def _touch(self, user: str, *, at: datetime | None = None, following: bool = True):
        """Record a citizen's message (the window starts again) or an unfollow."""
        now = utcnow()
        async with self.db.write_transaction() as session:
            contact = await session.get(ChannelContact, (self.name, user))
            if contact is None:
                contact = ChannelContact(
                    channel=self.name, conversation_id=user, sent_since_inbound=0
                )
                session.add(contact)
            contact.following = following
            contact.updated_at = now
            moment = min(at or now, now)
            last = contact.last_inbound_at
            # A re-delivered or late event must not move the window back.
            if following and (last is None or _aware(last) < moment):
                contact.last_inbound_at = moment
                contact.sent_since_inbound = 0

    async def _window_allows(self, user: str, messages: int) -> bool:
        async with self.db.session() as session:
            contact = await session.get(ChannelContact, (self.name, user))
        if contact is None or not contact.following or contact.last_inbound_at is None:
            return False
        if utcnow() - _aware(contact.last_inbound_at) >= self.window:
            return False
        # A message longer than the whole quota still goes out first thing in a fresh window.
        used = contact.sent_since_inbound
        return used + messages <= self.quota or (used == 0 and messages > self.quota)

    async def _count_sent(self, user: str, messages: int) -> None:
        if not messages:
            return
        async with self.db.write_transaction() as session:
            await session.execute(
                update(ChannelContact)
                .where(ChannelContact.channel == self.name, ChannelContact.conversation_id == user)
                .values(sent_since_inbound=ChannelContact.sent_since_inbound + messages)
            )

    async def _set_choices(self, user: str, payloads: list[str]) -> None:
        async with self.db.write_transaction() as session:
            await session.execute(
                update(Conversation)
                .where(Conversation.channel == self.name, Conversation.conversation_id == user)
                .values(choices=payloads)
            )

    # -- sending -----------------------------------------------------------------------------

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool | str:
        """Push replies outside of a turn (the outbox): True if delivered, ``HELD`` if Zalo's
        window does not allow it now, False if it failed."""
        if not await self._window_allows(conversation_id, self._count(replies)):
            return HELD
        delivered = await self._deliver(conversation_id, list(replies), pushed=True)
        if delivered is True and any(reply.buttons for reply in replies):
            # The numbers the citizen now sees are this message's: "1" must pick its first.
            await self._set_choices(
                conversation_id, [b.payload for r in replies for b in r.buttons]
            )
        return delivered

    async def after_hold(self, user: str, replies: Sequence[Reply]) -> None:
        """The outbox has just stored a hold: release it at once if the citizen wrote in the
        meantime (their turn may have looked for held messages before the hold was stored).
        The same test as ``send``, so a release is never followed by the same hold."""
        if await self._window_allows(user, self._count(replies)) and await release_held(
            self.db, self.name, user
        ):
            self.wake_outbox()

    def _count(self, replies: Sequence[Reply]) -> int:
        """How many Zalo messages the replies make."""
        rendered = self.render_all(replies)
        return sum(len(m) + len(r.documents) for m, r in zip(rendered, replies, strict=True))

    def _queue(self, user: str, replies: list[Reply]) -> asyncio.Task:
        task = asyncio.create_task(self._after_turn(user, replies))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)
        return task

    async def _after_turn(self, user: str, replies: list[Reply]) -> None:
        await self._deliver(user, replies, pushed=False)
        # The citizen wrote: what waited for this (a staff answer, a dossier change) goes now.
        if await has_held(self.db, self.name, user) and await release_held(
            self.db, self.name, user
        ):
            self.wake_outbox()

    async def _deliver(self, user: str, replies: list[Reply], *, pushed: bool) -> bool | str:
        sent = 0
        try:
            async with self._send_locks.hold(user):
                for reply, messages in zip(replies, self.render_all(replies), strict=True):
                    for message in messages:
                        await self._send_one(user, message)
                        sent += 1
                    for document in reply.documents:
                        token = await self.api.upload_file(
                            document.data, document.filename, document.mime_type
                        )
                        await self.api.send_message(
                            user, {"attachment": {"type": "file", "payload": {"token": token}}}
                        )
                        sent += 1
            return True
        except ZaloError as exc:
            if pushed and exc.code in OUTSIDE_WINDOW and sent == 0:
                # Zalo's count wins over ours: the window stays shut until the citizen writes
                # (else the hold would be released again at once and refused again).
                sent = self.quota
                return HELD
            log.error("zalo: reply to user %s not delivered: %s", user, exc)
            return False
        finally:
            await self._count_sent(user, sent)

    async def _send_one(self, user: str, message: dict) -> None:
        try:
            await self.api.send_message(user, message)
        except ZaloError as exc:
            if "attachment" not in message or exc.code is None or exc.code in OUTSIDE_WINDOW:
                raise
            # Zalo refused the tappable list: numbered lines carry the choices already, so
            # stop sending lists in this process and tell the operator once.
            log.warning("zalo: list buttons refused (%s); sending numbered lines only", exc)
            self.list_buttons = False

    def render(self, reply: Reply, first: int = 1) -> list[dict]:
        """One reply as Zalo messages: the text (with its choices numbered from ``first``) in
        pieces of at most 2,000 characters, then the choices as a tappable list if possible."""
        text = reply.text.strip()
        if reply.buttons:
            text = "\n".join([text, "", *numbered_lines(reply.buttons, first)]).strip()
        messages = [{"text": piece} for piece in split_text(text, MAX_TEXT, len)] if text else []
        if reply.buttons and self.list_buttons and len(reply.buttons) <= LIST_MAX:
            messages.append(list_template(reply.buttons, first))
        return messages

    def render_all(self, replies: Sequence[Reply]) -> list[list[dict]]:
        """The replies of one turn, numbered on from one reply to the next as the engine
        counts them ("5" is the fifth choice shown in the turn)."""
        rendered, first = [], 1
        for reply in replies:
            rendered.append(self.render(reply, first))
            first += len(reply.buttons)
        return rendered


def list_template(buttons: Sequence[Button], first: int = 1) -> dict:
    """The choices as elements of a "list" template; a tap sends ``#mc:<payload>`` back."""
    return {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "list",
                "elements": [
                    {
                        "title": f"{number}. {button.label}"[:LIST_TITLE],
                        "default_action": {
                            "type": "oa.query.hide",
                            "payload": PAYLOAD_PREFIX + button.payload,
                        },
                    }
                    for number, button in enumerate(buttons, first)
                ],
            },
        }
    }


class _Malformed(Exception):
    pass


def _user_id(event: dict, field: str) -> str:
    who = event.get(field)
    user = who.get("id") if isinstance(who, dict) else None
    if not isinstance(user, str | int) or isinstance(user, bool) or not _storable(str(user)):
        raise _Malformed(str(event.get("event_name")))
    return str(user)[:128]


def _storable(value: object) -> bool:
    """Whether an id from an event can be a key in the database: a non-blank string without
    NUL (PostgreSQL refuses it) or lone surrogates (JSON can carry them, UTF-8 cannot)."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _event_time(event: dict) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
