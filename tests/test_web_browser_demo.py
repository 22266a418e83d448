"""A demonstration of the web chat in a real browser (Debian's Chromium, never downloaded), on a
phone-sized screen and on a desktop: menu, procedure card, its documents, a feedback with a photo
through to the tracking code, the header's language switch; the typing dots; the keyboard; the
snippet that embeds the chat in a commune's site; and axe-core's accessibility rules.

Screenshots of every step go to test-artifacts/web/ (git-ignored), named by viewport and step.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from bot.app import build_web_app
from bot.channels.web import COOKIE, TOKEN_HEADER, UI_STRINGS
from bot.feedback.model import KINDS, TOPICS
from bot.i18n import translator
from tests.conftest import make_engine, skip_or_fail
from tests.test_browser import CHROMIUM, LAUNCH_ARGS

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "web"
VIEWPORTS = {"mobile": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 800}}
t = translator("vi")
pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)


def jpeg_file(tmp_path: Path, name: str = "hien-truong.jpg") -> Path:
    path = tmp_path / name
    image = Image.new("RGB", (320, 240), (30, 120, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    path.write_bytes(out.getvalue())
    return path


@asynccontextmanager
async def browser_page(viewport: str, **context_options):
    if not CHROMIUM:
        skip_or_fail("Debian package chromium is not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            context = await browser.new_context(
                locale="vi-VN", viewport=VIEWPORTS[viewport], **context_options
            )
            context.set_default_timeout(10_000)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on(
                "console",
                lambda msg: errors.append(msg.text) if msg.type == "error" else None,
            )
            yield page
            assert not errors, errors
        finally:
            await browser.close()


class Shots:
    """Screenshots named by viewport and step; on a phone, also a check for sideways scrolling."""

    def __init__(self, page, viewport: str, prefix: str = "") -> None:
        self.page, self.viewport, self.prefix, self.n = page, viewport, prefix, 0
        SHOTS.mkdir(parents=True, exist_ok=True)

    async def __call__(self, step: str) -> None:
        self.n += 1
        name = f"{self.prefix}{self.viewport}-{self.n:02d}-{step}.png"
        await self.page.screenshot(path=str(SHOTS / name), full_page=False)
        await no_sideways_scroll(self.page)


async def no_sideways_scroll(page) -> None:
    widths = await page.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    assert widths[0] <= widths[1], f"horizontal overflow: {widths}"


async def axe(target, label: str) -> dict[str, int]:
    """Run axe-core on a page or frame; fail on serious or critical violations."""
    if not AXE.is_file():
        return {}  # reported by test_axe_core_is_installed; the rest of the flow still runs
    # The page's CSP allows no inline script, so add_script_tag(path=...) is refused; an
    # evaluation through the DevTools protocol is not subject to the page's CSP.
    await target.evaluate(AXE.read_text(encoding="utf-8"))
    violations = await target.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")),
            }));
        }"""
    )
    counts: dict[str, int] = {}
    for violation in violations:
        counts[violation["impact"]] = counts.get(violation["impact"], 0) + 1
    print(f"axe {label}: {json.dumps(counts)} {[v['id'] for v in violations]}")
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
    return counts


def test_axe_core_is_installed(databases) -> None:
    if not AXE.is_file():
        skip_or_fail("node_modules/axe-core is missing: run `npm ci` (or `make npm`)")


def bot_says(page, text: str):
    return page.locator("#log .msg.bot", has_text=text).last


async def press(page, label: str) -> None:
    """Press a button of the latest bot message that has it."""
    await (
        page.locator("#log .msg.bot")
        .filter(has=page.get_by_role("button", name=label, exact=True))
        .last.get_by_role("button", name=label, exact=True)
        .click()
    )


async def say(page, text: str) -> None:
    await page.locator("#input").fill(text)
    await page.locator("#input").press("Enter")


@pytest.mark.parametrize("viewport", ["mobile", "desktop"])
async def test_a_demonstration_from_menu_to_tracking_code(engine, tmp_path, viewport) -> None:
    demo = viewport == "mobile"  # the demo page on a phone, the ordinary page on a desktop
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        async with browser_page(viewport) as page:
            shot = Shots(page, viewport)
            await page.goto(str(server.make_url("/?poll=1" + ("&demo=1" if demo else ""))))
            await bot_says(page, "Xin chào! Tôi là trợ lý ảo").wait_for()
            banner = page.locator("#demo-banner")
            if demo:
                assert await banner.inner_text() == t(UI_STRINGS["demo_banner"])
            else:
                assert await banner.count() == 0
            await shot("start")

            await press(page, "🔎 Tìm thủ tục")
            await bot_says(page, "Bạn cần làm thủ tục gì?").wait_for()
            await say(page, "lam giay khai sinh")
            card = bot_says(page, "Mã thủ tục: 1.001193")
            await card.wait_for()
            assert (await card.inner_text()).startswith("📋 Thủ tục đăng ký khai sinh")
            await shot("procedure-card")

            await card.get_by_role("button", name="📄 Giấy tờ cần chuẩn bị").click()
            await bot_says(page, "Giấy tờ cần nộp").wait_for()
            await shot("documents")

            if demo:
                await say(page, "DEMO-000000-0001")
                await bot_says(page, "DEMO-000000-0001").wait_for()
                assert "Không tìm thấy" not in await bot_says(page, "DEMO-000000-0001").inner_text()
                await shot("demo-dossier")
            await axe(page, f"{viewport} after the procedure card")

            # A feedback with a photo, chosen through the page's own attach button.
            await press(page, t("✉️ Send feedback"))
            await press(page, t(KINDS["report"].label))
            await press(page, t(TOPICS["other"]))
            await say(page, "Đèn đường trước nhà văn hóa thôn 3 bị hỏng đã hai tuần.")
            await bot_says(page, "ảnh hoặc tệp PDF").wait_for()
            async with page.expect_file_chooser() as chooser:
                await page.get_by_role("button", name=t(UI_STRINGS["attach"])).click()
            await (await chooser.value).set_files(jpeg_file(tmp_path))
            chosen = page.locator("#chosen li", has_text="hien-truong.jpg")
            await chosen.wait_for()
            await shot("photo-chosen")
            await page.locator("#send").click()
            await bot_says(page, "Đã thêm “hien-truong.jpg” (1/5)").wait_for()
            assert await page.locator("#chosen li").count() == 0
            # The citizen's own photo is shown from the file (a blob: URL the CSP allows).
            thumb = page.locator('#log .msg.me img[alt="hien-truong.jpg"]')
            await thumb.wait_for()
            assert await thumb.evaluate("img => img.complete && img.naturalWidth") == 320
            await shot("photo-sent")

            await press(page, "✅ Xong")
            await press(page, "🙈 Gửi ẩn danh")
            await press(page, "📨 Gửi")
            done = bot_says(page, "Mã theo dõi của bạn là PA-")
            await done.wait_for()
            assert re.search(r"PA-\d{4}-\d+", await done.inner_text())
            await shot("tracking-code")
            await axe(page, f"{viewport} after the feedback" + (" (demo banner)" if demo else ""))

            # The header's language switch.
            english = page.locator('header .lang[data-lang="en"]')
            await english.click()
            await bot_says(page, "From now on I will reply in English.").wait_for()
            assert await page.evaluate("document.documentElement.lang") == "en"
            assert await english.get_attribute("aria-pressed") == "true"
            placeholder = await page.locator("#input").get_attribute("placeholder")
            assert placeholder == "Type your question…"
            assert await page.locator("#attach").get_attribute("aria-label") == UI_STRINGS["attach"]
            if demo:
                assert await banner.inner_text() == UI_STRINGS["demo_banner"]
            await shot("english")

            # Demo chats keep their own history in the tab: the ordinary page starts afresh.
            stored = await page.evaluate(
                "() => [sessionStorage.getItem('motcua-history-demo'), "
                "sessionStorage.getItem('motcua-history')]"
            )
            assert (stored[0] is not None, stored[1] is None) == (demo, demo)


async def test_typing_dots_show_while_waiting_and_rest_for_reduced_motion(engine) -> None:
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        async with browser_page("mobile", reduced_motion="reduce") as page:
            await page.goto(str(server.make_url("/")))
            await bot_says(page, "Xin chào!").wait_for()
            release = asyncio.Event()

            async def hold(route) -> None:
                await release.wait()
                await route.continue_()

            await page.route("**/api/messages", hold)
            await say(page, "xin chào")
            typing = page.locator("#typing")
            await typing.wait_for(state="visible")
            assert await typing.locator(".dots span").count() == 3
            # The dots are hidden from screen readers; the status text says it in words.
            assert await typing.locator(".visually-hidden").inner_text() == t(UI_STRINGS["typing"])
            assert await page.locator(".typing-status").get_attribute("role") == "status"
            animation = await typing.locator(".dots span").first.evaluate(
                "el => getComputedStyle(el).animationName"
            )
            assert animation == "none"  # prefers-reduced-motion: no bouncing
            await Shots(page, "mobile", "typing-")("dots")
            release.set()
            await typing.wait_for(state="hidden")
            assert await page.locator("#log .msg.bot").count() == 2

        async with browser_page("desktop") as page:  # and they do move otherwise
            await page.goto(str(server.make_url("/")))
            await bot_says(page, "Xin chào!").wait_for()
            animation = await page.locator("#typing .dots span").first.evaluate(
                "el => getComputedStyle(el).animationName"
            )
            assert animation == "dot"


async def test_the_page_works_from_the_keyboard(engine) -> None:
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        async with browser_page("desktop") as page:
            await page.goto(str(server.make_url("/")))
            await bot_says(page, "Xin chào!").wait_for()
            await page.locator("body").focus()

            async def focused() -> dict:
                return await page.evaluate(
                    """() => {
                        const el = document.activeElement;
                        const style = getComputedStyle(el);
                        return { id: el.id, lang: el.dataset.lang || null, text: el.textContent,
                                 outline: style.outlineStyle, width: style.outlineWidth };
                    }"""
                )

            await page.keyboard.press("Tab")
            assert (await focused())["lang"] == "vi"
            await page.keyboard.press("Tab")
            now = await focused()
            assert now["lang"] == "en"
            assert now["outline"] == "solid" and now["width"] == "3px"  # a visible focus ring
            await page.keyboard.press("Space")
            await bot_says(page, "From now on I will reply in English.").wait_for()

            # Tab on through the conversation's buttons; Enter presses one.
            for _ in range(12):
                await page.keyboard.press("Tab")
                if (await focused())["text"] == "🔎 Find a procedure":
                    break
            else:
                pytest.fail("the conversation's buttons are not reachable with Tab")
            await page.keyboard.press("Enter")
            await bot_says(page, "What do you need to do?").wait_for()
            # The composer's controls come last: attach, text box, send.
            order = []
            for _ in range(40):
                await page.keyboard.press("Tab")
                order.append((await focused())["id"])
                if order[-1] == "send":
                    break
            assert order[-3:] == ["attach", "input", "send"]


def communes_site(snippet: dict) -> web.Application:
    """A commune's own site, on another origin, with the one-line snippet."""

    async def index(_request: web.Request) -> web.Response:
        return web.Response(
            text=(
                '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                "<title>UBND xã Minh Hòa</title></head><body><main><h1>UBND xã Minh Hòa</h1>"
                "<p>Trang thông tin điện tử của xã.</p></main>"
                f'<script src="{snippet["src"]}" data-demo="1" defer></script>'
                "</body></html>"
            ),
            content_type="text/html",
        )

    async def no_icon(_request: web.Request) -> web.Response:
        return web.Response(status=204)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", no_icon)
    return app


@pytest.mark.parametrize("viewport", ["mobile", "desktop"])
async def test_the_snippet_embeds_the_chat_in_a_communes_site(db, viewport) -> None:
    snippet: dict = {}
    # "localhost" and "127.0.0.1" are different sites: the frame is a cross-site one, where
    # the browser withholds the chat's SameSite=Strict cookie.
    async with TestServer(communes_site(snippet)) as host:
        site = f"http://localhost:{host.port}"
        engine = make_engine(db, web_embed_origins=[site])
        async with TestServer(build_web_app(engine.services.settings, engine)) as chat:
            snippet["src"] = str(chat.make_url("/static/embed.js"))
            async with browser_page(viewport) as page:
                shot = Shots(page, viewport, "embed-")
                sent: list[dict] = []

                def record(request) -> None:
                    if request.url.endswith("/api/messages"):
                        sent.append(request.headers)

                page.on("request", record)
                await page.goto(site + "/")
                launcher = page.get_by_role("button", name=t(UI_STRINGS["embed_open"]))
                await launcher.wait_for()
                assert await launcher.get_attribute("aria-expanded") == "false"
                await shot("closed")
                await axe(page, f"{viewport} commune site with the launcher")

                await launcher.click()
                panel = page.get_by_role("dialog", name=t(UI_STRINGS["title"]))
                await panel.wait_for()
                frame = page.frame_locator(f'iframe[title="{t(UI_STRINGS["title"])}"]')
                await frame.locator(".msg.bot", has_text="Xin chào!").wait_for()
                await frame.locator("#demo-banner").wait_for()  # data-demo="1"
                await frame.locator("#input").fill("DEMO-000000-0001")
                await frame.locator("#input").press("Enter")
                found = frame.locator(".msg.bot", has_text="DEMO-000000-0001")
                await found.wait_for()
                assert "Không tìm thấy" not in await found.inner_text()
                await shot("open")

                # The chat kept its token itself (in localStorage where the browser allows it
                # in a frame, else for the page's life) and sent it in a header, not a cookie.
                tokens = [h.get(TOKEN_HEADER.lower()) for h in sent]
                assert tokens[0] == "" and len(tokens) >= 2 and len(tokens[-1]) >= 16
                assert all("cookie" not in h for h in sent)
                assert not [c for c in await page.context.cookies() if c["name"] == COOKIE]
                inner = next(f for f in page.frames if f.url.startswith(str(chat.make_url("/"))))
                await axe(inner, f"{viewport} embedded chat")

                # Escape inside the chat closes the panel and gives the focus back.
                await frame.locator("#input").press("Escape")
                await panel.wait_for(state="hidden")
                assert await launcher.get_attribute("aria-expanded") == "false"
                assert (
                    await page.evaluate(
                        "() => { const root = document.getElementById('motcua-chat').shadowRoot;"
                        " return root.activeElement && root.activeElement.tagName; }"
                    )
                    == "BUTTON"
                )
                # Opened again: the same conversation, the close button works too.
                await launcher.click()
                await frame.locator(".msg.bot", has_text="DEMO-000000-0001").wait_for()
                await page.get_by_role("button", name=t(UI_STRINGS["embed_close"])).click()
                await panel.wait_for(state="hidden")
