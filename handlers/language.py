"""Language switch: Vietnamese (default) or English, remembered per conversation."""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router
from bot.i18n import SUPPORTED_LOCALES
from handlers.start import menu_reply

router = Router("language")

# Each language is named in itself so that anyone can find their own.
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}


@router.command("language", "lang", "ngonngu")
@router.payload("lang:choose")
@router.phrase("ngôn ngữ", "đổi ngôn ngữ", "language", "change language")
async def choose_language(ctx: Context) -> Reply:
    """Offer the supported languages."""
    buttons = [Button(LANGUAGE_NAMES[code], f"lang:set:{code}") for code in SUPPORTED_LOCALES]
    return Reply(ctx.t("Choose your language / Chọn ngôn ngữ:"), buttons)


@router.payload("lang:set:", prefix=True)
async def set_language(ctx: Context) -> list[Reply]:
    """Switch to the chosen language and show the menu in it."""
    if ctx.args not in SUPPORTED_LOCALES:
        return [await choose_language(ctx)]
    return _switch(ctx, ctx.args)


@router.phrase("english", "tiếng anh", "in english", "speak english")
async def to_english(ctx: Context) -> list[Reply]:
    """Switch to English when the user asks for it in words."""
    return _switch(ctx, "en")


@router.phrase("tiếng việt", "vietnamese", "in vietnamese")
async def to_vietnamese(ctx: Context) -> list[Reply]:
    """Switch to Vietnamese when the user asks for it in words."""
    return _switch(ctx, "vi")


def _switch(ctx: Context, locale: str) -> list[Reply]:
    ctx.set_locale(locale)
    t = ctx.t
    return [menu_reply(t, t("From now on I will reply in English. What would you like to do?"))]
