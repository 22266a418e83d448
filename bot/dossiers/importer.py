"""Fill the local dossier table from the CSV export of a one-stop software, and record the
status changes staff make by hand.

The export is read in chunks of a few thousand rows; each chunk is one transaction with one
read (the dossiers it already knows) and bulk writes, so a 100,000-row file takes seconds
(docs/BENCHMARKS.md). A bad row is reported with its line and reason; the good rows are kept.

Re-importing is how a desk keeps the table current, so the rules for a code already known are
strict: the receipt time and channel never change (the deadline is counted from the ORIGINAL
receipt: a re-sync must not restart the clock), the due date and procedure are only filled in
where empty, and a new status is appended to the history (quá trình xử lý), never written over
it. Columns with the applicant's name, address or ID number are recognised only to be skipped:
their cells are dropped with the row that holds them and never stored.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update

from bot.dossiers.model import (
    DEFAULT_CODE_PATTERN,
    STATUSES,
    VN_TZ,
    ReceiptChannel,
    normalize_code,
    utc,
)
from bot.i18n import N_
from procedures_catalog.normalize import fold
from procedures_catalog.schema import Channel, ProcessingTime

if TYPE_CHECKING:  # the calendar loads the holidays package: only when a due date is counted
    from bot.dossiers.calendar import WorkingCalendar

CHUNK_ROWS = 5_000  # rows per transaction; also bounds the IN list of the read (asyncpg: 32767)
MAX_SHOWN_VALUE = 40  # a cell quoted in a reason is cut to this many characters
_SNIFF_BYTES = 64 * 1024
_HEADER_SEARCH_ROWS = 20  # title lines an export may print above its header
_FUTURE_SLACK = timedelta(days=1)  # a receipt later than this after now is a data error

Progress = Callable[[int], None]  # rows read so far


@dataclass(frozen=True)
class Column:
    """One column we read, under any of the names exports give it (matched after ``fold``)."""

    field: str
    names: tuple[str, ...]
    required: bool
    help: str  # msgid


COLUMNS: tuple[Column, ...] = (
    Column(
        "code",
        ("ma_ho_so", "Mã hồ sơ", "Số hồ sơ", "Mã số hồ sơ", "Số biên nhận", "code"),
        True,
        N_("receipt code as on the slip, e.g. 000.00.15.H26-260115-0001"),
    ),
    Column(
        "procedure_code",
        ("ma_thu_tuc", "Mã thủ tục", "Mã TTHC", "procedure_code"),
        False,
        N_("national procedure code, e.g. 1.001193 (used to count the due date)"),
    ),
    Column(
        "procedure_name",
        ("ten_thu_tuc", "Tên thủ tục", "Tên TTHC", "procedure_name"),
        False,
        N_("procedure name, shown when the catalogue does not know the code"),
    ),
    Column(
        "unit",
        ("don_vi", "Đơn vị", "Mã đơn vị", "unit"),
        False,
        N_("commune or ward id (default: --unit, else MOTCUA_UNIT)"),
    ),
    Column(
        "received_at",
        ("ngay_tiep_nhan", "Ngày tiếp nhận", "Thời điểm tiếp nhận", "received_at"),
        True,
        N_(
            "receipt time: dd/mm/yyyy HH:MM[:SS], dd/mm/yyyy or ISO 8601; Vietnam time unless "
            "an offset is given. Never changed by a later import"
        ),
    ),
    Column(
        "channel",
        ("hinh_thuc", "Hình thức", "Hình thức tiếp nhận", "Hình thức nộp", "channel"),
        True,
        N_("Trực tiếp, Trực tuyến or Bưu chính (also in_person, online, postal)"),
    ),
    Column(
        "due_at",
        ("ngay_hen_tra", "Ngày hẹn trả", "Ngày hẹn trả kết quả", "due_at"),
        False,
        N_(
            "due date; a date alone means the end of office hours. When empty it is counted "
            "from the catalogue's processing time for the channel, in working days"
        ),
    ),
    Column(
        "status",
        ("trang_thai", "Trạng thái", "status"),
        True,
        N_(
            "Đã tiếp nhận, Đang xử lý, Chờ bổ sung, Tạm dừng, Có kết quả, Đã trả kết quả "
            "trước hạn / đúng hạn / quá hạn, Không đủ điều kiện, Rút hồ sơ (or the codes "
            "listed by set-status)"
        ),
    ),
    Column(
        "status_at",
        ("thoi_diem", "Thời điểm cập nhật", "Ngày cập nhật", "status_at"),
        False,
        N_("when the status was set (default: the receipt time for Đã tiếp nhận, else now)"),
    ),
    Column(
        "note",
        ("ghi_chu", "Ghi chú", "note"),
        False,
        N_("note the citizen reads with the status, e.g. the documents to add"),
    ),
    Column(
        "phone",
        ("so_dien_thoai", "Số điện thoại", "Điện thoại", "SĐT", "phone"),
        False,
        N_("applicant's phone: only its last 4 digits are kept, for the optional check"),
    ),
)
# Recognised so that the report can say they were skipped; a header that contains one of these
# (folded) is personal too ("Họ tên người nộp", "Địa chỉ thường trú").
PERSONAL_COLUMNS = (
    "ho_ten",
    "Họ tên",
    "Người nộp",
    "dia_chi",
    "Địa chỉ",
    "cccd",
    "cmnd",
    "Số giấy tờ",
    "Số định danh",
    "Ngày sinh",
    "Email",
    "name",
    "address",
    "id_number",
)
_FIELD_OF = {fold(name): column.field for column in COLUMNS for name in column.names}
_PERSONAL = tuple(fold(name) for name in PERSONAL_COLUMNS)
_REQUIRED = tuple(column.field for column in COLUMNS if column.required)

# Status words of one-stop software (the first is shown in help texts), matched after ``fold``;
# our codes and English labels are accepted too.
STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "received": ("Đã tiếp nhận", "Mới tiếp nhận", "Tiếp nhận"),
    "in_progress": (
        "Đang xử lý",
        "Đang giải quyết",
        "Đang thụ lý",
        "Đang xử lý quá hạn",
        "Đang giải quyết quá hạn",
        "Đang xử lý trong hạn",
    ),
    "needs_documents": ("Chờ bổ sung", "Chờ bổ sung hồ sơ", "Yêu cầu bổ sung"),
    "paused": ("Tạm dừng", "Tạm dừng xử lý", "Chờ thực hiện nghĩa vụ tài chính"),
    "result_ready": ("Có kết quả", "Đã có kết quả", "Chờ trả kết quả"),
    "returned_early": ("Đã trả kết quả trước hạn", "Trả trước hạn"),
    "returned_on_time": ("Đã trả kết quả đúng hạn", "Trả đúng hạn"),
    "returned_late": (
        "Đã trả kết quả quá hạn",
        "Đã trả kết quả trễ hạn",
        "Trả quá hạn",
        "Trả trễ hạn",
    ),
    "rejected": ("Không đủ điều kiện", "Không đủ điều kiện giải quyết", "Trả lại", "Từ chối"),
    "withdrawn": ("Rút hồ sơ", "Đã rút", "Đã rút hồ sơ"),
}
STATUS_NAMES: dict[str, str] = {fold(code): code for code in STATUSES}
STATUS_NAMES |= {fold(s.label): code for code, s in STATUSES.items()}
STATUS_NAMES |= {fold(word): code for code, words in STATUS_WORDS.items() for word in words}
CHANNEL_NAMES: dict[str, ReceiptChannel] = {fold(c.value): c for c in ReceiptChannel} | {
    "truc tuyen": ReceiptChannel.ONLINE,
    "nop truc tuyen": ReceiptChannel.ONLINE,
    "truc tiep": ReceiptChannel.IN_PERSON,
    "nop truc tiep": ReceiptChannel.IN_PERSON,
    "buu chinh": ReceiptChannel.POSTAL,
    "qua buu chinh": ReceiptChannel.POSTAL,
    "dich vu buu chinh cong ich": ReceiptChannel.POSTAL,
}

# Widths of the columns we write (PostgreSQL enforces them; SQLite would not).
_LIMITS = {"code": 64, "unit": 64, "procedure_code": 16}
_DAY_FIRST = re.compile(
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T]+(\d{1,2})[:hH](\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
)


def parse_status(text: str) -> str | None:
    """Our status code for a code, an English label or a one-stop software's Vietnamese label."""
    return STATUS_NAMES.get(fold(text))


@dataclass(frozen=True)
class Rejection:
    """A row left out of the import: where it is and why (a msgid and its parameters)."""

    line: int
    reason: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self, t: Callable[..., str] | None = None) -> str:
        if t is not None:
            return t(self.reason, **self.params)
        return self.reason.format(**self.params) if self.params else self.reason

    def __str__(self) -> str:
        return f"line {self.line}: {self.describe()}"


class DossierFileError(Exception):
    """The file cannot be imported at all (missing, not UTF-8 text, no usable header)."""

    def __init__(self, reason: str, **params: Any) -> None:
        self.reason, self.params = reason, params
        super().__init__(reason.format(**params) if params else reason)

    def describe(self, t: Callable[..., str] | None = None) -> str:
        return t(self.reason, **self.params) if t is not None else str(self)


@dataclass
class ImportReport:
    """What an import read, wrote and left out."""

    path: str
    dry_run: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # our field -> header as written
    personal_columns: list[str] = field(default_factory=list)  # skipped, never stored
    unknown_columns: list[str] = field(default_factory=list)  # skipped
    rows: int = 0  # data rows read (blank lines not counted)
    created: int = 0  # new dossiers
    status_changes: int = 0  # history entries appended to dossiers already known
    unchanged: int = 0  # rows whose status was already the stored one (or already recorded)
    stale: int = 0  # rows whose status time is older than the stored status: not applied
    receipt_kept: int = 0  # rows whose receipt time differed from the stored (kept) one
    channel_kept: int = 0  # the same for the receipt channel
    due_computed: int = 0  # due dates counted from the catalogue
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


@dataclass(slots=True)
class _Row:
    line: int
    unit: str
    code: str
    procedure_code: str | None
    procedure_name: str | None
    received_at: datetime
    channel: str
    due_at: datetime | None
    status: str
    status_at: datetime | None  # None: not in the file (see _Writer._at)
    note: str
    phone_last4: str | None


@dataclass(slots=True)
class _State:
    """A dossier as the import knows it: stored, or created earlier in this import."""

    received_at: datetime
    channel: str
    status: str
    procedure_code: str | None
    procedure_name: str | None
    due_at: datetime | None
    phone_last4: str | None
    last_at: datetime | None = None  # when the current status was set
    history: set[tuple[str, datetime]] = field(default_factory=set)  # (status, at) recorded
    new: bool = False  # to insert
    dirty: bool = False  # stored, to update


async def import_dossiers(
    db,
    rows_source: str | Path,
    *,
    unit_default: str,
    catalogue=None,
    calendar: WorkingCalendar | None = None,
    code_pattern: str = DEFAULT_CODE_PATTERN,
    progress: Progress | None = None,
    dry_run: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> ImportReport:
    """Import a one-stop software's CSV export into the local dossier table.

    Raises DossierFileError when the file cannot be used at all (nothing is written then).
    With ``dry_run`` the file is checked against the table and nothing is written; the report
    is the one a real import would give.
    """
    path = Path(rows_source)
    report = ImportReport(path=str(path), dry_run=dry_run)
    now = utc(datetime.now(VN_TZ))
    delimiter, header_index = _sniff(path)
    writer = _Writer(db, report, _DueDates(catalogue, calendar), now, dry_run)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        positions, width = _header(reader, header_index, report)
        parser = _RowParser(
            positions,
            width,
            report.columns,
            unit_default=unit_default,
            pattern=re.compile(code_pattern),
            closing_hour=writer.dues.closing_hour,
            now=now,
        )
        for chunk in _chunks(reader, parser, report, chunk_rows):
            await writer.apply(chunk)
            if progress is not None:
                progress(report.rows)
    return report


async def record_status_change(
    session, unit: str, code: str, status: str, note: str = "", at: datetime | None = None
) -> bool:
    """Staff entry: append ``status`` to a dossier's history and make it the current one.

    False if the unit has no such dossier; ValueError for a status not in the vocabulary.
    ``at`` defaults to now; a naive time is Vietnam time.
    """
    if status not in STATUSES:
        raise ValueError(f"unknown dossier status {status!r}; known: {', '.join(STATUSES)}")
    dossiers, events = _tables()
    now = utc(datetime.now(VN_TZ))
    at = utc(at) if at is not None else now
    result = await session.execute(
        update(dossiers)
        .where(dossiers.c.unit == unit, dossiers.c.code == code)
        .values(status=status, updated_at=now)
    )
    if result.rowcount != 1:
        return False
    await session.execute(
        insert(events).values(
            unit=unit, code=code, status=status, at=at, note=note, recorded_at=now
        )
    )
    return True


# -- reading the file ------------------------------------------------------------------------


def _sniff(path: Path) -> tuple[str, int]:
    """The delimiter and the index of the header row (an export may print a title first)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise DossierFileError(
            N_("cannot open the file ({error})"), error=exc.strerror or exc
        ) from None
    try:
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        raise DossierFileError(
            N_("the file is not UTF-8 text; save the export as “CSV UTF-8” and try again")
        ) from None
    if len(head) == _SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # the last line may be cut in the middle
    best: tuple[int, int, str, int] | None = None
    for delimiter in (",", ";", "\t"):
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for index, row in enumerate(rows):
            if index >= _HEADER_SEARCH_ROWS:
                break
            fields = {_FIELD_OF.get(fold(cell)) for cell in row}
            if "code" in fields:
                score = (len(fields - {None}), -index, delimiter, index)
                best = max(best, score) if best else score
                break
    if best is None:
        raise DossierFileError(
            N_(
                "no header row with a receipt code column (one of: {names}) in the first "
                "{rows} lines"
            ),
            names=", ".join(COLUMNS[0].names),
            rows=_HEADER_SEARCH_ROWS,
        )
    return best[2], best[3]


def _header(reader, header_index: int, report: ImportReport) -> tuple[dict[str, int], int]:
    """Map our fields to column positions (and say how many columns the header has); sort
    the other columns into personal and unknown."""
    for _ in range(header_index):
        next(reader)
    header = next(reader)
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        folded = fold(name)
        known = _FIELD_OF.get(folded)
        if known in positions:
            raise DossierFileError(
                N_("the columns “{first}” and “{second}” both give the {field}"),
                first=report.columns[known],
                second=name,
                field=known,
            )
        if known:
            positions[known] = position
            report.columns[known] = name
        elif folded and any(word in folded for word in _PERSONAL):
            report.personal_columns.append(name)
        elif folded:
            report.unknown_columns.append(name)
    missing = [column for column in COLUMNS if column.required and column.field not in positions]
    if missing:
        raise DossierFileError(
            N_("required columns missing: {columns}"),
            columns="; ".join(" / ".join(column.names) for column in missing),
        )
    return positions, len(header)


def _chunks(reader, parser: _RowParser, report: ImportReport, size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
    line = reader.line_num
    while True:
        start = line + 1  # where the record begins (a quoted cell may span lines)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            report.rows += 1
            report.rejected.append(
                Rejection(start, N_("cannot read the row: {error}"), {"error": exc})
            )
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        report.rows += 1
        parsed = parser.parse(row, start)
        if isinstance(parsed, Rejection):
            report.rejected.append(parsed)
        else:
            chunk.append(parsed)
        if report.rows % size == 0:
            yield chunk
            chunk = []
    if report.rows % size:
        yield chunk  # even empty: the caller reports progress per chunk


def _shown(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= MAX_SHOWN_VALUE else value[: MAX_SHOWN_VALUE - 1] + "…"


def _moment(text: str) -> tuple[datetime, bool] | None:
    """A time as exports write it, and whether it had a time of day; None if unreadable."""
    match = _DAY_FIRST.fullmatch(text)
    try:
        if match:
            day, month, year, hour, minute, second = match.groups()
            moment = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
            return moment, hour is not None
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment, len(text) > 10


class _RowParser:
    """Turns one CSV row into a _Row, or says why it cannot."""

    def __init__(
        self,
        positions: dict[str, int],
        width: int,
        headers: dict[str, str],
        *,
        unit_default: str,
        pattern: re.Pattern[str],
        closing_hour: int,
        now: datetime,
    ) -> None:
        self.positions = positions
        self.width = width
        self.headers = headers
        self.unit_default = unit_default
        self.pattern = pattern
        self.closing_hour = closing_hour
        self.now = now
        # Exports repeat a handful of status and channel words: fold each once.
        self._statuses: dict[str, str | None] = {}
        self._channels: dict[str, ReceiptChannel | None] = {}

    def _reject(self, line: int, reason: str, **params: Any) -> Rejection:
        return Rejection(line, reason, params)

    def parse(self, row: list[str], line: int) -> _Row | Rejection:
        if len(row) < self.width or any(cell.strip() for cell in row[self.width :]):
            # A stray or missing delimiter shifts the cells: reading on would store wrong data
            # (perhaps a piece of an address as a note), so the row goes whole, its cells
            # unquoted. Empty cells past the header's end are harmless.
            return self._reject(
                line,
                N_("the row has {found} cells but the header has {expected}"),
                found=len(row),
                expected=self.width,
            )
        cells = {name: row[position].strip() for name, position in self.positions.items()}
        if any("\ufffd" in value for value in cells.values()):
            return self._reject(line, N_("the row holds bytes that are not UTF-8 text"))
        for name in _REQUIRED:
            if not cells[name]:
                return self._reject(line, N_("“{column}” is empty"), column=self.headers[name])

        code = normalize_code(cells["code"])
        if not self.pattern.fullmatch(code) or len(code) > _LIMITS["code"]:
            return self._reject(
                line,
                N_("“{value}” is not a receipt code of the expected form"),
                value=_shown(cells["code"]),
            )
        unit = cells.get("unit") or self.unit_default
        procedure_code = cells.get("procedure_code") or None
        for name, value in (("unit", unit), ("procedure_code", procedure_code)):
            if value and len(value) > _LIMITS[name]:
                return self._reject(
                    line,
                    N_("“{column}” is longer than {limit} characters"),
                    column=self.headers[name],
                    limit=_LIMITS[name],
                )

        status = self._statuses.get(cells["status"], "")
        if status == "":
            status = self._statuses[cells["status"]] = parse_status(cells["status"])
        if status is None:
            return self._reject(line, N_("unknown status “{value}”"), value=_shown(cells["status"]))
        channel = self._channels.get(cells["channel"], "")
        if channel == "":
            channel = self._channels[cells["channel"]] = CHANNEL_NAMES.get(fold(cells["channel"]))
        if channel is None:
            return self._reject(
                line,
                N_("unknown receipt channel “{value}” (Trực tiếp, Trực tuyến or Bưu chính)"),
                value=_shown(cells["channel"]),
            )

        times: dict[str, tuple[datetime, bool] | None] = {}
        for name in ("received_at", "due_at", "status_at"):
            value = cells.get(name)
            if not value:
                times[name] = None
                continue
            parsed = _moment(value)
            if parsed is None:
                return self._reject(
                    line,
                    N_("“{column}”: “{value}” is not a date (dd/mm/yyyy HH:MM or ISO 8601)"),
                    column=self.headers[name],
                    value=_shown(value),
                )
            times[name] = (utc(parsed[0]), parsed[1])
        received_at = times["received_at"][0]  # type: ignore[index]
        if received_at > self.now + _FUTURE_SLACK:
            return self._reject(
                line, N_("“{column}” is in the future"), column=self.headers["received_at"]
            )
        received_day = received_at.astimezone(VN_TZ).date()
        due_at = None
        if times["due_at"]:
            due_at, has_time = times["due_at"]
            if not has_time:  # a due date alone: the result may be collected all that day
                local = due_at.astimezone(VN_TZ)
                due_at = utc(local.replace(hour=self.closing_hour, tzinfo=None))
            if _day(due_at) < received_day:
                return self._reject(line, N_("the due date is before the receipt"))
        status_at = times["status_at"][0] if times["status_at"] else None
        if status_at is not None and _day(status_at) < received_day:
            return self._reject(line, N_("the status time is before the receipt"))

        digits = "".join(ch for ch in cells.get("phone", "") if ch.isdigit())
        return _Row(
            line=line,
            unit=unit,
            code=code,
            procedure_code=procedure_code,
            procedure_name=cells.get("procedure_name") or None,
            received_at=received_at,
            channel=channel.value,
            due_at=due_at,
            status=status,
            status_at=status_at,
            note=cells.get("note", ""),
            phone_last4=digits[-4:] if len(digits) >= 4 else None,
        )


def _day(moment: datetime) -> date:
    return moment.astimezone(VN_TZ).date()


# -- due dates -------------------------------------------------------------------------------


class _DueDates:
    """Due dates counted as ``DossierService.due_at`` does: the catalogue's processing time for
    the receipt channel (else its first channel), in working days from the original receipt.

    Memoised on what the count depends on (the time, the receipt date, before or after the
    cut-off hour): an export holds thousands of dossiers of a few procedures received on the
    same days, and walking the calendar is the slow part.
    """

    def __init__(self, catalogue, calendar: WorkingCalendar | None) -> None:
        self.catalogue = catalogue
        if calendar is None:
            from bot.dossiers.calendar import WorkingCalendar

            calendar = WorkingCalendar()
        self.calendar = calendar
        self.closing_hour = self.calendar.closing_hour
        self._times: dict[tuple[str, str], ProcessingTime | None] = {}
        self._dues: dict[tuple, datetime | None] = {}

    def __call__(
        self, procedure_code: str | None, channel: str, received_at: datetime
    ) -> datetime | None:
        if self.catalogue is None or not procedure_code:
            return None
        key = (procedure_code, channel)
        if key not in self._times:
            self._times[key] = self._time(procedure_code, channel)
        time = self._times[key]
        if time is None:
            return None
        local = received_at.astimezone(VN_TZ)
        due_key = (time.value, time.unit, local.date(), local.hour < self.calendar.cutoff_hour)
        if due_key not in self._dues:
            self._dues[due_key] = self.calendar.due_at(received_at, time)
        return self._dues[due_key]

    def _time(self, procedure_code: str, channel: str) -> ProcessingTime | None:
        procedure = self.catalogue.procedures.get(procedure_code)
        if procedure is None:
            return None
        option = procedure.channel(Channel(channel))
        if option is None and procedure.channels:
            option = procedure.channels[0]
        return option.time if option is not None and option.time.known else None


# -- writing ---------------------------------------------------------------------------------


def _tables():
    # The ORM models load SQLAlchemy's ORM; imported on first write so that `motcua --help`,
    # which lists COLUMNS, stays quick.
    from bot.storage.models import DossierEvent, DossierRecord

    return DossierRecord.__table__, DossierEvent.__table__


class _Writer:
    """Applies chunks of rows: one read of the known dossiers, then bulk writes."""

    def __init__(self, db, report: ImportReport, dues: _DueDates, now: datetime, dry_run: bool):
        self.db = db
        self.report = report
        self.dues = dues
        self.now = now
        self.dry_run = dry_run
        # A dry run writes nothing, so what it "created" must be remembered across chunks for
        # a later row of the same code to be seen as an update, as in a real import.
        self.known: dict[tuple[str, str], _State] = {}
        self.dossiers, self.events = _tables()

    async def apply(self, rows: list[_Row]) -> None:
        if not rows:
            return
        if self.dry_run:
            async with self.db.session() as session:
                await self._fetch(session, rows)
            self._merge(rows)
            for row in rows:
                state = self.known[(row.unit, row.code)]
                state.new = state.dirty = False
            return
        async with self.db.write_transaction() as session:
            await self._fetch(session, rows)
            events = self._merge(rows)
            await self._write(session, rows, events)
        self.known.clear()

    async def _fetch(self, session, rows: list[_Row]) -> None:
        """Read the chunk's dossiers that are already stored, with their history."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            if (row.unit, row.code) not in self.known:
                wanted[row.unit].add(row.code)
        dossiers, events = self.dossiers, self.events
        for unit, codes in wanted.items():
            ordered = sorted(codes)
            for start in range(0, len(ordered), CHUNK_ROWS):
                batch = ordered[start : start + CHUNK_ROWS]
                query = select(
                    dossiers.c.code,
                    dossiers.c.received_at,
                    dossiers.c.channel,
                    dossiers.c.status,
                    dossiers.c.procedure_code,
                    dossiers.c.procedure_name,
                    dossiers.c.due_at,
                    dossiers.c.phone_last4,
                ).where(dossiers.c.unit == unit, dossiers.c.code.in_(batch))
                if not self.db.is_sqlite and not self.dry_run:
                    query = query.with_for_update()  # a staff change cannot slip in between
                found = []
                for r in await session.execute(query):
                    found.append(r.code)
                    self.known[(unit, r.code)] = _State(
                        received_at=_aware(r.received_at),
                        channel=r.channel,
                        status=r.status,
                        procedure_code=r.procedure_code,
                        procedure_name=r.procedure_name,
                        due_at=_aware(r.due_at),
                        phone_last4=r.phone_last4,
                    )
                if not found:
                    continue  # a first import reads nothing more
                history = await session.execute(
                    select(events.c.code, events.c.status, events.c.at)
                    .where(events.c.unit == unit, events.c.code.in_(found))
                    .order_by(events.c.id)
                )
                for code, status, at in history:
                    state = self.known[(unit, code)]
                    state.last_at = _aware(at)
                    state.history.add((status, state.last_at))

    def _merge(self, rows: list[_Row]) -> list[dict[str, Any]]:
        """Apply the rows to the known states in file order; return the history to append."""
        report, events = self.report, []
        for row in rows:
            key = (row.unit, row.code)
            state = self.known.get(key)
            if state is None:
                due_at = row.due_at
                if due_at is None:
                    due_at = self.dues(row.procedure_code, row.channel, row.received_at)
                    report.due_computed += due_at is not None
                state = self.known[key] = _State(
                    received_at=row.received_at,
                    channel=row.channel,
                    status=row.status,
                    procedure_code=row.procedure_code,
                    procedure_name=row.procedure_name,
                    due_at=due_at,
                    phone_last4=row.phone_last4,
                    new=True,
                )
                events.append(self._event(row, state))
                report.created += 1
                continue
            # Known already: the receipt is history. Only blanks are filled in.
            report.receipt_kept += row.received_at != state.received_at
            report.channel_kept += row.channel != state.channel
            changed = False
            for name in ("procedure_code", "procedure_name", "phone_last4"):
                if getattr(state, name) is None and getattr(row, name) is not None:
                    setattr(state, name, getattr(row, name))
                    changed = True
            if state.due_at is None:
                due_at = row.due_at
                if due_at is None:
                    due_at = self.dues(state.procedure_code, state.channel, state.received_at)
                    report.due_computed += due_at is not None
                if due_at is not None:
                    state.due_at, changed = due_at, True
            at = self._at(row, state)
            if row.status == state.status or (row.status, at) in state.history:
                report.unchanged += 1  # the same status, or this very change imported before
            elif row.status_at is not None and state.last_at and row.status_at < state.last_at:
                report.stale += 1  # an older export than what is recorded: not applied
            else:
                state.status, changed = row.status, True
                events.append(self._event(row, state))
                report.status_changes += 1
            if changed and not state.new:
                state.dirty = True
        return events

    def _at(self, row: _Row, state: _State) -> datetime:
        """When the row's status was set: as the file says, else the (first recorded) receipt
        for "received" and the time of this import for any other status."""
        if row.status_at is not None:
            return row.status_at
        return state.received_at if row.status == "received" else self.now

    def _event(self, row: _Row, state: _State) -> dict[str, Any]:
        at = self._at(row, state)
        state.last_at = at
        state.history.add((row.status, at))
        return {
            "unit": row.unit,
            "code": row.code,
            "status": row.status,
            "at": at,
            "note": row.note,
            "recorded_at": self.now,
        }

    async def _write(self, session, rows: list[_Row], events: list[dict[str, Any]]) -> None:
        new, changed = [], []
        for unit, code in dict.fromkeys((row.unit, row.code) for row in rows):
            s = self.known[(unit, code)]
            if s.new:
                new.append(
                    {
                        "unit": unit,
                        "code": code,
                        "procedure_code": s.procedure_code,
                        "procedure_name": s.procedure_name,
                        "received_at": s.received_at,
                        "channel": s.channel,
                        "due_at": s.due_at,
                        "status": s.status,
                        "phone_last4": s.phone_last4,
                        "updated_at": self.now,
                    }
                )
            elif s.dirty:
                changed.append(
                    {
                        "k_unit": unit,
                        "k_code": code,
                        "status": s.status,
                        "procedure_code": s.procedure_code,
                        "procedure_name": s.procedure_name,
                        "due_at": s.due_at,
                        "phone_last4": s.phone_last4,
                    }
                )
        # executemany: one prepared statement for each kind of write in the chunk.
        if new:
            await session.execute(insert(self.dossiers), new)
        if changed:
            table = self.dossiers
            statement = (
                update(table)
                .where(table.c.unit == bindparam("k_unit"), table.c.code == bindparam("k_code"))
                .values(
                    status=bindparam("status"),
                    procedure_code=bindparam("procedure_code"),
                    procedure_name=bindparam("procedure_name"),
                    due_at=bindparam("due_at"),
                    phone_last4=bindparam("phone_last4"),
                    updated_at=self.now,
                )
            )
            await session.execute(statement, changed)
        if events:
            await session.execute(insert(self.events), events)


def _aware(moment: datetime | None) -> datetime | None:
    # as bot.storage.models.as_utc, without importing the ORM at module load
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
