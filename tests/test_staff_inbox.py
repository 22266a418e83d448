"""The feedback inbox of the staff dashboard: filters and search, one feedback with its files
and history, assign / answer / close / reopen (the answer reaches the citizen's chat through the
outbox), answer templates, the audit log, and unit isolation tested by URL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import func, select, update

from bot.i18n import po_path
from bot.staff import auth
from bot.storage.models import (
    Feedback,
    FeedbackAttachment,
    FeedbackEvent,
    OutboxMessage,
    StaffAudit,
    utcnow,
)
from tests.staff_helpers import (
    PDF,
    PNG,
    UNIT_B,
    StaffClient,
    add_feedback,
    add_user,
    feedback_row,
    unit_service,
    use_cheap_hasher,
)

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
_LISTED = re.compile(r'<a href="/staff/feedback/([A-Z]{2}-\d{4}-\d{6})">')
_MAIN = re.compile(r"<main>.*</main>", re.S)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch) -> None:
    use_cheap_hasher(monkeypatch)


@pytest.fixture
async def officer(aiohttp_client, engine) -> StaffClient:
    """Lan, an officer of unit A, logged in (English UI)."""
    await add_user(engine.db, "lan", name="Nguyễn Thị Lan")
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("lan")
    return browser


async def listed(browser: StaffClient, query: str = "") -> list[str]:
    return _LISTED.findall(await browser.page("/staff/" + (f"?{query}" if query else "")))


async def set_times(db, code: str, **values) -> None:
    async with db.write_transaction() as session:
        await session.execute(
            update(Feedback).where(Feedback.tracking_code == code).values(**values)
        )


# -- the list ----------------------------------------------------------------------------------


async def test_the_inbox_filters_and_searches_within_the_unit(officer, engine) -> None:
    lamp = await add_feedback(engine, "Đèn đường thôn 3 hỏng", topic="procedure")
    slow = await add_feedback(engine, "Cổng dịch vụ công chậm 100% lúc trưa", kind="proposal")
    late = await add_feedback(engine, "Cán bộ_tiếp dân vắng mặt", topic="conduct")
    done = await add_feedback(engine, "Đã được trả lời rồi")
    elsewhere = await add_feedback(engine, "Đèn đường ở xã khác", unit=UNIT_B)
    async with engine.db.write_transaction() as session:
        await unit_service(engine, "xa-an-binh").answer(session, done, "Đã sửa", "staff:lan")
    # Vietnam time is UTC+7: 16:59 UTC is 23:59 on the 9th, 18:00 UTC is 01:00 on the 10th.
    await set_times(engine.db, lamp, created_at=datetime(2026, 1, 9, 16, 59, tzinfo=UTC))
    await set_times(engine.db, late, created_at=datetime(2026, 1, 9, 18, 0, tzinfo=UTC))
    await set_times(engine.db, slow, created_at=datetime(2026, 1, 10, 3, 0, tzinfo=UTC))
    await set_times(engine.db, late, due_at=utcnow() - timedelta(days=1))
    await set_times(engine.db, done, due_at=utcnow() - timedelta(days=1))  # answered: not late

    assert set(await listed(officer)) == {lamp, slow, late, done}
    assert await listed(officer, "status=answered") == [done]
    assert set(await listed(officer, "status=received")) == {lamp, slow, late}
    assert await listed(officer, "kind=proposal") == [slow]
    assert await listed(officer, "topic=conduct") == [late]
    assert await listed(officer, "overdue=1") == [late]
    assert await listed(officer, "from=2026-01-10&to=2026-01-10") == [slow, late]
    assert await listed(officer, "to=2026-01-09") == [lamp]
    assert await listed(officer, "from=2026-01-10&to=2026-01-10&kind=report") == [late]
    # All the words of the content, in any order and case, or a tracking code; % and _ are
    # plain characters.
    assert await listed(officer, "q=%C4%91%C3%A8n+%C4%91%C6%B0%E1%BB%9Dng") == [lamp]  # đèn đường
    assert await listed(officer, "q=Đèn%20thôn%203") == [lamp]
    assert await listed(officer, "q=H%E1%BB%8ENG%20%C4%91%C3%A8n") == [lamp]  # HỎNG đèn
    assert await listed(officer, "q=đèn%20xe") == []
    assert await listed(officer, "q=100%25") == [slow]
    assert await listed(officer, "q=%25") == [slow]
    assert await listed(officer, "q=_") == [late]
    assert await listed(officer, f"q={lamp.lower()}") == [lamp]
    assert await listed(officer, f"q={elsewhere}") == []
    # Values that mean nothing are ignored rather than failing.
    assert len(await listed(officer, "status=bogus&from=yesterday&page=x&kind=%00")) == 4

    html = await officer.page("/staff/?status=received&overdue=1&q=c%C3%A1n")
    assert '<option value="received" selected>' in html
    assert 'name="overdue" value="1" checked' in html and 'value="cán"' in html
    assert "1 feedback found." in html and "Clear the filters" in html


async def test_the_inbox_pages_through_many_feedback(officer, engine) -> None:
    codes = [await add_feedback(engine, f"Phản ánh số {n}") for n in range(30)]
    first = await officer.page("/staff/?q=s%E1%BB%91")
    assert _LISTED.findall(first) == codes[::-1][:25]
    assert "Page 1 of 2" in first
    older = re.search(r'href="(/staff/\?[^"]+)" rel="next"', first).group(1)
    assert older == "/staff/?q=s%E1%BB%91&amp;page=2"
    second = await officer.page(older.replace("&amp;", "&"))
    assert _LISTED.findall(second) == codes[::-1][25:]
    assert 'rel="prev"' in second and 'rel="next"' not in second


async def test_what_a_citizen_wrote_is_shown_as_text(officer, engine) -> None:
    code = await add_feedback(
        engine, XSS + "\nDòng hai", files=(('"><img src=x onerror=alert(1)>.png', PNG),)
    )
    for html in (await officer.page("/staff/"), await officer.page(f"/staff/feedback/{code}")):
        assert "<script>window" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=" in html
    html = await officer.page(f"/staff/feedback/{code}")
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.png" in html
    assert "Dòng hai" in html


# -- one feedback --------------------------------------------------------------------------------


async def test_a_feedback_shows_its_content_files_and_history(officer, engine) -> None:
    code = await add_feedback(
        engine,
        "Đèn đường thôn 3 hỏng",
        files=(("đèn hỏng.png", PNG), ("đơn.pdf", PDF)),
        phone="0912345678",
        channel="web",
    )
    html = await officer.page(f"/staff/feedback/{code}")
    main = _MAIN.search(html).group(0)
    assert f"<h1>Feedback {code}</h1>" in main
    assert "Đèn đường thôn 3 hỏng" in main and "0912345678" in main and "(web)" in main
    files = re.findall(r'<a href="(/staff/files/\d+)">([^<]+)</a>', main)
    assert [name for _, name in files] == ["đèn hỏng.png", "đơn.pdf"]
    assert "sent by the citizen" in main
    assert 'option value="lan" selected' in main  # assign to me, by default

    photo = await officer.get(files[0][0])
    assert photo.status == 200 and await photo.read() == PNG
    assert photo.headers["Content-Type"] == "image/png"
    assert photo.headers["Content-Disposition"].startswith("inline;")
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in photo.headers["Content-Security-Policy"]
    pdf = await officer.get(files[1][0])
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"] == (
        "attachment; filename=\"__n.pdf\"; filename*=UTF-8''%C4%91%C6%A1n.pdf"
    )
    assert (await officer.get("/staff/files/999999")).status == 404


async def test_assign_answer_close_and_reopen(officer, engine) -> None:
    await add_user(engine.db, "minh")
    await add_user(engine.db, "khac", unit=UNIT_B)
    code = await add_feedback(engine, "Đèn đường hỏng", conversation_id="chat-77")
    url = f"/staff/feedback/{code}"

    response = await officer.post(f"{url}/assign", {"to": "khac"})  # not of this unit
    assert response.headers["Location"] == f"{url}?error=assignee"
    assert "Choose an officer of this unit." in await officer.page(f"{url}?error=assignee")
    response = await officer.post(f"{url}/assign", {"to": "minh"})
    assert response.status == 303 and response.headers["Location"] == f"{url}?done=assign"
    row = await feedback_row(engine.db, code)
    assert row.assigned_to == "minh" and row.status == "in_progress"

    assert (
        (await officer.post(f"{url}/answer", {"text": "  "}))
        .headers["Location"]
        .endswith("error=empty")
    )
    answer = "Đèn đã được thay <b>hôm nay</b>.\nCảm ơn anh/chị."
    response = await officer.post(f"{url}/answer", {"text": answer})
    assert response.headers["Location"] == f"{url}?done=answer"
    async with engine.db.session() as session:
        queued = list(await session.scalars(select(OutboxMessage)))
    assert [(m.channel, m.conversation_id, m.reason) for m in queued] == [
        ("telegram", "chat-77", "feedback_answer")
    ]
    assert answer in queued[0].replies[0]["text"] and code in queued[0].replies[0]["text"]

    assert (await officer.post(f"{url}/close", {"note": "Xong"})).status == 303
    assert (await feedback_row(engine.db, code)).status == "closed"
    html = await officer.page(f"{url}?done=close")
    assert "The feedback was closed." in html and f"{url}/answer" not in html
    response = await officer.post(f"{url}/answer", {"text": "Thêm"})
    assert response.headers["Location"] == f"{url}?error=closed"
    assert (
        (await officer.post(f"{url}/reopen", {"reason": ""}))
        .headers["Location"]
        .endswith("error=reason")
    )
    assert (await officer.post(f"{url}/reopen", {"reason": "Dân báo lại"})).status == 303
    assert (await feedback_row(engine.db, code)).status == "in_progress"

    async with engine.db.session() as session:
        events = list(await session.scalars(select(FeedbackEvent).order_by(FeedbackEvent.id)))
        audit = list(
            await session.scalars(
                select(StaffAudit)
                .where(StaffAudit.action.like("feedback%"))
                .order_by(StaffAudit.id)
            )
        )
    assert [(e.actor, e.action, e.status) for e in events] == [
        ("citizen", "create", "received"),
        ("staff:lan", "assign", "in_progress"),
        ("staff:lan", "answer", "answered"),
        ("staff:lan", "close", "closed"),
        ("staff:lan", "reopen", "in_progress"),
    ]
    assert [(a.username, a.unit, a.action, a.target) for a in audit] == [
        ("lan", "xa-an-binh", "feedback_assign", code),
        ("lan", "xa-an-binh", "feedback_answer", code),
        ("lan", "xa-an-binh", "feedback_close", code),
        ("lan", "xa-an-binh", "feedback_reopen", code),
    ]
    html = await officer.page(url)
    assert "Đèn đã được thay &lt;b&gt;hôm nay&lt;/b&gt;." in html and "Dân báo lại" in html


async def test_an_answer_template_fills_the_answer_in_the_citizens_language(
    officer, engine
) -> None:
    vi = await add_feedback(engine, "Hỏi thủ tục")
    en = await add_feedback(engine, "A question", locale="en", conversation_id="99")
    html = await officer.page(f"/staff/feedback/{vi}")
    links = re.findall(r'href="(/staff/feedback/[^"]+\?template=\w+)#answer"', html)
    assert len(links) >= 4
    filled = await officer.page(f"/staff/feedback/{vi}?template=received")
    textarea = re.search(r'<textarea name="text"[^>]*>([^<]*)</textarea>', filled).group(1)
    assert textarea.startswith("Bộ phận Một cửa đã tiếp nhận") and vi in textarea
    filled = await officer.page(f"/staff/feedback/{en}?template=received")
    textarea = re.search(r'<textarea name="text"[^>]*>([^<]*)</textarea>', filled).group(1)
    assert textarea.startswith("The one-stop desk has received your feedback " + en)
    empty = await officer.page(f"/staff/feedback/{vi}?template=nope")
    assert re.search(r'<textarea name="text"[^>]*></textarea>', empty)


# -- unit isolation, by URL ----------------------------------------------------------------------


async def test_an_officer_never_reaches_another_units_feedback_or_files(officer, engine) -> None:
    mine = await add_feedback(engine, "Của xã An Bình", files=(("a.png", PNG),))
    theirs = await add_feedback(
        engine, "Bí mật của xã Bình Minh", unit=UNIT_B, files=(("b.pdf", PDF),)
    )
    async with engine.db.session() as session:
        file_ids = dict(
            (
                await session.execute(
                    select(Feedback.tracking_code, FeedbackAttachment.id).join(
                        FeedbackAttachment, FeedbackAttachment.feedback_id == Feedback.id
                    )
                )
            ).all()
        )
    assert (await officer.get(f"/staff/files/{file_ids[mine]}")).status == 200
    assert theirs not in await officer.page("/staff/")
    assert await listed(officer, f"q={theirs}") == []

    unknown = "PA-2026-999999"
    for path in (f"/staff/feedback/{theirs}", f"/staff/files/{file_ids[theirs]}"):
        response = await officer.get(path)
        assert response.status == 404, path
        text = await response.text()
        assert "Bí mật" not in text and "b.pdf" not in text
        missing = await (await officer.get(f"/staff/feedback/{unknown}")).text()
        assert _MAIN.search(text).group(0) == _MAIN.search(missing).group(0)
    for action, form in (
        ("assign", {"to": "lan"}),
        ("answer", {"text": "Trả lời nhầm xã"}),
        ("close", {}),
        ("reopen", {"reason": "x"}),
    ):
        response = await officer.post(f"/staff/feedback/{theirs}/{action}", form)
        assert response.status == 404, action
    row = await feedback_row(engine.db, theirs)
    assert row.status == "received" and row.assigned_to is None
    async with engine.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        events = await session.scalar(
            select(func.count())
            .select_from(FeedbackEvent)
            .where(FeedbackEvent.feedback_id == row.id)
        )
    assert events == 1


async def test_an_admin_of_a_unit_is_held_to_it_too(aiohttp_client, engine) -> None:
    await add_user(engine.db, "admin", role=auth.UNIT_ADMIN)
    theirs = await add_feedback(engine, "Ở xã Bình Minh", unit=UNIT_B)
    browser = await StaffClient.open(aiohttp_client, engine)
    await browser.login("admin")
    assert (await browser.get(f"/staff/feedback/{theirs}")).status == 404
    # Choosing a unit is for super admins only; the cookie is ignored for anyone else.
    assert (await browser.post("/staff/unit", {"unit": UNIT_B})).status == 403
    browser.client.session.cookie_jar.update_cookies({"motcua_staff_unit": UNIT_B})
    assert (await browser.get(f"/staff/feedback/{theirs}")).status == 404


# -- translations --------------------------------------------------------------------------------


def test_every_template_message_is_translated() -> None:
    """Like tests/test_i18n.py, for the dashboard's templates (``make i18n`` extracts them)."""
    root = Path(__file__).resolve().parent.parent / "bot" / "staff" / "templates"
    messages = {
        message
        for _name, _line, message, _comments, _ctx in extract_from_dir(
            root, method_map=[("**.html", "jinja2")], keywords={"t": None}
        )
        if isinstance(message, str)
    }
    assert "Log out" in messages and "{n} feedback found." in messages
    with po_path("vi").open("rb") as fh:
        catalog = read_po(fh, locale="vi")
    missing = sorted(m for m in messages if not (catalog.get(m) and catalog.get(m).string))
    assert not missing, "run `make i18n` and translate:\n" + "\n".join(missing)
