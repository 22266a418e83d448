"""Start and main menu: greeting, what the bot can do, and the way back from anywhere."""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router
from bot.i18n import Translator

router = Router("start")

MENU = "menu"


def menu_buttons(t: Translator) -> list[Button]:
    """The main menu: the four things a citizen can do."""
    return [
        Button(t("🔎 Find a procedure"), "proc:search"),
        Button(t("📄 Check a dossier"), "dossier:check"),
        Button(t("✉️ Send feedback"), "feedback:new"),
        Button(t("🌐 Language / Ngôn ngữ"), "lang:choose"),
    ]


def menu_reply(t: Translator, text: str | None = None) -> Reply:
    return Reply(text or t("What would you like to do?"), menu_buttons(t))


@router.command("start", "menu")
@router.payload(MENU)
@router.phrase(
    "xin chào", "chào", "chào bạn", "chào em", "alo", "hello", "hi", "menu", "bắt đầu", "start"
)
async def show_menu(ctx: Context) -> Reply:
    """Greet the user and show the main menu. "/start <unit>" (a Telegram link
    t.me/<bot>?start=<unit> that a commune hands out) also chooses the unit, when the
    deployment serves it."""
    ctx.state.clear_flow()
    t = ctx.t
    served = ctx.services.settings.served_units if ctx.services is not None else []
    if ctx.args and ctx.args in served:
        ctx.state.unit = ctx.args
    greeting = t(
        "Hello! I am the virtual assistant of the one-stop desk (Bộ phận Một cửa). "
        "I can help you:\n"
        "• find an administrative procedure and the papers to prepare;\n"
        "• check the status of a dossier from its receipt code;\n"
        "• send feedback or a suggestion to the commune.\n"
        "Choose an option below or type your question."
    )
    if len(served) > 1:
        unit = ctx.state.unit if ctx.state.unit in served else ctx.services.settings.unit
        greeting += "\n\n" + t(
            "You are asking the one-stop desk of {name}. To change it, type /donvi.",
            name=ctx.services.unit_name(unit),
        )
    return menu_reply(t, greeting)


@router.command("cancel")
@router.payload("cancel")
@router.phrase("hủy", "hủy bỏ", "thôi", "thoát", "dừng lại", "cancel", "stop", "quit")
async def cancel(ctx: Context) -> Reply:
    """Leave whatever flow the user is in and go back to the menu."""
    ctx.state.clear_flow()
    t = ctx.t
    return menu_reply(t, t("Cancelled. What would you like to do next?"))
