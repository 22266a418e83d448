"""Wiring: settings -> database -> dialogue engine -> channels -> one aiohttp application."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from bot.catalogue import CatalogueStore
from bot.channels.web import MAX_BODY_BYTES, WebChannel
from bot.config import Settings
from bot.core.engine import DialogueEngine
from bot.core.messages import Incoming
from bot.dossiers.notifier import DossierNotifier
from bot.dossiers.service import DossierService
from bot.feedback.attachments import AttachmentStore
from bot.feedback.service import FeedbackService
from bot.housekeeping import Housekeeping
from bot.leader import Leadership
from bot.outbox import OutboxDispatcher
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from procedures_catalog.loader import BUNDLED, Catalogue
from procedures_catalog.schema import Unit
from procedures_catalog.search import SearchIndex

log = logging.getLogger("motcua.app")


@dataclass
class Services:
    """What handlers may reach through ``ctx.services``."""

    settings: Settings
    db: Database
    catalogue: Catalogue
    search: SearchIndex
    dossiers: DossierService
    feedback: FeedbackService
    attachments: AttachmentStore
    # Channels that can send a message outside of a turn (dossier updates, staff answers).
    push_channels: frozenset[str] = frozenset()
    # Channels through which citizens can send files; None: not known (tests), assume all.
    file_channels: frozenset[str] | None = None
    # Channels that may push only within a window after the citizen's last message (Zalo);
    # handlers say so when a citizen asks to be told of a change.
    windowed_channels: frozenset[str] = frozenset()
    _unit_views: dict[str, Services] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls, settings: Settings, db: Database, catalogue: Catalogue, search: SearchIndex
    ) -> Services:
        from handlers.feedback_card import answer_notice

        dossiers = DossierService.build(settings, db, catalogue)
        feedback = FeedbackService.from_settings(
            settings, settings.unit, calendar=dossiers.calendar, render_answer=answer_notice
        )
        return cls(settings, db, catalogue, search, dossiers, feedback, feedback.store)

    def for_unit(self, unit: str | None) -> Services:
        """The services of another unit this deployment also speaks for (the demonstration
        unit of the web chat's demo mode): same database, catalogue and channels, the unit's
        own dossier source and feedback inbox. Built once per unit and kept."""
        if not unit or unit == self.settings.unit:
            return self
        views = self._unit_views
        found = views.get(unit)
        if found is None:
            settings = self.settings.model_copy(update={"unit": unit})
            found = Services.build(settings, self.db, self.catalogue, self.search)
            found.push_channels = self.push_channels
            found.file_channels = self.file_channels
            found.windowed_channels = self.windowed_channels
            views[unit] = found
        return found

    async def prefetch(self, incoming: Incoming) -> None:
        """Network lookups a handler will need, done before the conversation is locked."""
        text = incoming.text or incoming.payload  # a code typed, or in a button's payload
        if text:
            await self.dossiers.prefetch(text, f"{incoming.channel}:{incoming.conversation_id}")

    async def close(self) -> None:
        """Close the dossier sources' network clients (this unit's and the other units')."""
        for services in (self, *self._unit_views.values()):
            await services.dossiers.close()

    @property
    def unit(self) -> Unit | None:
        """The unit the bot speaks for (None if MOTCUA_UNIT names no known unit)."""
        return self.catalogue.units.get(self.settings.unit)

    def unit_name(self, unit: str) -> str:
        """A unit's name from its profile, else its id (a unit served without a profile)."""
        profile = self.catalogue.units.get(unit)
        return profile.name if profile is not None else unit

    @staticmethod
    async def read_catalogue(settings: Settings, db: Database) -> tuple[Catalogue, SearchIndex]:
        """The catalogue and unit profiles from the database, and the search index over them
        with the synonyms the unit's staff added (``unit_synonyms``)."""
        from sqlalchemy import select

        from bot.storage.models import UnitSynonym
        from procedures_catalog.search import default_lexicon

        catalogue = await CatalogueStore(db, settings.catalogue).load()
        async with db.session() as session:
            pairs = (
                await session.execute(
                    select(UnitSynonym.phrase, UnitSynonym.replacement)
                    .where(UnitSynonym.unit == settings.unit)
                    .order_by(UnitSynonym.id)
                )
            ).all()
        lexicon = default_lexicon().with_synonyms(pairs) if pairs else None
        # Building the index of a national catalogue takes about half a second: in a thread,
        # so that a reload while the bot runs lets chats go on.
        search = await asyncio.to_thread(SearchIndex, catalogue.procedures.values(), lexicon)
        return catalogue, search

    async def reload_catalogue(self) -> None:
        """Re-read the catalogue, the unit profiles and the staff synonyms from the database
        (after an import or a change on the dashboard). Turns already running keep the copy
        they started with; other processes see the change at their own reload or restart."""
        catalogue, search = await self.read_catalogue(self.settings, self.db)
        # Assigned with no await in between; a turn that awaits between reading the two may
        # pair old and new, which at worst makes a code unknown for that turn.
        self.catalogue, self.search = catalogue, search
        self.dossiers.catalogue = catalogue
        for view in self._unit_views.values():
            view.catalogue, view.search = catalogue, search
            view.dossiers.catalogue = catalogue
        log.info("catalogue %s reloaded: %d procedures", catalogue.name, len(catalogue))


async def open_database(settings: Settings) -> Database:
    """Open the configured database, bring its schema up to date, load the bundled catalogue
    into it the first time."""
    db = Database(settings.database_url, pool_size=settings.database_pool_size)
    try:
        await upgrade(db)
        if settings.catalogue in BUNDLED:
            await CatalogueStore(db, settings.catalogue).ensure_bundled()
    except BaseException:
        await db.dispose()
        raise
    return db


async def load_services(settings: Settings, db: Database) -> Services:
    catalogue, search = await Services.read_catalogue(settings, db)
    if settings.unit not in catalogue.units:
        log.warning("MOTCUA_UNIT=%s names no known unit", settings.unit)
    log.info("catalogue %s: %d procedures", catalogue.name, len(catalogue))
    return Services.build(settings, db, catalogue, search)


async def build_engine(settings: Settings, db: Database) -> DialogueEngine:
    from handlers import all_routers

    return DialogueEngine(
        db,
        all_routers(),
        services=await load_services(settings, db),
        default_locale=settings.default_locale,
        # Channels without buttons, where "2" picks the second choice shown.
        numbered_channels=("console", "zalo"),
    )


def build_channels(settings: Settings, engine: DialogueEngine) -> list:
    """The channels this deployment runs: the web chat always, Telegram when a token is set,
    Zalo when an app id is set."""
    channels: list = [WebChannel(engine, settings=settings)]
    if settings.telegram_token:
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(engine, settings))
    if settings.zalo_app_id:
        from bot.channels.zalo import ZaloChannel

        channels.append(ZaloChannel(engine, settings))
    return channels


def build_web_app(
    settings: Settings, engine: DialogueEngine, channels: list | None = None
) -> web.Application:
    """The one aiohttp application every web-facing channel adds its routes to."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    for channel in channels if channels is not None else build_channels(settings, engine)[:1]:
        channel.add_routes(app)
    app.router.add_get("/healthz", _healthz)
    from bot import metrics

    metrics.add_routes(app, engine.services)  # /metrics, /readyz
    from bot.staff.web import add_staff

    add_staff(app, engine.services)  # the staff dashboard under /staff
    return app


def _background_tasks(settings: Settings, db: Database, services: Services, channels: list) -> list:
    """The outbox dispatcher and the dossier notifier (for the channels that can push), and the
    pruning of old rows; also tells the handlers what the running channels can do."""
    from handlers.dossier_card import change_notice

    push = {channel.name: channel for channel in channels if getattr(channel, "can_push", False)}
    services.push_channels = frozenset(push)
    services.file_channels = frozenset(
        channel.name for channel in channels if getattr(channel, "accepts_files", False)
    )
    services.windowed_channels = frozenset(
        channel.name for channel in channels if getattr(channel, "windowed", False)
    )
    dispatcher = OutboxDispatcher(db, push)
    for channel in channels:
        if hasattr(channel, "wake_outbox"):
            channel.wake_outbox = dispatcher.wake  # held messages released: send them now
    # One notifier per unit served (and the web demo's): each asks its own unit's source.
    units = [*settings.served_units, *([settings.web_demo_unit] if settings.web_demo_unit else [])]
    notifiers = [
        DossierNotifier(
            services.for_unit(unit).dossiers,
            interval=settings.dossier_poll_seconds,
            channels=frozenset(push),
            render=change_notice,
            on_queued=dispatcher.wake,
        )
        for unit in dict.fromkeys(units)
    ]
    retention = timedelta(minutes=settings.submission_photo_retention_minutes)
    jobs = [
        dispatcher,
        *notifiers,
        Housekeeping(db, services.attachments, photo_retention=retention),
    ]
    leadership = Leadership(db)  # one process of the deployment runs them
    for job in jobs:
        job.leader = leadership
    return jobs


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _freeze_startup_objects() -> None:
    """Leave what start-up built (the catalogue, its search index, the modules) out of the
    garbage collector's full passes: it lives as long as the process, and scanning its ~150,000
    objects took about 55 ms per full collection, a pause every few seconds under load
    (docs/BENCHMARKS.md). Objects made afterwards are collected as usual."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: Settings, on_ready: Callable[[int, list], None], *, reuse_port: bool = False
) -> None:
    """Run the bot until SIGINT/SIGTERM: migrate, serve the web app, start the channels.

    ``on_ready`` is called with the port actually bound (useful with port 0) and the channels.
    ``reuse_port``: several worker processes listen on the same port (``--workers``).
    """
    db = await open_database(settings)
    engine = await build_engine(settings, db)
    channels = build_channels(settings, engine)
    app = build_web_app(settings, engine, channels)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    started, background = [], []
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
        await site.start()
        port = runner.addresses[0][1] if runner.addresses else settings.port
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        for channel in channels:
            await channel.start()
            started.append(channel)
        background = _background_tasks(settings, db, engine.services, channels)
        for task in background:
            await task.start()
        _freeze_startup_objects()
        on_ready(port, channels)
        await stop.wait()
        log.info("shutting down")
    finally:
        # Graceful: stop accepting connections and let the requests in flight finish (webhook
        # updates being handled, chat messages), then stop the background jobs, then let each
        # channel stop polling and finish sending, then close the clients and the database.
        await runner.cleanup()
        for task in reversed(background):
            await task.stop()
        if background and background[0].leader is not None:
            await background[0].leader.close()
        for channel in reversed(started):
            try:
                await channel.stop()
            except Exception:
                log.exception("channel %s did not stop cleanly", channel.name)
        await engine.services.close()
        await db.dispose()
