"""Translations: gettext catalogues in ``locales/`` managed with Babel.

Message ids are the English source text; Vietnamese is the default locale. The bot reads the
``.po`` files directly (through Babel), so there is no compiled file to forget to rebuild.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

import locales

SUPPORTED_LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
LOCALES_DIR = Path(locales.__file__).parent
DOMAIN = "messages"


def N_(message: str) -> str:  # noqa: N802 - gettext convention
    """Mark a string for extraction without translating it yet."""
    return message


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _catalog(locale: str) -> dict[str, str]:
    """Return msgid -> msgstr for one locale, skipping fuzzy and empty entries."""
    path = po_path(locale)
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    result: dict[str, str] = {}
    for message in catalog:
        if not message.id or message.fuzzy or isinstance(message.id, tuple):
            continue
        if isinstance(message.string, str) and message.string:
            result[message.id] = message.string
    return result


def normalize_locale(tag: str | None) -> str | None:
    """Map a language tag such as ``en-US`` or ``vi_VN.UTF-8`` to a supported locale, or None."""
    if not tag or not isinstance(tag, str):  # a platform may send anything (a list, a number)
        return None
    base = tag.strip().replace("_", "-").split(".")[0].split("-")[0].lower()
    return base if base in SUPPORTED_LOCALES else None


class Translator:
    """Callable that translates a message id and fills its ``{named}`` placeholders."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in SUPPORTED_LOCALES else DEFAULT_LOCALE
        self._messages = _catalog(self.locale)

    def __call__(self, message: str, **params: object) -> str:
        text = self._messages.get(message, message)
        return text.format(**params) if params else text


def translator(locale: str | None) -> Translator:
    return Translator(normalize_locale(locale) or DEFAULT_LOCALE)


def operator_locale() -> str:
    """Locale for command-line output: MOTCUA_DEFAULT_LOCALE if valid, else Vietnamese.

    Read straight from the environment because it is needed even when other settings are invalid.
    """
    return normalize_locale(os.environ.get("MOTCUA_DEFAULT_LOCALE")) or DEFAULT_LOCALE


def format_number(value: int | float, locale: str) -> str:
    """Group digits the local way: 4.000 in Vietnamese, 4,000 in English."""
    from babel.numbers import format_decimal

    return format_decimal(value, locale=normalize_locale(locale) or DEFAULT_LOCALE)
