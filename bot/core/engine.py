"""The dialogue engine: one message in, replies out, state saved in between.

Path of one message: clean text -> lock the conversation (in process, then its database row)
-> load state -> route -> handler -> save state and the handler's writes in one transaction
-> release -> return replies for the channel to send.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.locks import KeyedLocks
from bot.core.messages import Incoming, Reply
from bot.core.router import Context, HandlerResult, Route, Router, RouteTable
from bot.core.state import ConversationState
from bot.core.text import MAX_TEXT_CHARS, clean_text
from bot.i18n import DEFAULT_LOCALE, normalize_locale, translator
from bot.metrics import observe_turn
from bot.storage.db import Database
from bot.storage.models import Conversation, InboundMessage, utcnow

log = logging.getLogger("motcua.engine")


@dataclass(frozen=True)
class Turn:
    """The outcome of one message: replies, and the conversation's locale after it."""

    replies: list[Reply]
    locale: str
    duplicate: bool = False  # the platform delivered this message before; nothing was done


def conversation_tag(channel: str, conversation_id: str) -> str:
    """A short stable pseudonym of a conversation for logs (chat ids are personal data)."""
    return hashlib.sha256(f"{channel}:{conversation_id}".encode()).hexdigest()[:10]


class DialogueEngine:
    """Routes each Incoming to a handler and keeps the conversation's state in the database."""

    def __init__(
        self,
        db: Database,
        routers: Sequence[Router],
        *,
        services: Any = None,
        default_locale: str = DEFAULT_LOCALE,
        numbered_channels: Collection[str] = ("console",),
    ) -> None:
        self.db = db
        self.routes = RouteTable(routers)
        self.services = services
        self.default_locale = normalize_locale(default_locale) or DEFAULT_LOCALE
        self.numbered_channels = frozenset(numbered_channels)
        self._locks = KeyedLocks()
        self._prepared: dict[str, _Statements] = {}

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Handle one message and return the replies; never raises for anything the user sent."""
        return (await self.handle_turn(incoming)).replies

    async def handle_turn(self, incoming: Incoming) -> Turn:
        """Handle one message; also tell the channel the conversation's locale afterwards.

        When the channel sets ``incoming.message_id`` (the platform's update id), a message
        already handled is recognised in the same transaction and gets no replies.
        """
        started = time.perf_counter()
        incoming = replace(
            incoming,
            text=clean_text(incoming.text),
            payload=clean_text(incoming.payload) or None,
            conversation_id=str(incoming.conversation_id)[:128],
            user_id=str(incoming.user_id)[:128],
            message_id=str(incoming.message_id)[:128] if incoming.message_id else None,
        )
        key = (incoming.channel, incoming.conversation_id)
        route_name = "-"
        duplicate = False
        await self._prefetch(incoming)
        async with self._locks.hold(key):
            try:
                async with self.db.write_transaction() as session:
                    statements = self._statements(session)
                    if incoming.message_id and not await statements.first_delivery(
                        session, incoming
                    ):
                        duplicate, route_name = True, "duplicate"
                        replies = []
                        locale = normalize_locale(incoming.locale) or self.default_locale
                    else:
                        state = await statements.lock_conversation(session, incoming)
                        incoming = self._resolve_number(incoming, state)
                        for route, args in self._routes_for(incoming, state):
                            route_name = route.name
                            ctx = self._context(incoming, state, session, args)
                            result = await route.fn(ctx)
                            if result is not None:
                                break
                        replies = _as_list(result)
                        if any(reply.buttons for reply in replies):
                            state.choices = [b.payload for r in replies for b in r.buttons]
                        else:
                            state.choices = []
                        state.message_count += 1
                        await statements.save_state(session, incoming, state)
                        locale = ctx.locale
            except Exception:
                log.exception(
                    "handler failed channel=%s conv=%s handler=%s",
                    incoming.channel,
                    conversation_tag(*key),
                    route_name,
                )
                replies, locale = await self._error_replies(incoming)
                route_name = f"{route_name}!error"
        elapsed = time.perf_counter() - started
        log.info(
            "handled channel=%s conv=%s handler=%s duration_ms=%.1f replies=%d",
            incoming.channel,
            conversation_tag(*key),
            route_name,
            elapsed * 1000,
            len(replies),
        )
        observe_turn(incoming.channel, route_name, elapsed)
        return Turn(replies, locale, duplicate)

    async def _prefetch(self, incoming: Incoming) -> None:
        """Let services fetch what a handler will need from across the network before the
        conversation is locked (a slow upstream must not hold a database transaction open)."""
        prefetch = getattr(self._services(incoming), "prefetch", None)
        if prefetch is None:
            return
        try:
            await prefetch(incoming)
        except Exception:  # the handler will try again and answer properly
            log.exception("prefetch failed channel=%s", incoming.channel)

    def _services(self, incoming: Incoming) -> Any:
        """The services of the unit the message's entry point speaks for."""
        if incoming.unit and hasattr(self.services, "for_unit"):
            return self.services.for_unit(incoming.unit)
        return self.services

    def _statements(self, session: AsyncSession) -> _Statements:
        dialect = session.bind.dialect.name
        found = self._prepared.get(dialect)
        if found is None:
            found = self._prepared[dialect] = _Statements(dialect)
        return found

    def _routes_for(self, incoming: Incoming, state: ConversationState) -> list[tuple[Route, str]]:
        if len(incoming.text) > MAX_TEXT_CHARS:
            return [(self.routes.events["too_long"], str(len(incoming.text)))]
        if not incoming.text and not incoming.payload and not incoming.attachments:
            return [(self.routes.events["empty"], "")]
        return self.routes.resolve(incoming, state)

    def _resolve_number(self, incoming: Incoming, state: ConversationState) -> Incoming:
        """On channels without buttons, "2" means the second button last shown."""
        if incoming.channel not in self.numbered_channels or incoming.payload:
            return incoming
        text = incoming.text.strip().rstrip(".")
        # isdecimal, not isdigit: int() refuses "²"; and it refuses over 4,300 digits.
        if text.isdecimal() and len(text) <= 6 and 1 <= int(text) <= len(state.choices):
            return replace(incoming, payload=state.choices[int(text) - 1])
        return incoming

    def _context(
        self, incoming: Incoming, state: ConversationState, session: Any, args: str = ""
    ) -> Context:
        locale = state.locale or normalize_locale(incoming.locale) or self.default_locale
        return Context(
            incoming=incoming,
            state=state,
            t=translator(locale),
            session=session,
            services=self._services(incoming),
            args=args,
        )

    async def _error_replies(self, incoming: Incoming) -> tuple[list[Reply], str]:
        """Apologise in the user's language if the database can still tell it, else the default."""
        state = ConversationState()
        try:
            async with self.db.session() as session:
                state.locale = await session.scalar(
                    select(Conversation.locale).where(
                        Conversation.channel == incoming.channel,
                        Conversation.conversation_id == incoming.conversation_id,
                    )
                )
        except Exception:  # the database may be what failed
            log.warning("could not read the conversation locale for the apology")
        try:
            ctx = self._context(incoming, state, None)
            return _as_list(await self.routes.events["error"].fn(ctx)), ctx.locale
        except Exception:  # the apology itself must never take the channel down
            log.exception("error handler failed")
            t = translator(self.default_locale)
            return [Reply(t("Sorry, something went wrong."))], t.locale


class _Statements:
    """The engine's SQL, built once per dialect: building SQLAlchemy statements costs more than
    running them on a warm connection, and every message runs all three."""

    _STATE = ("locale", "step", "data", "choices", "message_count")

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        table = Conversation.__table__
        upsert = insert(table).values(
            channel=bindparam("channel"),
            conversation_id=bindparam("conversation_id"),
            user_id=bindparam("user_id"),
            data={},
            choices=[],
            message_count=0,
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
        )
        # The upsert is the first write of the transaction: on SQLite it takes the database
        # write lock (writers are also queued in process, see Database.write_transaction), on
        # PostgreSQL it locks the row until commit; either way a second process handling the
        # same chat waits here, and RETURNING saves a separate SELECT ... FOR UPDATE.
        self.upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.channel, table.c.conversation_id],
            set_={"updated_at": upsert.excluded.updated_at},
        ).returning(*(table.c[name] for name in self._STATE))
        self.save = (
            update(table)
            .where(
                table.c.channel == bindparam("b_channel"),
                table.c.conversation_id == bindparam("b_conversation_id"),
            )
            .values(
                user_id=bindparam("b_user_id"),
                updated_at=bindparam("b_now"),
                **{name: bindparam(f"b_{name}", type_=table.c[name].type) for name in self._STATE},
            )
        )
        inbound = InboundMessage.__table__
        self.inbound = (
            insert(inbound)
            .values(
                channel=bindparam("channel"),
                message_id=bindparam("message_id"),
                received_at=bindparam("now"),
            )
            .on_conflict_do_nothing(index_elements=[inbound.c.channel, inbound.c.message_id])
        )

    async def first_delivery(self, session: AsyncSession, incoming: Incoming) -> bool:
        """Record the platform's id of this message; False if it was recorded before."""
        result = await session.execute(
            self.inbound,
            {"channel": incoming.channel, "message_id": incoming.message_id, "now": utcnow()},
        )
        return result.rowcount == 1

    async def lock_conversation(
        self, session: AsyncSession, incoming: Incoming
    ) -> ConversationState:
        """Create the conversation row if missing, lock it until commit, return its state."""
        row = (
            await session.execute(
                self.upsert,
                {
                    "channel": incoming.channel,
                    "conversation_id": incoming.conversation_id,
                    "user_id": incoming.user_id,
                    "now": utcnow(),
                },
            )
        ).one()
        return ConversationState(
            locale=row.locale,
            step=row.step,
            data=dict(row.data or {}),
            choices=list(row.choices or []),
            message_count=row.message_count,
        )

    async def save_state(
        self, session: AsyncSession, incoming: Incoming, state: ConversationState
    ) -> None:
        await session.execute(
            self.save,
            {
                "b_channel": incoming.channel,
                "b_conversation_id": incoming.conversation_id,
                "b_user_id": incoming.user_id,
                "b_now": utcnow(),
                "b_locale": state.locale,
                "b_step": state.step,
                "b_data": dict(state.data),
                "b_choices": list(state.choices),
                "b_message_count": state.message_count,
            },
        )


def _as_list(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, Reply):
        return [result]
    return list(result)
