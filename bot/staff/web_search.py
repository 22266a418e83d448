"""Searches that found nothing: what citizens asked the bot about procedures without getting an
answer, grouped across accents and case, with a form per group to add a synonym (the citizens'
words -> words of a procedure name), and the unit's synonyms with a button to remove each.

``bot.staff.tools`` checks a synonym (it must make the question find something it did not) and
writes the audit row; the bot's search index is rebuilt after each change.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from bot.i18n import N_
from bot.staff import tools
from bot.staff.web import PREFIX, StaffRoutes, not_found, redirect, render, staff_of

routes = StaffRoutes(
    actions={
        "synonym.add": N_("added a search synonym"),
        "synonym.remove": N_("removed a search synonym"),
    }
)

DEFAULT_DAYS = 90
MAX_DAYS = 3660
GROUPS = 100  # the most frequent groups shown
DONE = {
    "added": N_("The synonym was added; the bot's search uses it now."),
    "removed": N_("The synonym was removed."),
}


def _days(value) -> int:
    try:
        return min(MAX_DAYS, max(1, int(value)))
    except (TypeError, ValueError):
        return DEFAULT_DAYS


@routes.get("/search-misses", nav=N_("Search misses"))
async def misses(request: web.Request) -> web.Response:
    return await _page(request, _days(request.query.get("days")))


@routes.post("/search-misses/synonyms")
async def add(request: web.Request) -> web.StreamResponse:
    """Add a synonym for the unit; a refusal is shown with the tool's reason."""
    staff = staff_of(request)
    form = await request.post()
    days = _days(form.get("days"))
    phrase, replacement = str(form.get("phrase", "")), str(form.get("replacement", ""))
    try:
        await tools.add_synonym(
            staff.db,
            staff.unit,
            phrase,
            replacement,
            staff.user.username,
            catalogue=staff.services.catalogue,
        )
    except tools.StaffToolError as exc:
        return await _page(
            request,
            days,
            error=exc.describe(staff.t),
            typed={"phrase": phrase[:200], "replacement": replacement[:200]},
        )
    await staff.services.reload_catalogue()
    raise redirect(f"{PREFIX}/search-misses?{urlencode({'days': days, 'done': 'added'})}")


@routes.post("/search-misses/synonyms/{id}/remove")
async def remove(request: web.Request) -> web.StreamResponse:
    """Remove one of the unit's synonyms (another unit's is "not found")."""
    staff = staff_of(request)
    form = await request.post()
    try:
        synonym_id = int(request.match_info["id"])
    except ValueError:
        raise not_found(request) from None
    if not await tools.remove_synonym(staff.db, staff.unit, synonym_id, staff.user.username):
        raise not_found(request)
    await staff.services.reload_catalogue()
    days = _days(form.get("days"))
    raise redirect(f"{PREFIX}/search-misses?{urlencode({'days': days, 'done': 'removed'})}")


async def _page(
    request: web.Request, days: int, *, error: str = "", typed: dict | None = None
) -> web.Response:
    staff = staff_of(request)
    services = staff.services
    until = datetime.now(UTC)
    # The running index has the synonyms of the unit the bot speaks for, not of another one.
    index = services.search if staff.unit == services.settings.unit else None
    groups = await tools.search_misses(
        staff.db, staff.unit, until - timedelta(days=days), until, GROUPS, index=index
    )
    found = {
        group.key: [
            (code, procedure.name if (procedure := services.catalogue.get(code)) else code)
            for code in group.found_now
        ]
        for group in groups
    }
    done = request.query.get("done")
    return render(
        request,
        "search_misses.html",
        title=staff.t("Searches that found no procedure"),
        days=days,
        groups=groups,
        found=found,
        suggested={group.key: _suggested(group.examples) for group in groups},
        checked=index is not None,
        synonyms=await tools.list_synonyms(staff.db, staff.unit),
        done=staff.t(DONE[done]) if done in DONE and not error else "",
        error=error,
        typed=typed or {},
        max_chars=tools.MAX_SYNONYM_CHARS,
    )


def _suggested(examples: list[str]) -> str:
    """The phrase a group's form offers: the most frequent spelling with diacritics (a synonym
    so written also matches the questions typed without them, not the other way round)."""
    return next((text for text in examples if not text.isascii()), examples[0])
