"""``motcua dossiers import | set-status | show``: the local dossier table, for desk staff.

Only light modules are imported at the top: ``bot/cli.py`` reads the help texts below while
building its parser, before any command runs.
"""

from __future__ import annotations

import sys
import textwrap
import time
from argparse import Namespace
from datetime import datetime
from pathlib import Path

from bot.dossiers.importer import (
    COLUMNS,
    PERSONAL_COLUMNS,
    STATUS_WORDS,
    DossierFileError,
    ImportReport,
)
from bot.dossiers.model import STATUSES, VN_TZ, ReceiptChannel
from bot.i18n import N_, format_number

MAX_REJECTIONS_SHOWN = 50
PROGRESS_EVERY = 20_000  # rows between two progress lines
LARGE_FILE_BYTES = 1_000_000  # about 10,000 rows: below this an import takes a blink

# Exit statuses of `motcua dossiers ...`.
EXIT_OK = 0
EXIT_UNUSABLE = 1  # the file cannot be read, no such dossier, or the database cannot be used
EXIT_USAGE = 2  # wrong command line (argparse's own status) or an unknown status
EXIT_ALL_REJECTED = 3  # the file was read but every row was rejected

CHANNEL_LABELS = {
    ReceiptChannel.ONLINE: N_("online"),
    ReceiptChannel.IN_PERSON: N_("in person"),
    ReceiptChannel.POSTAL: N_("by post"),
}


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, 78, initial_indent=indent, subsequent_indent=indent)


def import_epilog(t) -> str:
    """The CSV columns and exit statuses, for ``motcua dossiers import --help``."""
    lines = [
        _wrap(
            t(
                "The file is the dossier list a one-stop software exports: CSV in UTF-8 (with "
                "or without BOM), separated by commas or semicolons, one row per dossier. "
                "Columns are found by their header, with or without accents, in any order "
                "(* = required):"
            )
        ),
        "",
    ]
    for column in COLUMNS:
        lines.append(("* " if column.required else "  ") + " / ".join(column.names))
        lines.append(_wrap(t(column.help), "      "))
    lines += [
        "",
        _wrap(
            t(
                "Columns with personal data ({names}, and any header containing them) are "
                "skipped and never stored; so are columns not listed here.",
                names=", ".join(PERSONAL_COLUMNS),
            )
        ),
        _wrap(
            t(
                "A code already in the table keeps its receipt time and channel (the deadline "
                "counts from the first receipt); a different status is added to its history. "
                "A code seen twice in the file: the later row is a status update. Bad rows are "
                "listed with their line and reason; the good rows are imported."
            )
        ),
        "",
        _wrap(
            t(
                "Exit status: 0 imported (bad rows, if any, were left out); 1 the file or the "
                "database cannot be used; 2 wrong command line or settings; 3 every row was "
                "rejected."
            )
        ),
    ]
    return "\n".join(lines)


def statuses_epilog(t) -> str:
    """The status vocabulary, for ``motcua dossiers set-status --help`` and its errors."""
    lines = [t("Statuses (the code, or the Vietnamese words of the one-stop software):")]
    lines += [
        f"  {code:<18} {STATUS_WORDS[code][0]:<26} {t(entry.label)}"
        for code, entry in STATUSES.items()
    ]
    return "\n".join(lines)


async def run_dossiers_command(args: Namespace, settings, t) -> int:
    """Run ``motcua dossiers ACTION``; return the exit status (see ``import_epilog``)."""
    from bot.app import open_database

    if args.dossiers_command == "import":
        try:
            Path(args.file).stat()
        except OSError as exc:
            print(_cannot_import(t, args.file, exc.strerror or str(exc)), file=sys.stderr)
            return EXIT_UNUSABLE
    db = await open_database(settings)
    try:
        unit = args.unit or settings.unit
        if args.dossiers_command == "import":
            return await _import(args, settings, db, unit, t)
        if args.dossiers_command == "set-status":
            return await _set_status(args, settings, db, unit, t)
        return await _show(args, settings, db, unit, t)
    finally:
        await db.dispose()


def _cannot_import(t, path: str, reason: str) -> str:
    return t("Cannot import {path}: {reason}", path=path, reason=reason)


def _warn_source(settings, unit: str, t) -> None:
    source = settings.dossier_source_for(unit)
    if source != "local":
        print(
            t(
                "Note: citizens of unit {unit} are answered from the {source} source, not from "
                "this table (MOTCUA_DOSSIER_SOURCE, MOTCUA_DOSSIER_SOURCES).",
                unit=unit,
                source=source,
            ),
            file=sys.stderr,
        )


async def _import(args: Namespace, settings, db, unit: str, t) -> int:
    from bot.catalogue import CatalogueStore
    from bot.dossiers.calendar import WorkingCalendar
    from bot.dossiers.importer import import_dossiers

    catalogue = await CatalogueStore(db, settings.catalogue).load()
    large = Path(args.file).stat().st_size >= LARGE_FILE_BYTES
    started = time.monotonic()
    try:
        report = await import_dossiers(
            db,
            args.file,
            unit_default=unit,
            catalogue=catalogue,
            calendar=WorkingCalendar(cutoff_hour=settings.dossier_cutoff_hour),
            code_pattern=settings.dossier_code_pattern,
            progress=_Progress(t) if large or sys.stderr.isatty() else None,
            dry_run=args.dry_run,
        )
    except DossierFileError as exc:
        print(_cannot_import(t, args.file, exc.describe(t)), file=sys.stderr)
        return EXIT_UNUSABLE
    _print_report(report, t, time.monotonic() - started)
    _warn_source(settings, unit, t)
    if report.rejected and not report.accepted:
        return EXIT_ALL_REJECTED
    return EXIT_OK


def _print_report(report: ImportReport, t, seconds: float) -> None:
    n = _number(t)
    for rejection in report.rejected[:MAX_REJECTIONS_SHOWN]:
        print(
            "  " + t("line {line}: {reason}", line=rejection.line, reason=rejection.describe(t)),
            file=sys.stderr,
        )
    hidden = len(report.rejected) - MAX_REJECTIONS_SHOWN
    if hidden > 0:
        print("  " + t("… and {n} more rejected rows.", n=n(hidden)), file=sys.stderr)
    print(
        t(
            "Read {path}: {rows} rows in {seconds} s. New dossiers: {created}; status changes: "
            "{changes}; unchanged: {unchanged}; rejected: {rejected}.",
            path=report.path,
            rows=n(report.rows),
            seconds=f"{seconds:.1f}",
            created=n(report.created),
            changes=n(report.status_changes),
            unchanged=n(report.unchanged),
            rejected=n(len(report.rejected)),
        )
    )
    if report.receipt_kept or report.channel_kept:
        print(
            t(
                "Receipt kept as first recorded for {n} rows whose receipt time or channel "
                "differ from the table (the deadline counts from the first receipt).",
                n=n(report.receipt_kept + report.channel_kept),
            )
        )
    if report.stale:
        print(
            t(
                "Not applied, older than the status already recorded: {n} rows.",
                n=n(report.stale),
            )
        )
    if report.due_computed:
        print(
            t(
                "Due dates counted from the catalogue's processing times: {n}.",
                n=n(report.due_computed),
            )
        )
    if report.personal_columns:
        print(
            t(
                "Personal data columns skipped, not stored: {columns}.",
                columns=", ".join(report.personal_columns),
            )
        )
    if report.unknown_columns:
        print(
            t(
                "Unknown columns skipped: {columns}.",
                columns=", ".join(report.unknown_columns),
            )
        )
    if report.dry_run:
        print(t("Dry run: nothing was written."))


async def _set_status(args: Namespace, settings, db, unit: str, t) -> int:
    from bot.dossiers.importer import parse_status, record_status_change
    from bot.dossiers.model import normalize_code

    status = parse_status(args.status)
    if status is None:
        print(t("Unknown status “{status}”.", status=args.status), file=sys.stderr)
        print(statuses_epilog(t), file=sys.stderr)
        return EXIT_USAGE
    code = normalize_code(args.code)
    async with db.write_transaction() as session:
        found = await record_status_change(session, unit, code, status, note=args.note)
    if not found:
        print(t("No dossier {code} in unit {unit}.", code=code, unit=unit), file=sys.stderr)
        return EXIT_UNUSABLE
    print(
        t(
            "Dossier {code}: status is now “{status}”.",
            code=code,
            status=t(STATUSES[status].label),
        )
    )
    _warn_source(settings, unit, t)
    return EXIT_OK


async def _show(args: Namespace, settings, db, unit: str, t) -> int:
    from bot.catalogue import CatalogueStore
    from bot.dossiers.model import normalize_code
    from bot.dossiers.service import DossierService
    from bot.dossiers.sources import LocalSource

    code = normalize_code(args.code)
    source = LocalSource(db, unit)
    dossier = (await source.lookup(code)).dossier
    if dossier is None:
        print(t("No dossier {code} in unit {unit}.", code=code, unit=unit), file=sys.stderr)
        return EXIT_UNUSABLE
    catalogue = await CatalogueStore(db, settings.catalogue).load()
    service = DossierService(settings, db, catalogue, source)
    due = service.due_at(dossier)
    name = service.procedure_name(dossier)
    procedure = " ".join(part for part in (dossier.procedure_code, name) if part)
    lines = [
        t("Dossier {code} (unit {unit})", code=dossier.code, unit=dossier.unit),
        "  " + t("Procedure: {procedure}", procedure=procedure or "—"),
        "  "
        + t(
            "Received: {at} ({channel})",
            at=_local(dossier.received_at),
            channel=t(CHANNEL_LABELS[dossier.channel]),
        ),
        "  " + t("Due: {at}", at=_local(due) if due else t("unknown")),
        "  " + t("Status: {status}", status=t(STATUSES[dossier.status].label)),
        "  " + t("History:"),
    ]
    for change in dossier.history:
        line = f"    {_local(change.at)}  {t(STATUSES[change.status].label)}"
        lines.append(line + (f" — {change.note}" if change.note else ""))
    print("\n".join(lines))
    _warn_source(settings, unit, t)
    return EXIT_OK


def _local(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")


def _number(t):
    locale = getattr(t, "locale", "en")
    return lambda value: format_number(value, locale)


class _Progress:
    """A line on standard error every PROGRESS_EVERY rows of a long import."""

    def __init__(self, t) -> None:
        self.t = t
        self.shown = 0
        self.number = _number(t)

    def __call__(self, rows: int) -> None:
        if rows // PROGRESS_EVERY > self.shown // PROGRESS_EVERY:
            self.shown = rows
            print(
                "… " + self.t("{rows} rows", rows=self.number(rows)),
                file=sys.stderr,
                flush=True,
            )
