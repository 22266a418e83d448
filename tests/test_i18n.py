"""Every message in the code has a reviewed translation in both catalogues."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import SUPPORTED_LOCALES, po_path, translator

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"t": None, "N_": None}  # the same keywords as `make i18n-extract`


def code_messages() -> dict[str, str]:
    """msgid -> where it is used, for every translatable string in the code."""
    found: dict[str, str] = {}
    for package in ("bot", "handlers", "procedures_catalog"):
        for filename, lineno, message, _comments, _ctx in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(message, str) and message:
                found.setdefault(message, f"{package}/{filename}:{lineno}")
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_code_has_messages() -> None:
    assert len(code_messages()) > 30


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_message_is_translated(locale: str) -> None:
    with po_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    problems = []
    for msgid, where in sorted(code_messages().items()):
        entry = catalog.get(msgid)
        if entry is None or not entry.string:
            problems.append(f"missing: {msgid!r} ({where})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where})")
        elif placeholders(entry.string) != placeholders(msgid):
            problems.append(f"placeholders differ: {msgid!r} -> {entry.string!r}")
    assert not problems, f"{locale}: run `make i18n` and translate:\n" + "\n".join(problems)


def test_vietnamese_is_really_translated() -> None:
    """A Vietnamese entry that merely copies the English text is a missed translation."""
    t = translator("vi")
    untranslated = [
        m for m in code_messages() if re.search(r"[a-z]{3}", m) and t(m) == m and "/" not in m
    ]
    assert not untranslated


def test_unknown_message_falls_back_to_source_text() -> None:
    assert translator("vi")("no such message {x}", x=1) == "no such message 1"
    assert translator("fr").locale == "vi"
