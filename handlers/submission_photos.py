"""Phone photos -> one upload-ready PDF per document (thành phần hồ sơ), named after it.

sub:photos:<code> -> step sub.photos: for document i the citizen sends photos, one per page,
then presses Done (sub:phdone:<i>) and gets the PDF back, or Skip (sub:phskip:<i>). A button
carries its document's number, so a double tap or an old message cannot convert twice.

The photos wait in a private corner of the attachment store (``<attachments>/submission``, out
of reach of the feedback files' garbage collection, which keeps drafts for 30 days); the state
holds only their hashes. They are deleted as soon as their PDF is made; photos left behind
(a flow abandoned half-way) are deleted by the next use of the converter, by anyone, once older
than the retention time (default one hour). The PDF is never written to disk: it goes from
memory into the reply.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.core import Button, Context, Reply, Router
from bot.core.messages import Document
from bot.feedback.attachments import AttachmentStore, check, sniff
from bot.submission.pdf import (
    DEFAULT_MAX_BYTES,
    MAX_PAGES,
    PhotoError,
    aphotos_to_pdf,
    pdf_filename,
)
from handlers import submission
from handlers import submission_card as card
from handlers.channel_caps import files_possible
from handlers.feedback_card import not_saved_text, problem_text

router = Router("submission_photos")

PHOTOS = "sub.photos"
DEFAULT_RETENTION_MINUTES = 60
_PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


def _store(ctx: Context) -> AttachmentStore:
    return AttachmentStore(ctx.services.attachments.root / "submission")


def _minutes(ctx: Context) -> int:
    settings = ctx.services.settings
    return int(getattr(settings, "submission_photo_retention_minutes", DEFAULT_RETENTION_MINUTES))


async def _prune(ctx: Context) -> None:
    """Delete photos older than the retention time, whoever sent them."""
    store, keep = _store(ctx), timedelta(minutes=_minutes(ctx))
    await asyncio.to_thread(store.delete_unreferenced, set(), keep)


def _delete(ctx: Context, hashes: list[str]) -> None:
    store = _store(ctx)
    for sha in hashes:
        store.path(sha).unlink(missing_ok=True)


def _draft(ctx: Context) -> dict:
    return ctx.state.data.get("sub") or {}


@router.payload("sub:photos:", prefix=True)
async def start(ctx: Context) -> Reply:
    """Explain what happens to the photos, then ask for the first document's."""
    procedure = ctx.services.catalogue.get(ctx.args)
    if procedure is None:
        return submission.unknown_procedure(ctx)
    t = ctx.t
    if not files_possible(ctx) or not procedure.documents:
        return Reply(
            t("Sorry, photos cannot be turned into PDF files in this chat.")
            if procedure.documents
            else t("The published record lists no documents for this procedure."),
            [Button(t("🏠 Main menu"), "menu")],
        )
    await _prune(ctx)
    ctx.state.clear_flow()
    ctx.state.data["sub"] = {"code": procedure.code, "doc": 0, "photos": []}
    intro = t(
        "📷 Photos → PDF. For each document, send photos of its pages (one photo per page), "
        "then press “{done}”: I send back one PDF named after the document, ready to upload "
        "to the portal.\n🔒 The photos and PDF files are not kept on the server after they "
        "are sent to you; photos not turned into a PDF are deleted after {minutes} minutes.",
        done=t("✅ Done with this document"),
        minutes=_minutes(ctx),
    )
    return _ask(ctx, procedure, intro)


def _ask(ctx: Context, procedure, lead: str = "") -> Reply:
    t, draft = ctx.t, _draft(ctx)
    i, docs = draft["doc"], procedure.documents
    if i >= len(docs):
        ctx.state.clear_flow()
        return Reply(
            t(
                "That was the last document. The PDF files are not kept on the server: save "
                "them on your phone before uploading them to the portal."
            ),
            [
                Button(t("📝 How to submit online"), f"{submission.START}{procedure.code}"),
                Button(t("🏠 Main menu"), "menu"),
            ],
        )
    ctx.state.step = PHOTOS
    doc, count = docs[i], len(draft["photos"])
    lines = [lead] if lead else []
    lines.append(t("📄 Document {n} of {total}:", n=i + 1, total=len(docs)))
    lines.append(card.short(doc.name))
    if doc.condition:
        lines.append(t("Only when: {condition}", condition=card.short(doc.condition, 200)))
    lines.append(
        t("Photos received: {count} (at most {max}).", count=count, max=MAX_PAGES)
        if count
        else t("Send the photos of its pages (at most {max}).", max=MAX_PAGES)
    )
    buttons = [Button(t("✅ Done with this document"), f"sub:phdone:{i}")] if count else []
    buttons += [Button(t("⏭️ Skip this document"), f"sub:phskip:{i}")]
    return Reply("\n".join(lines), [*buttons, Button(t("✖️ Cancel"), "cancel")])


def _procedure(ctx: Context):
    draft = _draft(ctx)
    return ctx.services.catalogue.get(draft.get("code", "")) if "photos" in draft else None


@router.step(PHOTOS)
async def received(ctx: Context) -> Reply:
    """Keep each photo (in the store, its hash in the state); refuse what is not a photo."""
    t, procedure, draft = ctx.t, _procedure(ctx), _draft(ctx)
    if procedure is None:
        return _closed(ctx)
    if not ctx.incoming.attachments:
        return _ask(ctx, procedure, t("Please send photos of the document, or press a button."))
    await _prune(ctx)
    lines = []
    for attachment in ctx.incoming.attachments:
        name = attachment.filename or t("the file")
        problem = check(attachment)
        mime = sniff(attachment.data) if problem is None else None
        if len(draft["photos"]) >= MAX_PAGES:
            lines.append(
                t("“{name}” was not added: at most {max} photos.", name=name, max=MAX_PAGES)
            )
        elif problem is not None and problem.reason != "unsupported_type":
            lines.append(problem_text(t, problem))
        elif mime == "application/pdf":
            lines.append(t("“{name}” is already a PDF: you can upload it as it is.", name=name))
        elif mime not in _PHOTO_TYPES:
            lines.append(
                t(
                    "“{name}” is not a photo I can convert. Please send the pages as ordinary "
                    "photos (JPEG, PNG or WEBP).",
                    name=name,
                )
            )
        else:
            stored = await _store(ctx).store(attachment.data)
            if isinstance(stored, OSError):
                lines.append(not_saved_text(t, name, stored))
            else:
                draft["photos"].append(stored.sha256)
    return _ask(ctx, procedure, "\n".join(lines))


@router.payload("sub:phdone:", "sub:phskip:", prefix=True)
async def done(ctx: Context) -> Reply | list[Reply]:
    """Turn the document's photos into its PDF (or skip it), delete them, go to the next."""
    t, procedure, draft = ctx.t, _procedure(ctx), _draft(ctx)
    if procedure is None:
        return _closed(ctx)
    if ctx.args != str(draft["doc"]):  # an old button: show where we are instead
        return _ask(ctx, procedure)
    photos = draft["photos"]
    if ctx.incoming.payload.startswith("sub:phskip:") or not photos:
        _delete(ctx, photos)
        draft.update(doc=draft["doc"] + 1, photos=[])
        return _ask(ctx, procedure)
    name = procedure.documents[draft["doc"]].name
    try:
        images = [await _store(ctx).aread(sha) for sha in photos]
        data = await aphotos_to_pdf(images, title=card.short(name, 200))
    except FileNotFoundError:
        _delete(ctx, photos)
        draft["photos"] = []
        lead = t(
            "Your photos were deleted after {minutes} minutes. Please send them again.",
            minutes=_minutes(ctx),
        )
        return _ask(ctx, procedure, lead)
    except PhotoError as error:
        return _ask(ctx, procedure, _refused(ctx, error))
    _delete(ctx, photos)
    draft.update(doc=draft["doc"] + 1, photos=[])
    filename = pdf_filename(name)
    sent = Reply(
        t(
            "✅ {file}: {pages} page(s), {kb} KB. The photos have been deleted from the server.",
            file=filename,
            pages=len(images),
            kb=max(1, round(len(data) / 1024)),
        ),
        documents=[Document(filename, "application/pdf", data)],
    )
    return [sent, _ask(ctx, procedure)]


def _refused(ctx: Context, error: PhotoError) -> str:
    """Say why, and drop what cannot be used: the photo at fault, or all when none fits."""
    t, photos = ctx.t, _draft(ctx)["photos"]
    if error.index is not None and error.index < len(photos):
        _delete(ctx, [photos.pop(error.index)])
        if error.reason == "too_large_image":
            return t("Photo {n} is too large to convert and was removed.", n=error.index + 1)
        return t(
            "Photo {n} could not be read as a picture and was removed. Please send it again.",
            n=error.index + 1,
        )
    _delete(ctx, photos)
    photos.clear()
    return t(
        "These photos do not fit in one PDF of at most {mb} MB, even at a lower quality. "
        "Please send fewer pages.",
        mb=DEFAULT_MAX_BYTES // (1024 * 1024),
    )


def _closed(ctx: Context) -> Reply:
    t = ctx.t
    ctx.state.clear_flow()
    return Reply(
        t("This conversion is no longer open. Please start it again from the procedure."),
        [Button(t("🏠 Main menu"), "menu")],
    )
