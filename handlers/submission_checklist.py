"""Interactive checklist of a procedure's documents: the bot names each paper, the citizen
answers "có" / "chưa có" (or "not needed" for a paper the record asks only in some cases), then
reads what is missing and where each comes from, and can get the list as a PNG or PDF to print.

sub:chk:<code> -> step sub.check, one question per document (buttons sub:have:<i>:<y|n|x>,
or typed words) -> summary -> sub:print:<png|pdf>. The answers live in state.data["sub"].
"""

from __future__ import annotations

import asyncio

from bot.core import Button, Context, Reply, Router
from bot.core.messages import Document
from bot.dossiers.model import VN_TZ
from handlers import submission, submission_print
from handlers import submission_card as card
from handlers.channel_caps import files_possible
from procedures_catalog.normalize import fold

router = Router("submission_checklist")

CHECK = "sub.check"
_YES = {"co", "co roi", "da co", "roi", "co a", "yes", "y", "ok", "dung"}
_NO = {"chua", "chua co", "khong", "khong co", "chua a", "no", "n", "not yet"}
_NOT_NEEDED = {"khong can", "khong ap dung", "bo qua", "not needed", "skip"}


def _draft(ctx: Context) -> dict:
    return ctx.state.data.get("sub") or {}


@router.payload("sub:chk:", prefix=True)
async def start(ctx: Context) -> Reply:
    """Start a checklist for one procedure and ask about its first document."""
    procedure = ctx.services.catalogue.get(ctx.args)
    if procedure is None:
        return submission.unknown_procedure(ctx)
    t = ctx.t
    if not card.checklist_documents(procedure):
        return Reply(
            t(
                "The published record lists no documents for this procedure. Please ask the "
                "desk staff what to bring."
            ),
            [Button(t("🏠 Main menu"), "menu")],
        )
    ctx.state.clear_flow()
    ctx.state.data["sub"] = {"code": procedure.code, "answers": []}
    return _ask(ctx, procedure)


def _ask(ctx: Context, procedure, lead: str = "") -> Reply:
    t, answers = ctx.t, _draft(ctx)["answers"]
    docs = card.checklist_documents(procedure)
    i = len(answers)
    if i >= len(docs):
        return _summary(ctx, procedure)
    doc = docs[i]
    ctx.state.step = CHECK
    lines = [lead] if lead else []
    lines.append(t("Document {n} of {total}:", n=i + 1, total=len(docs)))
    lines.append(card.short(doc.name))
    if i >= len(procedure.documents):
        lines.append(t("(to show at the desk)"))
    if doc.condition:
        lines.append(t("Only when: {condition}", condition=card.short(doc.condition, 200)))
    lines.append(t("Do you have it? Answer “có” or “chưa có”."))
    buttons = [
        Button(t("✅ I have it"), f"sub:have:{i}:y"),
        Button(t("❌ Not yet"), f"sub:have:{i}:n"),
    ]
    if doc.condition:
        buttons.append(Button(t("➖ Not my case"), f"sub:have:{i}:x"))
    if i > 0:
        buttons.append(Button(t("◀ Back"), f"sub:have:{i}:b"))
    return Reply("\n".join(lines), [*buttons, Button(t("✖️ Cancel"), "cancel")])


def _procedure(ctx: Context):
    draft = _draft(ctx)
    return ctx.services.catalogue.get(draft.get("code", "")) if "answers" in draft else None


@router.payload("sub:have:", prefix=True)
async def answered(ctx: Context) -> Reply:
    """Record one answer; a tap on an old question (double tap, stale message) only re-asks."""
    procedure = _procedure(ctx)
    if procedure is None:
        return _closed(ctx)
    number, _, answer = ctx.args.partition(":")
    answers = _draft(ctx)["answers"]
    if number != str(len(answers)) or answer not in ("y", "n", "x", "b"):
        return _ask(ctx, procedure)
    if answer == "b":
        if answers:
            answers.pop()
    else:
        answers.append(answer)
    return _ask(ctx, procedure)


@router.step(CHECK)
async def typed(ctx: Context) -> Reply:
    """ "có" / "chưa có" typed instead of pressing a button."""
    procedure = _procedure(ctx)
    if procedure is None:
        return _closed(ctx)
    words = fold(ctx.incoming.text).strip(" .!")
    answers, docs = _draft(ctx)["answers"], card.checklist_documents(procedure)
    if len(answers) >= len(docs):  # the catalogue was reloaded with fewer documents
        return _ask(ctx, procedure)
    doc = docs[len(answers)]
    if words in _YES:
        answers.append("y")
    elif words in _NO:
        answers.append("n")
    elif words in _NOT_NEEDED and doc.condition:
        answers.append("x")
    else:
        return _ask(ctx, procedure, ctx.t("Please answer “có” (yes) or “chưa có” (not yet)."))
    return _ask(ctx, procedure)


def _summary(ctx: Context, procedure) -> Reply:
    t = ctx.t
    ctx.state.step = None  # the answers stay in data for printing
    text = card.checklist_summary(t, procedure, _draft(ctx)["answers"])
    buttons = []
    if files_possible(ctx) and submission_print.available():
        buttons += [
            Button(t("🖼️ Image to print (PNG)"), "sub:print:png"),
            Button(t("📄 PDF to print"), "sub:print:pdf"),
        ]
    else:
        text += "\n" + t("You can show this message at the desk or take a screenshot of it.")
    buttons += [
        Button(t("📝 How to submit online"), f"{submission.START}{procedure.code}"),
        Button(t("🏠 Main menu"), "menu"),
    ]
    return Reply(text, buttons)


@router.payload("sub:print:", prefix=True)
async def printable(ctx: Context) -> Reply:
    """Send the finished checklist as a PNG image or a PDF, to print or show at the desk."""
    procedure = _procedure(ctx)
    draft = _draft(ctx)
    if procedure is None or len(draft["answers"]) < len(card.checklist_documents(procedure)):
        return _closed(ctx)
    t = ctx.t
    if not submission_print.available() or ctx.args not in ("png", "pdf"):
        return _summary(ctx, procedure)
    today = submission.now().astimezone(VN_TZ).strftime("%d/%m/%Y")
    title = t("Documents for: {name}", name=card.short(procedure.name, 300))
    subtitle = t("Code {code} · prepared on {date}", code=procedure.code, date=today)
    rows = card.checklist_rows(t, procedure, draft["answers"])
    data = await asyncio.to_thread(submission_print.render, title, subtitle, rows, ctx.args)
    name = f"giay-to-{procedure.code}.{ctx.args}"
    mime = "image/png" if ctx.args == "png" else "application/pdf"
    return Reply(
        t("Here is your checklist: ✓ you have it, ✗ still missing, – not needed."),
        [
            Button(t("📝 How to submit online"), f"{submission.START}{procedure.code}"),
            Button(t("🏠 Main menu"), "menu"),
        ],
        [Document(name, mime, data)],
    )


def _closed(ctx: Context) -> Reply:
    t = ctx.t
    return Reply(
        t("This checklist is no longer open. Please start it again from the procedure."),
        [Button(t("🔎 Find a procedure"), "proc:search"), Button(t("🏠 Main menu"), "menu")],
    )
