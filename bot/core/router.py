"""Routers: handlers register here, one router per ``handlers/`` module (aiogram's pattern).

A handler is ``async def name(ctx: Context) -> Reply | list[Reply] | None``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.messages import Incoming, Reply
from bot.core.state import ConversationState
from bot.i18n import Translator, translator
from procedures_catalog.normalize import fold

ENGINE_EVENTS = ("empty", "too_long", "error", "unavailable", "attachment")
HandlerResult = Reply | Sequence[Reply] | None
HandlerFn = Callable[["Context"], Awaitable[HandlerResult]]


@dataclass
class Context:
    """Everything a handler may use for one message: the message, the state, the services."""

    incoming: Incoming
    state: ConversationState
    t: Translator
    # The turn's transaction (bot/storage/turns.py): what a handler writes through it is
    # committed with the conversation's new state, or not at all.
    store: Any
    services: Any
    args: str = ""  # the part of a payload after a registered prefix

    @property
    def session(self) -> Any:
        """A SQLAlchemy AsyncSession in the turn's transaction (None while apologising for an
        error, when there is no transaction)."""
        return self.store.session if self.store is not None else None

    @property
    def locale(self) -> str:
        return self.t.locale

    def set_locale(self, locale: str) -> None:
        """Remember the user's language for this conversation and switch to it at once."""
        self.t = translator(locale)
        self.state.locale = self.t.locale


@dataclass(frozen=True)
class Route:
    name: str
    fn: HandlerFn


@dataclass
class Router:
    """Collects the routes of one topic."""

    name: str
    payloads: dict[str, Route] = field(default_factory=dict)
    payload_prefixes: dict[str, Route] = field(default_factory=dict)
    commands: dict[str, Route] = field(default_factory=dict)
    phrases: dict[str, Route] = field(default_factory=dict)
    steps: dict[str, Route] = field(default_factory=dict)
    texts: list[tuple[Callable[[str], bool], Route]] = field(default_factory=list)
    fallbacks: list[Route] = field(default_factory=list)
    events: dict[str, Route] = field(default_factory=dict)

    def _route(self, fn: HandlerFn) -> Route:
        return Route(f"{self.name}.{fn.__name__}", fn)

    def payload(self, *values: str, prefix: bool = False) -> Callable[[HandlerFn], HandlerFn]:
        """Handle button presses whose payload equals (or, with prefix=True, starts with) one."""

        def register(fn: HandlerFn) -> HandlerFn:
            target = self.payload_prefixes if prefix else self.payloads
            for value in values:
                target[value] = self._route(fn)
            return fn

        return register

    def command(self, *names: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle ``/name`` commands."""

        def register(fn: HandlerFn) -> HandlerFn:
            for name in names:
                self.commands[name.lower()] = self._route(fn)
            return fn

        return register

    def phrase(self, *phrases: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle a whole message equal to one of ``phrases`` once folded (any step, any accent)."""

        def register(fn: HandlerFn) -> HandlerFn:
            for phrase in phrases:
                self.phrases[fold(phrase)] = self._route(fn)
            return fn

        return register

    def step(self, *names: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle free text while the conversation is in one of the named steps."""

        def register(fn: HandlerFn) -> HandlerFn:
            for name in names:
                self.steps[name] = self._route(fn)
            return fn

        return register

    def text(self, predicate: Callable[[str], bool]) -> Callable[[HandlerFn], HandlerFn]:
        """Handle free text for which ``predicate(folded_text)`` is true; the handler may still
        decline by returning None, and the next text route (or the fallback) gets the message."""

        def register(fn: HandlerFn) -> HandlerFn:
            self.texts.append((predicate, self._route(fn)))
            return fn

        return register

    def event(self, *names: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle an engine event: "empty" text, "too_long" text, an "error" in a handler, the
        database "unavailable" (down, restarting, unreachable), or an "attachment" (files
        without text) that no step of a flow was waiting for."""

        def register(fn: HandlerFn) -> HandlerFn:
            for name in names:
                if name not in ENGINE_EVENTS:
                    raise ValueError(f"unknown event {name!r}; known: {ENGINE_EVENTS}")
                self.events[name] = self._route(fn)
            return fn

        return register

    def fallback(self) -> Callable[[HandlerFn], HandlerFn]:
        """Handle whatever no other route took."""

        def register(fn: HandlerFn) -> HandlerFn:
            self.fallbacks.append(self._route(fn))
            return fn

        return register


class RouteTable:
    """The merged routes of all routers, resolved in a fixed order of precedence."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self.payloads: dict[str, Route] = {}
        self.payload_prefixes: dict[str, Route] = {}
        self.commands: dict[str, Route] = {}
        self.phrases: dict[str, Route] = {}
        self.steps: dict[str, Route] = {}
        self.texts: list[tuple[Callable[[str], bool], Route]] = []
        fallbacks: list[Route] = []
        self.events: dict[str, Route] = {}
        for router in routers:
            for attr in ("payloads", "payload_prefixes", "commands", "phrases", "steps", "events"):
                mine, theirs = getattr(self, attr), getattr(router, attr)
                clash = mine.keys() & theirs.keys()
                if clash:
                    raise ValueError(f"{router.name}: {attr} registered twice: {sorted(clash)}")
                mine.update(theirs)
            self.texts.extend(router.texts)
            fallbacks.extend(router.fallbacks)
        missing = set(ENGINE_EVENTS) - self.events.keys()
        if missing:
            raise ValueError(f"no route for engine events {sorted(missing)}")
        if len(fallbacks) != 1:
            raise ValueError(f"exactly one fallback route is needed, found {len(fallbacks)}")
        self.fallback = fallbacks[0]
        # Longest prefix first so that "lang:set:" wins over "lang:".
        self._prefixes = sorted(self.payload_prefixes.items(), key=lambda kv: -len(kv[0]))

    def resolve(self, incoming: Incoming, state: ConversationState) -> list[tuple[Route, str]]:
        """Routes for a message, in the order to try them: payload, command, phrase, step, then
        free-text routes (each may decline by returning None) and the fallback."""
        if incoming.payload:
            if incoming.payload in self.payloads:
                return [(self.payloads[incoming.payload], "")]
            for prefix, route in self._prefixes:
                if incoming.payload.startswith(prefix):
                    return [(route, incoming.payload[len(prefix) :])]
        text = incoming.text.strip()
        if text.startswith("/"):
            word, _, rest = text[1:].partition(" ")
            name = word.split("@", 1)[0].lower()  # "/start@MotCuaBot" in group chats
            if name in self.commands:
                return [(self.commands[name], rest.strip())]
        folded = fold(text)
        if folded in self.phrases:
            return [(self.phrases[folded], "")]
        if state.step and state.step in self.steps:
            return [(self.steps[state.step], "")]
        if not folded and incoming.attachments:
            return [(self.events["attachment"], "")]
        candidates = []
        if folded:
            candidates = [(route, "") for predicate, route in self.texts if predicate(folded)]
        return [*candidates, (self.fallback, "")]
