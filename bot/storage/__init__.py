"""Storage: SQLAlchemy 2 async models and sessions, Alembic migrations."""

from bot.storage.db import Database

__all__ = ["Database"]
