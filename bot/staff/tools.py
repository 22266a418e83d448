"""What officers do on the staff dashboard besides answering feedback, as plain async functions
on the database (the dashboard's pages call them; nothing here knows about HTTP):

- the unit (xã, phường): which procedures it applies, its desk's address, hours and hotline;
- catalogue and dossier files: a preview of what an import would do, with the problems found,
  then the import itself;
- dossiers (hồ sơ): look one up, change its status (subscribed citizens are told by
  ``DossierNotifier`` on its next round);
- searches that found nothing, grouped, and the synonyms that make them find something.

Every change writes a ``staff_audit`` row. A refusal raises ``StaffToolError``, whose reason is
a msgid the dashboard shows in the officer's language (``describe(t)``). Each function works on
one unit, and a code of another unit is "not found". The running bot reads the catalogue, the
unit profiles and the synonyms into memory: after a change here, call
``Services.reload_catalogue()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from bot.catalogue import LIST_FIELDS, ApplyResult, CatalogueStore, content_hash
from bot.core.text import clean_text
from bot.dossiers.export_rows import MAX_SHOWN_VALUE, read_header, sniff
from bot.dossiers.importer import (
    DossierFileError,
    ImportReport,
    Rejection,
    import_dossiers,
    parse_status,
    record_status_change,
)
from bot.dossiers.model import Dossier, normalize_code
from bot.dossiers.sources import load_dossier
from bot.i18n import N_
from bot.storage.db import Database
from bot.storage.models import (
    CatalogueProcedure,
    SearchLogEntry,
    StaffAudit,
    UnitProfile,
    UnitSynonym,
    as_utc,
    utcnow,
)
from procedures_catalog import importer as catalogue_importer
from procedures_catalog.loader import Catalogue
from procedures_catalog.normalize import fold, words
from procedures_catalog.schema import Procedure, Unit
from procedures_catalog.search import SearchIndex, default_lexicon

MAX_ADDRESS_CHARS = 300
MAX_HOURS_CHARS = 300
MAX_HOTLINE_CHARS = 20
HOTLINE_DIGITS = (3, 15)  # "1022" (a provincial service line) to an international number
MAX_NOTE_CHARS = 1000  # the citizen reads the note in a chat message
MAX_SYNONYM_CHARS = 200  # the columns of unit_synonyms
MISS_EXAMPLES = 3
_HOTLINE = re.compile(r"\+?[0-9][0-9 ]*")


class StaffToolError(ValueError):
    """A change refused, and why: a msgid and its parameters."""

    def __init__(self, reason: str, /, **params: Any) -> None:
        self.reason, self.params = reason, params
        super().__init__(reason.format(**params) if params else reason)

    def describe(self, t=None) -> str:
        return t(self.reason, **self.params) if t is not None else str(self)


def _audit(session, actor: str, unit: str, action: str, target: str = "", detail: str = "") -> None:
    session.add(
        StaffAudit(
            username=actor[:64], unit=unit, action=action, target=target[:128], detail=detail
        )
    )


def _one_line(text: str) -> str:
    return " ".join(clean_text(text).split())


# -- the unit --------------------------------------------------------------------------------


async def _unit_row(session, unit: str) -> UnitProfile:
    row = await session.scalar(select(UnitProfile).where(UnitProfile.id == unit).with_for_update())
    if row is None:
        raise StaffToolError(N_("There is no unit “{unit}”."), unit=unit)
    return row


async def set_applied(
    db: Database, unit: str, codes: Iterable[str], actor: str, *, catalogue: str | None = None
) -> Unit:
    """Set the procedures the unit applies (áp dụng tại đơn vị); return the saved unit.

    Every code must be in the catalogue (``catalogue``: its name; None: any in the database).
    """
    wanted = sorted({code.strip() for code in codes if code.strip()})
    async with db.write_transaction() as session:
        known: set[str] = set()
        for start in range(0, len(wanted), 1000):
            query = select(CatalogueProcedure.code).where(
                CatalogueProcedure.code.in_(wanted[start : start + 1000])
            )
            if catalogue is not None:
                query = query.where(CatalogueProcedure.catalogue == catalogue)
            known.update(await session.scalars(query))
        unknown = [code for code in wanted if code not in known]
        if unknown:
            shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
            raise StaffToolError(N_("Not in the catalogue: {codes}."), codes=shown)
        row = await _unit_row(session, unit)
        before = set(row.document.get("applied_codes", []))
        if before == set(wanted):
            return Unit.from_dict(row.document)
        document = {**row.document, "applied_codes": wanted}
        saved = Unit.from_dict(document)
        row.document, row.updated_at = document, utcnow()
        added = sorted(set(wanted) - before)
        removed = sorted(before - set(wanted))
        _audit(
            session,
            actor,
            unit,
            "unit.applied",
            unit,
            f"added: {', '.join(added) or '-'}; removed: {', '.join(removed) or '-'}",
        )
    return saved


async def update_unit_profile(
    db: Database, unit: str, *, address: str, hours: str, hotline: str | None, actor: str
) -> Unit:
    """Save the desk's address, opening hours and hotline (empty: none); return the unit."""
    address, hours = _one_line(address), _one_line(hours)
    if len(address) > MAX_ADDRESS_CHARS:
        raise StaffToolError(
            N_("The address is longer than {limit} characters."), limit=MAX_ADDRESS_CHARS
        )
    if len(hours) > MAX_HOURS_CHARS:
        raise StaffToolError(
            N_("The opening hours are longer than {limit} characters."), limit=MAX_HOURS_CHARS
        )
    phone = _hotline(hotline or "")
    async with db.write_transaction() as session:
        row = await _unit_row(session, unit)
        changes = {"address": address, "hours": hours, "hotline": phone}
        changed = {k: v for k, v in changes.items() if row.document.get(k) != v}
        if not changed:
            return Unit.from_dict(row.document)
        document = {**row.document, **changes}
        saved = Unit.from_dict(document)
        row.document, row.updated_at = document, utcnow()
        detail = "; ".join(f"{key}: {value or '-'}" for key, value in changed.items())
        _audit(session, actor, unit, "unit.profile", unit, detail)
    return saved


def _hotline(text: str) -> str | None:
    phone = _one_line(text)
    if not phone:
        return None
    if len(phone) > MAX_HOTLINE_CHARS or not _HOTLINE.fullmatch(phone):
        raise StaffToolError(
            N_("The hotline may hold only digits, spaces and a leading “+”, e.g. 0234 3822 123.")
        )
    digits = sum(ch.isdigit() for ch in phone)
    if not HOTLINE_DIGITS[0] <= digits <= HOTLINE_DIGITS[1]:
        raise StaffToolError(
            N_("The hotline must have {low} to {high} digits."),
            low=HOTLINE_DIGITS[0],
            high=HOTLINE_DIGITS[1],
        )
    return phone


# -- catalogue files -------------------------------------------------------------------------


@dataclass
class CataloguePreview:
    """What importing a catalogue file would do; reading it changed nothing."""

    report: catalogue_importer.ImportReport
    added: list[str] = field(default_factory=list)  # codes new to the catalogue
    updated: list[str] = field(default_factory=list)  # codes whose record would change
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return self.report.ok

    @property
    def problems(self) -> list[catalogue_importer.Problem]:
        """Records that would be left out, and why (with line and field); a fatal problem of
        the whole file first."""
        return self.report.problems()


async def _read_catalogue_file(path: str | Path) -> catalogue_importer.ImportReport:
    try:
        return await asyncio.to_thread(catalogue_importer.read_catalogue_file, path)
    except catalogue_importer.CatalogueFileError as exc:
        raise StaffToolError(N_("Cannot read the file: {reason}"), reason=str(exc)) from None


async def preview_catalogue_file(
    db: Database, catalogue_name: str, path: str | Path
) -> CataloguePreview:
    """Read a catalogue file (.jsonl, .json, .csv, .xlsx) and compare it with the catalogue."""
    report = await _read_catalogue_file(path)
    preview = CataloguePreview(report)
    listed = report.format == "list"
    columns = [CatalogueProcedure.code, CatalogueProcedure.content_hash]
    if listed:  # a list row updates the labels of the stored record: that record is needed
        columns.append(CatalogueProcedure.document)
    stored: dict[str, tuple] = {}
    async with db.session() as session:
        query = select(*columns).where(CatalogueProcedure.catalogue == catalogue_name)
        for code, *known in await session.execute(query):
            stored[code] = tuple(known)
    for procedure in report.procedures:
        known = stored.get(procedure.code)
        if known is None:
            preview.added.append(procedure.code)
            continue
        if listed:  # as CatalogueStore.apply does
            merged = Procedure.from_dict(known[1])
            for name in LIST_FIELDS:
                if getattr(procedure, name):
                    setattr(merged, name, getattr(procedure, name))
            procedure = merged
        if content_hash(procedure.to_dict()) == known[0]:
            preview.unchanged += 1
        else:
            preview.updated.append(procedure.code)
    return preview


async def apply_catalogue_file(
    db: Database,
    catalogue_name: str,
    path: str | Path,
    *,
    unit: str,
    actor: str,
    skip_invalid: bool = False,
) -> ApplyResult:
    """Import a catalogue file: all of its records, or nothing if any is rejected (unless
    ``skip_invalid``: the valid ones). ``unit`` is the officer's, for the audit log."""
    report = await _read_catalogue_file(path)
    if report.fatal or (report.rejected and not skip_invalid):
        raise StaffToolError(
            N_(
                "The file has problems ({count}); nothing was imported. Fix the file and "
                "upload it again."
            ),
            count=len(report.problems()),
        )
    skipped = len(report.rejected)
    report.rejected = []  # rejected records are never among report.procedures
    result = await CatalogueStore(db, catalogue_name).apply(report)
    async with db.write_transaction() as session:
        _audit(
            session,
            actor,
            unit,
            "catalogue.import",
            catalogue_name,
            f"{Path(path).name}: {result.added} added, {result.updated} updated, "
            f"{result.unchanged} unchanged, {skipped} skipped",
        )
    return result


# -- dossier files ---------------------------------------------------------------------------


async def preview_dossier_file(
    db: Database,
    unit: str,
    path: str | Path,
    catalogue: Catalogue | None,
    calendar,
    code_pattern: str,
) -> ImportReport:
    """Check a one-stop software's CSV export against the dossier table, writing nothing: the
    report a real import would give, with the rejected rows and their lines."""
    return await _import_dossier_file(db, unit, path, catalogue, calendar, code_pattern, True)


async def apply_dossier_file(
    db: Database,
    unit: str,
    path: str | Path,
    catalogue: Catalogue | None,
    calendar,
    code_pattern: str,
    actor: str,
) -> ImportReport:
    """Import a CSV export into the unit's dossiers; bad rows are left out and reported."""
    report = await _import_dossier_file(db, unit, path, catalogue, calendar, code_pattern, False)
    async with db.write_transaction() as session:
        _audit(
            session,
            actor,
            unit,
            "dossiers.import",
            Path(path).name,
            f"{report.rows} rows: {report.created} new, {report.status_changes} status changes, "
            f"{report.unchanged} unchanged, {len(report.rejected)} rejected",
        )
    return report


async def _import_dossier_file(
    db, unit, path, catalogue, calendar, code_pattern, dry_run: bool
) -> ImportReport:
    """Import (or check) the file with the rows of other units taken out first.

    An export may have a unit column, and the importer would write each row to the unit it
    names; an officer may only touch their own. Those rows are blanked in a copy (blank lines
    are skipped, so every other row keeps its line number) and reported as rejected.
    """
    path = Path(path)
    try:
        foreign, copy = await asyncio.to_thread(_without_other_units, path, unit)
    except DossierFileError as exc:
        raise StaffToolError(exc.reason, **exc.params) from None
    try:
        report = await import_dossiers(
            db,
            copy or path,
            unit_default=unit,
            catalogue=catalogue,
            calendar=calendar,
            code_pattern=code_pattern,
            dry_run=dry_run,
        )
    except DossierFileError as exc:
        raise StaffToolError(exc.reason, **exc.params) from None
    finally:
        if copy is not None:
            with contextlib.suppress(OSError):
                os.unlink(copy)
    report.path = str(path)
    if foreign:
        report.rows += len(foreign)
        report.rejected = sorted([*report.rejected, *foreign], key=lambda r: r.line)
    return report


def _without_other_units(path: Path, unit: str) -> tuple[list[Rejection], Path | None]:
    """The rows naming another unit, and a copy of the file without them (None if none)."""
    delimiter, header_index = sniff(path)
    scratch = ImportReport(str(path))
    spans: list[tuple[int, int]] = []
    foreign: list[Rejection] = []
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        positions, _width = read_header(reader, header_index, scratch)
        position = positions.get("unit")
        if position is None:
            return [], None
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                line = reader.line_num
                continue  # the importer reports it
            line = reader.line_num
            value = row[position].strip() if position < len(row) else ""
            if value and value != unit:
                spans.append((start, line))
                foreign.append(
                    Rejection(
                        start,
                        N_(
                            "the row is for unit “{value}”; only dossiers of {unit} can be "
                            "imported here"
                        ),
                        {"value": _shown(value), "unit": unit},
                    )
                )
    if not spans:
        return [], None
    blank = {number for first, last in spans for number in range(first, last + 1)}
    handle, name = tempfile.mkstemp(prefix="motcua-dossiers-", suffix=".csv")
    # Lines as the csv reader counts them: the file opened the same way, endings kept.
    with (
        os.fdopen(handle, "w", encoding="utf-8", newline="") as out,
        path.open(encoding="utf-8-sig", errors="replace", newline="") as source,
    ):
        for number, text in enumerate(source, start=1):
            out.write(text[len(text.rstrip("\r\n")) :] if number in blank else text)
    return foreign, Path(name)


def _shown(value: str) -> str:
    return value if len(value) <= MAX_SHOWN_VALUE else value[: MAX_SHOWN_VALUE - 1] + "…"


# -- dossiers --------------------------------------------------------------------------------


async def find_dossier(db: Database, unit: str, code: str) -> Dossier | None:
    """The unit's dossier with this receipt code (as typed or pasted), with its history."""
    code = normalize_code(code)
    if not code:
        return None
    async with db.engine.connect() as connection:
        return await load_dossier(connection, unit, code)


async def change_dossier_status(
    db: Database, unit: str, code: str, status: str, note: str, actor: str
) -> bool:
    """Append a status (a code, or the one-stop software's words) to the unit's dossier; False
    if the unit has no such dossier. Citizens who follow it are told by the notifier."""
    resolved = parse_status(status)
    if resolved is None:
        raise StaffToolError(N_("Unknown dossier status “{status}”."), status=status)
    note = clean_text(note)
    if len(note) > MAX_NOTE_CHARS:
        raise StaffToolError(
            N_("The note is longer than {limit} characters."), limit=MAX_NOTE_CHARS
        )
    code = normalize_code(code)
    if not code:
        return False
    async with db.write_transaction() as session:
        changed = await record_status_change(session, unit, code, resolved, note)
        if changed:
            _audit(session, actor, unit, "dossier.status", code, f"{resolved}: {note}".strip())
    return changed


# -- searches that found nothing, and synonyms -----------------------------------------------


@dataclass
class MissGroup:
    """Searches that found nothing and read the same once accents and case are set aside."""

    key: str  # the folded text they share
    count: int
    last_seen: datetime
    examples: list[str]  # as typed (masked), the most frequent first
    found_now: tuple[str, ...] = ()  # codes the current index finds for the first example


async def search_misses(
    db: Database,
    unit: str,
    since: datetime,
    until: datetime,
    limit: int = 50,
    *,
    index: SearchIndex | None = None,
) -> list[MissGroup]:
    """The unit's searches with no result in [since, until), grouped, most frequent first.

    With ``index`` (the running bot's), each group says what that index finds now, so that
    questions fixed since (by a synonym, an import) can be told apart."""
    seen: dict[str, list] = {}  # key -> [count, last seen, Counter of raw texts]
    async with db.session() as session:
        rows = await session.stream(
            select(SearchLogEntry.query, SearchLogEntry.created_at)
            .where(
                SearchLogEntry.unit == unit,
                SearchLogEntry.results == 0,
                SearchLogEntry.created_at >= as_utc(since),
                SearchLogEntry.created_at < as_utc(until),
            )
            .order_by(SearchLogEntry.created_at.desc())
            .execution_options(yield_per=1000)
        )
        async for query, created_at in rows:
            key = fold(query)
            if not key:
                continue
            group = seen.get(key)
            if group is None:
                group = seen[key] = [0, as_utc(created_at), Counter()]
            group[0] += 1
            group[2][query] += 1  # Counter keeps first-seen (most recent) order among ties
    ranked = sorted(seen.items(), key=lambda item: (-item[1][0], -item[1][1].timestamp()))
    groups = []
    for key, (count, last_seen, texts) in ranked[:limit]:
        examples = [text for text, _ in texts.most_common(MISS_EXAMPLES)]
        found = tuple(hit.code for hit in index.search(examples[0], limit=3)) if index else ()
        groups.append(MissGroup(key, count, last_seen, examples, found))
    return groups


async def list_synonyms(db: Database, unit: str) -> list[UnitSynonym]:
    """The synonyms the unit's staff added, oldest first."""
    async with db.session() as session:
        rows = await session.scalars(
            select(UnitSynonym).where(UnitSynonym.unit == unit).order_by(UnitSynonym.id)
        )
        return list(rows)


def _index(procedures: Sequence[Procedure], pairs: list[tuple[str, str]]) -> SearchIndex:
    lexicon = default_lexicon().with_synonyms(pairs) if pairs else None
    return SearchIndex(procedures, lexicon)


def _checked_side(text: str) -> str:
    text = _one_line(text)
    if len(text) > MAX_SYNONYM_CHARS:
        raise StaffToolError(
            N_("“{text}” is longer than {limit} characters."),
            text=text[:40] + "…",
            limit=MAX_SYNONYM_CHARS,
        )
    if "|" in text or "=>" in text:
        raise StaffToolError(
            N_(
                "Write one phrase and one wording, without “|” or “=>”; add one synonym for "
                "each variant."
            )
        )
    return text


async def add_synonym(
    db: Database, unit: str, phrase: str, replacement: str, actor: str, *, catalogue: Catalogue
) -> UnitSynonym:
    """Teach the unit's search that citizens' ``phrase`` means the catalogue's ``replacement``
    (words from a procedure name), as a line of ``synonyms.txt`` would.

    Refused unless, with it, a search for the phrase finds something, and something other than
    it finds without it. Write the phrase with its diacritics: so written it also matches
    questions typed without them (not the other way round)."""
    phrase, replacement = _checked_side(phrase), _checked_side(replacement)
    if not words(phrase) or not words(replacement):
        raise StaffToolError(N_("Enter both the citizens' words and the catalogue wording."))
    existing = await list_synonyms(db, unit)
    for synonym in existing:
        if fold(synonym.phrase) == fold(phrase):
            raise StaffToolError(
                N_(
                    "There is already a synonym for “{phrase}” (→ {replacement}). Remove it "
                    "first to change it."
                ),
                phrase=synonym.phrase,
                replacement=synonym.replacement,
            )
    pairs = [(s.phrase, s.replacement) for s in existing]
    procedures = list(catalogue.procedures.values())
    before, after = await asyncio.to_thread(
        lambda: (_index(procedures, pairs), _index(procedures, [*pairs, (phrase, replacement)]))
    )
    found = [hit.code for hit in after.search(phrase)]
    if not found:
        raise StaffToolError(
            N_(
                "With this synonym, “{phrase}” would still find nothing: no procedure name "
                "matches “{replacement}”. Use words from the name of the procedure you mean."
            ),
            phrase=phrase,
            replacement=replacement,
        )
    if found == [hit.code for hit in before.search(phrase)]:
        raise StaffToolError(
            N_("This synonym changes nothing: “{phrase}” already finds the same procedures."),
            phrase=phrase,
        )
    async with db.write_transaction() as session:
        synonym = UnitSynonym(
            unit=unit, phrase=phrase, replacement=replacement, created_by=actor[:64]
        )
        session.add(synonym)
        _audit(session, actor, unit, "synonym.add", phrase[:128], f"{phrase} => {replacement}")
    return synonym


async def remove_synonym(db: Database, unit: str, synonym_id: int, actor: str) -> bool:
    """Delete one of the unit's synonyms; False if the unit has no such synonym."""
    async with db.write_transaction() as session:
        synonym = await session.scalar(
            select(UnitSynonym).where(UnitSynonym.id == synonym_id, UnitSynonym.unit == unit)
        )
        if synonym is None:
            return False
        await session.execute(delete(UnitSynonym).where(UnitSynonym.id == synonym_id))
        _audit(
            session,
            actor,
            unit,
            "synonym.remove",
            synonym.phrase[:128],
            f"{synonym.phrase} => {synonym.replacement}",
        )
    return True
