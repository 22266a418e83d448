"""What a citizen reads about a feedback: the summary before sending, its status, the staff's
answer (pushed through the outbox), and why a file was refused. Pure functions."""

from __future__ import annotations

import errno

from bot.core import Button, Reply
from bot.dossiers.model import VN_TZ
from bot.feedback.attachments import MAX_BYTES, Problem
from bot.feedback.model import KINDS, STATUSES, TOPICS, mask_phone
from bot.i18n import Translator, translator
from bot.storage.models import Feedback, as_utc


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".rstrip("0").rstrip(".")


def problem_text(t: Translator, problem: Problem) -> str:
    name = problem.filename or t("the file")
    if problem.reason == "too_large":
        return t(
            "“{name}” was not added: it is {size} MB, the limit is {limit} MB.",
            name=name,
            size=_mb(problem.size or 0),
            limit=_mb(problem.limit or MAX_BYTES),
        )
    if problem.reason == "unsupported_type":
        return t(
            "“{name}” was not added: only photos (JPEG, PNG, WEBP, HEIC) and PDF files are "
            "accepted, and this file is not one of them.",
            name=name,
        )
    return t("“{name}” was not added: the file is empty or could not be read.", name=name)


def not_saved_text(t: Translator, name: str, exc: OSError) -> str:
    """Why a checked file could not be stored (bot.feedback.attachments.store_file)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return t(
            "“{name}” could not be saved: the server's storage is full. You can go on "
            "without it, or send it again later.",
            name=name,
        )
    return t(
        "“{name}” could not be saved just now. You can go on without it, or send it again later.",
        name=name,
    )


def summary_text(t: Translator, draft: dict, catalogue) -> str:
    lines = [
        t("Please check your feedback before sending:"),
        t("Kind: {kind}", kind=t(KINDS[draft["kind"]].label)),
        t("About: {topic}", topic=t(TOPICS[draft["topic"]])),
    ]
    procedure = catalogue.get(draft.get("procedure_code") or "")
    if procedure:
        lines.append(t("Procedure: {name}", name=procedure.name))
    lines.append(t("Content: {text}", text=draft["content"]))
    files = draft.get("files", [])
    lines.append(
        t("Files: {n}", n=len(files))
        + (" (" + ", ".join(f["filename"] for f in files) + ")" if files else "")
    )
    phone = draft.get("phone")
    lines.append(
        t("Contact: {phone}", phone=mask_phone(phone)) if phone else t("Contact: anonymous")
    )
    return "\n".join(lines)


def status_reply(t: Translator, view, code: str, incoming) -> Reply:
    """Where a feedback stands; its content and answer only in the chat it came from."""
    back = [Button(t("🏠 Main menu"), "menu")]
    if view is None:
        return Reply(
            t("I found no feedback with the code {code}. Please check the code.", code=code), back
        )
    row = view.row
    lines = [
        t("✉️ Feedback {code}", code=row.tracking_code),
        t("Sent: {time}", time=_time(row.created_at)),
        t("Status: {label}", label=t(STATUSES[row.status].label)),
    ]
    if row.due_at and row.status in ("received", "in_progress"):
        lines.append(t("To be handled by: {date}", date=_date(row.due_at)))
    mine = (row.channel, row.conversation_id) == (incoming.channel, incoming.conversation_id)
    if mine and view.answer:
        lines.append(t("Answer from the staff: {text}", text=view.answer))
    return Reply("\n".join(lines), back)


def answer_notice(row: Feedback, text: str) -> Reply:
    """The staff's answer as pushed into the citizen's chat, in the chat's language."""
    t = translator(row.locale)
    return Reply(
        t(
            "📬 Answer to your feedback {code}:\n{text}\n\nDid this solve it?",
            code=row.tracking_code,
            text=text,
        ),
        [
            Button(t("👍 Yes, solved"), f"fb:ok:{row.tracking_code}"),
            Button(t("👎 Not solved"), f"fb:no:{row.tracking_code}"),
        ],
    )


def _time(moment) -> str:
    return as_utc(moment).astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def _date(moment) -> str:
    return as_utc(moment).astimezone(VN_TZ).strftime("%d/%m/%Y")
