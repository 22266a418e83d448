"""Feedback: creating one from a finished chat draft, and everything staff do with it.

The staff-facing functions (list, get, assign, answer, close, reopen) all take the officer's
unit and never return another unit's feedback. Every change adds a history row; answers reach
the citizen's chat through the outbox, queued in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.core.messages import Reply
from bot.dossiers.calendar import WorkingCalendar
from bot.feedback.attachments import AttachmentStore, default_root
from bot.feedback.model import KINDS, STATUSES, TOPICS, StatusKind, tracking_code
from bot.outbox import enqueue
from bot.storage.models import Feedback, FeedbackAttachment, FeedbackEvent, as_utc, utcnow
from procedures_catalog.schema import ProcessingTime, TimeUnit

log = logging.getLogger("motcua.feedback")


class FeedbackError(ValueError):
    """A staff action that cannot be done (unknown code, wrong status, empty answer)."""


@dataclass
class FeedbackView:
    """A feedback with its files and history, as staff and the CLI see it."""

    row: Feedback
    attachments: list[FeedbackAttachment] = field(default_factory=list)
    events: list[FeedbackEvent] = field(default_factory=list)

    @property
    def overdue(self) -> bool:
        due = as_utc(self.row.due_at)
        return (
            due is not None
            and STATUSES[self.row.status].kind is StatusKind.OPEN
            and self.row.status != "answered"
            and utcnow() > due
        )

    @property
    def answer(self) -> str | None:
        answers = [e.text for e in self.events if e.action == "answer"]
        return answers[-1] if answers else None


# (feedback, answer text) -> the message for the citizen's chat (see handlers/feedback_card.py).
AnswerRender = Callable[[Feedback, str], Reply]


class FeedbackService:
    def __init__(
        self,
        *,
        unit: str,
        store: AttachmentStore,
        calendar: WorkingCalendar,
        handling_days: dict[str, int],
        render_answer: AnswerRender | None = None,
    ) -> None:
        self.unit = unit
        self.store = store
        self.calendar = calendar
        self.handling_days = handling_days
        self.render_answer = render_answer

    @classmethod
    def from_settings(
        cls,
        settings,
        unit: str,
        *,
        calendar: WorkingCalendar | None = None,
        render_answer: AnswerRender | None = None,
    ) -> FeedbackService:
        """The service of one unit as settings configure it (attachment folder, handling days)."""
        root = (
            Path(settings.attachments_dir)
            if settings.attachments_dir
            else default_root(settings.database_url)
        )
        return cls(
            unit=unit,
            store=AttachmentStore(root),
            calendar=calendar or WorkingCalendar(cutoff_hour=settings.dossier_cutoff_hour),
            handling_days={
                "report": settings.feedback_days_report,
                "proposal": settings.feedback_days_proposal,
            },
            render_answer=render_answer,
        )

    def for_unit(self, unit: str) -> FeedbackService:
        """The same service for another unit (a super admin looking at it)."""
        return FeedbackService(
            unit=unit,
            store=self.store,
            calendar=self.calendar,
            handling_days=self.handling_days,
            render_answer=self.render_answer,
        )

    # -- citizen side -------------------------------------------------------------------------

    async def submit(
        self, session, draft: dict, *, channel: str, conversation_id: str, locale: str
    ) -> tuple[Feedback, bool]:
        """Create the feedback of a finished draft in the caller's transaction; return it and
        whether it is new (False: this draft was submitted before, e.g. a double tap)."""
        existing = await session.scalar(select(Feedback).where(Feedback.submit_key == draft["key"]))
        if existing is not None:
            return existing, False
        for file in draft.get("files", []):
            if not self.store.exists(file["sha256"]):
                raise FeedbackError(f"attachment {file['sha256'][:12]} is not in the store")
        now = utcnow()
        kind = draft["kind"]
        row = Feedback(
            submit_key=draft["key"],
            unit=self.unit,
            kind=kind,
            topic=draft["topic"],
            procedure_code=draft.get("procedure_code"),
            content=draft["content"],
            phone=draft.get("phone"),
            consent_at=datetime.fromisoformat(draft["consent_at"])
            if draft.get("consent_at")
            else None,
            channel=channel,
            conversation_id=conversation_id,
            locale=locale,
            status="received",
            created_at=now,
            updated_at=now,
            due_at=self.calendar.due_at(
                now, ProcessingTime(self.handling_days[kind], TimeUnit.WORKING_DAYS)
            ),
        )
        session.add(row)
        await session.flush()  # the id numbers the tracking code
        row.tracking_code = tracking_code(kind, now.year, row.id)
        for file in draft.get("files", []):
            session.add(
                FeedbackAttachment(
                    feedback_id=row.id,
                    sha256=file["sha256"],
                    filename=file["filename"][:200],
                    mime_type=file["mime"],
                    size=file["size"],
                )
            )
        session.add(
            FeedbackEvent(
                feedback_id=row.id, at=now, actor="citizen", action="create", status="received"
            )
        )
        log.info(
            "feedback %s created channel=%s files=%d",
            row.tracking_code,
            channel,
            len(draft.get("files", [])),
        )
        return row, True

    async def citizen_reply(
        self, session, incoming, code: str, solved: bool, reason: str = ""
    ) -> Feedback | None:
        """The citizen pressed "this solved it" (closed) or "not solved" (reopened with the
        reason). Only from the chat the feedback came from; None otherwise."""
        view = await self.get(session, code)
        if view is None or (view.row.channel, view.row.conversation_id) != (
            incoming.channel,
            incoming.conversation_id,
        ):
            return None
        if solved:
            return self._change(session, view.row, "citizen", "confirm", "closed", reason)
        return self._change(session, view.row, "citizen", "reopen", "in_progress", reason)

    async def get_by_key(self, session, key: str) -> Feedback | None:
        """The feedback created from a draft, if it was submitted."""
        return await session.scalar(select(Feedback).where(Feedback.submit_key == key))

    # -- staff side ---------------------------------------------------------------------------

    async def list(
        self, session, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[FeedbackView]:
        query = select(Feedback).where(Feedback.unit == self.unit)
        if status:
            query = query.where(Feedback.status == status)
        rows = await session.scalars(
            query.order_by(Feedback.created_at.desc(), Feedback.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [FeedbackView(row) for row in rows]

    async def counts(self, session) -> dict[str, int]:
        rows = await session.execute(
            select(Feedback.status, func.count())
            .where(Feedback.unit == self.unit)
            .group_by(Feedback.status)
        )
        return {status: count for status, count in rows}

    async def get(self, session, code: str) -> FeedbackView | None:
        row = await session.scalar(
            select(Feedback).where(
                Feedback.unit == self.unit, Feedback.tracking_code == code.upper()
            )
        )
        if row is None:
            return None
        attachments = await session.scalars(
            select(FeedbackAttachment)
            .where(FeedbackAttachment.feedback_id == row.id)
            .order_by(FeedbackAttachment.id)
        )
        events = await session.scalars(
            select(FeedbackEvent)
            .where(FeedbackEvent.feedback_id == row.id)
            .order_by(FeedbackEvent.id)
        )
        return FeedbackView(row, list(attachments), list(events))

    async def assign(self, session, code: str, staff: str, actor: str) -> Feedback:
        view = await self._require(session, code)
        self._open(view.row)
        view.row.assigned_to = staff[:64]
        return self._change(session, view.row, actor, "assign", "in_progress", staff)

    async def answer(self, session, code: str, text: str, actor: str) -> Feedback:
        """Record the staff's answer and queue it for the citizen's chat (same transaction)."""
        text = text.strip()
        if not text:
            raise FeedbackError("the answer is empty")
        view = await self._require(session, code)
        self._open(view.row)
        row = self._change(session, view.row, actor, "answer", "answered", text)
        if self.render_answer is not None:
            enqueue(
                session,
                row.channel,
                row.conversation_id,
                [self.render_answer(row, text)],
                "feedback_answer",
            )
        return row

    async def close(self, session, code: str, actor: str, note: str = "") -> Feedback:
        view = await self._require(session, code)
        self._open(view.row)
        return self._change(session, view.row, actor, "close", "closed", note)

    async def reopen(self, session, code: str, reason: str, actor: str) -> Feedback:
        view = await self._require(session, code)
        return self._change(session, view.row, actor, "reopen", "in_progress", reason)

    # -- helpers ------------------------------------------------------------------------------

    async def _require(self, session, code: str) -> FeedbackView:
        view = await self.get(session, code)
        if view is None:
            raise FeedbackError(f"no feedback {code} in unit {self.unit}")
        return view

    @staticmethod
    def _open(row: Feedback) -> None:
        if STATUSES[row.status].kind is StatusKind.CLOSED:
            raise FeedbackError(f"{row.tracking_code} is closed; reopen it first")

    @staticmethod
    def _change(session, row: Feedback, actor: str, action: str, status: str, text: str):
        now = utcnow()
        row.status, row.updated_at = status, now
        session.add(
            FeedbackEvent(
                feedback_id=row.id,
                at=now,
                actor=actor[:64],
                action=action,
                status=status,
                text=text,
            )
        )
        return row


__all__ = ["KINDS", "TOPICS", "FeedbackError", "FeedbackService", "FeedbackView"]
