"""The catalogue page: the unit's desk (address, hours, hotline), which of the catalogue's
procedures apply at the unit, and the upload of a catalogue file or of a one-stop software's
dossier export, previewed (with the problems found, line by line) before it is applied.

Every officer of the unit sees the page; only administrators change anything. An upload is kept
in a private temporary directory under a random token; the preview and the "Apply" button refer
to it by that token (never by a path from the browser), and only the uploader, in the unit they
uploaded for, can use it. ``bot.staff.tools`` does the work and writes the audit rows; after a
change to the catalogue or the unit the bot's copy is reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlencode

from aiohttp import web
from sqlalchemy import select

from bot.i18n import N_
from bot.staff import tools
from bot.staff.auth import ADMINS
from bot.staff.web import PREFIX, StaffRoutes, not_found, redirect, render, staff_of
from bot.storage.models import UnitProfile
from procedures_catalog.normalize import fold
from procedures_catalog.schema import Unit

routes = StaffRoutes(
    actions={
        "unit.profile": N_("changed the unit's address, hours or hotline"),
        "unit.applied": N_("changed the procedures applied at the unit"),
        "catalogue.import": N_("imported a catalogue file"),
        "dossiers.import": N_("imported a dossier file"),
    }
)

PAGE_SIZE = 50
MAX_QUERY = 100
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
UPLOAD_LIFETIME = 2 * 3600  # seconds an upload waits for its "Apply"
MAX_PROBLEMS_SHOWN = 200
UPLOADS = Path(tempfile.gettempdir()) / "motcua-staff-uploads"
KINDS = {
    "catalogue": (".jsonl", ".ndjson", ".json", ".csv", ".xlsx"),
    "dossiers": (".csv",),
}
_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")
_UNSAFE_NAME = re.compile(r"[^\w.() -]+")
DONE = {
    "profile": N_("The unit's details were saved."),
    "applied": N_("The procedures applied at the unit were saved."),
    "discarded": N_("The upload was discarded."),
}
NO_KIND = N_("Choose what the file holds.")
NO_FILE = N_("Choose a file to upload.")
BAD_SUFFIX = N_("This kind of file must end in {suffixes}.")
TOO_LARGE = N_("The file is larger than {size} MB.")
EXPIRED = N_("This upload has expired or was already used. Upload the file again.")


# -- the page ----------------------------------------------------------------------------------


@dataclass
class Listing:
    """The catalogue's procedures as the page lists them: filtered, one page at a time."""

    q: str
    only_applied: bool
    page: int

    @classmethod
    def from_query(cls, query) -> Listing:
        try:
            page = max(1, int(query.get("page", "1")))
        except ValueError:
            page = 1
        return cls(
            " ".join(str(query.get("q", "")).split())[:MAX_QUERY],
            query.get("applied") == "1",
            page,
        )

    def query_string(self, **changes) -> str:
        values = {"q": self.q, "applied": "1" if self.only_applied else "", "page": self.page}
        values |= changes
        return urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


_folded: list = [None, {}]  # [the catalogue object, {code: folded name}]


def _folded_names(catalogue) -> dict[str, str]:
    """code -> folded name, kept while the bot has the same catalogue object (a reload
    replaces it)."""
    if _folded[0] is not catalogue:
        _folded[:] = [catalogue, {code: fold(p.name) for code, p in catalogue.procedures.items()}]
    return _folded[1]


async def _stored_unit(db, unit: str) -> Unit | None:
    """The unit's profile as the database has it now (the bot's copy may be older)."""
    async with db.session() as session:
        row = await session.scalar(select(UnitProfile).where(UnitProfile.id == unit))
    return Unit.from_dict(row.document) if row else None


@routes.get("/catalogue", nav=N_("Catalogue"))
async def catalogue_page(request: web.Request) -> web.Response:
    return await _page(request)


async def _page(
    request: web.Request, *, error: str = "", profile_form: dict | None = None
) -> web.Response:
    staff = staff_of(request)
    t = staff.t
    catalogue = staff.services.catalogue
    listing = Listing.from_query(request.query)
    unit = await _stored_unit(staff.db, staff.unit)
    applied = set(unit.applied_codes) if unit else set()
    codes = sorted(catalogue.procedures)
    if listing.only_applied:
        codes = [code for code in codes if code in applied]
    if listing.q:
        wanted, folded = fold(listing.q), _folded_names(catalogue)
        codes = [
            code
            for code in codes
            if wanted in folded.get(code, "") or listing.q.lower() in code.lower()
        ]
    total = len(codes)
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(listing.page, pages)
    shown = [catalogue.procedures[code] for code in codes[(page - 1) * PAGE_SIZE :][:PAGE_SIZE]]
    done = request.query.get("done")
    message = ""
    if done in DONE:
        message = t(DONE[done])
    elif done == "catalogue":
        message = t(
            "The catalogue was imported: {added} added, {updated} updated, {unchanged} unchanged.",
            **_numbers(request.query, "added", "updated", "unchanged"),
        )
    elif done == "dossiers":
        message = t(
            "The dossiers were imported: {created} new, {changes} status changes, "
            "{rejected} rows left out.",
            **_numbers(request.query, "created", "changes", "rejected"),
        )
    fields = profile_form or (
        {"address": unit.address, "hours": unit.hours, "hotline": unit.hotline or ""}
        if unit
        else {"address": "", "hours": "", "hotline": ""}
    )
    return render(
        request,
        "catalogue.html",
        title=t("Catalogue and unit"),
        unit=unit,
        fields=fields,
        can_change=staff.is_admin,
        listing=listing,
        procedures=shown,
        applied=applied,
        applied_count=len(applied & set(catalogue.procedures)),
        catalogue_name=catalogue.name,
        catalogue_size=len(catalogue),
        total=total,
        page=page,
        pages=pages,
        previous=listing.query_string(page=page - 1) if page > 1 else None,
        next_page=listing.query_string(page=page + 1) if page < pages else None,
        back=listing.query_string(page=page),
        done=message,
        error=error,
        kinds=KINDS,
        max_mb=MAX_UPLOAD_BYTES // (1024 * 1024),
        limits={
            "address": tools.MAX_ADDRESS_CHARS,
            "hours": tools.MAX_HOURS_CHARS,
            "hotline": tools.MAX_HOTLINE_CHARS,
        },
    )


def _numbers(query, *names: str) -> dict[str, int]:
    values = {}
    for name in names:
        try:
            values[name] = max(0, int(query.get(name, "0")))
        except ValueError:
            values[name] = 0
    return values


# -- the unit ----------------------------------------------------------------------------------


@routes.post("/catalogue/profile", roles=ADMINS)
async def save_profile(request: web.Request) -> web.StreamResponse:
    """Save the desk's address, opening hours and hotline."""
    staff = staff_of(request)
    form = await request.post()
    fields = {name: str(form.get(name, "")) for name in ("address", "hours", "hotline")}
    try:
        await tools.update_unit_profile(
            staff.db,
            staff.unit,
            address=fields["address"],
            hours=fields["hours"],
            hotline=fields["hotline"],
            actor=staff.user.username,
        )
    except tools.StaffToolError as exc:
        clipped = {name: value[:1000] for name, value in fields.items()}
        return await _page(request, error=exc.describe(staff.t), profile_form=clipped)
    await staff.services.reload_catalogue()
    raise redirect(f"{PREFIX}/catalogue?done=profile")


@routes.post("/catalogue/applied", roles=ADMINS)
async def save_applied(request: web.Request) -> web.StreamResponse:
    """Save the ticks of the procedures listed on one page; the codes of other pages are kept.

    The form names every code it listed (``shown``) and the ticked ones (``applied``): the new
    set is the stored one without the listed codes, plus the ticked ones."""
    staff = staff_of(request)
    form = await request.post()
    shown = {str(code).strip() for code in form.getall("shown", [])}
    ticked = {str(code).strip() for code in form.getall("applied", [])} & shown
    back = str(form.get("back", ""))
    unit = await _stored_unit(staff.db, staff.unit)
    if unit is None:
        return await _page(
            request, error=staff.t(N_("There is no unit “{unit}”."), unit=staff.unit)
        )
    known = staff.services.catalogue.procedures
    # Codes no longer in the catalogue are dropped: they could not be saved again otherwise.
    kept = {code for code in unit.applied_codes if code not in shown and code in known}
    try:
        await tools.set_applied(
            staff.db,
            staff.unit,
            kept | ticked,
            staff.user.username,
            catalogue=staff.services.catalogue.name,
        )
    except tools.StaffToolError as exc:
        return await _page(request, error=exc.describe(staff.t))
    await staff.services.reload_catalogue()
    back = back if re.fullmatch(r"[A-Za-z0-9%&=+._~-]*", back) else ""
    raise redirect(f"{PREFIX}/catalogue?{back + '&' if back else ''}done=applied#procedures")


# -- uploads ---------------------------------------------------------------------------------


@routes.post("/catalogue/upload", roles=ADMINS)
async def upload(request: web.Request) -> web.StreamResponse:
    """Keep an uploaded file under a new token and show its preview."""
    staff = staff_of(request)
    t = staff.t
    form = await request.post()
    kind, file = str(form.get("kind", "")), form.get("file")
    if kind not in KINDS:
        return await _page(request, error=t(NO_KIND))
    if not isinstance(file, web.FileField) or not file.filename:
        return await _page(request, error=t(NO_FILE))
    name = _safe_name(file.filename)
    suffix = Path(name).suffix.lower()
    if suffix not in KINDS[kind]:
        return await _page(request, error=t(BAD_SUFFIX, suffixes=", ".join(KINDS[kind])))
    token = secrets.token_urlsafe(18)
    folder = UPLOADS / token
    saved = await asyncio.to_thread(_save, file.file, folder, Path(name).stem + suffix)
    if not saved:
        return await _page(request, error=t(TOO_LARGE, size=MAX_UPLOAD_BYTES // 2**20))
    meta = {
        "kind": kind,
        "name": Path(name).stem + suffix,
        "unit": staff.unit,
        "user": staff.user.username,
        "at": time.time(),
    }
    await asyncio.to_thread((folder / "upload.json").write_text, json.dumps(meta), "utf-8")
    raise redirect(f"{PREFIX}/catalogue/upload/{token}")


# Read by the guard: the body of this form may be larger than the application's default limit.
upload.staff_route.max_body = MAX_UPLOAD_BYTES + 64 * 1024


@routes.get("/catalogue/upload/{token}", roles=ADMINS)
async def preview(request: web.Request) -> web.Response:
    """What importing the uploaded file would do: counts, and the problems line by line."""
    staff = staff_of(request)
    t = staff.t
    token, meta, path = await _upload(request)
    services = staff.services
    context: dict = {"problems": [], "problem_count": 0, "error": "", "counts": []}
    applicable = False
    try:
        if meta["kind"] == "catalogue":
            found = await tools.preview_catalogue_file(staff.db, services.catalogue.name, path)
            problems = [
                {"line": p.line, "field": p.field, "code": p.code or "", "reason": p.reason}
                for p in found.problems
            ]
            context["counts"] = [
                (t("Procedures read"), len(found.report.procedures)),
                (t("New to the catalogue"), len(found.added)),
                (t("Changed"), len(found.updated)),
                (t("Unchanged"), found.unchanged),
                (t("Partly read (kept, with notes)"), len(found.report.partial)),
                (t("Left out: problems"), len(found.report.rejected)),
            ]
            context["fatal"] = found.report.fatal is not None
            context["skip"] = bool(found.report.rejected) and not context["fatal"]
            applicable = not context["fatal"] and bool(found.report.procedures)
        else:
            found = await tools.preview_dossier_file(
                staff.db,
                staff.unit,
                path,
                services.catalogue,
                services.dossiers.calendar,
                services.settings.dossier_code_pattern,
            )
            problems = [
                {"line": r.line, "field": "", "code": "", "reason": r.describe(t)}
                for r in found.rejected
            ]
            context["counts"] = [
                (t("Rows read"), found.rows),
                (t("New dossiers"), found.created),
                (t("Status changes"), found.status_changes),
                (t("Unchanged"), found.unchanged),
                (t("Older than the stored status (not applied)"), found.stale),
                (t("Left out: problems"), len(found.rejected)),
            ]
            context["skipped_columns"] = [*found.personal_columns, *found.unknown_columns]
            applicable = found.accepted > 0
    except tools.StaffToolError as exc:
        context["error"] = exc.describe(t).replace(str(path), meta["name"])
        problems = []
    context["problem_count"] = len(problems)
    context["problems"] = problems[:MAX_PROBLEMS_SHOWN]
    return render(
        request,
        "catalogue_upload.html",
        title=t("Preview of {name}", name=meta["name"]),
        token=token,
        meta=meta,
        is_catalogue=meta["kind"] == "catalogue",
        applicable=applicable,
        max_shown=MAX_PROBLEMS_SHOWN,
        fatal=context.pop("fatal", False),
        skip=context.pop("skip", False),
        skipped_columns=context.pop("skipped_columns", []),
        **context,
    )


@routes.post("/catalogue/upload/{token}/apply", roles=ADMINS)
async def apply(request: web.Request) -> web.StreamResponse:
    """Import the uploaded file, then forget it."""
    staff = staff_of(request)
    form = await request.post()
    token, meta, path = await _upload(request)
    services = staff.services
    try:
        if meta["kind"] == "catalogue":
            result = await tools.apply_catalogue_file(
                staff.db,
                services.catalogue.name,
                path,
                unit=staff.unit,
                actor=staff.user.username,
                skip_invalid=form.get("skip_invalid") == "1",
            )
            outcome = {
                "done": "catalogue",
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
            }
        else:
            report = await tools.apply_dossier_file(
                staff.db,
                staff.unit,
                path,
                services.catalogue,
                services.dossiers.calendar,
                services.settings.dossier_code_pattern,
                staff.user.username,
            )
            outcome = {
                "done": "dossiers",
                "created": report.created,
                "changes": report.status_changes,
                "rejected": len(report.rejected),
            }
    except tools.StaffToolError as exc:
        error = exc.describe(staff.t).replace(str(path), meta["name"])
        return render(
            request,
            "catalogue_upload.html",
            title=staff.t("Preview of {name}", name=meta["name"]),
            token=token,
            meta=meta,
            is_catalogue=meta["kind"] == "catalogue",
            applicable=False,
            max_shown=MAX_PROBLEMS_SHOWN,
            fatal=False,
            skip=False,
            skipped_columns=[],
            problems=[],
            problem_count=0,
            counts=[],
            error=error,
        )
    await asyncio.to_thread(shutil.rmtree, path.parent, True)
    if meta["kind"] == "catalogue":
        await services.reload_catalogue()
    raise redirect(f"{PREFIX}/catalogue?{urlencode(outcome)}")


@routes.post("/catalogue/upload/{token}/discard", roles=ADMINS)
async def discard(request: web.Request) -> web.StreamResponse:
    _token, _meta, path = await _upload(request)
    await asyncio.to_thread(shutil.rmtree, path.parent, True)
    raise redirect(f"{PREFIX}/catalogue?done=discarded")


# -- helpers -----------------------------------------------------------------------------------


def _safe_name(filename: str) -> str:
    """A file name to keep on disk and show: no directories, no odd characters. (Browsers send
    it as UTF-8, some clients percent-encoded.)"""
    name = unquote(filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .") or "upload"
    stem, suffix = Path(name).stem[:100] or "upload", Path(name).suffix[:10]
    return stem + suffix


def _save(source, folder: Path, name: str) -> bool:
    """Copy an upload into ``folder`` (made private); False, keeping nothing, if too large."""
    _prune()
    UPLOADS.mkdir(mode=0o700, exist_ok=True)
    folder.mkdir(mode=0o700)
    size = 0
    with (folder / name).open("wb") as out:
        source.seek(0)
        while chunk := source.read(1024 * 1024):
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                break
            out.write(chunk)
    if size > MAX_UPLOAD_BYTES:
        shutil.rmtree(folder, ignore_errors=True)
        return False
    return True


def _prune() -> None:
    """Forget uploads nobody applied in time."""
    if not UPLOADS.is_dir():
        return
    limit = time.time() - UPLOAD_LIFETIME
    for folder in UPLOADS.iterdir():
        with contextlib.suppress(OSError):
            if folder.stat().st_mtime < limit:
                shutil.rmtree(folder, ignore_errors=True)


async def _upload(request: web.Request) -> tuple[str, dict, Path]:
    """The upload the URL's token names, if this officer made it for this unit (404 else)."""
    staff = staff_of(request)
    token = request.match_info["token"]
    if not _TOKEN.fullmatch(token):
        raise not_found(request)
    folder = UPLOADS / token

    def read() -> dict | None:
        try:
            meta = json.loads((folder / "upload.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    meta = await asyncio.to_thread(read)
    if (
        meta is None
        or meta.get("unit") != staff.unit
        or meta.get("user") != staff.user.username
        or meta.get("kind") not in KINDS
        or time.time() - float(meta.get("at", 0)) > UPLOAD_LIFETIME
    ):
        raise _expired(request)
    path = folder / str(meta.get("name"))
    if path.parent != folder or not path.is_file():
        raise _expired(request)
    return token, meta, path


def _expired(request: web.Request) -> web.HTTPException:
    """The one answer for an unknown, expired, used or someone else's upload."""
    page = render(
        request,
        "error.html",
        status=404,
        title=staff_of(request).t(EXPIRED),
        message=staff_of(request).t(EXPIRED),
    )
    exc = web.HTTPNotFound(text=page.text, content_type="text/html")
    exc.staff_page = True
    return exc
