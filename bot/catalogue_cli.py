"""``motcua catalogue import | export | show | add-units | units``."""

from __future__ import annotations

import json
import sys
import time
from argparse import Namespace

from bot.catalogue import CatalogueStore
from bot.i18n import translator
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from procedures_catalog.importer import CatalogueFileError, ImportReport, read_catalogue_file
from procedures_catalog.loader import BUNDLED

MAX_PROBLEMS_SHOWN = 50


async def run_catalogue_command(args: Namespace, settings, t) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
        store = CatalogueStore(db, settings.catalogue)
        if args.catalogue_command == "import":
            return await _import(args, store, t)
        if args.catalogue_command == "add-units":
            return await _add_units(args, db, t)
        if settings.catalogue in BUNDLED:
            await store.ensure_bundled()
        if args.catalogue_command == "export":
            return await _export(args, store)
        if args.catalogue_command == "units":
            return await _list_units(store, settings, t)
        return await _show(args, store, settings)
    finally:
        await db.dispose()


async def _import(args: Namespace, store: CatalogueStore, t) -> int:
    progress = _Progress(t) if sys.stderr.isatty() or args.file.endswith(".jsonl") else None
    try:
        report = read_catalogue_file(args.file, progress=progress)
    except CatalogueFileError as exc:
        print(t("Cannot import: {reason}", reason=exc), file=sys.stderr)
        return 2
    if progress:
        progress.done()
    _print_report(report, t)
    if report.fatal or (report.rejected and not args.skip_invalid):
        print(
            t(
                "Nothing was imported; the catalogue is unchanged. Fix the file and try again"
                "{hint}.",
                hint=t(", or use --skip-invalid") if not report.fatal else "",
            ),
            file=sys.stderr,
        )
        return 1
    # Rejected records are never among report.procedures; --skip-invalid only waives them.
    report.rejected = []
    if args.dry_run:
        print(t("Dry run: nothing was written."))
        return 0
    result = await store.apply(report)
    print(
        t(
            "Catalogue “{name}”: {added} added, {updated} updated, {unchanged} unchanged.",
            name=store.name,
            added=result.added,
            updated=result.updated,
            unchanged=result.unchanged,
        )
    )
    return 0


async def _add_units(args: Namespace, db: Database, t) -> int:
    """Read every file first; write all of them in one transaction, or nothing."""
    from sqlalchemy import select

    from bot.config import UNIT_ID
    from bot.storage.models import UnitProfile, utcnow
    from procedures_catalog.schema import Unit

    units = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as file:
                unit = Unit.from_dict(json.load(file))
        except (OSError, ValueError, TypeError) as exc:
            print(t("Cannot read {path}: {reason}", path=path, reason=exc), file=sys.stderr)
            return 2
        if not UNIT_ID.fullmatch(unit.id):
            print(
                t(
                    "{path}: “{id}” is not a unit id (lower-case letters, digits and dashes, "
                    "e.g. xa-an-binh).",
                    path=path,
                    id=unit.id,
                ),
                file=sys.stderr,
            )
            return 2
        units.append(unit)
    async with db.write_transaction() as session:
        for unit in units:
            row = await session.scalar(select(UnitProfile).where(UnitProfile.id == unit.id))
            if row is None:
                session.add(UnitProfile(id=unit.id, document=unit.to_dict()))
                print(t("Added unit {id}: {name}.", id=unit.id, name=unit.name))
            else:
                row.document, row.updated_at = unit.to_dict(), utcnow()
                print(t("Updated unit {id}: {name}.", id=unit.id, name=unit.name))
    print(t("Restart the bot to use the changes."))
    return 0


async def _list_units(store: CatalogueStore, settings, t) -> int:
    catalogue = await store.load()
    served = settings.served_units
    for unit in sorted(catalogue.units.values(), key=lambda u: u.id):
        mark = t("served") if unit.id in served else t("not served")
        print(f"{unit.id}\t{unit.name}\t{unit.province}\t{mark}")
    for missing in [u for u in served if u not in catalogue.units]:
        print(
            t("{id}: served (MOTCUA_UNITS) but has no profile; add one.", id=missing),
            file=sys.stderr,
        )
    return 0


def _print_report(report: ImportReport, t) -> None:
    print(
        t(
            "Read {path}: {ok} records imported ({partial} only partly parsed), {rejected} "
            "rejected.",
            path=report.path,
            ok=len(report.procedures) - len(report.rejected),
            partial=len(report.partial),
            rejected=len(report.rejected) + bool(report.fatal),
        )
    )
    problems = report.problems()
    for problem in problems[:MAX_PROBLEMS_SHOWN]:
        print("  " + t("rejected: {problem}", problem=problem), file=sys.stderr)
    partial_lines = [
        f"{p.code}: " + "; ".join(f"{i.field}: {i.reason}" for i in p.issues)
        for p in report.partial
    ]
    for line in partial_lines[:MAX_PROBLEMS_SHOWN]:
        print("  " + t("partly parsed: {problem}", problem=line), file=sys.stderr)
    hidden = max(len(problems) - MAX_PROBLEMS_SHOWN, 0) + max(
        len(partial_lines) - MAX_PROBLEMS_SHOWN, 0
    )
    if hidden:
        print("  " + t("… and {n} more.", n=hidden), file=sys.stderr)


async def _export(args: Namespace, store: CatalogueStore) -> int:
    text = json.dumps(await store.export(), ensure_ascii=False, indent=1) + "\n"
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


async def _show(args: Namespace, store: CatalogueStore, settings) -> int:
    from handlers import procedure_card

    t = translator(args.lang or settings.default_locale)
    catalogue = await store.load()
    procedure = catalogue.get(args.code)
    if procedure is None:
        print(
            t(
                "No procedure with code {code} in catalogue “{name}”.",
                code=args.code,
                name=store.name,
            ),
            file=sys.stderr,
        )
        return 1
    unit = catalogue.units.get(settings.unit)
    print("\n\n".join(procedure_card.full_card(t, procedure, unit)))
    return 0


class _Progress:
    """A one-line progress counter on standard error for long imports."""

    def __init__(self, t) -> None:
        self.t = t
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= 0.5 or done >= total:
            self.last = now
            percent = 100 * done // max(total, 1)
            print(
                "\r" + self.t("Reading… {percent}%", percent=percent),
                end="",
                file=sys.stderr,
                flush=True,
            )

    def done(self) -> None:
        print(file=sys.stderr)
