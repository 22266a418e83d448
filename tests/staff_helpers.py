"""Helpers for the staff dashboard's tests: accounts, seeded feedback, and an HTTP client that
logs in through the login form and posts forms with the page's CSRF token."""

from __future__ import annotations

import contextlib
import itertools
import re

from argon2 import PasswordHasher
from sqlalchemy import select

from bot.app import build_web_app
from bot.feedback.attachments import AttachmentStore
from bot.feedback.service import FeedbackService
from bot.staff import auth
from bot.staff.web import LANG_COOKIE
from bot.storage.models import Feedback

UNIT_A, UNIT_B = "xa-an-binh", "xa-binh-minh"
PASSWORD = "Mật khẩu đủ dài 2026!"
# 1 pass over 1 MiB: fast in tests; production uses argon2-cffi's defaults (see auth.hasher).
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 500
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
_KEYS = itertools.count(1)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def use_cheap_hasher(monkeypatch) -> None:
    monkeypatch.setattr(auth, "hasher", CHEAP)


async def add_user(
    db, username: str, *, role: str = auth.OFFICER, unit: str = UNIT_A, name: str = ""
) -> int:
    user = await auth.create_user(
        db, username, PASSWORD, role=role, unit=unit, display_name=name, actor="test"
    )
    return user.id


def unit_service(engine, unit: str) -> FeedbackService:
    """The feedback service of ``unit``, wired like the bot's own."""
    base = engine.services.feedback
    return FeedbackService(
        unit=unit,
        store=base.store,
        calendar=base.calendar,
        handling_days=base.handling_days,
        render_answer=base.render_answer,
    )


async def add_feedback(
    engine,
    content: str,
    *,
    unit: str = UNIT_A,
    key: str | None = None,
    kind: str = "report",
    topic: str = "other",
    files: tuple[tuple[str, bytes], ...] = (),
    channel: str = "telegram",
    conversation_id: str = "4242",
    locale: str = "vi",
    phone: str | None = None,
) -> str:
    """Submit a feedback as the chat flow would; return its tracking code."""
    store: AttachmentStore = engine.services.attachments
    stored = []
    for filename, data in files:
        saved = store.put(data)
        stored.append(
            {"sha256": saved.sha256, "filename": filename, "mime": saved.mime, "size": saved.size}
        )
    draft = {
        "key": key or f"draft-{next(_KEYS)}",
        "kind": kind,
        "topic": topic,
        "content": content,
        "files": stored,
    }
    if phone:
        draft |= {"phone": phone, "consent_at": "2026-01-15T01:30:00+00:00"}
    async with engine.db.write_transaction() as session:
        row, _ = await unit_service(engine, unit).submit(
            session, draft, channel=channel, conversation_id=conversation_id, locale=locale
        )
        return row.tracking_code


async def feedback_row(db, code: str) -> Feedback:
    async with db.session() as session:
        return await session.scalar(select(Feedback).where(Feedback.tracking_code == code))


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


class StaffClient:
    """The aiohttp test client of the bot's web app, as an officer's browser (English UI, so
    the assertions do not depend on the Vietnamese catalogue)."""

    def __init__(self, client) -> None:
        self.client = client
        self.csrf = ""
        client.session.cookie_jar.update_cookies({LANG_COOKIE: "en"})

    @classmethod
    async def open(cls, aiohttp_client, engine) -> StaffClient:
        return cls(await aiohttp_client(build_web_app(engine.services.settings, engine)))

    async def login(self, username: str, password: str = PASSWORD, *, expect: int = 303):
        page = await self.client.get("/staff/login")
        response = await self.client.post(
            "/staff/login",
            data={"csrf": csrf_of(await page.text()), "username": username, "password": password},
            allow_redirects=False,
        )
        assert response.status == expect, await response.text()
        if expect == 303:
            self.csrf = csrf_of(await (await self.client.get("/staff/")).text())
        return response

    async def get(self, path: str, **kwargs):
        return await self.client.get(path, allow_redirects=False, **kwargs)

    async def page(self, path: str) -> str:
        response = await self.get(path)
        assert response.status == 200, (path, response.status)
        return await response.text()

    async def post(self, path: str, data: dict | None = None, *, csrf: bool = True):
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        return await self.client.post(path, data=form, allow_redirects=False)


@contextlib.asynccontextmanager
async def staff_browser(engine, monkeypatch):
    """The bot's web app on a real port and a Chromium tab (Vietnamese, 1280×900, downloads
    allowed); a page error or a console error (a CSP violation shows there) fails the test."""
    from aiohttp.test_utils import TestServer

    from bot.app import build_web_app
    from tests.conftest import skip_or_fail
    from tests.test_browser import CHROMIUM, LAUNCH_ARGS

    if not CHROMIUM:
        skip_or_fail("Debian package chromium is not installed")
    from playwright.async_api import async_playwright

    use_cheap_hasher(monkeypatch)
    async with TestServer(build_web_app(engine.services.settings, engine)) as server:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
            )
            context = await browser.new_context(
                locale="vi-VN", viewport={"width": 1280, "height": 900}, accept_downloads=True
            )
            tab = await context.new_page()
            problems: list[str] = []
            tab.on("pageerror", lambda exc: problems.append(str(exc)))
            tab.on(
                "console", lambda m: m.type == "error" and problems.append(f"{m.text} {m.location}")
            )
            yield server, tab
            await browser.close()
            assert not problems, problems
