"""Menu entries whose features are not built yet (feedback).

Each is replaced by its own module (handlers/dossiers.py, feedback.py) when that
feature lands; until then the citizen is told plainly and pointed to the desk itself.
"""

from __future__ import annotations

from bot.core import Context, Reply, Router
from handlers.start import menu_reply

router = Router("coming_soon")


@router.payload("feedback:new")
async def not_available_yet(ctx: Context) -> Reply:
    """Tell the user this service is not available in the chat yet."""
    t = ctx.t
    return menu_reply(
        t,
        t(
            "This service is not available in the chat yet. Please contact the one-stop desk "
            "of your commune directly. Is there anything else I can help with?"
        ),
    )
