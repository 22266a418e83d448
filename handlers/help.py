"""Help: what the user can type and which commands exist."""

from __future__ import annotations

from bot.core import Context, Reply, Router
from handlers.start import menu_buttons

router = Router("help")


@router.command("help", "trogiup")
@router.payload("help")
@router.phrase("help", "trợ giúp", "giúp", "giúp tôi", "hướng dẫn", "hướng dẫn sử dụng")
async def show_help(ctx: Context) -> Reply:
    """Explain how to talk to the bot."""
    t = ctx.t
    return Reply(
        t(
            "How to use this assistant:\n"
            "• Press a button, or type in your own words, with or without accents.\n"
            "• To find a procedure, describe what you need, e.g. “birth registration”.\n"
            "• To check a dossier, type the receipt code printed on your receipt slip.\n"
            "• Type “menu” at any time to return to the main menu, or “cancel” to stop "
            "what you are doing.\n"
            "• Type “English” or “Tiếng Việt” to change the language.\n"
            "Commands: /start (menu), /hoso (check a dossier), /theodoi (dossiers you follow), "
            "/help (this guide), /language, /cancel."
        ),
        menu_buttons(t),
    )
