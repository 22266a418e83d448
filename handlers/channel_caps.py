"""What the chat's channel can do, as handlers need to know it: exchange files, and send later
news at any time (on Zalo a staff answer or a dossier change may have to wait until the
citizen writes again, outside the reply window)."""

from __future__ import annotations

from bot.core import Context


def late_delivery_note(ctx: Context) -> str:
    """A paragraph to add to a confirmation, or "" where messages can be sent at any time."""
    if ctx.incoming.channel not in getattr(ctx.services, "windowed_channels", ()):
        return ""
    hours = ctx.services.settings.zalo_reply_window_hours
    return "\n\n" + ctx.t(
        "ℹ️ Zalo lets us write to you only within {hours} hours of your last message. If the "
        "news comes later, it will wait, and you will get it as soon as you send us any "
        "message (for example “hi”).",
        hours=f"{hours:g}",
    )


def files_possible(ctx: Context) -> bool:
    """Whether this chat can exchange files (Telegram, Zalo, the web page; not the console)."""
    channels = ctx.services.file_channels
    return channels is None or ctx.incoming.channel in channels
