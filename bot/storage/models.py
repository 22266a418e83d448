"""Database models (SQLAlchemy 2, typed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}


class Conversation(Base):
    """One chat on one channel; the key of all dialogue state (and of the per-chat lock)."""

    __tablename__ = "conversations"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), default="")
    locale: Mapped[str | None] = mapped_column(String(8))
    step: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    choices: Mapped[list[str]] = mapped_column(default=list)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogueProcedure(Base):
    """One procedure of one named catalogue ("commune", "national", or a province's own)."""

    __tablename__ = "catalogue_procedures"

    catalogue: Mapped[str] = mapped_column(String(32), primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(255), default="")
    document: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UnitProfile(Base):
    """A commune or ward (xã, phường): its desk's address, hours and the procedures it applies."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SearchLogEntry(Base):
    """One procedure search a citizen made: what was asked (masked) and what was found.

    No user or conversation id is kept: this is for staff to see what people look for and which
    questions found nothing (to grow the synonym file), not to follow anyone.
    """

    __tablename__ = "search_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    channel: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(64), default="")
    query: Mapped[str] = mapped_column(String(200))
    top_code: Mapped[str | None] = mapped_column(String(16))
    results: Mapped[int] = mapped_column(Integer, default=0)


class InboundMessage(Base):
    """A platform update already handled (Telegram ``update_id``, Zalo message id).

    Written in the same transaction as the conversation's new state, so an update that the
    platform delivers again (after a timeout, a restart, or to another process) is handled once.
    Rows older than a few days are pruned: platforms stop re-delivering long before that.
    """

    __tablename__ = "inbound_messages"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
