"""The dashboard's figures, dossiers, catalogue and search-misses pages, through the web app
(aiohttp's test client, logged in as an officer of a unit) on SQLite and PostgreSQL: the report
figures of a small dataset worked out by hand and their CSV and .docx downloads, the unit's
desk and procedures (administrators only), a file uploaded, previewed and applied, a dossier's
status changed and pushed to its follower, a synonym added from a missed search. Another
unit's dossier or synonym is "not found"; what citizens typed stays text."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from docx import Document
from markupsafe import escape
from sqlalchemy import func, select, update

from bot.catalogue import CatalogueStore
from bot.dossiers.model import VN_TZ
from bot.dossiers.notifier import DossierNotifier
from bot.staff import auth, tools, web_catalogue
from bot.staff.report import quarter, quarter_of
from bot.storage.models import (
    CatalogueProcedure,
    DossierEvent,
    DossierRecord,
    Feedback,
    FeedbackEvent,
    OutboxMessage,
    SearchLogEntry,
    StaffAudit,
    UnitProfile,
    UnitSynonym,
)
from handlers.dossier_card import change_notice
from tests.conftest import Chat, make_engine
from tests.staff_helpers import (
    UNIT_A,
    UNIT_B,
    StaffClient,
    add_feedback,
    add_user,
    unit_service,
    use_cheap_hasher,
)
from tests.test_staff_tools import portal_record, write_jsonl

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> giá vàng'
CODE1 = "000.00.15.H26-260115-0001"
CODE2 = "000.00.15.H26-260115-0002"
CODE3 = "000.00.15.H26-260115-0003"
MISSED = "bé mới chào đời"  # no word of it is in a procedure name of the commune catalogue
BIRTH = "Thủ tục đăng ký khai sinh"
_FIGURE = re.compile(r'<th scope="row">([^<]*)</th><td class="num">([^<]*)</td>')
_MAIN = re.compile(r"<main>.*</main>", re.S)
_ALERT = re.compile(r'role="alert"[^>]*>([^<]*)<')


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch) -> None:
    use_cheap_hasher(monkeypatch)


@pytest.fixture(autouse=True)
def private_uploads(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(web_catalogue, "UPLOADS", tmp_path / "uploads")


async def logged_in(aiohttp_client, engine, username: str, **account) -> StaffClient:
    await add_user(engine.db, username, **account)
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login(username)
    return browser


def main_of(page: str) -> str:
    return _MAIN.search(page).group(0)


def alert(page: str) -> str:
    found = _ALERT.search(page)
    return html.unescape(found.group(1)) if found else ""


async def audit_actions(db) -> list[tuple[str, str, str]]:
    async with db.session() as session:
        rows = await session.scalars(select(StaffAudit).order_by(StaffAudit.id))
        return [
            (r.action, r.target, r.detail) for r in rows if r.action not in ("login", "user_create")
        ]


def vn(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=VN_TZ).astimezone(UTC)


async def add_dossier(db, unit, code, channel, received, due=None, history=()) -> None:
    """A dossier with its receipt event and then ``history`` [(status, at)]."""
    async with db.write_transaction() as session:
        session.add(
            DossierRecord(
                unit=unit,
                code=code,
                procedure_code="1.001193",
                received_at=received,
                channel=channel,
                due_at=due,
                status=history[-1][0] if history else "received",
            )
        )
        session.add(DossierEvent(unit=unit, code=code, status="received", at=received))
        for status, at in history:
            session.add(DossierEvent(unit=unit, code=code, status=status, at=at))


async def log_search(db, query, at, *, unit=UNIT_A, results=0, top=None) -> None:
    async with db.write_transaction() as session:
        session.add(
            SearchLogEntry(
                channel="web", unit=unit, query=query, results=results, top_code=top, created_at=at
            )
        )


# -- every page --------------------------------------------------------------------------------


async def test_every_page_renders_for_an_officer(aiohttp_client, engine) -> None:
    browser = await logged_in(aiohttp_client, engine, "lan")
    dashboard = await browser.page("/staff/")
    for url, label in [
        ("/staff/dossiers", "Dossiers"),
        ("/staff/figures", "Figures"),
        ("/staff/search-misses", "Search misses"),
        ("/staff/catalogue", "Catalogue"),
    ]:
        assert f'<a href="{url}">{label}</a>' in dashboard
        page = await browser.page(url)
        assert f'<a href="{url}" aria-current="page">{label}</a>' in page
    # The unit of the officer has no profile: the catalogue page says so, and has no forms.
    catalogue = await browser.page("/staff/catalogue")
    assert "has no profile in the catalogue yet" in catalogue
    assert "/staff/catalogue/upload" not in catalogue


async def test_every_form_needs_its_csrf_token(aiohttp_client, engine) -> None:
    browser = await logged_in(aiohttp_client, engine, "hoa", role=auth.UNIT_ADMIN)
    for url in [
        "/staff/dossiers/status",
        "/staff/catalogue/profile",
        "/staff/catalogue/applied",
        "/staff/catalogue/upload",
        "/staff/search-misses/synonyms",
        "/staff/search-misses/synonyms/1/remove",
    ]:
        response = await browser.post(url, {"code": CODE1, "phrase": "x"}, csrf=False)
        assert response.status == 403, url
    assert await audit_actions(engine.db) == []


# -- figures -----------------------------------------------------------------------------------


async def seed_figures(engine) -> None:
    """Q1 2026 of unit A (and unit B's rows, never counted). By hand:

    dossiers  new: online D1, D5; in person D2; postal D3 -> 4; carried over: D4 -> total 5;
              solved early D1, late D2; withdrawn D5; in progress: D3 within time (due after
              the end), D4 overdue (due 05/01).   4 + 1 = 2 + 1 + 2.
    feedback  received F1, F2; handled F2 (answered 16/03); in progress F1, overdue (due 20/02).
    searches  3: "khai sinh" twice found 1.001193; the XSS text found nothing.
    """
    db = engine.db
    await add_dossier(
        db,
        UNIT_A,
        "D1",
        "online",
        vn(2026, 1, 10),
        vn(2026, 1, 20),
        [("returned_early", vn(2026, 1, 15))],
    )
    await add_dossier(
        db,
        UNIT_A,
        "D2",
        "in_person",
        vn(2026, 2, 5),
        vn(2026, 2, 10),
        [("returned_late", vn(2026, 2, 20))],
    )
    await add_dossier(
        db,
        UNIT_A,
        "D3",
        "postal",
        vn(2026, 3, 1),
        vn(2026, 4, 30),
        [("in_progress", vn(2026, 3, 2))],
    )
    await add_dossier(db, UNIT_A, "D4", "in_person", vn(2025, 12, 20), vn(2026, 1, 5))
    await add_dossier(
        db, UNIT_A, "D5", "online", vn(2026, 3, 15), None, [("withdrawn", vn(2026, 3, 16))]
    )
    await add_dossier(db, UNIT_B, "D1", "online", vn(2026, 1, 10), vn(2026, 1, 20))

    f1 = await add_feedback(engine, "Đèn đường hỏng")
    f2 = await add_feedback(engine, "Đề nghị mở cửa thứ Bảy", kind="proposal")
    await add_feedback(engine, "Ở xã khác", unit=UNIT_B)
    async with db.write_transaction() as session:
        await unit_service(engine, UNIT_A).answer(session, f2, "Đã mở", "staff:lan")
    async with db.write_transaction() as session:
        for code, created, due, answered in [
            (f1, vn(2026, 2, 10), vn(2026, 2, 20), None),
            (f2, vn(2026, 3, 15), vn(2026, 3, 30), vn(2026, 3, 16)),
        ]:
            row = await session.scalar(select(Feedback).where(Feedback.tracking_code == code))
            row.created_at, row.due_at = created, due
            await session.execute(
                update(FeedbackEvent)
                .where(FeedbackEvent.feedback_id == row.id, FeedbackEvent.action != "answer")
                .values(at=created)
            )
            if answered:
                await session.execute(
                    update(FeedbackEvent)
                    .where(FeedbackEvent.feedback_id == row.id, FeedbackEvent.action == "answer")
                    .values(at=answered)
                )

    await log_search(db, "khai sinh", vn(2026, 1, 5), results=2, top="1.001193")
    await log_search(db, "Khai sinh", vn(2026, 2, 5), results=3, top="1.001193")
    await log_search(db, XSS, vn(2026, 3, 5))
    await log_search(db, "khai sinh", vn(2026, 4, 1, 0), results=1, top="1.001193")  # Q2
    await log_search(db, "khai sinh", vn(2026, 2, 5), unit=UNIT_B, results=1, top="1.001193")


Q1_2026 = {
    "Dossiers to handle: total": "5",
    "New in the period": "4",
    "New: online": "2",
    "New: in person and by post": "2",
    "New: in person": "1",
    "New: by public postal service": "1",
    "Carried over from the previous period": "1",
    "Solved: total": "2",
    "Solved early": "1",
    "Solved on time": "0",
    "Solved late": "1",
    "Withdrawn or returned: total": "1",
    "Withdrawn by the applicant": "1",
    "Returned as not meeting the conditions": "0",
    "In progress at the end of the period: total": "2",
    "In progress: within time": "1",
    "In progress: overdue": "1",
    "Received in the period": "2",
    "Handled in the period": "1",
    "Being handled at the end of the period": "1",
    "of which overdue": "1",
    "Searches in the period": "3",
    "Searches that found nothing": "1",
}


async def test_the_figures_page_shows_the_quarter_as_the_report_counts_it(
    aiohttp_client, engine
) -> None:
    await seed_figures(engine)
    browser = await logged_in(aiohttp_client, engine, "lan")
    page = await browser.page("/staff/figures?year=2026&quarter=1")
    assert dict(_FIGURE.findall(page)) == Q1_2026
    assert "Quarter 1/2026: from 01/01/2026 to 31/03/2026" in page
    assert "Thủ tục đăng ký khai sinh (1.001193): <strong>2</strong>" in page  # most searched
    # Charts are inline SVG with escaped labels; what a citizen typed never becomes markup.
    main = main_of(page)
    assert main.count("<svg ") >= 5 and "<title>Dossiers received</title>" in main
    assert "<script" not in main and "<img" not in main
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in main
    assert 'href="/staff/figures.csv?year=2026&amp;quarter=1"' in page
    assert 'href="/staff/figures.docx?year=2026&amp;quarter=1"' in page
    assert 'href="/staff/figures?year=2025&amp;quarter=4" rel="prev"' in page

    # Any run of days: January only (D1 new online; D4 carried over, overdue at the end).
    january = dict(
        _FIGURE.findall(await browser.page("/staff/figures?from=2026-01-01&to=2026-01-31"))
    )
    assert (january["New: online"], january["Carried over from the previous period"]) == ("1", "1")
    assert january["Solved early"] == "1" and january["In progress: overdue"] == "1"
    assert "Custom period: from 01/01/2026 to 31/01/2026" in await browser.page(
        "/staff/figures?from=2026-01-01&to=2026-01-31"
    )


async def test_the_figures_default_to_the_current_quarter(aiohttp_client, engine) -> None:
    browser = await logged_in(aiohttp_client, engine, "lan")
    year, q = quarter_of(datetime.now(UTC))
    start, end = quarter(year, q)
    page = await browser.page("/staff/figures")
    assert f"Quarter {q}/{year}: from {start:%d/%m/%Y} to " in page
    assert f'href="/staff/figures.csv?year={year}&amp;quarter={q}"' in page
    for bad in ("from=2026-03-01&to=2026-02-01", "from=x&to=2026-02-01", "year=2026&quarter=5"):
        page = await browser.page(f"/staff/figures?{bad}")
        assert alert(page), bad
        assert f"Quarter {q}/{year}" in page


async def test_the_figures_download_as_csv_and_docx(aiohttp_client, engine) -> None:
    await seed_figures(engine)
    browser = await logged_in(aiohttp_client, engine, "lan")
    response = await browser.get("/staff/figures.csv?year=2026&quarter=1")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="figures-{UNIT_A}-20260101-20260331.csv"'
    )
    body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["Section", "Figure", "Value"]
    assert ["Period", "From", "01/01/2026"] in rows and ["Period", "To", "31/03/2026"] in rows
    values = {label: value for _section, label, value in rows[4:]}
    assert {label: values[label] for label in Q1_2026} == Q1_2026
    assert ["Searches with no result", XSS, "1"] in rows
    assert ["Most searched procedures", "Thủ tục đăng ký khai sinh (1.001193)", "2"] in rows

    response = await browser.get("/staff/figures.docx?year=2026&quarter=1")
    assert response.status == 200
    assert response.headers["Content-Type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Content-Disposition"].endswith('-20260101-20260331.docx"')
    document = Document(io.BytesIO(await response.read()))
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"{UNIT_A}, from 01/01/2026 to 31/03/2026" in text
    assert f"{XSS}: 1 searches" in text
    dossiers = {row.cells[0].text: row.cells[1].text for row in document.tables[0].rows}
    assert dossiers["New: online"] == "2" and dossiers["In progress: overdue"] == "1"
    feedback = {row.cells[0].text: row.cells[1].text for row in document.tables[1].rows}
    assert feedback["Handled in the period"] == "1"

    assert await audit_actions(engine.db) == [
        ("figures_export", "2026-Q1", "csv"),
        ("figures_export", "2026-Q1", "docx"),
    ]
    custom = await browser.get("/staff/figures.csv?from=2026-01-01&to=2026-01-31")
    assert custom.headers["Content-Disposition"].endswith('-20260101-20260131.csv"')
    assert (await audit_actions(engine.db))[-1] == (
        "figures_export",
        "2026-01-01..2026-01-31",
        "csv",
    )


# -- the catalogue page ------------------------------------------------------------------------


@pytest.fixture
async def commune(db):
    """The bundled commune catalogue and unit "demo" in the database, and the bot reading them."""
    await CatalogueStore(db, "commune").ensure_bundled()
    engine = make_engine(db)
    await engine.services.reload_catalogue()
    return engine


async def stored_unit(db, unit: str = "demo") -> dict:
    async with db.session() as session:
        return (await session.get(UnitProfile, unit)).document


async def test_only_an_administrator_changes_the_unit(aiohttp_client, commune) -> None:
    engine = commune
    officer = await logged_in(aiohttp_client, engine, "lan", unit="demo")
    page = await officer.page("/staff/catalogue")
    assert "Xã Minh Họa" in page and "Only an administrator" in page
    assert "Save the unit" not in page and 'enctype="multipart/form-data"' not in page
    before = await stored_unit(engine.db)
    for url, form in [
        ("/staff/catalogue/profile", {"address": "Thôn Đông", "hours": "", "hotline": ""}),
        ("/staff/catalogue/applied", {"shown": "1.001193"}),
        ("/staff/catalogue/upload", {"kind": "catalogue"}),
    ]:
        response = await officer.post(url, form)
        assert response.status == 403, url
    assert await stored_unit(engine.db) == before

    admin = await logged_in(aiohttp_client, engine, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    response = await admin.post(
        "/staff/catalogue/profile",
        {"address": "Bộ phận Một cửa, UBND xã", "hours": "7:30–17:00", "hotline": "0234 3822 123"},
    )
    assert (
        response.status == 303 and response.headers["Location"] == "/staff/catalogue?done=profile"
    )
    saved = await stored_unit(engine.db)
    assert (saved["address"], saved["hotline"]) == ("Bộ phận Một cửa, UBND xã", "0234 3822 123")
    assert engine.services.unit.hotline == "0234 3822 123"  # the bot reloaded it
    assert "The unit&#39;s details were saved." in await admin.page("/staff/catalogue?done=profile")

    # A refusal is shown in the page with what was typed, and saves nothing.
    response = await admin.post(
        "/staff/catalogue/profile",
        {"address": "<b>Thôn Tây</b>", "hours": "", "hotline": "gọi 1022"},
    )
    page = await response.text()
    assert response.status == 200 and "only digits, spaces" in alert(page)
    assert 'value="&lt;b&gt;Thôn Tây&lt;/b&gt;"' in page
    assert (await stored_unit(engine.db))["address"] == "Bộ phận Một cửa, UBND xã"
    assert [a for a, _, _ in await audit_actions(engine.db)] == ["unit.profile"]


async def test_saving_one_page_of_procedures_keeps_the_others(aiohttp_client, commune) -> None:
    engine = commune
    admin = await logged_in(aiohttp_client, engine, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    before = set((await stored_unit(engine.db))["applied_codes"])
    page = await admin.page("/staff/catalogue")
    shown = re.findall(r'name="shown" value="([^"]+)"', page)
    ticked = set(re.findall(r'name="applied" value="([^"]+)"[^>]*checked', page))
    assert len(shown) == web_catalogue.PAGE_SIZE and ticked == before & set(shown)
    assert "Page 1 of 7" in page  # 319 procedures
    elsewhere = before - set(shown)
    assert elsewhere, "some applied procedures are on other pages"

    # Untick the first ticked one, tick the first unticked one.
    untick = sorted(ticked)[0]
    tick = next(code for code in shown if code not in ticked)
    form = aiohttp.FormData()
    for field, value in [("csrf", admin.csrf), ("back", "page=1")]:
        form.add_field(field, value)
    for code in shown:
        form.add_field("shown", code)
    for code in (ticked - {untick}) | {tick}:
        form.add_field("applied", code)
    response = await admin.client.post("/staff/catalogue/applied", data=form, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/staff/catalogue?page=1&done=applied#procedures"
    after = set((await stored_unit(engine.db))["applied_codes"])
    assert after == (before - {untick}) | {tick}
    assert elsewhere <= after
    assert engine.services.unit.applied_codes == sorted(after)
    [(action, target, detail)] = await audit_actions(engine.db)
    assert (action, detail) == ("unit.applied", f"added: {tick}; removed: {untick}")

    # The filter finds procedures by name without accents, and by code.
    found = await admin.page("/staff/catalogue?q=khai+sinh")
    assert "1.001193" in found and BIRTH in found
    assert re.findall(r'name="shown" value="([^"]+)"', found) == re.findall(
        r'name="shown" value="([^"]+)"', await admin.page("/staff/catalogue?q=KHAI+SINH")
    )
    assert "1.001193" in await admin.page("/staff/catalogue?q=001193")
    only = await admin.page("/staff/catalogue?applied=1")
    assert f"{len(after)} procedures found." in only


async def upload(browser: StaffClient, kind: str, name: str, data: bytes):
    form = aiohttp.FormData()
    form.add_field("csrf", browser.csrf)
    form.add_field("kind", kind)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await browser.client.post("/staff/catalogue/upload", data=form, allow_redirects=False)


async def test_a_catalogue_file_is_previewed_then_applied(
    aiohttp_client, commune, tmp_path
) -> None:
    engine = commune
    admin = await logged_in(aiohttp_client, engine, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    path = write_jsonl(
        tmp_path / "moi.jsonl",
        [
            portal_record("1.999001", "Cấp giấy chứng nhận nuôi ong mật"),
            portal_record("x", "<script>alert(1)</script>"),
            portal_record("1.001193", "Thủ tục đăng ký khai sinh"),
        ],
    )
    response = await upload(admin, "catalogue", "Danh mục mới.JSONL", path.read_bytes())
    assert response.status == 303
    preview_url = response.headers["Location"]
    token = preview_url.rsplit("/", 1)[-1]
    assert re.fullmatch(r"/staff/catalogue/upload/[A-Za-z0-9_-]{24}", preview_url)

    page = await admin.page(preview_url)
    assert "Preview of Danh mục mới.jsonl" in page
    rows = re.findall(r'<td class="num">(\d+)</td>\s*<td>([^<]*)</td>', page)
    assert ("2", "ma_thu_tuc") in rows  # the bad record, with its line
    counts = dict(_FIGURE.findall(page))
    assert (counts["New to the catalogue"], counts["Changed"], counts["Unchanged"]) == (
        "1",
        "1",
        "0",
    )
    assert counts["Left out: problems"] == "1"
    assert "<script>alert" not in page
    async with engine.db.session() as session:
        assert await session.get(CatalogueProcedure, ("commune", "1.999001")) is None
    assert engine.services.catalogue.get("1.999001") is None
    assert await audit_actions(engine.db) == []

    # Nobody else may use the token; a made-up one is the same "not found".
    other = await logged_in(aiohttp_client, engine, "mai", unit="demo", role=auth.UNIT_ADMIN)
    assert (await other.get(preview_url)).status == 404
    assert (await other.post(f"{preview_url}/apply")).status == 404
    assert (await admin.get("/staff/catalogue/upload/" + "A" * 24)).status == 404
    assert (await admin.get("/staff/catalogue/upload/..%2F..%2Fetc")).status == 404

    response = await admin.post(f"{preview_url}/apply", {"skip_invalid": "1"})
    assert response.status == 303
    assert response.headers["Location"] == (
        "/staff/catalogue?done=catalogue&added=1&updated=1&unchanged=0"
    )
    assert "The catalogue was imported: 1 added, 1 updated, 0 unchanged." in await admin.page(
        response.headers["Location"]
    )
    assert engine.services.catalogue.get("1.999001").name == "Cấp giấy chứng nhận nuôi ong mật"
    assert engine.services.search.search("nuôi ong")[0].code == "1.999001"
    assert [(a, t) for a, t, _ in await audit_actions(engine.db)] == [
        ("catalogue.import", "commune")
    ]
    # The upload is gone once applied.
    assert (await admin.get(preview_url)).status == 404
    assert not (web_catalogue.UPLOADS / token).exists()


async def test_an_upload_is_checked_before_it_is_kept(aiohttp_client, commune, monkeypatch) -> None:
    admin = await logged_in(aiohttp_client, commune, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    response = await upload(admin, "catalogue", "notes.txt", b"1.999001")
    assert response.status == 200 and ".jsonl, .ndjson, .json, .csv, .xlsx" in alert(
        await response.text()
    )
    response = await upload(admin, "dossiers", "export.xlsx", b"PK")
    assert ".csv" in alert(await response.text())
    monkeypatch.setattr(web_catalogue, "MAX_UPLOAD_BYTES", 1000)
    response = await upload(admin, "catalogue", "big.jsonl", b"{}\n" * 1000)
    assert "larger than" in alert(await response.text())
    assert not any(web_catalogue.UPLOADS.iterdir())
    # A file the importer cannot read: the reason, without the server's path.
    monkeypatch.setattr(web_catalogue, "MAX_UPLOAD_BYTES", 20 * 2**20)
    response = await upload(admin, "dossiers", "export.csv", "Mã hồ sơ;Trạng thái\n".encode())
    page = await admin.page(response.headers["Location"])
    assert "required columns missing" in alert(page)
    assert str(web_catalogue.UPLOADS) not in page and "Apply" not in page


async def test_an_upload_may_be_larger_than_a_chat_message(aiohttp_client, commune) -> None:
    admin = await logged_in(aiohttp_client, commune, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    records = [portal_record(f"1.9{n:05d}", f"Thủ tục số {n}") for n in range(1000)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    assert len(data.encode()) > 300 * 1024
    response = await upload(admin, "catalogue", "lon.jsonl", data.encode())
    assert response.status == 303
    counts = dict(_FIGURE.findall(await admin.page(response.headers["Location"])))
    assert counts["Procedures read"] == "1000"
    # Any other form keeps the application's limit.
    big = {"address": "x" * 300 * 1024, "hours": "", "hotline": ""}
    assert (await admin.post("/staff/catalogue/profile", big)).status == 413


async def test_a_dossier_file_is_previewed_then_applied(aiohttp_client, commune) -> None:
    engine = commune
    admin = await logged_in(aiohttp_client, engine, "hoa", unit="demo", role=auth.UNIT_ADMIN)
    export = (
        "Mã hồ sơ,Mã thủ tục,Ngày tiếp nhận,Hình thức,Trạng thái\n"
        f"{CODE1},1.001193,15/01/2026 08:30,Trực tuyến,Đã tiếp nhận\n"
        f"{CODE2},1.001193,31/02/2026,Trực tiếp,Đang xử lý\n"
        f"{CODE3},1.001193,16/01/2026,Trực tiếp,Chờ bổ sung\n"
    )
    response = await upload(admin, "dossiers", "export.csv", export.encode())
    page = await admin.page(response.headers["Location"])
    assert re.search(r'<td class="num">3</td>\s*<td class="preview">[^<]*31/02/2026', page)
    counts = dict(_FIGURE.findall(page))
    assert (counts["Rows read"], counts["New dossiers"], counts["Left out: problems"]) == (
        "3",
        "2",
        "1",
    )
    async with engine.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(DossierRecord)) == 0
    response = await admin.post(response.headers["Location"] + "/apply")
    assert response.status == 303
    assert "2 new, 0 status changes, 1 rows left out" in await admin.page(
        response.headers["Location"]
    )
    async with engine.db.session() as session:
        units = list(await session.scalars(select(DossierRecord.unit)))
    assert units == ["demo", "demo"]
    assert [a for a, _, _ in await audit_actions(engine.db)] == ["dossiers.import"]


# -- dossiers ----------------------------------------------------------------------------------


async def test_a_status_change_reaches_the_citizen_who_follows(aiohttp_client, db) -> None:
    engine = make_engine(db, dossier_source="local", push_channels=["test"], unit=UNIT_A)
    received = datetime.now(UTC) - timedelta(days=1)
    await add_dossier(db, UNIT_A, CODE1, "online", received)
    await add_dossier(db, UNIT_B, CODE2, "online", received)
    service = engine.services.dossiers
    async with db.write_transaction() as session:
        dossier = await tools.find_dossier(db, UNIT_A, CODE1)
        assert await service.subscribe(session, "test", "c1", dossier, "vi")
    notifier = DossierNotifier(
        service, interval=60, channels=frozenset({"test"}), render=change_notice
    )
    assert await notifier.run_once() == 0

    browser = await logged_in(aiohttp_client, engine, "lan")
    page = await browser.page(f"/staff/dossiers?code={CODE1.lower()}")
    assert f"Dossier {CODE1}" in page and "<strong>Received</strong>" in page
    assert "1 chat(s) follow this dossier" in page
    assert '<option value="received" selected>' in page

    note = "Bổ sung tờ khai <b>bản chính</b>"
    response = await browser.post(
        "/staff/dossiers/status", {"code": CODE1, "status": "needs_documents", "note": note}
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/staff/dossiers?code={CODE1}&done=status"
    page = await browser.page(response.headers["Location"])
    assert "The status was changed." in page and "Waiting for additional documents" in page
    assert "Bổ sung tờ khai &lt;b&gt;bản chính&lt;/b&gt;" in page and "<b>bản" not in page

    assert await notifier.run_once() == 1
    async with db.session() as session:
        [queued] = (await session.scalars(select(OutboxMessage))).all()
    assert (queued.channel, queued.conversation_id) == ("test", "c1")
    assert CODE1 in queued.replies[0]["text"] and note in queued.replies[0]["text"]
    assert await audit_actions(db) == [
        ("dossier.status", CODE1, f"needs_documents: {note}"),
    ]

    # A refusal is shown on the dossier's page; nothing changes.
    response = await browser.post(
        "/staff/dossiers/status", {"code": CODE1, "status": "paused", "note": "x" * 1001}
    )
    assert response.status == 200 and "longer than 1000" in alert(await response.text())
    response = await browser.post("/staff/dossiers/status", {"code": CODE1, "status": "lost"})
    assert "Unknown dossier status" in alert(await response.text())
    assert len((await tools.find_dossier(db, UNIT_A, CODE1)).history) == 2


async def test_another_units_dossier_is_not_found(aiohttp_client, engine) -> None:
    received = datetime.now(UTC) - timedelta(days=1)
    await add_dossier(engine.db, UNIT_B, CODE2, "online", received)
    browser = await logged_in(aiohttp_client, engine, "lan")
    theirs = main_of(await browser.page(f"/staff/dossiers?code={CODE2}"))
    unknown = main_of(await browser.page(f"/staff/dossiers?code={CODE3}"))
    assert "No dossier of this unit has the code" in theirs
    assert theirs.replace(CODE2, "CODE") == unknown.replace(CODE3, "CODE")
    for code in (CODE2, CODE3):
        response = await browser.post("/staff/dossiers/status", {"code": code, "status": "paused"})
        assert response.status == 404
    assert (await tools.find_dossier(engine.db, UNIT_B, CODE2)).status == "received"
    assert await audit_actions(engine.db) == []


# -- searches that found nothing ---------------------------------------------------------------


async def test_a_synonym_added_from_a_missed_search_helps_the_bot(aiohttp_client, commune) -> None:
    engine = commune
    chat = Chat(engine)
    await chat.say(MISSED)
    assert BIRTH not in chat.text
    browser = await logged_in(aiohttp_client, engine, "lan", unit="demo")
    page = await browser.page("/staff/search-misses")
    assert f"<li>{MISSED}</li>" in page
    assert f'name="phrase" value="{MISSED}"' in page

    # A synonym that would still find nothing is refused with the reason, and kept in the form.
    response = await browser.post(
        "/staff/search-misses/synonyms",
        {"phrase": "chào đời", "replacement": "giá vàng", "days": "30"},
    )
    page = await response.text()
    assert response.status == 200 and "would still find nothing" in alert(page)
    assert 'value="giá vàng"' in page and 'name="days" value="30"' in page

    response = await browser.post(
        "/staff/search-misses/synonyms",
        {"phrase": "chào đời", "replacement": "đăng ký khai sinh", "days": "30"},
    )
    assert response.status == 303
    assert response.headers["Location"] == "/staff/search-misses?days=30&done=added"
    await chat.say(MISSED)
    assert BIRTH in chat.text  # the bot's search uses it at once
    page = await browser.page(response.headers["Location"])
    assert "The synonym was added" in page and "1.001193" in page  # what it finds now
    async with engine.db.session() as session:
        synonym = await session.scalar(select(UnitSynonym))
    assert (synonym.unit, synonym.phrase, synonym.created_by) == ("demo", "chào đời", "lan")

    # Another unit's synonym cannot be removed from here.
    theirs = await tools.add_synonym(
        engine.db,
        "xa-khac",
        "lọt lòng",
        "đăng ký khai sinh",
        "x",
        catalogue=engine.services.catalogue,
    )
    assert (await browser.post(f"/staff/search-misses/synonyms/{theirs.id}/remove")).status == 404
    response = await browser.post(f"/staff/search-misses/synonyms/{synonym.id}/remove")
    assert response.status == 303
    await chat.say(MISSED)
    assert BIRTH not in chat.text
    assert [a for a, _, _ in await audit_actions(engine.db)] == [
        "synonym.add",
        "synonym.add",
        "synonym.remove",
    ]


async def test_what_citizens_typed_stays_text_on_the_misses_page(aiohttp_client, engine) -> None:
    now = datetime.now(UTC)
    await log_search(engine.db, XSS, now - timedelta(hours=2))
    await log_search(engine.db, XSS, now - timedelta(hours=1))
    await log_search(engine.db, "đèn đường", now, unit=UNIT_B)
    await log_search(engine.db, "cũ lắm rồi", now - timedelta(days=100))
    for query in ("be moi chao doi", "be moi chao doi", "Bé mới chào đời"):
        await log_search(engine.db, query, now - timedelta(minutes=5))
    browser = await logged_in(aiohttp_client, engine, "lan")
    main = main_of(await browser.page("/staff/search-misses"))
    assert "<script" not in main and "<img" not in main
    assert escape(XSS) in main
    assert 'name="phrase" value="&lt;script&gt;' in main
    # The form offers the spelling with diacritics: so written, the synonym matches both.
    assert "<li>be moi chao doi</li>" in main and 'name="phrase" value="Bé mới chào đời"' in main
    assert main.count('<td class="num">2</td>') == 1  # the XSS text, twice
    assert "đèn đường" not in main and "cũ lắm rồi" not in main
    assert "cũ lắm rồi" in await browser.page("/staff/search-misses?days=120")
