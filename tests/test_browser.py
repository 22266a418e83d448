"""The web chat in a real browser: Debian's Chromium driven by Playwright (never downloaded)."""

from __future__ import annotations

import shutil

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_web_app
from bot.channels.web import COOKIE, conversation_id
from bot.core import Button, Reply
from bot.outbox import enqueue
from tests.conftest import skip_or_fail

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def page(engine, tmp_path):
    if not CHROMIUM:
        skip_or_fail("Debian package chromium is not installed")
    from playwright.async_api import async_playwright

    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
            )
            context = await browser.new_context(
                locale="vi-VN", viewport={"width": 390, "height": 800}
            )
            tab = await context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            # Poll for pushed messages every second (the page's own default is 10 s).
            await tab.goto(str(server.make_url("/?poll=1")))
            yield tab
            await browser.close()
            assert not errors, errors


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_greeting_menu_language_switch_and_typing(page, tmp_path) -> None:
    bot = page.locator(".msg.bot")
    await bot.first.wait_for()
    assert (await bot.first.inner_text()).startswith("Xin chào! Tôi là trợ lý ảo")

    await page.get_by_role("button", name="🌐 Ngôn ngữ / Language").click()
    await page.locator("#log").get_by_role("button", name="English").click()
    await page.get_by_text("From now on I will reply in English.").wait_for()
    assert await page.locator("#input").get_attribute("placeholder") == "Type your question…"
    assert await page.locator("#send").inner_text() == "Send"

    await page.locator("#input").fill("xin chào")
    await page.locator("#input").press("Enter")
    await page.locator(".msg.me", has_text="xin chào").wait_for()
    await page.get_by_text("Hello! I am the virtual assistant").wait_for()
    await page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_html_typed_by_a_citizen_is_shown_as_text(page) -> None:
    await page.locator(".msg.bot").first.wait_for()
    await page.locator("#input").fill("<img src=x onerror=alert(1)><b>đậm</b>")
    await page.locator("#input").press("Enter")
    mine = page.locator(".msg.me")
    await mine.wait_for()
    assert await mine.inner_text() == "<img src=x onerror=alert(1)><b>đậm</b>"
    assert await page.locator(".msg.me img, .msg.me b").count() == 0


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_a_pushed_message_appears_with_working_buttons(page, engine) -> None:
    await page.locator(".msg.bot").first.wait_for()
    await page.locator("#input").fill("xin chào")
    await page.locator("#input").press("Enter")
    await page.locator(".msg.bot").nth(1).wait_for()
    token = next(c["value"] for c in await page.context.cookies() if c["name"] == COOKIE)

    answer = "Cán bộ trả lời: <b>hồ sơ</b> đã sẵn sàng."
    async with engine.db.write_transaction() as session:
        enqueue(
            session,
            "web",
            conversation_id(token),
            [Reply(answer, [Button("🌐 Ngôn ngữ / Language", "lang:choose")])],
            "feedback_answer",
        )
    pushed = page.locator(".msg.bot", has_text="Cán bộ trả lời:")
    await pushed.wait_for(timeout=10_000)
    assert (await pushed.inner_text()).startswith(answer)
    assert await page.locator(".msg.bot b").count() == 0
    await pushed.get_by_role("button", name="🌐 Ngôn ngữ / Language").click()
    await page.locator("#log").get_by_role("button", name="English").wait_for()
