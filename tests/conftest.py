"""Shared fixtures: a migrated database on SQLite and (when configured) PostgreSQL, the engine,
and a chat helper so tests read like a conversation."""

from __future__ import annotations

import functools
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Sequence

import pytest

from bot.app import Services
from bot.config import load_settings
from bot.core.engine import DialogueEngine
from bot.core.messages import Incoming, Reply
from bot.core.router import Router
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from handlers import all_routers
from procedures_catalog.loader import Catalogue, load_bundled
from procedures_catalog.search import SearchIndex

POSTGRES_URL = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
REQUIRE_ALL = os.environ.get("MOTCUA_TEST_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test whose outside requirement is missing; in CI (REQUIRE_ALL) fail instead."""
    if REQUIRE_ALL:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


class DatabaseFactory:
    """Creates migrated databases for one backend; PostgreSQL ones live in a throwaway schema."""

    def __init__(self, backend: str, tmp_path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.schema = f"t_{secrets.token_hex(6)}"
        self.url = (
            f"sqlite+aiosqlite:///{tmp_path}/bot.sqlite3" if backend == "sqlite" else POSTGRES_URL
        )
        self._opened: list[Database] = []

    async def open(self) -> Database:
        """Open one more connection pool on the same database (as another process would)."""
        if self.backend == "sqlite":
            db = Database(self.url)
        else:
            db = Database(self.url, connect_args={"server_settings": {"search_path": self.schema}})
            if not self._opened:
                async with db.engine.begin() as conn:
                    await conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
        if not self._opened:
            await upgrade(db)
        self._opened.append(db)
        return db

    async def close(self) -> None:
        if self.backend == "postgresql" and self._opened:
            async with self._opened[0].engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA "{self.schema}" CASCADE')
        for db in self._opened:
            await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(request, tmp_path) -> AsyncIterator[DatabaseFactory]:
    """A factory of migrated databases, once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql" and not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    factory = DatabaseFactory(request.param, tmp_path)
    yield factory
    await factory.close()


@pytest.fixture
async def db(databases: DatabaseFactory) -> Database:
    return await databases.open()


@pytest.fixture
async def sqlite_db(tmp_path) -> AsyncIterator[Database]:
    factory = DatabaseFactory("sqlite", tmp_path)
    yield await factory.open()
    await factory.close()


@functools.cache
def bundled_commune() -> tuple[Catalogue, SearchIndex]:
    """The bundled commune catalogue, read once per test session (it is never modified)."""
    catalogue = load_bundled("commune")
    return catalogue, SearchIndex(catalogue.procedures.values())


@pytest.fixture(scope="session")
def commune_index() -> SearchIndex:
    """The search index over the bundled commune catalogue (searching never modifies it)."""
    return bundled_commune()[1]


def make_engine(
    db: Database,
    extra: Sequence[Router] = (),
    *,
    dossier_source=None,
    push_channels: Sequence[str] = (),
    **settings_overrides,
) -> DialogueEngine:
    """An engine over the bundled commune catalogue; ``dossier_source`` is a source kind
    ("local", "demo") or a source object replacing the one the settings would choose (e.g. an
    HTTP source pointed at a fake)."""
    settings_overrides.setdefault("attachments_dir", tempfile.mkdtemp(prefix="motcua-files-"))
    if isinstance(dossier_source, str):
        settings_overrides["dossier_source"], dossier_source = dossier_source, None
    settings = load_settings(
        database_url=str(db.url.render_as_string(hide_password=False)), **settings_overrides
    )
    catalogue, index = bundled_commune()
    services = Services.build(settings, db, catalogue, index)
    services.push_channels = frozenset(push_channels)
    if dossier_source is not None:
        services.dossiers.source = dossier_source
    return DialogueEngine(db, [*extra, *all_routers()], services=services)


@pytest.fixture
def engine(db: Database) -> DialogueEngine:
    return make_engine(db)


class Chat:
    """A conversation driven through the neutral types: say something, look at the replies."""

    def __init__(
        self,
        engine: DialogueEngine,
        channel: str = "test",
        conversation_id: str = "c1",
        locale: str | None = None,
    ) -> None:
        self.engine = engine
        self.channel = channel
        self.conversation_id = conversation_id
        self.locale = locale
        self.replies: list[Reply] = []

    async def say(self, text: str) -> list[Reply]:
        return await self._send(text=text)

    async def press(self, payload: str) -> list[Reply]:
        return await self._send(payload=payload)

    async def _send(self, text: str = "", payload: str | None = None) -> list[Reply]:
        self.replies = await self.engine.handle(
            Incoming(
                channel=self.channel,
                conversation_id=self.conversation_id,
                user_id="u-" + self.conversation_id,
                text=text,
                payload=payload,
                locale=self.locale,
            )
        )
        return self.replies

    @property
    def text(self) -> str:
        """All reply texts of the last turn, joined."""
        return "\n".join(reply.text for reply in self.replies)

    @property
    def buttons(self) -> list[str]:
        return [button.label for reply in self.replies for button in reply.buttons]

    @property
    def payloads(self) -> list[str]:
        return [button.payload for reply in self.replies for button in reply.buttons]


@pytest.fixture
def chat(engine: DialogueEngine) -> Chat:
    return Chat(engine)
