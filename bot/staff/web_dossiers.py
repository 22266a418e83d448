"""Dossiers (hồ sơ) on the staff dashboard: look one up by its receipt code and change its
status. A change is appended to the dossier's history; the notifier then tells the citizens
who follow the dossier (``bot.dossiers.notifier``), as it does for an imported change.

Only the unit's own dossiers are reachable: another unit's code is "not found" exactly like a
code nobody has. ``bot.staff.tools`` does the work and writes the audit row.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select

from bot.dossiers.model import STATUSES, Dossier, normalize_code
from bot.i18n import N_
from bot.staff import tools
from bot.staff.web import PREFIX, StaffRoutes, not_found, redirect, render, staff_of
from bot.storage.models import DossierSubscription, utcnow
from handlers.dossier_card import channel_text, deadline_line

routes = StaffRoutes(actions={"dossier.status": N_("changed a dossier's status")})

MAX_CODE = 64  # the column's width


@routes.get("/dossiers", nav=N_("Dossiers"))
async def dossiers(request: web.Request) -> web.Response:
    """The lookup form and, for a code of this unit, the dossier with its history."""
    staff = staff_of(request)
    code = normalize_code(request.query.get("code", ""))[:MAX_CODE]
    dossier = await tools.find_dossier(staff.db, staff.unit, code) if code else None
    return await _page(request, code, dossier)


@routes.post("/dossiers/status")
async def change_status(request: web.Request) -> web.StreamResponse:
    """Append a status to the unit's dossier (with an optional note for the citizen)."""
    staff = staff_of(request)
    form = await request.post()
    code = normalize_code(str(form.get("code", "")))[:MAX_CODE]
    status, note = str(form.get("status", "")), str(form.get("note", ""))
    try:
        if status not in STATUSES:  # the form offers only the vocabulary's codes
            raise tools.StaffToolError(N_("Unknown dossier status “{status}”."), status=status[:40])
        changed = await tools.change_dossier_status(
            staff.db, staff.unit, code, status, note, staff.user.username
        )
    except tools.StaffToolError as exc:
        dossier = await tools.find_dossier(staff.db, staff.unit, code)
        if dossier is None:
            raise not_found(request) from None
        return await _page(request, code, dossier, error=exc.describe(staff.t), note=note)
    if not changed:
        raise not_found(request)
    raise redirect(f"{PREFIX}/dossiers?{urlencode({'code': code, 'done': 'status'})}")


async def _page(
    request: web.Request, code: str, dossier: Dossier | None, *, error: str = "", note: str = ""
) -> web.Response:
    staff = staff_of(request)
    t = staff.t
    service = staff.services.dossiers
    context: dict = {"dossier": dossier}
    if dossier is not None:
        async with staff.db.session() as session:
            followers = await session.scalar(
                select(func.count())
                .select_from(DossierSubscription)
                .where(
                    DossierSubscription.unit == dossier.unit,
                    DossierSubscription.code == dossier.code,
                    DossierSubscription.ended_at.is_(None),
                )
            )
        deadline = deadline_line(t, service, dossier, utcnow()) or ""
        context |= {
            "entry": STATUSES.get(dossier.status),
            "procedure": service.procedure_name(dossier),
            "channel": channel_text(t, dossier.channel),
            "due_at": service.due_at(dossier),
            "deadline": deadline.splitlines(),
            "history": list(reversed(dossier.history)),
            "followers": followers or 0,
        }
    return render(
        request,
        "dossiers.html",
        title=t("Dossiers"),
        code=code,
        done=t("The status was changed. Citizens who follow the dossier will be told.")
        if dossier is not None and request.query.get("done") == "status"
        else "",
        error=error,
        note=note,
        statuses={key: entry.label for key, entry in STATUSES.items()},
        max_note=tools.MAX_NOTE_CHARS,
        **context,
    )
