"""The figures page in a real browser (Debian's Chromium through Playwright, never downloaded):
log in, open the figures of the current quarter, download them as CSV, and save a screenshot of
the page (in Vietnamese, as the unit sees it) to test-artifacts/staff-figures.png for review.
The page must run without a console error: its charts are inline SVG the CSP allows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.staff.report import quarter, quarter_of
from bot.storage.models import DossierEvent, DossierRecord, SearchLogEntry
from tests.staff_helpers import PASSWORD, add_feedback, add_user, staff_browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
XSS = "<script>window.__pwned=1</script> giá vàng hôm nay"


@pytest.fixture
async def desk(engine, monkeypatch):
    """The bot's web app on a real port, and a browser tab; page errors fail the test."""
    async with staff_browser(engine, monkeypatch) as (server, tab):
        yield server, tab


async def seed(engine, unit: str) -> None:
    """A quarter's worth of a small commune: dossiers of every kind, feedback, searches."""
    start = quarter(*quarter_of(datetime.now(UTC)))[0].astimezone(UTC)
    day = timedelta(days=1)
    dossiers = [
        # (channel, received, due, [(status, at)])
        ("online", start + 2 * day, start + 9 * day, [("returned_early", start + 5 * day)]),
        ("online", start + 3 * day, start + 10 * day, [("returned_on_time", start + 10 * day)]),
        ("online", start + 4 * day, start + 11 * day, [("returned_early", start + 6 * day)]),
        ("in_person", start + 2 * day, start + 5 * day, [("returned_late", start + 8 * day)]),
        ("in_person", start + 6 * day, start + 20 * day, [("returned_on_time", start + 20 * day)]),
        ("in_person", start + 7 * day, start + 8 * day, [("withdrawn", start + 7 * day)]),
        ("in_person", start + 8 * day, start + 40 * day, [("in_progress", start + 9 * day)]),
        ("postal", start + 9 * day, start + 12 * day, [("rejected", start + 10 * day)]),
        ("postal", start + 10 * day, start + 200 * day, []),
        ("in_person", start - 20 * day, start - 2 * day, []),  # carried over, overdue
        ("online", start - 10 * day, start + 3 * day, [("returned_on_time", start + 3 * day)]),
    ]
    async with engine.db.write_transaction() as session:
        for n, (channel, received, due, history) in enumerate(dossiers, start=1):
            code = f"000.00.15.H26-{received:%y%m%d}-{n:04d}"
            status = history[-1][0] if history else "received"
            session.add(
                DossierRecord(
                    unit=unit,
                    code=code,
                    procedure_code="1.001193",
                    received_at=received,
                    channel=channel,
                    due_at=due,
                    status=status,
                )
            )
            session.add(DossierEvent(unit=unit, code=code, status="received", at=received))
            for status, at in history:
                session.add(DossierEvent(unit=unit, code=code, status=status, at=at))
        for n, (query, results, top) in enumerate(
            [
                ("khai sinh", 3, "1.001193"),
                ("đăng ký khai sinh cho con", 2, "1.001193"),
                ("kết hôn", 2, "1.000894"),
                ("chứng thực bản sao", 1, "2.000815"),
                (XSS, 0, None),
                ("bé mới chào đời", 0, None),
                ("be moi chao doi", 0, None),
            ]
        ):
            session.add(
                SearchLogEntry(
                    channel="web",
                    unit=unit,
                    query=query,
                    results=results,
                    top_code=top,
                    created_at=start + (n + 1) * day,
                )
            )
    for text in ("Đèn đường thôn 3 hỏng", "Đề nghị mở thêm quầy buổi sáng thứ Bảy"):
        await add_feedback(engine, text, unit=unit)


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_an_officer_reads_and_downloads_the_figures(desk, engine) -> None:
    server, page = desk
    unit = engine.services.settings.unit  # "demo": its name is in the bundled catalogue
    await add_user(engine.db, "lan", unit=unit, name="Nguyễn Thị Lan")
    await seed(engine, unit)
    year, q = quarter_of(datetime.now(UTC))

    await page.goto(str(server.make_url("/staff/login")))
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/staff/login")
    await page.fill("input[name=username]", "lan")
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/staff/")
    await page.locator("header nav").get_by_role("link", name="Figures").click()
    await page.wait_for_url("**/staff/figures")
    assert f"Quarter {q}/{year}" in await page.locator("h2#period").inner_text()
    row = page.locator("table.figures tr", has_text="New: online")
    assert (await row.locator("td").inner_text()).strip() == "3"
    assert await page.locator("figure.chart svg").count() >= 5
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    async with page.expect_download() as info:
        await page.get_by_role("link", name="CSV", exact=True).click()
    download = await info.value
    assert download.suggested_filename == (
        f"figures-{unit}-{quarter(year, q)[0]:%Y%m%d}-"
        f"{quarter(year, q)[1] - timedelta(days=1):%Y%m%d}.csv"
    )
    text = Path(await download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert ["Administrative procedure dossiers", "New: online", "3"] in rows
    assert ["Searches with no result", XSS, "1"] in rows

    # The page as the unit sees it (in Vietnamese), saved for review.
    await page.get_by_role("link", name="Tiếng Việt").click()
    await page.wait_for_url("**/staff/figures")
    assert await page.get_attribute("html", "lang") == "vi"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "staff-figures.png"), full_page=True)
