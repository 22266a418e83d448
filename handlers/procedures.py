"""Finding a procedure and reading its card, one short message at a time."""

from __future__ import annotations

import re

from bot.core import Button, Context, Reply, Router
from bot.search_log import record_search
from handlers import procedure_card as card
from handlers.start import menu_buttons
from procedures_catalog.search import SearchResult

router = Router("procedures")

QUERY_STEP = "proc.query"
CODE_IN_TEXT = re.compile(r"\b(\d\.\d{6})\b")
# Shown as examples when the user opens the search; taken only if the catalogue has them.
POPULAR = ("1.001193", "1.000894", "1.000656", "1.004873", "2.000815")
# How many other procedures are offered beside the best one.
MAX_ALTERNATIVES = 4
PAGE_SIZE = 8


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
async def search_in_step(ctx: Context) -> list[Reply]:
    """Search for what the user typed after being asked."""
    return await _search(ctx, ctx.incoming.text)


@router.text(lambda folded: True)
async def search_free_text(ctx: Context) -> list[Reply] | None:
    """Any other text: show procedures if it clearly names some, else let the fallback answer
    (a near miss is only offered when the user asked to search)."""
    found = CODE_IN_TEXT.search(ctx.incoming.text)
    if found and ctx.services.catalogue.get(found.group(1)):
        return [_card(ctx, found.group(1))]
    return await _search(ctx, ctx.incoming.text, answer_misses=False)


async def _search(ctx: Context, query: str, *, answer_misses: bool = True) -> list[Reply] | None:
    """Search once, log it, and answer; with ``answer_misses`` off, a query that found nothing
    is left to the fallback (None)."""
    result = ctx.services.search.lookup(query, limit=1 + MAX_ALTERNATIVES)
    await _log(ctx, query, [hit.code for hit in result.hits])
    if not result.hits and not answer_misses:
        return None
    return _answer(ctx, query, result)


async def _log(ctx: Context, query: str, codes: list[str]) -> None:
    await record_search(
        ctx.store,
        channel=ctx.incoming.channel,
        unit=ctx.services.settings.unit,
        query=query,
        codes=codes,
    )


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
    names are closest to this one's (its variants: re-registration, foreign...)."""
    codes: list[str] = []
    for name in procedure.related:
        hits = services.search.search(name, limit=1)
        if hits and hits[0].code != procedure.code:
            codes.append(hits[0].code)
    for hit in services.search.similar(procedure.code, limit=limit + 1):
        if hit.code not in codes:
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


def _answer(ctx: Context, query: str, result: SearchResult) -> list[Reply]:
    """The best procedure's card and up to four alternatives; or "did you mean"; or an honest
    "not found" with the fields to browse and the feedback option."""
    t = ctx.t
    if not result.hits:
        return [_not_found(ctx, query, result.suggestions)]
    ctx.state.clear_flow()
    top, *others = result.hits
    replies = [_card(ctx, top.code)]
    if result.corrections:
        read_as = ", ".join(f"“{typed}” → “{read}”" for typed, read in result.corrections)
        replies.insert(0, Reply(t("I read your words as: {corrections}.", corrections=read_as)))
    if others:
        replies.append(
            Reply(
                t("Not this one? Other procedures that may fit:"),
                [Button(_short(hit.name), f"proc:show:{hit.code}") for hit in others],
            )
        )
    return replies


def _not_found(ctx: Context, query: str, suggestions: list) -> Reply:
    t = ctx.t
    ctx.state.step = QUERY_STEP
    buttons = [Button(_short(hit.name), f"proc:show:{hit.code}") for hit in suggestions[:3]]
    if buttons:
        text = t(
            "I am not sure which procedure you mean by “{query}”. Did you mean one of these? "
            "You can also type it in other words.",
            query=_short(query, 80),
        )
    else:
        text = t(
            "I could not find a procedure for “{query}”. Please try other words, browse the "
            "procedures by field, or send us feedback so that we can help.",
            query=_short(query, 80),
        )
    buttons += [
        Button(t("📂 Browse by field"), "proc:fields"),
        Button(t("💬 Send feedback"), "feedback:new"),
        Button(t("🏠 Main menu"), "menu"),
    ]
    return Reply(text, buttons)


@router.payload("proc:fields", "proc:fields:", prefix=True)
async def list_fields(ctx: Context) -> Reply:
    """The fields (lĩnh vực) of the catalogue, a page at a time."""
    t = ctx.t
    fields = ctx.services.search.fields()
    page = _page_number(ctx.args)
    start = page * PAGE_SIZE
    buttons = [
        Button(_short(f"{name} ({count})"), f"proc:field:{start + offset}:0")
        for offset, (name, count) in enumerate(fields[start : start + PAGE_SIZE])
    ]
    buttons += _pager(t, "proc:fields:", page, len(fields))
    text = t(
        "Procedures by field — page {page} of {pages}. Choose a field:",
        page=page + 1,
        pages=max(1, -(-len(fields) // PAGE_SIZE)),
    )
    return Reply(text, [*buttons, Button(t("🏠 Main menu"), "menu")])


@router.payload("proc:field:", prefix=True)
async def list_field(ctx: Context) -> Reply:
    """The procedures of one field, a page at a time."""
    t = ctx.t
    fields = ctx.services.search.fields()
    number, _, page_text = ctx.args.partition(":")
    if not number.isdigit() or int(number) >= len(fields):
        return await list_fields(ctx)
    name = fields[int(number)][0]
    hits = ctx.services.search.in_field(name)
    page = _page_number(page_text)
    start = page * PAGE_SIZE
    buttons = [
        Button(_short(hit.name), f"proc:show:{hit.code}") for hit in hits[start : start + PAGE_SIZE]
    ]
    buttons += _pager(t, f"proc:field:{number}:", page, len(hits))
    text = t(
        "{field}: {count} procedures (page {page} of {pages}).",
        field=name,
        count=len(hits),
        page=page + 1,
        pages=max(1, -(-len(hits) // PAGE_SIZE)),
    )
    return Reply(
        text,
        [*buttons, Button(t("📂 All fields"), "proc:fields"), Button(t("🏠 Main menu"), "menu")],
    )


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and len(text) < 5 else 0


def _pager(t, prefix: str, page: int, total: int) -> list[Button]:
    buttons = []
    if page > 0:
        buttons.append(Button(t("◀ Previous"), f"{prefix}{page - 1}"))
    if (page + 1) * PAGE_SIZE < total:
        buttons.append(Button(t("Next ▶"), f"{prefix}{page + 1}"))
    return buttons


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
