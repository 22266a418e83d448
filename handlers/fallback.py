"""Fallback and engine events: nobody is ever left without a way forward."""

from __future__ import annotations

from bot.core import Context, Reply, Router
from bot.core.text import MAX_TEXT_CHARS
from bot.i18n import N_, format_number
from handlers.start import menu_reply

router = Router("fallback")


@router.fallback()
async def not_understood(ctx: Context) -> Reply:
    """Say that the message was not understood and offer the menu."""
    t = ctx.t
    return menu_reply(
        t,
        t(
            "Sorry, I did not understand that. You can choose an option below, "
            "or type /help to see what I can do."
        ),
    )


@router.event("empty")
async def empty_message(ctx: Context) -> Reply:
    """Answer a message with no text in it."""
    t = ctx.t
    return menu_reply(
        t, t("Your message was empty. Please type your question or choose an option below.")
    )


@router.event("too_long")
async def too_long(ctx: Context) -> Reply:
    """Refuse a message longer than the bot reads, politely and with the numbers."""
    t = ctx.t
    return menu_reply(
        t,
        t(
            "Your message is {length} characters long, more than the {limit} I can read. "
            "Please send a shorter message or split it into several.",
            length=format_number(int(ctx.args), ctx.locale),
            limit=format_number(MAX_TEXT_CHARS, ctx.locale),
        ),
    )


@router.event("error")
async def internal_error(ctx: Context) -> Reply:
    """Apologise for a fault on our side; the user's message was not processed."""
    t = ctx.t
    return menu_reply(
        t,
        t(
            "Sorry, something went wrong on our side and your message could not be processed. "
            "Please try again in a few minutes."
        ),
    )


# Also read by bench/feedback_kill.py, whose citizens send the step again when they see it.
UNAVAILABLE = N_(
    "The system is briefly unavailable, so your message was not recorded. "
    "Please send it again in a few minutes."
)


@router.event("unavailable")
async def unavailable(ctx: Context) -> Reply:
    """The database is down or restarting: nothing was recorded; say to try again shortly
    (no menu: its buttons would meet the same wall until the database is back)."""
    return Reply(ctx.t(UNAVAILABLE))


@router.event("attachment")
async def attachment_received(ctx: Context) -> Reply:
    """Acknowledge files sent outside any flow, and say what the bot can do with them."""
    t = ctx.t
    files = [a for a in ctx.incoming.attachments if a.kind != "unsupported"]
    if not files:
        return menu_reply(
            t,
            t(
                "Sorry, I can only read text messages, photos and documents, not voice "
                "messages, stickers, videos or locations. Please type your question."
            ),
        )
    names = ", ".join(f"“{a.filename}”" for a in files)
    return menu_reply(
        t,
        t(
            "I received {count} file(s): {names}. I cannot read what is in a photo or file "
            "on its own. To send it to the commune with a complaint or suggestion, choose "
            "“Send feedback”; to ask about a procedure, type your question.",
            count=format_number(len(files), ctx.locale),
            names=names,
        ),
    )
