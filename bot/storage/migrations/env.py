"""Alembic environment: runs on the connection handed over by bot.storage.migrate, or on
MOTCUA_DATABASE_URL when called from the ``alembic`` command line (e.g. to autogenerate)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from bot.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    from bot.config import load_settings
    from bot.storage.db import Database

    db = Database(config.get_main_option("sqlalchemy.url") or load_settings().database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(run_on)
    await db.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")

connection = config.attributes.get("connection")
if connection is None:
    asyncio.run(run_standalone())
else:
    run_on(connection)
