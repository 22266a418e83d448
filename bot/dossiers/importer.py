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

The columns of the export and the reading of one row are in ``bot.dossiers.export_rows``; the
names other modules use from there are re-exported here.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update

from bot.dossiers.export_rows import (
    CHANNEL_NAMES,
    COLUMNS,
    MAX_SHOWN_VALUE,
    PERSONAL_COLUMNS,
    STATUS_NAMES,
    STATUS_WORDS,
    Column,
    DossierFileError,
    Rejection,
    Row,
    RowParser,
    parse_status,
    read_header,
    sniff,
)
from bot.dossiers.model import DEFAULT_CODE_PATTERN, STATUSES, VN_TZ, utc
from bot.i18n import N_
from procedures_catalog.schema import Channel, ProcessingTime

if TYPE_CHECKING:  # the calendar loads the holidays package: only when a due date is counted
    from bot.dossiers.calendar import WorkingCalendar

__all__ = [
    "CHANNEL_NAMES",
    "CHUNK_ROWS",
    "COLUMNS",
    "MAX_SHOWN_VALUE",
    "PERSONAL_COLUMNS",
    "STATUS_NAMES",
    "STATUS_WORDS",
    "Column",
    "DossierFileError",
    "ImportReport",
    "Progress",
    "Rejection",
    "import_dossiers",
    "parse_status",
    "record_status_change",
]

CHUNK_ROWS = 5_000  # rows per transaction; also bounds the IN list of the read (asyncpg: 32767)

Progress = Callable[[int], None]  # rows read so far


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
    delimiter, header_index = sniff(path)
    writer = _Writer(db, report, _DueDates(catalogue, calendar), now, dry_run)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        positions, width = read_header(reader, header_index, report)
        parser = RowParser(
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


# -- chunking --------------------------------------------------------------------------------


def _chunks(reader, parser: RowParser, report: ImportReport, size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
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

    async def apply(self, rows: list[Row]) -> None:
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

    async def _fetch(self, session, rows: list[Row]) -> None:
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

    def _merge(self, rows: list[Row]) -> list[dict[str, Any]]:
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

    def _at(self, row: Row, state: _State) -> datetime:
        """When the row's status was set: as the file says, else the (first recorded) receipt
        for "received" and the time of this import for any other status."""
        if row.status_at is not None:
            return row.status_at
        return state.received_at if row.status == "received" else self.now

    def _event(self, row: Row, state: _State) -> dict[str, Any]:
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

    async def _write(self, session, rows: list[Row], events: list[dict[str, Any]]) -> None:
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
