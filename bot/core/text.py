"""Cleaning of text as it arrives from any channel, before any handler sees it."""

from __future__ import annotations

import re
import unicodedata

# Longest message the bot reads; Telegram's own limit is 4096 characters.
MAX_TEXT_CHARS = 4000
_KEEP_CONTROLS = {"\n", "\t"}
# Terminal colour/cursor sequences (ESC [ ... letter) pasted from a console.
_ANSI_CSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean_text(raw: object) -> str:
    """Return ``raw`` as NFC text without control characters, lone surrogates or edge spaces.

    Anything that is not a string (a channel passing bytes or None) becomes text or "".
    """
    if raw is None:
        return ""
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    elif not isinstance(raw, str):
        raw = str(raw)
    # Lone surrogates (e.g. "\ud800" in JSON) cannot be stored or encoded: drop them.
    text = raw.encode("utf-8", errors="ignore").decode("utf-8")
    text = _ANSI_CSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "".join(
        ch for ch in text if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    # After the controls are gone: one between a letter and its mark would keep them apart.
    return unicodedata.normalize("NFC", text).strip()
