"""Which commune or ward a citizen is asking, when one deployment serves several
(MOTCUA_UNITS): chosen from a list (/donvi), by typing its name ("/donvi an bình"), or by the
link the commune hands out (Telegram ``t.me/<bot>?start=<unit>``, see handlers/start.py).

The choice is kept in the conversation (``state.unit``, across flows) and the engine gives
the handlers that unit's services from the next message on: its feedback inbox and staff,
its dossier source. The web chat's ``/?unit=<unit>`` entry point sets the unit per message
instead (bot/channels/web.py).
"""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router
from handlers.start import menu_reply
from procedures_catalog.normalize import fold

router = Router("unit_choice")

CHOOSE = "unit:choose"
SET = "unit:set:"


def unit_name(ctx: Context, unit: str) -> str:
    return ctx.services.unit_name(unit)


def served(ctx: Context) -> list[str]:
    return ctx.services.settings.served_units


def current(ctx: Context) -> str:
    """The unit this conversation is answered for now."""
    return ctx.services.settings.unit


def find(ctx: Context, typed: str) -> str | None:
    """The served unit named by ``typed``: its id, or words of its name in any spelling."""
    words = fold(typed)
    if not words:
        return None
    for unit in served(ctx):
        if typed.strip().lower() == unit:
            return unit
    found = [unit for unit in served(ctx) if words in fold(unit_name(ctx, unit))]
    return found[0] if len(found) == 1 else None


@router.command("donvi", "unit", "xa")
@router.payload(CHOOSE)
@router.phrase(
    "đổi xã",
    "chọn xã",
    "đổi phường",
    "chọn phường",
    "đổi đơn vị",
    "chọn đơn vị",
    "change unit",
    "choose unit",
    "change commune",
)
async def choose(ctx: Context) -> Reply:
    """List the units served, the current one marked; "/donvi <name>" picks one at once."""
    t = ctx.t
    units = served(ctx)
    if len(units) == 1:
        return menu_reply(
            t,
            t(
                "This assistant answers for one unit only: {name}.",
                name=unit_name(ctx, units[0]),
            ),
        )
    if ctx.args:
        found = find(ctx, ctx.args)
        if found is not None:
            return _set(ctx, found)
    now = current(ctx)
    buttons = [
        Button(("✓ " if unit == now else "") + unit_name(ctx, unit), f"{SET}{unit}")
        for unit in units
    ]
    lead = (
        t("I do not know a unit named “{typed}” here.", typed=ctx.args[:60]) + "\n"
        if ctx.args
        else ""
    )
    return Reply(
        lead
        + t(
            "Which commune or ward is your question for? You are now asking the one-stop desk "
            "of {name}.",
            name=unit_name(ctx, now),
        ),
        [*buttons, Button(t("🏠 Main menu"), "menu")],
    )


@router.payload(SET, prefix=True)
async def set_unit(ctx: Context) -> Reply:
    """Answer for the chosen unit from now on."""
    if ctx.args not in served(ctx):
        return await choose(ctx)
    return _set(ctx, ctx.args)


def _set(ctx: Context, unit: str) -> Reply:
    t = ctx.t
    ctx.state.unit = unit
    return menu_reply(
        t,
        t(
            "From now on you are asking the one-stop desk of {name}. "
            "To change it, type /donvi. What would you like to do?",
            name=unit_name(ctx, unit),
        ),
    )
