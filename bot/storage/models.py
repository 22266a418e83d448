"""Database models (SQLAlchemy 2, typed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A datetime read back from the database, aware and in UTC (SQLite drops the zone; every
    value we write is UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    Rows older than 7 days are pruned (bot/housekeeping.py): platforms stop re-delivering long
    before that.
    """

    __tablename__ = "inbound_messages"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class DossierRecord(Base):
    """A dossier (hồ sơ) known locally: imported from the one-stop software's export or entered
    by staff. Its history is in ``dossier_events``; no applicant name, address or ID is kept."""

    __tablename__ = "dossiers"
    __table_args__ = (Index("ix_dossiers_unit_received_at", "unit", "received_at"),)

    unit: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    procedure_code: Mapped[str | None] = mapped_column(String(16))
    procedure_name: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(32))
    phone_last4: Mapped[str | None] = mapped_column(String(4))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DossierEvent(Base):
    """One status change of a local dossier; rows are only ever added (FixMyStreet's updates)."""

    __tablename__ = "dossier_events"
    __table_args__ = (Index("ix_dossier_events_dossier", "unit", "code", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DossierCacheEntry(Base):
    """The last answer an upstream dossier system gave for a code, shown when it is down."""

    __tablename__ = "dossier_cache"

    unit: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column()
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DossierSubscription(Base):
    """A conversation that asked to be told when a dossier changes.

    ``notified`` is how many history entries the conversation has been told about; the poller
    moves it forward in the same transaction as it queues the messages, so each change is
    queued exactly once even across restarts and processes.
    """

    __tablename__ = "dossier_subscriptions"
    __table_args__ = (
        UniqueConstraint("channel", "conversation_id", "unit", "code"),
        Index("ix_dossier_subscriptions_active", "ended_at", "unit", "code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(128))
    unit: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    notified: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DossierLookupEntry(Base):
    """One dossier lookup, for rate limits (per conversation and overall) against enumeration
    of codes. The conversation is kept only as a short hash; the code is not kept."""

    __tablename__ = "dossier_lookups"
    __table_args__ = (Index("ix_dossier_lookups_who_at", "who", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    who: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    outcome: Mapped[str] = mapped_column(String(16))


class OutboxMessage(Base):
    """A message to push into a chat outside of a turn (a dossier change, a staff answer).

    Queued in the transaction that decided it; a dispatcher sends it and marks it sent, so a
    crash or restart in between loses nothing (at worst the message goes out twice).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "sent_at", "next_attempt_at"),
        # The web page's poll: this chat's unsent messages.
        Index("ix_outbox_chat", "channel", "conversation_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(128))
    replies: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while the channel may not write to the chat yet (Zalo: outside the reply window);
    # cleared when the citizen writes again.
    held_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Feedback(Base):
    """A citizen's feedback (phản ánh: a problem; kiến nghị: a proposal) and where it stands.

    Only written whole, in one transaction with its attachments' rows and its first history
    row, after its files are on disk: staff never see half a feedback. ``submit_key`` is the
    draft's id, unique, so a double tap on "send" creates one feedback.
    """

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_unit_status", "unit", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tracking_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    submit_key: Mapped[str] = mapped_column(String(64), unique=True)
    unit: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(16))
    procedure_code: Mapped[str | None] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(20))
    consent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[str] = mapped_column(String(128))
    locale: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    assigned_to: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FeedbackAttachment(Base):
    """A file attached to a feedback; the bytes live in the content-addressed store on disk."""

    __tablename__ = "feedback_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[int] = mapped_column(Integer, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(200))
    mime_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)


class FeedbackEvent(Base):
    """One step of a feedback's history: who did what, when; rows are only ever added."""

    __tablename__ = "feedback_events"
    __table_args__ = (Index("ix_feedback_events_feedback", "feedback_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feedback_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # "citizen", "staff:<name>", "system"
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # the status after this step
    text: Mapped[str] = mapped_column(Text, default="")


class StaffUser(Base):
    """An officer's account for the staff dashboard (/staff).

    Roles: "officer" (own unit), "unit_admin" (own unit, manages its accounts and profile),
    "super_admin" (every unit). The password is stored only as an argon2 hash.
    """

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StaffSession(Base):
    """A logged-in browser: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "staff_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class StaffLoginAttempt(Base):
    """A failed login, for rate limiting by address and by user name (kept a day)."""

    __tablename__ = "staff_login_attempts"
    __table_args__ = (Index("ix_staff_login_attempts_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))


class StaffAudit(Base):
    """One staff action (answer, assign, status change, import...): who, when, what."""

    __tablename__ = "staff_audit"
    __table_args__ = (Index("ix_staff_audit_unit_at", "unit", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class UnitSynonym(Base):
    """A synonym staff added from the search-misses page: citizens' words -> catalogue words,
    applied on top of the bundled vocabulary when the search index is built."""

    __tablename__ = "unit_synonyms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit: Mapped[str] = mapped_column(String(64))
    phrase: Mapped[str] = mapped_column(String(200))
    replacement: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelContact(Base):
    """When a citizen last wrote on a channel that may only answer within a window after it
    (Zalo), and how many messages have been sent since; also whether they still follow."""

    __tablename__ = "channel_contacts"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_since_inbound: Mapped[int] = mapped_column(Integer, default=0)
    following: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelToken(Base):
    """A channel's current API tokens when the platform rotates them (Zalo's refresh token is
    single-use): kept here so a restart or another process uses the newest pair. ``seed`` is a
    hash of the refresh token in the settings this pair descends from; a different one in the
    settings means the operator set new tokens, which then win."""

    __tablename__ = "channel_tokens"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str] = mapped_column(Text, default="")
    seed: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
