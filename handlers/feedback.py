"""Feedback (phản ánh, kiến nghị): a guided flow, one step per question, the draft kept in the
conversation's state (so it survives a restart), submitted in one transaction at the end.

kind -> topic (-> procedure) -> content -> files -> contact (consent before any phone number)
-> summary (send / edit / cancel) -> tracking code. The citizen can cancel at any step.
"""

from __future__ import annotations

import secrets

from bot.core import Button, Context, Reply, Router
from bot.feedback.attachments import MAX_FILES, check
from bot.feedback.model import KINDS, TOPICS, TRACKING_CODE, normalize_phone
from bot.storage.models import utcnow
from handlers.channel_caps import files_possible, late_delivery_note
from handlers.feedback_card import not_saved_text, problem_text, status_reply, summary_text

router = Router("feedback")

KIND, TOPIC, PROCEDURE, CONTENT, FILES, CONTACT, CONSENT, PHONE, CONFIRM, REASON = (
    f"feedback.{name}"
    for name in (
        "kind",
        "topic",
        "procedure",
        "content",
        "files",
        "contact",
        "consent",
        "phone",
        "confirm",
        "reason",
    )
)


def _draft(ctx: Context) -> dict:
    return ctx.state.data.setdefault("fb", {})


def _cancel(ctx: Context) -> Button:
    return Button(ctx.t("✖️ Cancel"), "cancel")


def _go(ctx: Context, step: str, text: str, buttons: list[Button] | None = None) -> Reply:
    ctx.state.step = step
    return Reply(text, [*(buttons or []), _cancel(ctx)])


@router.payload("feedback:new")
@router.command("phananh", "feedback")
@router.phrase("phản ánh", "kiến nghị", "góp ý", "gửi phản ánh", "gửi kiến nghị", "feedback")
async def start(ctx: Context) -> Reply:
    """Start a new draft and ask for its kind."""
    ctx.state.clear_flow()
    ctx.state.data["fb"] = {"key": secrets.token_urlsafe(12), "files": []}
    t = ctx.t
    return _go(
        ctx,
        KIND,
        t(
            "What would you like to send? Your feedback goes to the commune's staff, who answer "
            "here in this chat."
        ),
        [Button(t(kind.label), f"fb:kind:{code}") for code, kind in KINDS.items()],
    )


@router.payload("fb:kind:", prefix=True)
async def kind_chosen(ctx: Context) -> Reply:
    """Remember the kind; ask what it is about."""
    if ctx.args not in KINDS or "key" not in _draft(ctx):
        return await start(ctx)
    _draft(ctx)["kind"] = ctx.args
    t = ctx.t
    return _go(
        ctx,
        TOPIC,
        t("What is it about?"),
        [Button(t(label), f"fb:topic:{code}") for code, label in TOPICS.items()],
    )


@router.payload("fb:topic:", prefix=True)
async def topic_chosen(ctx: Context) -> Reply:
    """Remember the topic; for a procedure, ask which one."""
    draft = _draft(ctx)
    if ctx.args not in TOPICS or "kind" not in draft:
        return await start(ctx)
    draft["topic"] = ctx.args
    if ctx.args == "procedure":
        return _go(ctx, PROCEDURE, ctx.t("Which procedure? Type its name in your own words."))
    return _ask_content(ctx)


@router.step(PROCEDURE)
async def procedure_typed(ctx: Context) -> Reply:
    """Offer the procedures the search finds for what was typed."""
    t = ctx.t
    hits = ctx.services.search.search(ctx.incoming.text, limit=3)
    buttons = [Button(_short(hit.name), f"fb:proc:{hit.code}") for hit in hits]
    buttons.append(Button(t("None of these"), "fb:proc:none"))
    text = t("Which one is it?") if hits else t("I found no procedure with those words.")
    return _go(ctx, PROCEDURE, text, buttons)


@router.payload("fb:proc:", prefix=True)
async def procedure_chosen(ctx: Context) -> Reply:
    if "topic" not in _draft(ctx):  # a button of a draft that is gone
        return await start(ctx)
    if ctx.args != "none" and ctx.services.catalogue.get(ctx.args):
        _draft(ctx)["procedure_code"] = ctx.args
    return _ask_content(ctx)


def _ask_content(ctx: Context) -> Reply:
    limit = ctx.services.settings.feedback_max_chars
    return _go(
        ctx,
        CONTENT,
        ctx.t(
            "Please describe it in one message (at most {limit} characters): what happened, "
            "when and where.",
            limit=limit,
        ),
    )


@router.step(CONTENT)
async def content_typed(ctx: Context) -> Reply:
    """Keep the text if it fits; otherwise say by how much it is too long."""
    t, text = ctx.t, ctx.incoming.text.strip()
    limit = ctx.services.settings.feedback_max_chars
    if not text:
        return _go(ctx, CONTENT, t("Please type the content of your feedback as text."))
    if len(text) > limit:
        return _go(
            ctx,
            CONTENT,
            t(
                "Your text has {n}/{limit} characters. Please shorten it and send it again.",
                n=len(text),
                limit=limit,
            ),
        )
    draft = _draft(ctx)
    draft["content"] = text
    if draft.get("editing"):
        return _summary(ctx)
    received = t("Received ({n}/{limit} characters).", n=len(text), limit=limit)
    if not files_possible(ctx):
        return await files_done(ctx, lead=received)
    return _ask_files(ctx, received)


def _ask_files(ctx: Context, lead: str = "") -> Reply:
    t = ctx.t
    text = t(
        "You can now send up to {max} photos or PDF files (at most 10 MB each), one by one. "
        "Press “Done” when finished, or “Skip”.",
        max=MAX_FILES,
    )
    n = len(_draft(ctx).get("files", []))
    label = t("✅ Done") if n else t("⏭️ Skip")
    return _go(ctx, FILES, f"{lead}\n{text}".strip(), [Button(label, "fb:files:done")])


@router.step(FILES)
async def files_sent(ctx: Context) -> Reply:
    """Check and store each file; refuse the ones too big, of the wrong type, or too many."""
    t, draft = ctx.t, _draft(ctx)
    if not ctx.incoming.attachments:
        return _ask_files(ctx, t("Please send a photo or a PDF file, or press the button."))
    lines = []
    for attachment in ctx.incoming.attachments:
        if len(draft["files"]) >= MAX_FILES:
            lines.append(
                t(
                    "“{name}” was not added: at most {max} files.",
                    name=attachment.filename,
                    max=MAX_FILES,
                )
            )
            continue
        problem = check(attachment)
        if problem is not None:
            lines.append(problem_text(t, problem))
            continue
        stored = await ctx.services.attachments.store(attachment.data)
        if isinstance(stored, OSError):
            lines.append(not_saved_text(t, attachment.filename or t("the file"), stored))
            continue
        draft["files"].append(
            {
                "sha256": stored.sha256,
                "filename": attachment.filename or "tep",
                "mime": stored.mime,
                "size": stored.size,
            }
        )
        lines.append(
            t(
                "Added “{name}” ({n}/{max}).",
                name=attachment.filename,
                n=len(draft["files"]),
                max=MAX_FILES,
            )
        )
    return _ask_files(ctx, "\n".join(lines))


@router.payload("fb:files:done")
async def files_done(ctx: Context, lead: str = "") -> Reply:
    if _draft(ctx).get("editing"):
        return _summary(ctx)
    t = ctx.t
    question = t(
        "Would you like the staff to be able to call you? You can also send it anonymously."
    )
    return _go(
        ctx,
        CONTACT,
        f"{lead}\n{question}".strip(),
        [
            Button(t("📞 Leave a phone number"), "fb:contact:phone"),
            Button(t("🙈 Send anonymously"), "fb:contact:anon"),
        ],
    )


@router.payload("fb:contact:anon", "fb:consent:no")
async def anonymous(ctx: Context) -> Reply:
    draft = _draft(ctx)
    if "content" not in draft:  # a button of a draft that is gone
        return await start(ctx)
    draft.pop("phone", None)
    draft.pop("consent_at", None)
    return _summary(ctx)


@router.payload("fb:contact:phone")
async def ask_consent(ctx: Context) -> Reply:
    """Ask for consent before any phone number is typed, let alone stored."""
    t = ctx.t
    return _go(
        ctx,
        CONSENT,
        t(
            "Your phone number is personal data. The commune will use it only to contact you "
            "about this feedback, will not share it, and keeps it under the rules on personal "
            "data protection. Do you agree that it is stored and used for this?"
        ),
        [
            Button(t("✅ I agree"), "fb:consent:yes"),
            Button(t("🙈 No, send anonymously"), "fb:consent:no"),
        ],
    )


@router.step(CONTACT)
async def contact_typed(ctx: Context) -> Reply:
    """Text where a button was expected: ask the contact question again (nothing typed here
    is kept: a phone number is only taken after consent)."""
    return await files_done(ctx, lead=ctx.t("Please choose one of the buttons."))


@router.step(CONSENT)
async def consent_typed(ctx: Context) -> Reply:
    return await ask_consent(ctx)


@router.payload("fb:consent:yes")
async def consent_given(ctx: Context) -> Reply:
    if "content" not in _draft(ctx):  # a button of a draft that is gone
        return await start(ctx)
    _draft(ctx)["consent_at"] = utcnow().isoformat()
    return _go(ctx, PHONE, ctx.t("Please type your phone number, e.g. 0912 345 678."))


@router.step(PHONE)
async def phone_typed(ctx: Context) -> Reply:
    phone = normalize_phone(ctx.incoming.text)
    if phone is None:
        t = ctx.t
        return _go(
            ctx,
            PHONE,
            t(
                "“{text}” is not a Vietnamese phone number. Please type 10 digits such as "
                "0912 345 678 (or 11 digits for a landline), or send anonymously.",
                text=ctx.incoming.text[:20],
            ),
            [Button(t("🙈 Send anonymously"), "fb:contact:anon")],
        )
    _draft(ctx)["phone"] = phone
    return _summary(ctx)


def _summary(ctx: Context) -> Reply:
    t, draft = ctx.t, _draft(ctx)
    draft["editing"] = True
    return _go(
        ctx,
        CONFIRM,
        summary_text(t, draft, ctx.services.catalogue),
        [
            Button(t("📨 Send"), f"fb:send:{draft['key']}"),
            Button(t("✏️ Edit the text"), "fb:edit:content"),
            *([Button(t("📎 Edit the files"), "fb:edit:files")] if files_possible(ctx) else []),
            Button(t("📞 Edit the contact"), "fb:edit:contact"),
        ],
    )


@router.payload("fb:edit:", prefix=True)
async def edit(ctx: Context) -> Reply:
    draft = _draft(ctx)
    if "content" not in draft:
        return await start(ctx)
    if ctx.args == "files":
        draft["files"] = []
        return _ask_files(ctx)
    if ctx.args == "contact":
        draft.pop("editing", None)  # through the contact questions again, then the summary
        return await files_done(ctx)
    return _ask_content(ctx)


@router.step(CONFIRM)
async def confirm_typed(ctx: Context) -> Reply:
    return _summary(ctx)


@router.payload("fb:send:", prefix=True)
async def send(ctx: Context) -> Reply:
    """Create the feedback; the tracking code is shown only once it is committed (the engine
    sends replies after the commit), and a second tap finds the same feedback."""
    t, draft = ctx.t, _draft(ctx)
    service = ctx.services.feedback
    if draft.get("key") != ctx.args or "content" not in draft:
        done = await service.get_by_key(ctx.session, ctx.args)
        if done is None:
            return Reply(
                t("This draft is no longer open. Please start again."),
                [Button(t("✉️ Send feedback"), "feedback:new")],
            )
        return _sent(ctx, done.tracking_code)
    row, _new = await service.submit(
        ctx.session,
        draft,
        channel=ctx.incoming.channel,
        conversation_id=ctx.incoming.conversation_id,
        locale=ctx.locale,
    )
    ctx.state.clear_flow()
    return _sent(ctx, row.tracking_code)


def _sent(ctx: Context, code: str) -> Reply:
    t = ctx.t
    return Reply(
        t(
            "✅ Sent. Your tracking code is {code}. The staff will answer here; you can also type "
            "the code at any time to see where it stands.",
            code=code,
        )
        + late_delivery_note(ctx),
        [Button(t("🏠 Main menu"), "menu")],
    )


@router.text(lambda folded: TRACKING_CODE.search(folded.replace(" ", "-")) is not None)
async def status_by_code(ctx: Context) -> Reply | None:
    """A tracking code typed: where that feedback stands."""
    found = TRACKING_CODE.search(ctx.incoming.text)
    if not found:
        return None
    view = await ctx.services.feedback.get(ctx.session, found.group(0).upper())
    return status_reply(ctx.t, view, found.group(0).upper(), ctx.incoming)


@router.payload("fb:ok:", prefix=True)
async def solved(ctx: Context) -> Reply:
    t = ctx.t
    if not await ctx.services.feedback.citizen_reply(ctx.session, ctx.incoming, ctx.args, True):
        return _not_yours(ctx)
    return Reply(
        t("Thank you! Feedback {code} is now closed.", code=ctx.args),
        [Button(t("🏠 Main menu"), "menu")],
    )


def _not_yours(ctx: Context) -> Reply:
    t = ctx.t
    return Reply(
        t("I cannot find that feedback in this chat."), [Button(t("🏠 Main menu"), "menu")]
    )


@router.payload("fb:no:", prefix=True)
async def not_solved(ctx: Context) -> Reply:
    ctx.state.clear_flow()
    ctx.state.data["fb_reopen"] = ctx.args
    return _go(ctx, REASON, ctx.t("Sorry about that. What is still not solved?"))


@router.step(REASON)
async def reason_typed(ctx: Context) -> Reply:
    t, code = ctx.t, ctx.state.data.get("fb_reopen", "")
    reason = ctx.incoming.text.strip()[: ctx.services.settings.feedback_max_chars]
    if not reason:
        return _go(ctx, REASON, t("Please type in a few words what is still not solved."))
    ctx.state.clear_flow()
    if not await ctx.services.feedback.citizen_reply(
        ctx.session, ctx.incoming, code, False, reason
    ):
        return _not_yours(ctx)
    return Reply(
        t("Feedback {code} is open again; the staff will see your reason.", code=code),
        [Button(t("🏠 Main menu"), "menu")],
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
