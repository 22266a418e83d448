"""Report figures (bot/staff/report.py) against a seeded dataset whose counts are worked out by
hand, on SQLite and PostgreSQL; then the CSV, .docx and chart exports of those figures.

The period is Q4 2025 in Vietnam time: [01/10/2025 00:00, 01/01/2026 00:00) ICT. Every count
asserted below has the dossiers, feedback or searches that make it up in a comment.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.dossiers.model import VN_TZ
from bot.staff.report import (
    LITERAL_SECTIONS,
    MISSED,
    TOP_SEARCHED,
    DossierFigures,
    FeedbackFigures,
    bar_chart_svg,
    chart_data,
    compute,
    days,
    group_missed,
    quarter,
    quarter_15th_to_14th,
    quarter_of,
    to_csv,
    to_docx,
)
from bot.storage.models import (
    DossierEvent,
    DossierRecord,
    Feedback,
    FeedbackEvent,
    SearchLogEntry,
)
from tests.conftest import bundled_commune

UNIT, OTHER = "xa-an-binh", "xa-binh-an"
START, END = quarter(2025, 4)


def vn(month: int, day: int, hour: int = 9, year: int = 2025) -> datetime:
    """A Vietnam wall-clock time, as stored: UTC."""
    return datetime(year, month, day, hour, tzinfo=VN_TZ).astimezone(UTC)


Q3_START = vn(7, 1, 0)
AT_START, AT_END = START.astimezone(UTC), END.astimezone(UTC)  # 30/09 17:00 and 31/12 17:00 UTC

# (unit, code, channel, received_at, due_at, history); the status column is the last event's.
DOSSIERS = [
    # Received in Q3.
    # A1 crosses the boundary: received in Q3, returned on time in Q4 -> carried over, on time.
    (
        UNIT,
        "A1",
        "in_person",
        vn(9, 20),
        vn(10, 15),
        [("in_progress", vn(9, 25)), ("returned_on_time", vn(10, 10))],
    ),
    # A2 finished in Q3 (late): not in Q4 at all.
    (UNIT, "A2", "online", vn(9, 10), vn(9, 25), [("returned_late", vn(9, 28))]),
    # A3 carried over, then solved late in Q4.
    (UNIT, "A3", "postal", vn(9, 15), vn(10, 30), [("returned_late", vn(11, 5))]),
    # A4 carried over and still open at the end, no due date -> within time.
    (UNIT, "A4", "in_person", vn(9, 28), None, [("in_progress", vn(10, 2))]),
    # A5 returned early exactly at the start instant: carried over, solved early in Q4.
    (UNIT, "A5", "in_person", vn(9, 29), vn(10, 10), [("returned_early", AT_START)]),
    # A6 returned late in Q3, then a correction reopened it: its first finish counts, not in Q4.
    (
        UNIT,
        "A6",
        "in_person",
        vn(8, 1),
        vn(8, 15),
        [("returned_late", vn(8, 20)), ("in_progress", vn(10, 5))],
    ),
    # Received in Q4.
    (UNIT, "B1", "online", vn(10, 5), vn(10, 20), [("returned_early", vn(10, 15))]),
    (UNIT, "B2", "postal", vn(10, 6), vn(10, 30), [("withdrawn", vn(10, 8))]),
    (UNIT, "B3", "in_person", vn(10, 7), vn(10, 21), [("rejected", vn(10, 9))]),
    # B4 open at the end, due 20/11 -> overdue.
    (UNIT, "B4", "in_person", vn(11, 1), vn(11, 20), [("in_progress", vn(11, 2))]),
    # B5 open at the end, due exactly at the end instant -> within time.
    (UNIT, "B5", "online", vn(12, 20), AT_END, []),
    # B6 received exactly at the start instant -> new; then returned on time.
    (UNIT, "B6", "online", AT_START, vn(10, 3, 17), [("returned_on_time", vn(10, 3))]),
    # B7 returned late exactly at the end instant -> still in progress at the end, overdue.
    (UNIT, "B7", "in_person", vn(12, 1), vn(12, 15), [("returned_late", AT_END)]),
    # B8 received exactly at the end instant -> belongs to Q1 2026.
    (UNIT, "B8", "online", AT_END, vn(1, 10, year=2026), []),
    # B9's current status is "returned on time", set after the end: in progress and overdue.
    (UNIT, "B9", "in_person", vn(12, 10), vn(12, 30), [("returned_on_time", vn(1, 5, year=2026))]),
    # Another unit: never counted. Its "A4" finishing in Q4 must not finish our A4.
    (OTHER, "A4", "online", vn(9, 1), vn(9, 30), [("returned_late", vn(10, 20))]),
    (OTHER, "C1", "online", vn(10, 5), vn(10, 20), [("returned_early", vn(10, 6))]),
]

# Q4 2025, unit UNIT, by hand:
Q4_DOSSIERS = DossierFigures(
    received_online=3,  # B1, B5, B6 (B8 is at the end: out)
    received_in_person=4,  # B3, B4, B7, B9
    received_postal=1,  # B2
    carried_over=4,  # A1, A3, A4, A5 (A2, A6 finished in Q3)
    solved_early=2,  # A5 (at the start instant), B1
    solved_on_time=2,  # A1, B6
    solved_late=1,  # A3 (B7 is at the end: out; B9 after)
    withdrawn=1,  # B2
    rejected=1,  # B3
    in_progress_within_time=2,  # A4 (no due date), B5 (due at the end instant)
    in_progress_overdue=3,  # B4, B7, B9
)
# Q3 2025 (to check that Q3's "in progress at the end" is Q4's "carried over"):
Q3_DOSSIERS = DossierFigures(
    received_online=1,  # A2
    received_in_person=4,  # A1, A4, A5, A6
    received_postal=1,  # A3
    carried_over=0,
    solved_late=2,  # A2, A6
    in_progress_within_time=4,  # A1 (due 15/10), A3 (30/10), A4 (none), A5 (10/10)
)

# (unit, created_at, due_at, history of (action, status, at)); each also has its "create" event.
FEEDBACK = [
    # F1 created in Q3, answered in Q4 -> handled.
    (UNIT, vn(9, 20), vn(10, 5), [("answer", "answered", vn(10, 5))]),
    # F2 created in Q4, assigned, still open after its due date -> in progress, overdue.
    (UNIT, vn(10, 10), vn(10, 25), [("assign", "in_progress", vn(10, 11))]),
    # F3 answered then closed in Q4 -> received, handled once.
    (
        UNIT,
        vn(11, 1),
        vn(1, 15, year=2026),
        [("answer", "answered", vn(11, 10)), ("close", "closed", vn(11, 12))],
    ),
    # F4 open at the end, due later -> in progress, not overdue.
    (UNIT, vn(12, 20), vn(1, 10, year=2026), []),
    # F5 answered only after the end (its status column says "answered"): in progress, overdue.
    (UNIT, vn(12, 25), vn(12, 30), [("answer", "answered", vn(1, 2, year=2026))]),
    # F6 answered in Q3, reopened in Q4 and still open: in progress and overdue, handled in Q3.
    (
        UNIT,
        vn(9, 1),
        vn(9, 15),
        [("answer", "answered", vn(9, 10)), ("reopen", "in_progress", vn(10, 20))],
    ),
    # F7 created exactly at the end instant: Q1 2026.
    (UNIT, AT_END, vn(1, 15, year=2026), []),
    # F8 created exactly at the start instant; answered exactly at the end instant.
    (UNIT, AT_START, None, [("answer", "answered", AT_END)]),
    # Another unit's.
    (OTHER, vn(10, 10), vn(10, 25), [("answer", "answered", vn(10, 12))]),
]
Q4_FEEDBACK = FeedbackFigures(
    received=5,  # F2, F3, F4, F5, F8
    handled=2,  # F1, F3 (F5 and F8 at or after the end, F6 first in Q3)
    in_progress=5,  # F2, F4, F5, F6, F8
    overdue=3,  # F2, F5, F6 (F4 due later, F8 has no due date)
)

BIRTH, MARRIAGE, DEATH = "1.000110", "1.000094", "1.000419"
# (unit, created_at, query, top_code, results, times)
SEARCHES = [
    (UNIT, vn(10, 2), "đăng ký khai sinh", BIRTH, 5, 2),
    (UNIT, AT_START, "khai sinh", BIRTH, 3, 1),  # at the start instant: in
    (UNIT, vn(11, 3), "kết hôn", MARRIAGE, 4, 2),
    (UNIT, vn(12, 3), "khai tử", DEATH, 1, 1),
    (UNIT, vn(12, 4), "cấp sổ đỏ", None, 0, 2),
    (UNIT, vn(12, 5), "cap so do", None, 0, 1),  # the same miss, typed without accents
    (UNIT, vn(12, 6), "xin giấy phép karaoke", None, 0, 1),
    (UNIT, vn(9, 30), "khai tử", DEATH, 2, 5),  # Q3
    (UNIT, AT_END, "cấp sổ đỏ", None, 0, 5),  # at the end instant: out
    (OTHER, vn(10, 2), "khai tử", DEATH, 2, 9),
    (OTHER, vn(10, 2), "xin giấy phép karaoke", None, 0, 9),
]


async def seed(db) -> None:
    async with db.write_transaction() as session:
        for unit, code, channel, received_at, due_at, history in DOSSIERS:
            session.add(
                DossierRecord(
                    unit=unit,
                    code=code,
                    procedure_code=BIRTH,
                    received_at=received_at,
                    channel=channel,
                    due_at=due_at,
                    status=history[-1][0] if history else "received",
                )
            )
            for status, at in [("received", received_at), *history]:
                session.add(DossierEvent(unit=unit, code=code, status=status, at=at))
        for n, (unit, created_at, due_at, history) in enumerate(FEEDBACK):
            row = Feedback(
                submit_key=f"k{n}",
                unit=unit,
                kind="report",
                topic="procedure",
                content="…",
                channel="test",
                conversation_id=f"c{n}",
                locale="vi",
                status=history[-1][1] if history else "received",
                created_at=created_at,
                due_at=due_at,
            )
            session.add(row)
            await session.flush()
            for action, status, at in [("create", "received", created_at), *history]:
                session.add(
                    FeedbackEvent(
                        feedback_id=row.id, at=at, actor="x", action=action, status=status
                    )
                )
        for unit, created_at, query, top_code, results, times in SEARCHES:
            for _ in range(times):
                session.add(
                    SearchLogEntry(
                        created_at=created_at,
                        channel="test",
                        unit=unit,
                        query=query,
                        top_code=top_code,
                        results=results,
                    )
                )


async def report_of(db, start=START, end=END, **kwargs):
    async with db.session() as session:
        return await compute(session, UNIT, start, end, **kwargs)


# -- periods ----------------------------------------------------------------------------------


def test_quarter_is_the_calendar_quarter_in_vietnam_time():
    assert quarter(2025, 4) == (
        datetime(2025, 10, 1, tzinfo=VN_TZ),
        datetime(2026, 1, 1, tzinfo=VN_TZ),
    )
    start, end = quarter(2026, 1)
    assert start.astimezone(UTC) == datetime(2025, 12, 31, 17, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 3, 31, 17, tzinfo=UTC)
    assert [quarter(2026, q)[0].month for q in (1, 2, 3, 4)] == [1, 4, 7, 10]
    assert quarter(2026, 2)[1] == quarter(2026, 3)[0]  # quarters tile the year
    with pytest.raises(ValueError):
        quarter(2026, 5)


def test_the_15th_to_14th_quarter():
    start, end = quarter_15th_to_14th(2026, 1)
    assert start == datetime(2025, 12, 15, tzinfo=VN_TZ)  # crosses into the year before
    assert end == datetime(2026, 3, 15, tzinfo=VN_TZ)  # the 14th is included, whole
    assert quarter_15th_to_14th(2025, 4) == (
        datetime(2025, 9, 15, tzinfo=VN_TZ),
        datetime(2025, 12, 15, tzinfo=VN_TZ),
    )
    assert quarter_15th_to_14th(2025, 4)[1] == quarter_15th_to_14th(2026, 1)[0]


def test_days_and_quarter_of():
    assert days(date(2025, 10, 1), date(2025, 12, 31)) == quarter(2025, 4)
    with pytest.raises(ValueError):
        days(date(2025, 10, 2), date(2025, 10, 1))
    # 31/12/2025 17:30 UTC is already 01/01/2026 in Vietnam.
    assert quarter_of(datetime(2025, 12, 31, 17, 30, tzinfo=UTC)) == (2026, 1)
    assert quarter_of(datetime(2025, 12, 31, 16, 59, tzinfo=UTC)) == (2025, 4)


# -- figures ----------------------------------------------------------------------------------


async def test_dossier_figures_of_a_quarter(db):
    await seed(db)
    figures = (await report_of(db)).dossiers
    assert figures == Q4_DOSSIERS
    assert figures.received_new == 8  # B1-B7, B9
    assert figures.received_in_person_and_postal == 5  # B2, B3, B4, B7, B9
    assert figures.total == 12
    assert (figures.solved, figures.withdrawn_or_returned, figures.in_progress) == (5, 2, 5)
    # Everything received or carried over is solved, withdrawn/returned or still in progress.
    assert figures.received_new + figures.carried_over == (
        figures.solved + figures.withdrawn_or_returned + figures.in_progress
    )


async def test_one_quarter_carries_over_into_the_next(db):
    await seed(db)
    q3 = (await report_of(db, Q3_START, AT_START)).dossiers
    assert q3 == Q3_DOSSIERS
    assert q3.total == q3.solved + q3.withdrawn_or_returned + q3.in_progress
    assert q3.in_progress == Q4_DOSSIERS.carried_over


async def test_a_past_period_does_not_change_when_dossiers_move_on(db):
    await seed(db)
    before = await report_of(db)
    async with db.write_transaction() as session:
        # After the end: B4 and B5 are returned, F2 is answered, A4 gets a new due date event.
        later = vn(1, 8, year=2026)
        for code, status in (("B4", "returned_late"), ("B5", "returned_early")):
            session.add(DossierEvent(unit=UNIT, code=code, status=status, at=later))
            await session.execute(
                update(DossierRecord)
                .where(DossierRecord.unit == UNIT, DossierRecord.code == code)
                .values(status=status)
            )
        f2 = await session.scalar(select(Feedback.id).where(Feedback.submit_key == "k1"))
        session.add(
            FeedbackEvent(feedback_id=f2, at=later, actor="x", action="answer", status="answered")
        )
    after = await report_of(db)
    assert after == before


async def test_feedback_figures_of_a_quarter(db):
    await seed(db)
    assert (await report_of(db)).feedback == Q4_FEEDBACK


async def test_search_figures_group_misses_and_name_procedures(db):
    await seed(db)
    catalogue = bundled_commune()[0]
    searches = (await report_of(db, catalogue=catalogue)).searches
    assert searches.searches == 10  # 2 + 1 + 2 + 1 + 2 + 1 + 1 in Q4, this unit
    assert searches.missed == 4  # "cấp sổ đỏ" x2, "cap so do", "xin giấy phép karaoke"
    assert [(p.code, p.count) for p in searches.top_procedures] == [
        (BIRTH, 3),  # 2 + 1 (at the start instant)
        (MARRIAGE, 2),
        (DEATH, 1),  # the other unit's 9 and Q3's 5 are not counted
    ]
    assert searches.top_procedures[0].name == catalogue.get(BIRTH).name
    assert [(m.query, m.count) for m in searches.top_missed] == [
        ("cấp sổ đỏ", 3),  # with and without accents, in its most frequent spelling
        ("xin giấy phép karaoke", 1),
    ]
    shorter = (await report_of(db, top=1)).searches
    assert len(shorter.top_procedures) == len(shorter.top_missed) == 1
    assert shorter.top_procedures[0].name is None  # no catalogue given


async def test_an_empty_period_is_all_zeros(db):
    await seed(db)
    report = await report_of(db, *quarter(2024, 1))
    assert report.dossiers == DossierFigures()
    assert report.feedback == FeedbackFigures()
    assert report.searches.top_procedures == report.searches.top_missed == []


async def test_a_period_must_be_aware_and_forward(sqlite_db):
    with pytest.raises(ValueError):
        await report_of(sqlite_db, datetime(2025, 10, 1), datetime(2026, 1, 1))
    with pytest.raises(ValueError):
        await report_of(sqlite_db, END, START)


def test_missed_spellings_tie_to_the_one_with_accents():
    grouped = group_missed([("cap so do", 1), ("Cấp sổ đỏ!", 1), ("khai sinh", 3)], 10)
    assert [(m.query, m.count, m.key) for m in grouped] == [
        ("khai sinh", 3, "khai sinh"),
        ("Cấp sổ đỏ!", 2, "cap so do"),
    ]


# -- exports ----------------------------------------------------------------------------------

VI = {
    "Administrative procedure dossiers": "Hồ sơ thủ tục hành chính",
    "Solved late": "Giải quyết quá hạn",
    "Carried over from the previous period": "Từ kỳ trước chuyển sang",
    "Feedback and proposals": "Phản ánh, kiến nghị",
    "of which overdue": "Trong đó quá hạn",
    "Searches with no result": "Tra cứu không có kết quả",
    "Results of handling administrative procedures": "Kết quả giải quyết thủ tục hành chính",
    "{unit}, from {first} to {last}": "{unit}, từ ngày {first} đến ngày {last}",
    "{text}: {count} searches": "{text}: {count} lượt",
    "Section": "Mục",
    "Figure": "Chỉ tiêu",
    "Value": "Số liệu",
}


class FakeVietnamese:
    """A translator with a few of the report's strings (the real ones live in locales/)."""

    locale = "vi"

    def __call__(self, message: str, **params: object) -> str:
        text = VI.get(message, message)
        return text.format(**params) if params else text


@pytest.fixture
def report():
    """Q4's figures as the database gives them, without a database."""
    from bot.staff.report import MissedSearch, Report, SearchedProcedure, SearchFigures

    return Report(
        unit=UNIT,
        start=AT_START,
        end=AT_END,
        dossiers=Q4_DOSSIERS,
        feedback=Q4_FEEDBACK,
        searches=SearchFigures(
            searches=1234,
            missed=4,
            top_procedures=[SearchedProcedure(BIRTH, "Thủ tục đăng ký khai sinh", 3)],
            top_missed=[MissedSearch("cấp sổ đỏ", 3, "cap so do")],
        ),
    )


def test_rows_cover_every_figure(report):
    rows = report.rows()
    labels = {label: value for section, label, value in rows if section not in LITERAL_SECTIONS}
    assert labels["Dossiers to handle: total"] == 12
    assert labels["New: in person and by post"] == 5
    assert labels["Solved late"] == 1
    assert labels["of which overdue"] == 3
    assert (TOP_SEARCHED, "Thủ tục đăng ký khai sinh (1.000110)", 3) in rows
    assert (MISSED, "cấp sổ đỏ", 3) in rows


def test_csv_has_a_bom_and_vietnamese_labels(report):
    text = to_csv(report, FakeVietnamese())
    assert text.startswith("\ufeff")
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")
    lines = text[1:].splitlines()
    assert lines[0] == "Mục,Chỉ tiêu,Số liệu"
    assert "01/10/2025" in lines[2] and "31/12/2025" in lines[3]  # the last day, not the end
    assert "Hồ sơ thủ tục hành chính,Giải quyết quá hạn,1" in lines
    assert "Hồ sơ thủ tục hành chính,Từ kỳ trước chuyển sang,4" in lines
    assert '"Phản ánh, kiến nghị",Trong đó quá hạn,3' in lines  # quoted: it holds a comma
    assert "Tra cứu không có kết quả,cấp sổ đỏ,3" in lines  # the citizen's words as typed
    assert "1234" in text  # plain numbers, no thousands separator
    assert ";" in to_csv(report, FakeVietnamese(), delimiter=";").splitlines()[0]


def test_docx_opens_and_holds_the_numbers(report):
    from docx import Document

    document = Document(io.BytesIO(to_docx(report, FakeVietnamese(), "Xã An Bình")))
    texts = [p.text for p in document.paragraphs]
    assert texts[0] == "Kết quả giải quyết thủ tục hành chính"
    assert "Xã An Bình, từ ngày 01/10/2025 đến ngày 31/12/2025" in texts
    dossiers, feedback = document.tables
    cells = {row.cells[0].text: row.cells[1].text for row in dossiers.rows}
    assert cells["Giải quyết quá hạn"] == "1"
    assert cells["Từ kỳ trước chuyển sang"] == "4"
    assert cells["Dossiers to handle: total"] == "12"
    assert cells["In progress: overdue"] == "3"
    assert len(dossiers.rows) == 1 + len(Q4_DOSSIERS.lines())
    assert {row.cells[0].text: row.cells[1].text for row in feedback.rows}[
        "Trong đó quá hạn"
    ] == "3"
    assert "Thủ tục đăng ký khai sinh (1.000110): 3 lượt" in texts
    assert "cấp sổ đỏ: 3 lượt" in texts
    assert any("1.234" in text for text in texts)  # Vietnamese thousands separator


def test_docx_of_an_empty_period(report):
    from docx import Document

    empty = replace(report, searches=replace(report.searches, top_procedures=[], top_missed=[]))
    document = Document(io.BytesIO(to_docx(empty, FakeVietnamese(), "Xã An Bình")))
    assert [p.text for p in document.paragraphs].count("None in this period.") == 2


def test_chart_data_and_a_safe_svg(report):
    charts = chart_data(report)
    assert dict(charts["received"]["bars"])["New: online"] == 3
    assert dict(charts["finished"]["bars"])["Solved late"] == 1
    assert charts["missed"] == {
        "title": MISSED,
        "bars": [("cấp sổ đỏ", 3)],
        "translate": False,
    }
    svg = bar_chart_svg([("<script>alert(1)</script>", 3), ("khai sinh " * 10, 0)], "A & B")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    widths = [rect.get("width") for rect in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert widths[1] == "0" and int(widths[0]) > 0
    assert ET.fromstring(bar_chart_svg([], "empty")) is not None


def test_report_end_is_excluded_from_the_last_day(report):
    assert report.first_day == date(2025, 10, 1)
    assert report.last_day == date(2025, 12, 31)
    assert replace(report, end=AT_END + timedelta(hours=1)).last_day == date(2026, 1, 1)
