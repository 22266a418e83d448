"""The staff dashboard in a real browser (Debian's Chromium through Playwright, never
downloaded): log in, filter, read a feedback full of HTML that must stay text, answer another
one and see the answer reach the citizen's web chat. A screenshot of the inbox is saved to
test-artifacts/staff-inbox.png for review."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.web import COOKIE, conversation_id
from bot.storage.models import OutboxMessage
from tests.staff_helpers import (
    PASSWORD,
    UNIT_B,
    add_feedback,
    add_user,
    staff_browser,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


@pytest.fixture
async def desk(engine, monkeypatch):
    """The bot's web app on a real port, and a browser tab; page errors fail the test."""
    async with staff_browser(engine, monkeypatch) as (server, tab):
        yield server, tab


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_an_officer_logs_in_filters_reads_and_answers(desk, engine) -> None:
    server, page = desk
    unit = engine.services.settings.unit  # the unit the bot's web chat speaks for
    await add_user(engine.db, "lan", unit=unit, name="Nguyễn Thị Lan")
    chat_token = secrets.token_urlsafe(24)  # the citizen's web chat cookie
    lamp = await add_feedback(
        engine,
        "Đèn đường thôn 3 hỏng từ tuần trước,\ntối lắm.",
        unit=unit,
        topic="procedure",
        channel="web",
        conversation_id=conversation_id(chat_token),
        phone="0912345678",
    )
    xss = await add_feedback(engine, XSS, unit=unit, conversation_id="t-1")
    idea = await add_feedback(
        engine, "Đề nghị mở thêm quầy tiếp dân buổi sáng thứ Bảy", unit=unit, kind="proposal"
    )
    hidden = await add_feedback(engine, "Phản ánh của xã khác", unit=UNIT_B)

    # Not logged in: the login page, in Vietnamese until asked for English.
    await page.goto(str(server.make_url("/staff/")))
    assert page.url.endswith("/staff/login")
    assert await page.get_attribute("html", "lang") == "vi"
    await page.get_by_role("link", name="English").click()
    await page.wait_for_url("**/staff/login")
    assert await page.get_attribute("html", "lang") == "en"
    await page.fill("input[name=username]", "lan")
    await page.fill("input[name=password]", PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/staff/")
    rows = page.locator("table.list tbody tr")
    await rows.first.wait_for()
    assert await rows.count() == 3
    assert await page.get_by_role("link", name=hidden).count() == 0

    # Filter by kind, then search words of the content.
    await page.select_option("select[name=kind]", "proposal")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**kind=proposal**")
    assert await rows.count() == 1 and idea in await rows.first.inner_text()
    await page.get_by_role("link", name="Clear the filters").click()
    await page.fill("input[name=q]", "đèn tối")
    await page.get_by_role("button", name="Filter").click()
    await page.wait_for_url("**q=**")
    assert await rows.count() == 1 and lamp in await rows.first.inner_text()
    await page.get_by_role("link", name="Clear the filters").click()

    # What a citizen wrote is text: nothing in it runs.
    await page.get_by_role("link", name=xss).click()
    await page.wait_for_url(f"**/staff/feedback/{xss}")
    assert await page.locator("#content").inner_text() == XSS
    assert await page.locator("#content img, #content script").count() == 0
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    await page.get_by_role("link", name="Back to the list").click()
    await page.wait_for_url("**/staff/")
    assert await page.evaluate("typeof window.__pwned") == "undefined"

    # Answer a feedback from a template; the answer reaches the citizen's web chat.
    await page.get_by_role("link", name=lamp).click()
    await page.get_by_role("link", name="Received, being handled").click()
    answer = page.locator("textarea[name=text]")
    assert (await answer.input_value()).startswith("Bộ phận Một cửa đã tiếp nhận")
    text = "Xã đã thay bóng đèn ở thôn 3 sáng nay. Cảm ơn anh/chị đã báo."
    await answer.fill(text)
    await page.get_by_role("button", name="Send the answer").click()
    await page.get_by_text("The answer was recorded").wait_for()
    assert text in await page.locator("ol.history").inner_text()

    async with engine.db.session() as session:
        queued = list(await session.scalars(select(OutboxMessage)))
    assert [(m.channel, m.conversation_id) for m in queued] == [
        ("web", conversation_id(chat_token))
    ]
    assert text in queued[0].replies[0]["text"]
    async with aiohttp.ClientSession(cookies={COOKIE: chat_token}) as citizen:
        async with citizen.get(server.make_url("/api/updates")) as response:
            messages = (await response.json())["messages"]
    assert len(messages) == 1 and text in messages[0]["text"] and lamp in messages[0]["text"]

    # The inbox as the unit sees it (in Vietnamese), saved for review.
    await page.get_by_role("link", name="Tiếng Việt").click()
    await page.wait_for_url(f"**/staff/feedback/{lamp}?done=answer")
    await page.locator("header nav a").first.click()
    await page.wait_for_url("**/staff/")
    assert await page.get_attribute("html", "lang") == "vi"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "staff-inbox.png"), full_page=True)

    # Log out: the dashboard is closed again.
    await page.locator("form[action='/staff/logout'] button").click()
    await page.wait_for_url("**/staff/login")
    await page.goto(str(server.make_url(f"/staff/feedback/{lamp}")))
    assert "/staff/login" in page.url
