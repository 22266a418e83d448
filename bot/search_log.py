"""Record procedure searches for staff statistics, without personal data.

What a citizen typed may contain a phone number, an ID number or an e-mail address; those are
masked before anything is stored, and no user or conversation id is stored with the text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.metrics import SEARCH_MISSES
from bot.storage.models import SearchLogEntry, utcnow
from bot.storage.turns import TurnTransaction

MAX_LOGGED_CHARS = 200
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# 5 or more digits, possibly split by spaces, dots or dashes: phones, ID and receipt numbers.
_LONG_NUMBER = re.compile(r"\d(?:[\s.\-]?\d){4,}")


def mask_personal(text: str) -> str:
    """``text`` with e-mail addresses and long numbers replaced, cut to the logged length."""
    text = _EMAIL.sub("[email]", text)
    text = _LONG_NUMBER.sub("[số]", text)
    text = " ".join(text.split())
    return text[:MAX_LOGGED_CHARS]


async def record_search(
    store: TurnTransaction, *, channel: str, unit: str, query: str, codes: Sequence[str]
) -> None:
    """Add one search to the log, in the turn's transaction."""
    if not codes:
        SEARCH_MISSES.inc()
    await store.insert(
        SearchLogEntry.__table__,
        {
            "created_at": utcnow(),
            "channel": channel[:32],
            "unit": unit[:64],
            "query": mask_personal(query),
            "top_code": codes[0] if codes else None,
            "results": len(codes),
        },
    )
