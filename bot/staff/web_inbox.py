"""The feedback inbox (phản ánh, kiến nghị): the list with its filters, one feedback with its
files and history, and what staff do with it (assign, answer, close, reopen).

Everything goes through a FeedbackService of the officer's unit (``staff.feedback()``), so
another unit's feedback is "not found" exactly like one that does not exist, every step adds a
history row, and an answer is queued for the citizen's chat in the same transaction. Each action
also adds a row to the staff audit log.
"""

from __future__ import annotations

import json
import re
from functools import cache
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from bot.feedback.cli import ACTIONS
from bot.feedback.model import KINDS, STATUSES, TOPICS, StatusKind
from bot.feedback.service import FeedbackView
from bot.i18n import N_
from bot.staff.web import (
    PREFIX,
    TEMPLATES,
    StaffRoutes,
    not_found,
    redirect,
    render,
    staff_of,
)
from bot.staff.web_filters import PAGE_SIZE, InboxFilter
from bot.storage.models import Feedback, FeedbackAttachment, StaffUser

routes = StaffRoutes(
    actions={
        "feedback_assign": N_("assigned a feedback"),
        "feedback_answer": N_("answered a feedback"),
        "feedback_close": N_("closed a feedback"),
        "feedback_reopen": N_("reopened a feedback"),
    }
)

MAX_ANSWER = 3000
MAX_NOTE = 1000
PREVIEW = 90
DONE = {
    "assign": N_("The feedback was assigned."),
    "answer": N_("The answer was recorded; it is on its way to the citizen's chat."),
    "close": N_("The feedback was closed."),
    "reopen": N_("The feedback was reopened."),
}
ERRORS = {
    "closed": N_("This feedback is closed. Reopen it first."),
    "empty": N_("Write the answer first."),
    "too_long": N_("The text is too long."),
    "assignee": N_("Choose an officer of this unit."),
    "reason": N_("Give the reason for reopening."),
}
# Shown in the browser; anything else is offered as a download.
INLINE = {"image/jpeg", "image/png", "image/webp"}
DOWNLOAD_TYPES = INLINE | {"image/heic", "image/heif", "application/pdf"}


@routes.get("/", nav=N_("Feedback"))
async def inbox(request: web.Request) -> web.Response:
    """The unit's feedback, newest first, filtered and one page at a time."""
    staff = staff_of(request)
    filters = InboxFilter.from_query(request.query)
    async with staff.db.session() as session:
        rows, total = await filters.run(session, staff.unit)
        counts = await staff.feedback().counts(session)
    pages = max(1, -(-total // PAGE_SIZE))
    return render(
        request,
        "inbox.html",
        title=staff.t("Feedback"),
        items=[_item(FeedbackView(row)) for row in rows],
        filters=filters,
        total=total,
        counts=counts,
        page=filters.page,
        pages=pages,
        previous=filters.query_string(page=filters.page - 1) if filters.page > 1 else None,
        next_page=filters.query_string(page=filters.page + 1) if filters.page < pages else None,
        **_vocabulary(),
    )


@routes.get("/feedback/{code}")
async def feedback(request: web.Request) -> web.Response:
    """One feedback: what the citizen wrote, the files, the history, and the staff's forms."""
    staff = staff_of(request)
    async with staff.db.session() as session:
        view = await staff.feedback().get(session, request.match_info["code"])
        if view is None:
            raise not_found(request)
        officers = list(
            await session.scalars(
                select(StaffUser)
                .where(StaffUser.unit == staff.unit, StaffUser.active.is_(True))
                .order_by(StaffUser.username)
            )
        )
    row = view.row
    templates = answer_templates()
    chosen = next((tpl for tpl in templates if tpl["id"] == request.query.get("template")), None)
    draft = _fill(chosen, row) if chosen else ""
    done, error = request.query.get("done"), request.query.get("error")
    return render(
        request,
        "feedback.html",
        title=staff.t("Feedback {code}", code=row.tracking_code),
        item=_item(view),
        view=view,
        row=row,
        closed=STATUSES[row.status].kind is StatusKind.CLOSED,
        officers=officers,
        templates=[(tpl["id"], _local(tpl["title"], staff.locale)) for tpl in templates],
        chosen=chosen["id"] if chosen else "",
        draft=draft,
        done=staff.t(DONE[done]) if done in DONE else "",
        error=staff.t(ERRORS[error]) if error in ERRORS else "",
        actions={code: staff.t(label) for code, label in ACTIONS.items()},
        max_answer=MAX_ANSWER,
        **_vocabulary(),
    )


@routes.post("/feedback/{code}/assign")
async def assign(request: web.Request) -> web.StreamResponse:
    """Give a feedback to an officer of the unit (the one asking, by default)."""
    form = await request.post()
    staff = staff_of(request)
    to = str(form.get("to") or staff.user.username)
    async with staff.db.write_transaction() as session:
        view = await _open(request, session)
        officer = await session.scalar(
            select(StaffUser.username).where(
                StaffUser.username == to, StaffUser.unit == staff.unit, StaffUser.active.is_(True)
            )
        )
        if officer is None:
            raise _back(view, error="assignee")
        await staff.feedback().assign(session, view.row.tracking_code, officer, staff.actor)
        staff.audit(session, "feedback_assign", view.row.tracking_code, officer)
    raise _back(view, done="assign")


@routes.post("/feedback/{code}/answer")
async def answer(request: web.Request) -> web.StreamResponse:
    """Record the answer; it is queued for the citizen's chat in the same transaction."""
    form = await request.post()
    staff = staff_of(request)
    text = str(form.get("text", "")).strip()
    async with staff.db.write_transaction() as session:
        view = await _open(request, session)
        if not text or len(text) > MAX_ANSWER:
            raise _back(view, error="empty" if not text else "too_long")
        await staff.feedback().answer(session, view.row.tracking_code, text, staff.actor)
        staff.audit(session, "feedback_answer", view.row.tracking_code, text)
    raise _back(view, done="answer")


@routes.post("/feedback/{code}/close")
async def close(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    staff = staff_of(request)
    note = str(form.get("note", "")).strip()
    async with staff.db.write_transaction() as session:
        view = await _open(request, session)
        if len(note) > MAX_NOTE:
            raise _back(view, error="too_long")
        await staff.feedback().close(session, view.row.tracking_code, staff.actor, note)
        staff.audit(session, "feedback_close", view.row.tracking_code, note)
    raise _back(view, done="close")


@routes.post("/feedback/{code}/reopen")
async def reopen(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    staff = staff_of(request)
    reason = str(form.get("reason", "")).strip()
    async with staff.db.write_transaction() as session:
        view = await _open(request, session, closed_ok=True)
        if not reason or len(reason) > MAX_NOTE:
            raise _back(view, error="reason" if not reason else "too_long")
        await staff.feedback().reopen(session, view.row.tracking_code, reason, staff.actor)
        staff.audit(session, "feedback_reopen", view.row.tracking_code, reason)
    raise _back(view, done="reopen")


@routes.get("/files/{id}")
async def attachment(request: web.Request) -> web.StreamResponse:
    """A file of a feedback of this unit; another unit's is "not found" like a missing one."""
    staff = staff_of(request)
    try:
        file_id = int(request.match_info["id"])
    except ValueError:
        raise not_found(request) from None
    async with staff.db.session() as session:
        file = await session.scalar(
            select(FeedbackAttachment)
            .join(Feedback, Feedback.id == FeedbackAttachment.feedback_id)
            .where(FeedbackAttachment.id == file_id, Feedback.unit == staff.unit)
        )
    if file is None:
        raise not_found(request)
    try:
        data = await staff.services.attachments.aread(file.sha256)
    except (FileNotFoundError, ValueError):
        raise not_found(request) from None
    mime = file.mime_type if file.mime_type in DOWNLOAD_TYPES else "application/octet-stream"
    disposition = "inline" if mime in INLINE else "attachment"
    response = web.Response(body=data, content_type=mime)
    response.headers["Content-Disposition"] = f"{disposition}; {_filename(file.filename)}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- helpers -----------------------------------------------------------------------------------


async def _open(request: web.Request, session, *, closed_ok: bool = False) -> FeedbackView:
    """The feedback of the URL in this unit (404 otherwise); refused if closed."""
    view = await staff_of(request).feedback().get(session, request.match_info["code"])
    if view is None:
        raise not_found(request)
    if not closed_ok and STATUSES[view.row.status].kind is StatusKind.CLOSED:
        raise _back(view, error="closed")
    return view


def _back(view: FeedbackView, **outcome: str) -> web.HTTPException:
    key, value = next(iter(outcome.items()))
    return redirect(f"{PREFIX}/feedback/{quote(view.row.tracking_code)}?{key}={value}")


def _item(view: FeedbackView) -> dict:
    row = view.row
    content = " ".join(row.content.split())
    return {
        "row": row,
        "code": row.tracking_code,
        "url": f"{PREFIX}/feedback/{quote(row.tracking_code or '')}",
        "preview": content if len(content) <= PREVIEW else content[:PREVIEW] + "…",
        "overdue": view.overdue,
    }


def _vocabulary() -> dict:
    return {
        "kinds": {code: kind.label for code, kind in KINDS.items()},
        "topics": TOPICS,
        "statuses": {code: status.label for code, status in STATUSES.items()},
    }


@cache
def answer_templates() -> list[dict]:
    """The built-in answer templates (templates/answer_templates.json), per language."""
    return json.loads((TEMPLATES / "answer_templates.json").read_text(encoding="utf-8"))


def _local(texts: dict[str, str], locale: str) -> str:
    return texts.get(locale) or texts["vi"]


def _fill(template: dict, row: Feedback) -> str:
    """A template's text in the citizen's chat language, with the tracking code filled in."""
    return _local(template["text"], row.locale).replace("{code}", row.tracking_code or "")


def _filename(name: str) -> str:
    """Content-Disposition's file name: an ASCII fallback and the UTF-8 original (RFC 6266)."""
    name = re.sub(r'[\x00-\x1f\x7f"\\/]', "_", name)[:150] or "file"
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", name)
    return f"filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
