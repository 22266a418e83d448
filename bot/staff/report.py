"""Report figures for a period: the numbers a commune's report on handling administrative
procedures (báo cáo tình hình, kết quả giải quyết thủ tục hành chính) asks for, for one unit,
as a ``Report``, a CSV file, a .docx section to paste into the report, and bar charts.

Periods
-------
A period is a half-open interval ``[start, end)`` of aware instants: something that happens
exactly at ``start`` counts in, exactly at ``end`` it belongs to the next period. Reporting
periods are in Vietnam time (``VN_TZ``, UTC+7):

- ``quarter(y, q)``: the calendar quarter, [1st day of the quarter 00:00, 1st day of the next
  quarter 00:00). The dashboard's default.
- ``quarter_15th_to_14th(y, q)``: from the 15th of the last month of the previous quarter to the
  14th of the quarter's last month, both included. Some provinces close quarterly figures this
  way (following, as we read it, the data-closing dates of the government's reporting regime);
  check the province's instructions before choosing it.
- ``days(first, last)``: any run of whole days, both included.

Dossiers (hồ sơ), read from their history (``dossier_events``), never from the current status
column, so a past period's figures stay the same when a dossier moves on later.

- *Finished*: a dossier's finishing time is its **first** event with a closing status
  (returned_early, returned_on_time, returned_late, rejected, withdrawn); the status of that
  event is its outcome. A later event (a correction, a reopening) does not un-finish it: each
  outcome is counted once, in the period where it happened, which is what keeps the identity
  below exact. An event dated before the receipt (an import slip) counts as at the receipt.
  "Finished at T" means the finishing time is before T.
- ``received_new``: received_at in [start, end); split online / in person / by public postal
  service (any other channel is counted in person, the desk's default), with "in person and by
  post" as their sum.
- ``carried_over``: received before start and not finished at start (từ kỳ trước chuyển sang).
- solved: finishing time in [start, end) with outcome returned_early / returned_on_time /
  returned_late (trước hạn / đúng hạn / quá hạn).
- withdrawn or returned: finishing time in [start, end) with outcome withdrawn / rejected.
- in progress at end: received_new or carried_over, and not finished at end; *overdue* when
  due_at < end, *within time* when due_at >= end or there is no due date. (The due date is the
  dossier's current one: its changes are not kept in the history.)
- identity: received_new + carried_over = solved + withdrawn_or_returned + in_progress.

Feedback (phản ánh, kiến nghị), from ``feedback_events``:

- received: created_at in [start, end).
- handled: its first "answer" or "close" event falls in [start, end) (one dated before the
  creation counts as at the creation); a feedback answered again after a reopening is not
  counted twice.
- in progress at end: created before end and its status at end (that of its latest event before
  end; "received" when there is none) is neither answered nor closed; *overdue* when due_at < end.

Searches (``search_log``): the ``top`` procedures most often found first (top_code of a search
with results), with their names when a catalogue is given; and the ``top`` searches that found
nothing, grouped by their folded text (``procedures_catalog.normalize.fold``: "cấp sổ đỏ" and
"cap so do" are one line), shown in their most frequent spelling.

Every query is for one unit. Counting happens in the database: the dossiers are one query (each
dossier received before the end, grouped with its closing events through the events' (unit,
code) index, then counted), the feedback another, the searches three; only the missed searches'
distinct texts come back to Python, to be folded. 100,000 dossiers take well under a second on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import csv
import html
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from babel.numbers import format_decimal
from sqlalchemy import and_, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dossiers.model import VN_TZ
from bot.i18n import N_
from bot.storage.models import DossierEvent, DossierRecord, Feedback, FeedbackEvent, SearchLogEntry
from procedures_catalog.normalize import fold

Translate = Callable[..., str]
Row = tuple[str, str, int]  # (section msgid, label msgid or literal text, value)

FINISHING = ("returned_early", "returned_on_time", "returned_late", "rejected", "withdrawn")
HANDLING_ACTIONS = ("answer", "close")
HANDLED_STATUSES = ("answered", "closed")

DOSSIERS = N_("Administrative procedure dossiers")
FEEDBACK = N_("Feedback and proposals")
SEARCHES = N_("Procedure searches")
TOP_SEARCHED = N_("Most searched procedures")
MISSED = N_("Searches with no result")
# Sections whose labels are a procedure's name or a citizen's words, not msgids.
LITERAL_SECTIONS = frozenset({TOP_SEARCHED, MISSED})


# -- periods ----------------------------------------------------------------------------------


def _vn_midnight(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, tzinfo=VN_TZ)


def _month(year: int, month: int) -> tuple[int, int]:
    """(year, month) normalised, so that month 0 is December of the year before."""
    return year + (month - 1) // 12, (month - 1) % 12 + 1


def _check_quarter(q: int) -> None:
    if q not in (1, 2, 3, 4):
        raise ValueError(f"a quarter is 1 to 4, not {q!r}")


def quarter(year: int, q: int) -> tuple[datetime, datetime]:
    """The calendar quarter ``q`` of ``year`` in Vietnam time: [1st day 00:00, next 1st 00:00)."""
    _check_quarter(q)
    return _vn_midnight(year, 3 * q - 2), _vn_midnight(*_month(year, 3 * q + 1))


def quarter_15th_to_14th(year: int, q: int) -> tuple[datetime, datetime]:
    """Quarter ``q`` as some provinces close it: the 15th of the previous quarter's last month
    to the 14th of this quarter's last month, both included (Q1 2026: 15/12/2025-14/03/2026)."""
    _check_quarter(q)
    return _vn_midnight(*_month(year, 3 * q - 3), 15), _vn_midnight(year, 3 * q, 15)


def days(first: date, last: date) -> tuple[datetime, datetime]:
    """The whole days ``first`` to ``last`` (both included) in Vietnam time."""
    if last < first:
        raise ValueError("the period ends before it starts")
    after = last + timedelta(days=1)
    return _vn_midnight(first.year, first.month, first.day), _vn_midnight(
        after.year, after.month, after.day
    )


def quarter_of(moment: datetime) -> tuple[int, int]:
    """(year, quarter) of the calendar quarter that holds ``moment`` in Vietnam time."""
    local = moment.astimezone(VN_TZ)
    return local.year, (local.month - 1) // 3 + 1


def first_and_last_day(start: datetime, end: datetime) -> tuple[date, date]:
    """The dates a period is written with: its first day and its last day (end excluded)."""
    return (
        start.astimezone(VN_TZ).date(),
        (end - timedelta(microseconds=1)).astimezone(VN_TZ).date(),
    )


# -- the figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierFigures:
    """Dossier counts of a period; see the module docstring for what each one means."""

    received_online: int = 0
    received_in_person: int = 0
    received_postal: int = 0
    carried_over: int = 0
    solved_early: int = 0
    solved_on_time: int = 0
    solved_late: int = 0
    withdrawn: int = 0
    rejected: int = 0
    in_progress_within_time: int = 0
    in_progress_overdue: int = 0

    @property
    def received_new(self) -> int:
        return self.received_online + self.received_in_person + self.received_postal

    @property
    def received_in_person_and_postal(self) -> int:
        return self.received_in_person + self.received_postal

    @property
    def total(self) -> int:
        """Dossiers to handle in the period (số hồ sơ nhận giải quyết): new plus carried over."""
        return self.received_new + self.carried_over

    @property
    def solved(self) -> int:
        return self.solved_early + self.solved_on_time + self.solved_late

    @property
    def withdrawn_or_returned(self) -> int:
        return self.withdrawn + self.rejected

    @property
    def in_progress(self) -> int:
        return self.in_progress_within_time + self.in_progress_overdue

    def lines(self) -> list[tuple[str, int, int]]:
        """(label msgid, value, indent level) in the order of the report's table."""
        return [
            (N_("Dossiers to handle: total"), self.total, 0),
            (N_("New in the period"), self.received_new, 1),
            (N_("New: online"), self.received_online, 2),
            (N_("New: in person and by post"), self.received_in_person_and_postal, 2),
            (N_("New: in person"), self.received_in_person, 3),
            (N_("New: by public postal service"), self.received_postal, 3),
            (N_("Carried over from the previous period"), self.carried_over, 1),
            (N_("Solved: total"), self.solved, 0),
            (N_("Solved early"), self.solved_early, 1),
            (N_("Solved on time"), self.solved_on_time, 1),
            (N_("Solved late"), self.solved_late, 1),
            (N_("Withdrawn or returned: total"), self.withdrawn_or_returned, 0),
            (N_("Withdrawn by the applicant"), self.withdrawn, 1),
            (N_("Returned as not meeting the conditions"), self.rejected, 1),
            (N_("In progress at the end of the period: total"), self.in_progress, 0),
            (N_("In progress: within time"), self.in_progress_within_time, 1),
            (N_("In progress: overdue"), self.in_progress_overdue, 1),
        ]


@dataclass(frozen=True)
class FeedbackFigures:
    received: int = 0
    handled: int = 0
    in_progress: int = 0
    overdue: int = 0  # part of in_progress

    def lines(self) -> list[tuple[str, int, int]]:
        return [
            (N_("Received in the period"), self.received, 0),
            (N_("Handled in the period"), self.handled, 0),
            (N_("Being handled at the end of the period"), self.in_progress, 0),
            (N_("of which overdue"), self.overdue, 1),
        ]


@dataclass(frozen=True)
class SearchedProcedure:
    code: str
    name: str | None
    count: int

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})" if self.name else self.code


@dataclass(frozen=True)
class MissedSearch:
    query: str  # the most frequent spelling
    count: int
    key: str  # the folded text the spellings share


@dataclass(frozen=True)
class SearchFigures:
    searches: int = 0
    missed: int = 0
    top_procedures: list[SearchedProcedure] = field(default_factory=list)
    top_missed: list[MissedSearch] = field(default_factory=list)

    def lines(self) -> list[tuple[str, int, int]]:
        return [
            (N_("Searches in the period"), self.searches, 0),
            (N_("Searches that found nothing"), self.missed, 1),
        ]


@dataclass(frozen=True)
class Report:
    unit: str
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC, excluded
    dossiers: DossierFigures
    feedback: FeedbackFigures
    searches: SearchFigures

    @property
    def first_day(self) -> date:
        return first_and_last_day(self.start, self.end)[0]

    @property
    def last_day(self) -> date:
        return first_and_last_day(self.start, self.end)[1]

    def rows(self) -> list[Row]:
        """(section msgid, label, value) for CSV. The label is a msgid, except in the two
        sections of ``LITERAL_SECTIONS`` where it is a procedure or a citizen's words."""
        rows: list[Row] = []
        for section, figures in (
            (DOSSIERS, self.dossiers),
            (FEEDBACK, self.feedback),
            (SEARCHES, self.searches),
        ):
            rows += [(section, label, value) for label, value, _ in figures.lines()]
        rows += [(TOP_SEARCHED, p.label, p.count) for p in self.searches.top_procedures]
        rows += [(MISSED, m.query, m.count) for m in self.searches.top_missed]
        return rows


class Names(Protocol):
    """A catalogue (``procedures_catalog.loader.Catalogue``) or a plain {code: name} mapping."""

    def get(self, code: str, /) -> Any: ...


def _name(catalogue: Names | None, code: str) -> str | None:
    if catalogue is None:
        return None
    found = catalogue.get(code)
    return found if isinstance(found, str) or found is None else getattr(found, "name", None)


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"the period's {what} must be timezone-aware")
    # SQLite keeps the wall time without its zone; every stored value is UTC, so are the bounds.
    return moment.astimezone(UTC)


async def compute(
    session: AsyncSession,
    unit: str,
    start: datetime,
    end: datetime,
    *,
    catalogue: Names | None = None,
    top: int = 10,
) -> Report:
    """The figures of ``unit`` for the period [start, end)."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start:
        raise ValueError("the period ends before it starts")
    return Report(
        unit=unit,
        start=start,
        end=end,
        dossiers=await _dossier_figures(session, unit, start, end),
        feedback=await _feedback_figures(session, unit, start, end),
        searches=await _search_figures(session, unit, start, end, catalogue, top),
    )


def _count(condition) -> Any:
    return func.count(case((condition, 1)))


async def _dossier_figures(session, unit: str, start: datetime, end: datetime) -> DossierFigures:
    d, e = DossierRecord.__table__, DossierEvent.__table__
    # One row per dossier received before the end, with the time of its first event of each
    # closing status (found through the events' (unit, code) index). A closing event at or
    # after the end is, for this period, the same as none, so it is not even read.
    per_dossier = (
        select(
            d.c.received_at,
            d.c.channel,
            d.c.due_at,
            func.min(e.c.at).label("first_at"),
            *(func.min(case((e.c.status == code, e.c.at))).label(code) for code in FINISHING),
        )
        .select_from(
            d.outerjoin(
                e,
                and_(
                    e.c.unit == d.c.unit,
                    e.c.code == d.c.code,
                    e.c.status.in_(FINISHING),
                    e.c.at < end,
                ),
            )
        )
        .where(d.c.unit == unit, d.c.received_at < end)
        .group_by(d.c.unit, d.c.code, d.c.received_at, d.c.channel, d.c.due_at)
        .subquery()
    )
    p = per_dossier.c
    # The outcome is the status of the first closing event (the order of FINISHING breaks a
    # tie at the same instant).
    outcome = case(*((p[code] == p.first_at, code) for code in FINISHING))
    finished_at = case((p.first_at < p.received_at, p.received_at), else_=p.first_at)
    new = p.received_at >= start
    in_period = and_(finished_at >= start, finished_at < end)
    open_at_end = p.first_at.is_(None)  # closing events at or after the end were not read
    # One figure per outcome, named like DossierFigures' fields.
    outcomes = {
        "solved_early": "returned_early",
        "solved_on_time": "returned_on_time",
        "solved_late": "returned_late",
        "withdrawn": "withdrawn",
        "rejected": "rejected",
    }
    query = select(
        _count(and_(new, p.channel == "online")).label("received_online"),
        _count(and_(new, not_(p.channel.in_(("online", "postal"))))).label("received_in_person"),
        _count(and_(new, p.channel == "postal")).label("received_postal"),
        _count(not_(new)).label("carried_over"),
        *(_count(and_(in_period, outcome == code)).label(name) for name, code in outcomes.items()),
        _count(and_(open_at_end, or_(p.due_at.is_(None), p.due_at >= end))).label(
            "in_progress_within_time"
        ),
        _count(and_(open_at_end, p.due_at < end)).label("in_progress_overdue"),
    ).where(or_(new, open_at_end, finished_at >= start))  # not finished before the start
    return DossierFigures(**(await session.execute(query)).one()._mapping)


async def _feedback_figures(session, unit: str, start: datetime, end: datetime) -> FeedbackFigures:
    f, e = Feedback.__table__, FeedbackEvent.__table__
    # Per feedback, through the events' (feedback_id) index: its first answer or closing, and
    # its status at the end (that of its latest event before the end).
    of_this = and_(e.c.feedback_id == f.c.id, e.c.at < end)
    first_handled = (
        select(func.min(e.c.at)).where(of_this, e.c.action.in_(HANDLING_ACTIONS)).scalar_subquery()
    )
    status_at_end = (
        select(e.c.status)
        .where(of_this)
        .order_by(e.c.at.desc(), e.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    per_feedback = (
        select(
            f.c.created_at,
            f.c.due_at,
            first_handled.label("handled_at"),
            status_at_end.label("status"),
        )
        .where(f.c.unit == unit, f.c.created_at < end)
        .subquery()
    )
    p = per_feedback.c
    handled_at = case((p.handled_at < p.created_at, p.created_at), else_=p.handled_at)
    open_at_end = or_(p.status.is_(None), not_(p.status.in_(HANDLED_STATUSES)))
    query = select(
        _count(p.created_at >= start),
        _count(and_(handled_at >= start, handled_at < end)),
        _count(open_at_end),
        _count(and_(open_at_end, p.due_at < end)),
    )
    received, handled, in_progress, overdue = (await session.execute(query)).one()
    return FeedbackFigures(received, handled, in_progress, overdue)


async def _search_figures(
    session, unit: str, start: datetime, end: datetime, catalogue: Names | None, top: int
) -> SearchFigures:
    s = SearchLogEntry.__table__
    in_period = and_(s.c.unit == unit, s.c.created_at >= start, s.c.created_at < end)
    searches, missed = (
        await session.execute(select(func.count(), _count(s.c.results == 0)).where(in_period))
    ).one()
    hits = func.count().label("hits")
    top_rows = await session.execute(
        select(s.c.top_code, hits)
        .where(in_period, s.c.results > 0, s.c.top_code.is_not(None))
        .group_by(s.c.top_code)
        .order_by(hits.desc(), s.c.top_code)
        .limit(top)
    )
    procedures = [SearchedProcedure(code, _name(catalogue, code), n) for code, n in top_rows]
    spellings = await session.execute(
        select(s.c.query, func.count()).where(in_period, s.c.results == 0).group_by(s.c.query)
    )
    return SearchFigures(searches, missed, procedures, group_missed(spellings, top))


def group_missed(spellings: Iterable[tuple[str, int]], top: int) -> list[MissedSearch]:
    """The ``top`` missed searches: (text, count) pairs grouped by their folded text, each
    shown in its most frequent spelling (one with diacritics on a tie)."""
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for text, count in spellings:
        groups[fold(text) or text.strip()].append((text, count))

    def shown(members: list[tuple[str, int]]) -> str:
        return min(members, key=lambda m: (-m[1], fold(m[0]) == m[0].lower(), m[0]))[0]

    grouped = [
        MissedSearch(shown(members), sum(n for _, n in members), key)
        for key, members in groups.items()
    ]
    grouped.sort(key=lambda m: (-m.count, m.key))
    return grouped[:top]


# -- exports ----------------------------------------------------------------------------------


def _date(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def to_csv(report: Report, t: Translate, *, delimiter: str = ",") -> str:
    """The figures as CSV text with a BOM, so that Excel reads the Vietnamese as UTF-8; encode
    it with ``utf-8`` (the BOM is the first character). Values are plain integers."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([t("Section"), t("Figure"), t("Value")])
    writer.writerow([t("Period"), t("Unit"), report.unit])
    writer.writerow([t("Period"), t("From"), _date(report.first_day)])
    writer.writerow([t("Period"), t("To"), _date(report.last_day)])
    for section, label, value in report.rows():
        writer.writerow([t(section), label if section in LITERAL_SECTIONS else t(label), value])
    return out.getvalue()


def _number(value: int, t: Translate) -> str:
    return format_decimal(value, locale=getattr(t, "locale", "vi"))


def to_docx(report: Report, t: Translate, unit_name: str) -> bytes:
    """A .docx section for the officer to paste into the report: a heading, the period, a table
    of dossiers, a table of feedback, and the lists of the most searched procedures and of the
    searches that found nothing."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt, RGBColor

    document = Document()
    normal = document.styles["Normal"]
    normal.font.name, normal.font.size = "Times New Roman", Pt(13)
    for name in ("Heading 2", "Heading 3"):
        style = document.styles[name]
        style.font.name, style.font.color.rgb = "Times New Roman", RGBColor(0, 0, 0)
    document.add_heading(t("Results of handling administrative procedures"), level=2)
    document.add_paragraph(
        t(
            "{unit}, from {first} to {last}",
            unit=unit_name,
            first=_date(report.first_day),
            last=_date(report.last_day),
        )
    )

    def table(lines: Sequence[tuple[str, int, int]]) -> None:
        grid = document.add_table(rows=1, cols=2)
        grid.style = "Table Grid"
        for cell, text in zip(grid.rows[0].cells, (t("Figure"), t("Number")), strict=True):
            cell.paragraphs[0].add_run(text).bold = True
        for label, value, level in lines:
            left, right = grid.add_row().cells
            run = left.paragraphs[0].add_run(t(label))
            run.bold = level == 0
            left.paragraphs[0].paragraph_format.left_indent = Cm(0.5 * level)
            right.paragraphs[0].add_run(_number(value, t)).bold = level == 0
            right.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
        for row in grid.rows:
            row.cells[0].width, row.cells[1].width = Cm(12), Cm(3)

    def listing(items: Sequence[tuple[str, int]], style: str) -> None:
        if not items:
            document.add_paragraph(t("None in this period."))
        for text, count in items:
            document.add_paragraph(
                t("{text}: {count} searches", text=text, count=_number(count, t)), style=style
            )

    document.add_heading(t(DOSSIERS), level=3)
    table(report.dossiers.lines())
    document.add_heading(t(FEEDBACK), level=3)
    table(report.feedback.lines())
    searches = report.searches
    document.add_heading(t(TOP_SEARCHED), level=3)
    document.add_paragraph(
        t(
            "{searches} searches in the period, {missed} of them found nothing.",
            searches=_number(searches.searches, t),
            missed=_number(searches.missed, t),
        )
    )
    listing([(p.label, p.count) for p in searches.top_procedures], "List Number")
    document.add_heading(t(MISSED), level=3)
    listing([(m.query, m.count) for m in searches.top_missed], "List Bullet")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def chart_data(report: Report) -> dict[str, dict[str, Any]]:
    """Bars for the dashboard's charts: {name: {"title": msgid, "bars": [(label, value)],
    "translate": whether the labels are msgids}}."""
    d, f, s = report.dossiers, report.feedback, report.searches

    def chart(title: str, bars: list[tuple[str, int]], translate: bool = True) -> dict[str, Any]:
        return {"title": title, "bars": bars, "translate": translate}

    return {
        "received": chart(
            N_("Dossiers received"),
            [
                (N_("New: online"), d.received_online),
                (N_("New: in person"), d.received_in_person),
                (N_("New: by public postal service"), d.received_postal),
                (N_("Carried over from the previous period"), d.carried_over),
            ],
        ),
        "finished": chart(
            N_("Dossiers finished in the period"),
            [
                (N_("Solved early"), d.solved_early),
                (N_("Solved on time"), d.solved_on_time),
                (N_("Solved late"), d.solved_late),
                (N_("Withdrawn by the applicant"), d.withdrawn),
                (N_("Returned as not meeting the conditions"), d.rejected),
            ],
        ),
        "in_progress": chart(
            N_("In progress at the end of the period: total"),
            [
                (N_("In progress: within time"), d.in_progress_within_time),
                (N_("In progress: overdue"), d.in_progress_overdue),
            ],
        ),
        "feedback": chart(FEEDBACK, [(label, value) for label, value, _ in f.lines()]),
        "top_searched": chart(
            TOP_SEARCHED, [(p.label, p.count) for p in s.top_procedures], translate=False
        ),
        "missed": chart(MISSED, [(m.query, m.count) for m in s.top_missed], translate=False),
    }


def bar_chart_svg(pairs: Sequence[tuple[str, int]], title: str, *, width: int = 520) -> str:
    """A small horizontal bar chart as inline SVG; labels and title are escaped, long labels
    are cut (the full text is in each bar's tooltip)."""
    bar_height, gap, label_width, top = 18, 6, 220, 24
    value_room = 48
    longest = max((value for _, value in pairs), default=0)
    scale = (width - label_width - value_room) / longest if longest else 0
    height = top + len(pairs) * (bar_height + gap) + gap
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{esc(title)}</title>",
        f'<text x="0" y="15" font-weight="bold">{esc(_cut(title, 70))}</text>',
    ]
    for i, (label, value) in enumerate(pairs):
        y = top + i * (bar_height + gap)
        bar = max(0, round(int(value) * scale))
        parts += [
            f"<g><title>{esc(label)}: {int(value)}</title>",
            f'<text x="{label_width - 6}" y="{y + 13}" text-anchor="end">'
            f"{esc(_cut(label, 34))}</text>",
            f'<rect x="{label_width}" y="{y}" width="{bar}" height="{bar_height}" fill="#2b6cb0"/>',
            f'<text x="{label_width + bar + 4}" y="{y + 13}">{int(value)}</text></g>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
