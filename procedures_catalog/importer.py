"""Read catalogue files: JSONL of portal records, or a CSV/XLSX procedure list a province exports.

Reading never changes any catalogue: it returns an ImportReport, and the caller applies it only
when ``report.ok``. Problems carry the line (or row) and the field so an officer can fix the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from procedures_catalog.normalize import fold
from procedures_catalog.portal_parser import RecordError, parse_record
from procedures_catalog.schema import CODE_RE, Procedure, Source

# Longest real portal record is under 100 KB; anything far bigger is not a record.
MAX_RECORD_BYTES = 5 * 1024 * 1024
Progress = Callable[[int, int], None]  # (bytes read, total bytes)


@dataclass
class Problem:
    """One thing wrong in the file, where it is, and why."""

    line: int
    field: str
    reason: str
    code: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.code})" if self.code else "")
        return f"{where}: {self.field}: {self.reason}"


@dataclass
class ImportReport:
    """What a file holds: good procedures (some only partly parsed) and rejected records."""

    path: str
    format: str  # "portal" (full records) or "list" (code, name, field... only)
    procedures: list[Procedure] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)
    fatal: Problem | None = None  # the file itself is unusable (truncated, too big, columns)
    _lines: dict[str, int] = field(default_factory=dict, repr=False)  # code -> line first read

    @property
    def partial(self) -> list[Procedure]:
        return [p for p in self.procedures if p.issues]

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.rejected

    def add(self, procedure: Procedure, line: int) -> None:
        """Keep a procedure read at ``line``, unless its code was already read (then reject it)."""
        first = self._lines.setdefault(procedure.code, line)
        if first != line:
            self.rejected.append(
                Problem(line, "code", f"duplicate code, first seen on line {first}", procedure.code)
            )
        else:
            self.procedures.append(procedure)

    def problems(self) -> list[Problem]:
        return ([self.fatal] if self.fatal else []) + self.rejected


class CatalogueFileError(Exception):
    """The file cannot be read at all (missing, unknown format)."""


def read_catalogue_file(
    path: str | Path, *, retrieved: str | None = None, progress: Progress | None = None
) -> ImportReport:
    """Read a .jsonl, .json, .csv or .xlsx catalogue file into an ImportReport."""
    path = Path(path)
    if not path.is_file():
        raise CatalogueFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        report = _read_jsonl(path, retrieved, progress)
    elif suffix == ".json":
        report = _read_json_export(path)
    elif suffix == ".csv":
        report = _read_list(path, _csv_rows(path))
    elif suffix == ".xlsx":
        report = _read_list(path, _xlsx_rows(path))
    else:
        raise CatalogueFileError(
            f"{path}: unknown format {suffix!r} (use .jsonl, .json, .csv, .xlsx)"
        )
    return report


# ---------------------------------------------------------------- JSONL of portal records
def _read_jsonl(path: Path, retrieved: str | None, progress: Progress | None) -> ImportReport:
    report = ImportReport(str(path), "portal")
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        for number, (raw, size) in enumerate(_lines(fh), start=1):
            done += size
            if progress:
                progress(done, total)
            if size > MAX_RECORD_BYTES:
                report.fatal = Problem(
                    number,
                    "record",
                    f"line is {size / 1_048_576:.1f} MB, over the "
                    f"{MAX_RECORD_BYTES // 1_048_576} MB limit for one record",
                )
                return report
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                record = json.loads(text)
            except UnicodeDecodeError as exc:
                report.fatal = Problem(number, "record", f"not UTF-8 text ({exc.reason})")
                return report
            except json.JSONDecodeError as exc:
                # An error in the last few characters means the record was cut off.
                reason = (
                    "the line ends before the record does (truncated file?)"
                    if exc.pos >= len(text.rstrip()) - 6
                    else exc.msg
                )
                report.fatal = Problem(
                    number, "record", f"invalid JSON at column {exc.colno}: {reason}"
                )
                return report
            try:
                report.add(parse_record(record, retrieved=retrieved), number)
            except RecordError as exc:
                code = record.get("ma_thu_tuc") if isinstance(record, dict) else None
                report.rejected.append(Problem(number, exc.field, exc.reason, code and str(code)))
    return report


def _lines(fh: io.BufferedReader) -> Iterator[tuple[bytes, int]]:
    """Yield (line, size); a line over the record limit is skipped in chunks and yielded empty,
    so a huge line never sits in memory whole."""
    while True:
        line = fh.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            size = len(line)
            while chunk := fh.readline(1024 * 1024):
                size += len(chunk)
                if chunk.endswith(b"\n"):
                    break
            yield b"", size
            continue
        yield line, len(line)


# ---------------------------------------------------------------- JSON export of a catalogue
def _read_json_export(path: Path) -> ImportReport:
    """Read what ``motcua catalogue export --json`` wrote: {"procedures": [...]}."""
    report = ImportReport(str(path), "portal")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.fatal = Problem(getattr(exc, "lineno", 1), "file", f"invalid JSON: {exc}")
        return report
    items = data.get("procedures") if isinstance(data, dict) else None
    if not isinstance(items, list):
        report.fatal = Problem(1, "procedures", "expected an object with a 'procedures' list")
        return report
    for number, item in enumerate(items, start=1):
        try:
            report.add(Procedure.from_dict(item), number)
        except (ValueError, TypeError, AttributeError) as exc:
            field_name, _, reason = str(exc).partition(": ")
            report.rejected.append(Problem(number, field_name or "procedure", reason or str(exc)))
    return report


# ---------------------------------------------------------------- CSV / XLSX procedure lists
# Column titles as the portal's list export writes them, and common variants (compared folded).
LIST_COLUMNS = {
    "code": ("ma so", "ma thu tuc", "ma tthc", "ma"),
    "name": ("ten", "ten thu tuc", "ten tthc"),
    "issuer": ("co quan ban hanh",),
    "agency": ("co quan thuc hien",),
    "field": ("linh vuc",),
    "levels": ("cap thuc hien",),
    "online_level": ("muc do", "muc do dvc", "dich vu cong truc tuyen", "muc do dich vu cong"),
}


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        yield from enumerate(csv.reader(fh), start=1)


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = workbook.active
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, ["" if cell is None else str(cell) for cell in row]
    finally:
        workbook.close()


def _read_list(path: Path, rows: Iterator[tuple[int, list[str]]]) -> ImportReport:
    report = ImportReport(str(path), "list")
    columns: dict[str, int] | None = None
    try:
        for number, row in rows:
            cells = [c.strip() for c in row]
            if columns is None:
                columns = _header(cells)
                if columns is None and number >= 20:
                    break
                continue
            if not any(cells):
                continue
            _list_row(report, number, cells, columns, path)
    except (csv.Error, UnicodeDecodeError, OSError, ValueError) as exc:
        report.fatal = Problem(0, "file", f"unreadable: {exc}")
        return report
    except Exception as exc:  # openpyxl raises its own errors for broken workbooks
        report.fatal = Problem(0, "file", f"unreadable spreadsheet: {exc}")
        return report
    if columns is None:
        wanted = ", ".join(
            f"'{names[0]}'" for names in (LIST_COLUMNS["code"], LIST_COLUMNS["name"])
        )
        report.fatal = Problem(
            1,
            "columns",
            f"no header row with the columns {wanted} (Mã số, Tên) in the first 20 rows",
        )
    return report


def _header(cells: list[str]) -> dict[str, int] | None:
    folded = [fold(c) for c in cells]
    found: dict[str, int] = {}
    for key, names in LIST_COLUMNS.items():
        for index, title in enumerate(folded):
            if title in names:
                found.setdefault(key, index)
    return found if "code" in found and "name" in found else None


def _list_row(
    report: ImportReport, number: int, cells: list[str], columns: dict[str, int], path: Path
) -> None:
    def cell(key: str) -> str:
        index = columns.get(key)
        return " ".join(cells[index].split()) if index is not None and index < len(cells) else ""

    code, name = cell("code"), cell("name")
    if not code:
        report.rejected.append(Problem(number, "code", "empty"))
        return
    if not CODE_RE.match(code):
        report.rejected.append(Problem(number, "code", f"not a national procedure code: {code!r}"))
        return
    if not name:
        report.rejected.append(Problem(number, "name", "empty", code))
        return
    levels = [part.strip() for part in cell("levels").split(",") if part.strip()]
    report.add(
        Procedure(
            code=code,
            name=name,
            field=cell("field"),
            agency=cell("agency"),
            levels=levels,
            online_level=cell("online_level") or None,
            source=Source(name=f"danh sách {path.name}", file=path.name),
        ),
        number,
    )
