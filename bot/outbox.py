"""Messages pushed into chats outside of a turn (dossier updates now, staff answers later).

A message is queued as a row of ``outbox`` in the transaction that decided to send it, then a
dispatcher in each running bot claims due rows, sends them through their channel and marks them
sent. Nothing queued is lost to a crash or restart; a crash between sending and marking can at
worst send one message twice (the platforms offer no way to make a send idempotent).

A *pull* channel (the web chat: a page cannot be called, it polls) is skipped by the dispatcher;
its page takes its chat's rows with ``take_pending``, which marks them sent as it returns them.

A channel that may write to a chat only within a window after the citizen's last message (Zalo)
answers ``HELD`` from ``send``: the row waits, not counted as a failed attempt, until the
channel calls ``release_held`` when that citizen writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta

from sqlalchemy import or_, select, update

from bot.background import Periodic
from bot.core.messages import Button, Reply
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, utcnow

log = logging.getLogger("motcua.outbox")

HELD = "held"  # what a channel's send() returns when it may not write to that chat yet

MAX_ATTEMPTS = 8
CLAIM_SECONDS = 120  # another process may take a row over if we die while sending it


def reply_to_dict(reply: Reply) -> dict:
    return {"text": reply.text, "buttons": [[b.label, b.payload] for b in reply.buttons]}


def reply_from_dict(data: dict) -> Reply:
    return Reply(data["text"], [Button(label, payload) for label, payload in data["buttons"]])


def enqueue(
    session, channel: str, conversation_id: str, replies: Sequence[Reply], reason: str
) -> None:
    """Queue replies for a chat in the caller's transaction."""
    now = utcnow()
    session.add(
        OutboxMessage(
            channel=channel,
            conversation_id=conversation_id,
            replies=[reply_to_dict(r) for r in replies],
            reason=reason,
            created_at=now,
            next_attempt_at=now,
            attempts=0,
        )
    )


async def take_pending(
    db: Database, channel: str, conversation_id: str, limit: int = 20
) -> list[tuple[int, list[Reply]]]:
    """Take a pull channel's due messages for one chat, oldest first, marking them sent.

    The conditional UPDATE ... RETURNING only returns rows it turned from unsent to sent, so two
    concurrent polls never both get one message. Most polls find nothing: a read answers those
    without taking the write lock (SQLite has one writer for the whole database).
    """
    now = utcnow()
    table = OutboxMessage
    async with db.session() as session:
        ids = (
            await session.scalars(
                select(table.id)
                .where(
                    table.sent_at.is_(None),
                    table.next_attempt_at <= now,
                    table.failed_at.is_(None),
                    table.channel == channel,
                    table.conversation_id == conversation_id,
                )
                .order_by(table.id)
                .limit(limit)
            )
        ).all()
    if not ids:
        return []
    async with db.write_transaction() as session:
        rows = (
            await session.execute(
                update(table)
                .where(table.id.in_(ids), table.sent_at.is_(None))
                .values(sent_at=now)
                .returning(table.id, table.replies)
                .execution_options(synchronize_session=False)
            )
        ).all()
    return [
        (row.id, [reply_from_dict(r) for r in row.replies])
        for row in sorted(rows, key=lambda row: row.id)
    ]


class OutboxDispatcher(Periodic):
    """Sends queued messages through the channels that can push; retries with backoff.

    Pull channels (``pull = True``) are left out: their pages take their messages themselves.
    """

    name = "outbox"

    def __init__(self, db: Database, channels: Mapping[str, object], *, interval: float = 1.0):
        self.db = db
        self.channels = {
            name: channel
            for name, channel in channels.items()
            if not getattr(channel, "pull", False)
        }
        self.interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the queue now rather than at the next tick."""
        self._wake.set()

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    async def wait(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval)
        self._wake.clear()

    async def run_once(self, limit: int = 50) -> int:
        """Send what is due; return how many messages were delivered."""
        now = utcnow()
        table = OutboxMessage
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(table.id, table.channel, table.conversation_id, table.replies)
                    .where(
                        table.sent_at.is_(None),
                        table.failed_at.is_(None),
                        table.next_attempt_at <= now,
                        table.channel.in_(list(self.channels)),
                        table.held_since.is_(None),
                        or_(table.claimed_until.is_(None), table.claimed_until < now),
                    )
                    .order_by(table.id)
                    .limit(limit)
                )
            ).all()
        delivered = 0
        for row in rows:
            if not await self._claim(row.id):
                continue  # another process took it
            delivered += await self._send(row)
        return delivered

    async def _claim(self, row_id: int) -> bool:
        now = utcnow()
        async with self.db.write_transaction() as session:
            result = await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == row_id,
                    OutboxMessage.sent_at.is_(None),
                    or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now),
                )
                .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
            return result.rowcount == 1

    async def _send(self, row) -> int:
        channel = self.channels[row.channel]
        error = None
        try:
            ok = await channel.send(row.conversation_id, [reply_from_dict(r) for r in row.replies])
        except Exception as exc:  # a channel bug must not stop the queue
            log.exception("outbox: channel %s failed on message %d", row.channel, row.id)
            ok, error = False, type(exc).__name__
        if ok == HELD:
            async with self.db.write_transaction() as session:
                message = await session.get(OutboxMessage, row.id)
                message.claimed_until = None
                message.held_since = message.held_since or utcnow()
            log.info("outbox: message %d to %s held until the citizen writes", row.id, row.channel)
            # The citizen may have written while this was being decided, after their turn
            # looked for held messages: the channel checks again now that the hold is stored.
            recheck = getattr(channel, "after_hold", None)
            if recheck is not None:
                await recheck(row.conversation_id, [reply_from_dict(r) for r in row.replies])
            return 0
        async with self.db.write_transaction() as session:
            message = await session.get(OutboxMessage, row.id)
            message.claimed_until = None
            if ok is not False:
                message.sent_at = utcnow()
                return 1
            message.attempts += 1
            message.last_error = (error or "not delivered")[:200]
            if message.attempts >= MAX_ATTEMPTS:
                message.failed_at = utcnow()
                log.error("outbox: message %d to %s given up", row.id, row.channel)
            else:
                backoff = min(3600, 15 * 2 ** (message.attempts - 1))
                message.next_attempt_at = utcnow() + timedelta(seconds=backoff)
            return 0


def _held(channel: str, conversation_id: str) -> tuple:
    """The conditions of a chat's messages waiting for the citizen to write."""
    return (
        OutboxMessage.channel == channel,
        OutboxMessage.conversation_id == conversation_id,
        OutboxMessage.held_since.is_not(None),
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
    )


async def release_held(db: Database, channel: str, conversation_id: str) -> int:
    """The citizen wrote again: make the chat's held messages due now; return how many."""
    now = utcnow()
    async with db.write_transaction() as session:
        result = await session.execute(
            update(OutboxMessage)
            .where(*_held(channel, conversation_id))
            .values(held_since=None, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0


async def has_held(db: Database, channel: str, conversation_id: str) -> bool:
    """Whether the chat has messages waiting for the citizen to write (a cheap read, so that
    the common case takes no write lock)."""
    async with db.session() as session:
        found = await session.scalar(
            select(OutboxMessage.id).where(*_held(channel, conversation_id)).limit(1)
        )
    return found is not None
