"""Finding a procedure and reading its card, one short message at a time."""

from __future__ import annotations

import re

from bot.core import Button, Context, Reply, Router
from handlers import procedure_card as card
from handlers.start import menu_buttons

router = Router("procedures")

QUERY_STEP = "proc.query"
CODE_IN_TEXT = re.compile(r"\b(\d\.\d{6})\b")
# Shown as examples when the user opens the search; taken only if the catalogue has them.
POPULAR = ("1.001193", "1.000894", "1.000656", "1.004873", "2.000815")
# A top hit this far ahead of the next is taken as the answer without asking.
CLEAR_LEAD = 0.15


@router.payload("proc:search")
@router.command("thutuc", "procedure")
async def ask_query(ctx: Context) -> Reply:
    """Ask what the citizen needs to do, with a few common procedures as buttons."""
    ctx.state.step = QUERY_STEP
    t = ctx.t
    catalogue = ctx.services.catalogue
    buttons = [
        Button(_short(catalogue.get(code).name), f"proc:show:{code}")
        for code in POPULAR
        if catalogue.get(code)
    ]
    return Reply(
        t(
            "What do you need to do? Type a few words, e.g. “birth registration”, "
            "“certified copy”, “marriage”, or choose below."
        ),
        [*buttons, Button(t("🏠 Main menu"), "menu")],
    )


@router.step(QUERY_STEP)
async def search_in_step(ctx: Context) -> Reply:
    """Search for what the user typed after being asked."""
    return _answer(ctx, ctx.incoming.text, keep_asking=True)


@router.text(lambda folded: True)
async def search_free_text(ctx: Context) -> Reply | None:
    """Any other text: show procedures if it clearly names some, else let the fallback answer."""
    found = CODE_IN_TEXT.search(ctx.incoming.text)
    if found and ctx.services.catalogue.get(found.group(1)):
        return _card(ctx, found.group(1))
    if not ctx.services.search.search(ctx.incoming.text, limit=1):
        return None
    return _answer(ctx, ctx.incoming.text, keep_asking=False)


@router.payload("proc:rel:", prefix=True)
async def related(ctx: Context) -> Reply:
    """Offer the procedures related to one: those the record names, then its close variants."""
    procedure = ctx.services.catalogue.get(ctx.args)
    if procedure is None:
        return _unknown_code(ctx)
    t = ctx.t
    codes = related_codes(ctx.services, procedure)
    if not codes:
        return Reply(
            t("I know of no procedure related to this one."), card.card_buttons(t, procedure)
        )
    catalogue = ctx.services.catalogue
    buttons = [Button(_short(catalogue.get(code).name), f"proc:show:{code}") for code in codes]
    return Reply(
        t("Procedures related to this one:"), [*buttons, Button(t("🏠 Main menu"), "menu")]
    )


def related_codes(services, procedure, limit: int = 5) -> list[str]:
    """Codes named in the record's related list (matched by name), then the procedures whose
    names the search finds closest to this one's (its variants: re-registration, foreign...)."""
    codes: list[str] = []
    for name in procedure.related:
        hits = services.search.search(name, limit=1)
        if hits and hits[0].code != procedure.code:
            codes.append(hits[0].code)
    for hit in services.search.search(procedure.name, limit=limit + 1):
        if hit.code != procedure.code and hit.code not in codes:
            codes.append(hit.code)
    return codes[:limit]


@router.payload("proc:show:", prefix=True)
async def show(ctx: Context) -> Reply:
    """Show the summary card of one procedure."""
    return _card(ctx, ctx.args)


@router.payload("proc:docs:", "proc:fees:", "proc:online:", "proc:where:", "proc:law:", prefix=True)
async def show_section(ctx: Context) -> Reply:
    """Show one section of a procedure's card."""
    procedure = ctx.services.catalogue.get(ctx.args)
    if procedure is None:
        return _unknown_code(ctx)
    t, unit = ctx.t, ctx.services.unit
    section = ctx.incoming.payload.split(":")[1]
    text = {
        "docs": lambda: card.documents(t, procedure),
        "fees": lambda: card.fees_and_times(t, procedure, unit),
        "online": lambda: card.online(t, procedure),
        "where": lambda: card.where(t, unit),
        "law": lambda: card.legal(t, procedure),
    }[section]()
    return Reply(text, card.card_buttons(t, procedure))


def _answer(ctx: Context, query: str, *, keep_asking: bool) -> Reply:
    t = ctx.t
    hits = ctx.services.search.search(query, limit=5)
    if not hits:
        return Reply(
            t(
                "I could not find a procedure for “{query}”. Please try other words, or ask "
                "the desk staff.",
                query=_short(query, 80),
            ),
            [Button(t("🏠 Main menu"), "menu")],
        )
    ctx.state.clear_flow()
    if len(hits) == 1 or hits[0].score - hits[1].score >= CLEAR_LEAD:
        return _card(ctx, hits[0].code)
    buttons = [Button(_short(hit.name), f"proc:show:{hit.code}") for hit in hits]
    return Reply(
        t("I found several procedures. Which one do you mean?"),
        [*buttons, Button(t("🏠 Main menu"), "menu")],
    )


def _card(ctx: Context, code: str) -> Reply:
    procedure = ctx.services.catalogue.get(code)
    if procedure is None:
        return _unknown_code(ctx)
    ctx.state.clear_flow()
    t = ctx.t
    return Reply(card.summary(t, procedure, ctx.services.unit), card.card_buttons(t, procedure))


def _unknown_code(ctx: Context) -> Reply:
    t = ctx.t
    return Reply(t("That procedure is not in the catalogue any more."), menu_buttons(t))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
