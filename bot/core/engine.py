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

from sqlalchemy import select

from bot.core.locks import KeyedLocks
from bot.core.messages import Incoming, Reply
from bot.core.router import Context, HandlerResult, Route, Router, RouteTable
from bot.core.state import ConversationState
from bot.core.text import MAX_TEXT_CHARS, clean_text
from bot.i18n import DEFAULT_LOCALE, normalize_locale, translator
from bot.metrics import observe_turn
from bot.storage.db import Database, is_unavailable, unavailable_reason
from bot.storage.models import Conversation

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
                async with self.db.turns.transaction() as tx:
                    if incoming.message_id and not await tx.first_delivery(
                        incoming.channel, incoming.message_id
                    ):
                        duplicate, route_name = True, "duplicate"
                        replies = []
                        locale = normalize_locale(incoming.locale) or self.default_locale
                    else:
                        row = await tx.lock_conversation(*key, incoming.user_id)
                        state = _state_from_row(row)
                        incoming = self._resolve_number(incoming, state)
                        for route, args in self._routes_for(incoming, state):
                            route_name = route.name
                            ctx = self._context(incoming, state, tx, args)
                            result = await route.fn(ctx)
                            if result is not None:
                                break
                        replies = _as_list(result)
                        if any(reply.buttons for reply in replies):
                            state.choices = [b.payload for r in replies for b in r.buttons]
                        else:
                            state.choices = []
                        state.message_count += 1
                        await tx.save_state(*key, incoming.user_id, _state_row(state))
                        locale = ctx.locale
            except Exception as exc:
                event = "unavailable" if is_unavailable(exc) else "error"
                if event == "unavailable":  # an outage, not a bug: one line, no traceback
                    log.warning(
                        "database unavailable channel=%s conv=%s handler=%s: %s",
                        incoming.channel,
                        conversation_tag(*key),
                        route_name,
                        unavailable_reason(exc),
                    )
                else:
                    log.exception(
                        "handler failed channel=%s conv=%s handler=%s",
                        incoming.channel,
                        conversation_tag(*key),
                        route_name,
                    )
                replies, locale = await self._error_replies(incoming, event)
                route_name = f"{route_name}!{event}"
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

    def _services(self, incoming: Incoming, state: ConversationState | None = None) -> Any:
        """The services of the unit the message is for: the one its entry point speaks for
        (the web chat's demo or ?unit=), else the one the citizen chose (``state.unit``, if
        the deployment still serves it), else the deployment's own. The prefetch, before the
        state is read, knows only the first."""
        unit = incoming.unit
        if not unit and state is not None and state.unit:
            settings = getattr(self.services, "settings", None)
            if settings is not None and state.unit in settings.served_units:
                unit = state.unit
        if unit and hasattr(self.services, "for_unit"):
            return self.services.for_unit(unit)
        return self.services

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
        self, incoming: Incoming, state: ConversationState, store: Any, args: str = ""
    ) -> Context:
        locale = state.locale or normalize_locale(incoming.locale) or self.default_locale
        return Context(
            incoming=incoming,
            state=state,
            t=translator(locale),
            store=store,
            services=self._services(incoming, state),
            args=args,
        )

    async def _error_replies(self, incoming: Incoming, event: str) -> tuple[list[Reply], str]:
        """Apologise in the user's language if the database can still tell it, else the one
        the platform gave or the default."""
        state = ConversationState()
        if event != "unavailable":  # no database to ask then
            state.locale = await self._stored_locale(incoming)
        try:
            ctx = self._context(incoming, state, None)
            return _as_list(await self.routes.events[event].fn(ctx)), ctx.locale
        except Exception:  # the apology itself must never take the channel down
            log.exception("error handler failed")
            t = translator(self.default_locale)
            return [Reply(t("Sorry, something went wrong."))], t.locale

    async def _stored_locale(self, incoming: Incoming) -> str | None:
        try:
            async with self.db.session() as session:
                return await session.scalar(
                    select(Conversation.locale).where(
                        Conversation.channel == incoming.channel,
                        Conversation.conversation_id == incoming.conversation_id,
                    )
                )
        except Exception:  # the database may be what failed
            log.warning("could not read the conversation locale for the apology")
            return None


def _state_from_row(row: dict[str, Any]) -> ConversationState:
    return ConversationState(
        locale=row["locale"],
        step=row["step"],
        data=dict(row["data"] or {}),
        choices=list(row["choices"] or []),
        message_count=row["message_count"] or 0,
    )


def _state_row(state: ConversationState) -> dict[str, Any]:
    return {
        "locale": state.locale,
        "step": state.step,
        "data": dict(state.data),
        "choices": list(state.choices),
        "message_count": state.message_count,
    }


def _as_list(result: HandlerResult) -> list[Reply]:
    if result is None:
        return []
    if isinstance(result, Reply):
        return [result]
    return list(result)
