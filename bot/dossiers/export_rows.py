"""The CSV export of a one-stop software, as the dossier import reads it: which columns it
may have and under which names (``COLUMNS``; ``PERSONAL_COLUMNS`` are recognised only to be
skipped), the status and channel words of the software, how its dates are written, the head
of the file (delimiter, header row; ``DossierFileError`` when it cannot be used) and the
reading of one row into a ``Row``, or a ``Rejection`` with its line and reason.

Nothing here touches the database: the import itself (chunks, due dates, writes) is in
``bot.dossiers.importer``, which re-exports the public names of this module.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.dossiers.model import STATUSES, VN_TZ, ReceiptChannel, normalize_code, utc
from bot.i18n import N_
from procedures_catalog.normalize import fold

if TYPE_CHECKING:
    from bot.dossiers.importer import ImportReport

MAX_SHOWN_VALUE = 40  # a cell quoted in a reason is cut to this many characters
_SNIFF_BYTES = 64 * 1024
_HEADER_SEARCH_ROWS = 20  # title lines an export may print above its header
_FUTURE_SLACK = timedelta(days=1)  # a receipt later than this after now is a data error


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


@dataclass(slots=True)
class Row:
    line: int
    unit: str
    code: str
    procedure_code: str | None
    procedure_name: str | None
    received_at: datetime
    channel: str
    due_at: datetime | None
    status: str
    status_at: datetime | None  # None: not in the file (see importer._Writer._at)
    note: str
    phone_last4: str | None


# -- reading the file ------------------------------------------------------------------------


def sniff(path: Path) -> tuple[str, int]:
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


def read_header(reader, header_index: int, report: ImportReport) -> tuple[dict[str, int], int]:
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


class RowParser:
    """Turns one CSV row into a Row, or says why it cannot."""

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

    def parse(self, row: list[str], line: int) -> Row | Rejection:
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
        return Row(
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
