"""Zalo Official Account end to end (issue 9): ``motcua run`` in a subprocess with the Zalo
channel, a fake OA API on 127.0.0.1 (tests/fakes/zalo_api.py), and events signed as Zalo signs
them posted to the bot's webhook.

One bot serves most tests (each on its own citizen); the token rotation across a restart runs
on SQLite and PostgreSQL; the reply window expiring in real time has a bot with a window of
1.8 seconds."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from bot.channels.zalo_api import ATTEMPTS
from bot.config import load_settings
from bot.core import Button, Reply
from bot.feedback.attachments import AttachmentStore
from bot.feedback.cli import feedback_service
from bot.feedback.model import TOPICS
from bot.i18n import translator
from bot.outbox import enqueue
from bot.storage.db import Database
from bot.storage.models import (
    ChannelContact,
    ChannelToken,
    Conversation,
    Feedback,
    FeedbackAttachment,
    InboundMessage,
    OutboxMessage,
    utcnow,
)
from handlers.channel_caps import late_delivery_note
from tests.conftest import POSTGRES_URL, skip_or_fail
from tests.fakes.zalo_api import SIGNATURE_HEADER, FakeZaloAPI, Sent
from tests.pg_helpers import postgres_database
from tests.zalo_helpers import ZaloBot, running_zalo_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")

VI = translator("vi")
TRACKING = re.compile(r"\b(PA|KN)-\d{4}-\d{6}\b")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
TINY_WINDOW_HOURS = 0.0005  # 1.8 seconds


def window_note(hours: float) -> str:
    """The paragraph the handlers add on Zalo, as the bot words it (translated or not)."""
    ctx = SimpleNamespace(
        incoming=SimpleNamespace(channel="zalo"),
        services=SimpleNamespace(
            windowed_channels=frozenset({"zalo"}),
            settings=SimpleNamespace(zalo_reply_window_hours=hours),
        ),
        t=VI,
    )
    return late_delivery_note(ctx).strip()


async def eventually(check: Callable[[], Awaitable], timeout: float = 15, what: str = ""):
    """Poll ``check`` until it returns something truthy (a row, a count); return it."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def numbered(message: Sent, label: str) -> str:
    """The number in front of ``label`` in a message's numbered choices."""
    found = re.search(rf"^\s*(\d+)\. {re.escape(label)}$", message.text, re.MULTILINE)
    assert found, f"no choice {label!r} in {message.text!r}"
    return found.group(1)


def tap_payload(message: Sent, ends_with: str) -> str:
    """The text a tap on the list element whose payload ends with ``ends_with`` sends."""
    found = [payload for _title, payload in message.elements if payload.endswith(ends_with)]
    assert found, f"no element for {ends_with!r} in {message.elements}"
    return found[0]


class Desk:
    """What the test does to the bot's database: read it, and act as the staff would."""

    def __init__(self, url: str, attachments: Path | None = None) -> None:
        self.url = url
        self.db = Database(url)
        self.attachments = attachments

    async def close(self) -> None:
        await self.db.dispose()

    async def one(self, query):
        async with self.db.session() as session:
            return (await session.scalars(query)).first()

    async def all(self, query) -> list:
        async with self.db.session() as session:
            return list(await session.scalars(query))

    async def conversation(self, user: str) -> Conversation | None:
        return await self.one(
            select(Conversation).where(
                Conversation.channel == "zalo", Conversation.conversation_id == user
            )
        )

    async def contact(self, user: str) -> ChannelContact | None:
        return await self.one(
            select(ChannelContact).where(
                ChannelContact.channel == "zalo", ChannelContact.conversation_id == user
            )
        )

    async def outbox(self, user: str) -> list[OutboxMessage]:
        return await self.all(
            select(OutboxMessage)
            .where(OutboxMessage.channel == "zalo", OutboxMessage.conversation_id == user)
            .order_by(OutboxMessage.id)
        )

    async def answer(self, code: str, text: str) -> None:
        """What ``motcua feedback answer CODE --text TEXT --staff Lan`` does."""
        settings = load_settings(database_url=self.url)
        service = feedback_service(settings, "demo")
        async with self.db.write_transaction() as session:
            await service.answer(session, code, text, "staff:Lan")

    async def push(self, user: str, text: str) -> None:
        """Queue a message for the citizen as a dossier change or a staff answer does."""
        async with self.db.write_transaction() as session:
            enqueue(session, "zalo", user, [Reply(text, [Button("🏠 Menu", "menu")])], "test")

    async def wrote_long_ago(self, user: str) -> None:
        """As if the citizen's last message were older than the 48-hour window."""
        async with self.db.write_transaction() as session:
            await session.execute(
                update(ChannelContact)
                .where(ChannelContact.channel == "zalo", ChannelContact.conversation_id == user)
                .values(last_inbound_at=utcnow() - timedelta(hours=49))
            )

    async def wait_held(self, user: str, count: int = 1) -> list[OutboxMessage]:
        async def held():
            rows = [r for r in await self.outbox(user) if r.held_since is not None]
            return rows if len(rows) >= count else None

        return await eventually(held, what=f"{count} held message(s) to {user}")

    async def wait_all_sent(self, user: str) -> list[OutboxMessage]:
        async def sent():
            rows = await self.outbox(user)
            return rows if rows and all(r.sent_at is not None for r in rows) else None

        return await eventually(sent, what=f"the outbox of {user} sent")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def zalo(tmp_path_factory):
    """One ``motcua run`` with the Zalo channel on SQLite, the fake, and the database."""
    api = FakeZaloAPI()
    await api.start()
    path = tmp_path_factory.mktemp("zalo") / "bot.sqlite3"
    url = f"sqlite:///{path}"
    desk = Desk(url, path.parent / "attachments")
    try:
        async with running_zalo_bot(api, url) as bot:
            yield bot, desk
        log = bot.log() + "".join(bot.process.stdout)
        for secret in (api.oa_secret, api.app_secret, *[t for pair in api.issued for t in pair]):
            assert secret not in log
    finally:
        await desk.close()
        await api.stop()


# -- talking -----------------------------------------------------------------------------------


async def test_greeting_gets_the_menu_as_numbered_lines_and_a_list(zalo) -> None:
    bot, _desk = zalo
    await bot.say("u-hello", "xin chao")
    text, choices = await bot.api.wait_for("u-hello", 2)
    assert text.kind == "text" and "Xin chào! Tôi là trợ lý ảo của Bộ phận Một cửa" in text.text
    assert "  1. 🔎 Tìm thủ tục\n  2. 📄 Tra cứu hồ sơ" in text.text
    assert choices.kind == "list"
    assert choices.elements == [
        ("1. 🔎 Tìm thủ tục", "#mc:proc:search"),
        ("2. 📄 Tra cứu hồ sơ", "#mc:dossier:check"),
        ("3. ✉️ Gửi phản ánh, kiến nghị", "#mc:feedback:new"),
        ("4. 🌐 Ngôn ngữ / Language", "#mc:lang:choose"),
    ]


async def test_search_gives_the_card_and_a_typed_number_picks_its_choice(zalo) -> None:
    bot, _desk = zalo
    user = "u-search"
    await bot.say(user, "lam giay khai sinh")
    card, others, others_list = await bot.api.wait_for(user, 3)
    assert "Thủ tục đăng ký khai sinh" in card.text and "1.001193" in card.text
    # Eight choices: numbered lines only (a list holds at most five) ...
    assert numbered(card, "📄 Giấy tờ cần chuẩn bị") == "1"
    assert numbered(card, "🏠 Về danh mục chính") == "8"
    # ... and the other procedures numbered on, with their list.
    assert others.kind == "text" and numbered(others, "Thủ tục đăng ký khai sinh lưu động") == "9"
    assert others_list.kind == "list" and others_list.elements[0][0].startswith("9. ")
    assert all(len(m.text) <= 2000 for m in (card, others))

    await bot.say(user, "1")
    (docs,) = await bot.api.wait_for(user, where=lambda s: "Giấy tờ cần nộp" in s.text)
    assert "Tờ khai đăng ký khai sinh" in docs.text

    # Numbers count on across the replies of a turn: "9" is the first of the second reply.
    await bot.say("u-search-9", "lam giay khai sinh")
    await bot.api.wait_for("u-search-9", 3)
    await bot.say("u-search-9", "9")
    (picked,) = await bot.api.wait_for(
        "u-search-9", where=lambda s: "Thủ tục đăng ký khai sinh lưu động" in s.text.split("\n")[0]
    )
    assert "1.003583" in picked.text


async def test_tapping_a_list_element_picks_its_choice(zalo) -> None:
    bot, _desk = zalo
    user = "u-tap"
    await bot.say(user, "lam giay khai sinh")
    *_, choices = await bot.api.wait_for(user, 3)
    payload = tap_payload(choices, "proc:show:2.000528")
    assert payload == "#mc:proc:show:2.000528"
    await bot.post(bot.api.tap_event(user, payload))
    (card,) = await bot.api.wait_for(user, where=lambda s: "2.000528" in s.text)
    assert "Thủ tục đăng ký khai sinh có yếu tố nước ngoài" in card.text


# -- what reaches the webhook ------------------------------------------------------------------


async def test_a_wrong_or_missing_signature_is_refused_and_nothing_happens(zalo) -> None:
    bot, desk = zalo
    api, user = bot.api, "u-forged"
    event = api.text_event(user, "xin chao")
    raw, headers = api.signed(event)
    forged = api.signed(event, secret="not-the-oa-key")[1][SIGNATURE_HEADER]
    assert await bot.post(event, signature=None) == 403
    assert await bot.post(event, signature=forged) == 403
    assert await bot.post(event, signature="mac=" + "0" * 64) == 403
    assert await bot.post(event, signature=headers[SIGNATURE_HEADER].upper()) == 403
    tampered = raw.replace(b"xin chao", b"xin chaO")
    assert await bot.post(tampered, signature=headers[SIGNATURE_HEADER]) == 403
    other_time = dict(event, timestamp=str(int(event["timestamp"]) + 1))
    assert await bot.post(other_time, signature=headers[SIGNATURE_HEADER]) == 403
    no_time = {k: v for k, v in event.items() if k != "timestamp"}
    assert await bot.post(no_time) == 403  # signed, but over no timestamp
    await api.quiet(0.3)
    assert api.messages(user) == []
    assert await desk.conversation(user) is None
    assert await desk.contact(user) is None
    assert "wrong signature" in bot.log()

    # The same event signed properly is the citizen's first turn (its msg_id was not spent).
    assert await bot.post(event) == 200
    await api.wait_for(user, 2)
    assert (await desk.conversation(user)).message_count == 1


async def test_malformed_events_get_400_and_the_bot_goes_on(zalo) -> None:
    bot, desk = zalo
    api = bot.api
    assert await bot.post(b"{not json") == 400
    assert await bot.post(b"[1, 2]") == 400
    assert await bot.post("Cập nhật".encode("utf-16")) == 400
    no_msg_id = api.text_event("u-malformed", "xin chao")
    del no_msg_id["message"]["msg_id"]
    assert await bot.post(no_msg_id) == 400
    no_sender = api.text_event("u-malformed", "xin chao")
    del no_sender["sender"]
    assert await bot.post(no_sender) == 400
    assert await bot.post(api.event("follow", follower={})) == 400
    await api.quiet(0.2)
    assert api.messages("u-malformed") == []
    await bot.say("u-malformed", "xin chao")
    await api.wait_for("u-malformed", 2)


async def test_the_same_msg_id_twice_gets_one_reply(zalo) -> None:
    bot, desk = zalo
    api, user = bot.api, "u-twice"
    event = await bot.say(user, "xin chao")
    assert await bot.post(event) == 200
    statuses = await asyncio.gather(*(bot.post(event) for _ in range(5)))
    assert statuses == [200] * 5
    again = api.text_event(user, "lam giay khai sinh")
    assert await asyncio.gather(*(bot.post(again) for _ in range(5))) == [200] * 5
    await api.wait_for(user, 5)
    await api.quiet(0.4)
    assert [m.kind for m in api.messages(user)] == ["text", "list", "text", "text", "list"]
    assert (await desk.conversation(user)).message_count == 2
    ids = await desk.all(select(InboundMessage))
    assert (
        len([r for r in ids if r.channel == "zalo" and r.message_id == event["message"]["msg_id"]])
        == 1
    )


async def test_receipts_and_other_events_are_acknowledged_and_ignored(zalo) -> None:
    bot, desk = zalo
    api, user = bot.api, "u-receipts"
    assert await bot.post(api.seen_event(user)) == 200
    assert await bot.post(api.received_event(user)) == 200
    oa_echo = api.event(
        "oa_send_text",
        sender={"id": "579745863508352884"},
        recipient={"id": user},
        message={"msg_id": api.msg_id(), "text": "echo"},
    )
    assert await bot.post(oa_echo) == 200
    await api.quiet(0.3)
    assert api.messages(user) == []
    assert await desk.conversation(user) is None


async def test_follow_gets_the_welcome_menu_and_unfollow_holds_later_messages(zalo) -> None:
    bot, desk = zalo
    api, user = bot.api, "u-follower"
    follow = api.follow_event(user)
    assert await bot.post(follow) == 200
    text, choices = await api.wait_for(user, 2)
    assert "Xin chào!" in text.text and choices.kind == "list"
    assert await bot.post(follow) == 200  # re-delivered: no second welcome

    assert await bot.post(api.unfollow_event(user)) == 200
    await api.quiet(0.3)
    assert len(api.messages(user)) == 2
    assert (await desk.contact(user)).following is False

    # A message for someone who left waits; following again brings the welcome, then it.
    await desk.push(user, "Hồ sơ của bạn đã có kết quả.")
    await desk.wait_held(user)
    assert len(api.messages(user)) == 2
    assert await bot.post(api.follow_event(user)) == 200
    messages = await api.wait_for(user, 6)
    assert [m.kind for m in messages] == ["text", "list", "text", "list", "text", "list"]
    assert "Xin chào!" in messages[2].text
    assert messages[4].text.startswith("Hồ sơ của bạn đã có kết quả.")
    await desk.wait_all_sent(user)


async def test_a_sticker_gets_a_polite_answer(zalo) -> None:
    bot, _desk = zalo
    assert await bot.post(bot.api.sticker_event("u-sticker")) == 200
    answer, _choices = await bot.api.wait_for("u-sticker", 2)
    assert "chỉ đọc được" in answer.text


# -- Zalo failing ------------------------------------------------------------------------------


async def test_server_errors_are_retried_and_the_reply_arrives_once(zalo) -> None:
    bot, _desk = zalo
    api, user = bot.api, "u-5xx"
    api.fail_http(503, times=2, user=user)
    try:
        await bot.say(user, "xin chao")
        await api.wait_for(user, 2)
    finally:
        api.heal()
    await api.quiet(0.3)
    assert [c.outcome for c in api.calls_to("message", user)] == ["http 503"] * 2 + ["ok"] * 2
    assert [m.kind for m in api.messages(user)] == ["text", "list"]


async def test_a_permanent_server_error_gives_up_logs_and_later_messages_work(zalo) -> None:
    bot, _desk = zalo
    api, user = bot.api, "u-500"
    api.fail_always(500, user=user)
    try:
        await bot.say(user, "xin chao")

        async def gave_up():
            return "not delivered" in bot.log() and f"user {user}" in bot.log()

        await eventually(gave_up, timeout=20, what="the bot to give up")
    finally:
        api.heal()
    failed = api.calls_to("message", user)
    assert [c.outcome for c in failed] == ["http 500"] * ATTEMPTS  # bounded, then given up
    assert api.messages(user) == []
    await bot.say(user, "lam giay khai sinh")
    card, *_ = await api.wait_for(user, 3)
    assert "Thủ tục đăng ký khai sinh" in card.text


async def test_zalo_refusing_a_push_holds_it_until_the_citizen_writes(zalo) -> None:
    """The bot thinks the window is open, Zalo answers -230: the message waits."""
    bot, desk = zalo
    api, user = bot.api, "u-refused"
    await bot.say(user, "xin chao")
    await api.wait_for(user, 2)
    api.refuse_user(user, -230)
    await desk.push(user, "Trả lời của cán bộ")
    await desk.wait_held(user)
    assert [c.outcome for c in api.calls_to("message", user)][-1] == "error -230"
    api.allow_user(user)  # the citizen writes: Zalo lets the OA answer again
    await bot.say(user, "lam giay khai sinh")
    messages = await api.wait_for(user, 7)
    assert "Thủ tục đăng ký khai sinh" in messages[2].text
    assert messages[5].text.startswith("Trả lời của cán bộ")
    await desk.wait_all_sent(user)


# -- feedback, attachments and the reply window -------------------------------------------------


class Replies:
    """Reads one citizen's replies in order: a text, and the list of its choices when there
    are one to five of them."""

    def __init__(self, api: FakeZaloAPI, user: str) -> None:
        self.api, self.user = api, user
        self.seen = len(api.messages(user))

    async def next(self) -> tuple[Sent, Sent | None]:
        text = (await self.api.wait_for(self.user, self.seen + 1))[self.seen]
        self.seen += 1
        assert text.kind == "text", text
        choices = len(re.findall(r"^\s+\d+\. ", text.text, re.MULTILINE))
        if not 1 <= choices <= 5:
            return text, None
        listing = (await self.api.wait_for(self.user, self.seen + 1))[self.seen]
        self.seen += 1
        assert listing.kind == "list" and len(listing.elements) == choices, listing
        return text, listing


async def file_feedback(bot: ZaloBot, user: str, *, files: bool) -> tuple[str, Sent]:
    """The citizen files a feedback through Zalo, by typed numbers and taps; returns the
    tracking code and the confirmation."""
    api = bot.api
    replies = Replies(api, user)
    await bot.say(user, "phản ánh")
    _kinds, kinds_list = await replies.next()
    await bot.tap(user, tap_payload(kinds_list, "fb:kind:report"))
    topics, _ = await replies.next()
    await bot.say(user, numbered(topics, VI(TOPICS["other"])))
    await replies.next()  # "please describe it"
    await bot.say(user, "Đèn đường ở thôn 3 hỏng từ tuần trước, tối lắm.")
    _prompt, files_list = await replies.next()
    if files:
        assert await bot.post(api.image_event(user, JPEG)) == 200
        added, _ = await replies.next()
        assert "photo.jpg" in added.text and "(1/" in added.text, added.text
        assert await bot.post(api.file_event(user, PDF, "don-de-nghi.pdf")) == 200
        added, files_list = await replies.next()
        assert "don-de-nghi.pdf" in added.text and "(2/" in added.text, added.text
    await bot.tap(user, tap_payload(files_list, "fb:files:done"))
    _contact, contact_list = await replies.next()
    await bot.tap(user, tap_payload(contact_list, "fb:contact:anon"))
    summary, _ = await replies.next()
    await bot.say(user, numbered(summary, VI("📨 Send")))
    sent, _ = await replies.next()
    found = TRACKING.search(sent.text)
    assert found, sent.text
    return found.group(0), sent


async def test_feedback_with_a_photo_and_a_pdf_then_the_answer_waits_for_the_window(
    zalo,
) -> None:
    bot, desk = zalo
    api, user = bot.api, "u-feedback"
    code, sent = await file_feedback(bot, user, files=True)
    assert window_note(48) in sent.text and "48" in window_note(48)

    row = await desk.one(select(Feedback).where(Feedback.tracking_code == code))
    assert (row.channel, row.conversation_id, row.unit) == ("zalo", user, "demo")
    files = await desk.all(
        select(FeedbackAttachment)
        .where(FeedbackAttachment.feedback_id == row.id)
        .order_by(FeedbackAttachment.id)
    )
    assert [(f.filename, f.mime_type, f.size) for f in files] == [
        ("photo.jpg", "image/jpeg", len(JPEG)),
        ("don-de-nghi.pdf", "application/pdf", len(PDF)),
    ]
    store = AttachmentStore(desk.attachments)
    assert [store.open(f.sha256) for f in files] == [JPEG, PDF]
    assert len(api.downloads) >= 2  # fetched from the URLs in the events

    # Two days later (the window has closed) the staff answer: nothing may be sent ...
    await desk.wrote_long_ago(user)
    before = len(api.messages(user))
    await desk.answer(code, "Đã thay bóng đèn hôm nay.")
    await desk.wait_held(user)
    await api.quiet(0.3)
    assert len(api.messages(user)) == before

    # ... until the citizen writes: the reply to that message first, then the answer.
    await bot.say(user, "xin chao")
    menu, menu_list, answer, answer_list = (await api.wait_for(user, before + 4))[before:]
    assert "Xin chào!" in menu.text and menu_list.kind == "list"
    assert f"{code}" in answer.text and "Đã thay bóng đèn hôm nay." in answer.text
    assert answer_list.kind == "list"
    await desk.wait_all_sent(user)

    # The numbers the citizen sees last are the answer's: "1" is "Yes, solved".
    assert numbered(answer, VI("👍 Yes, solved")) == "1"
    await bot.say(user, "1")
    (closed,) = await api.wait_for(
        user, where=lambda s: VI("Thank you! Feedback {code} is now closed.", code=code) in s.text
    )
    assert (await desk.one(select(Feedback).where(Feedback.id == row.id))).status == "closed"


async def test_a_dossier_subscription_on_zalo_tells_about_the_window(zalo) -> None:
    bot, _desk = zalo
    api, user = bot.api, "u-dossier"
    await bot.say(user, "DEMO-000000-0006")
    card, card_list = await api.wait_for(user, 2)
    assert "DEMO-000000-0006" in card.text
    await bot.post(api.tap_event(user, tap_payload(card_list, "ds:s:DEMO-000000-0006")))
    (done,) = await api.wait_for(user, where=lambda s: "🔔" in s.text and s is not card)
    assert "DEMO-000000-0006" in done.text
    assert window_note(48) in done.text


async def test_the_window_expiring_in_real_time(tmp_path) -> None:
    """A 1.8-second window: the staff answer comes after it, waits, and follows the reply to
    the citizen's next message."""
    api = FakeZaloAPI()
    await api.start()
    url = f"sqlite:///{tmp_path}/bot.sqlite3"
    desk = Desk(url)
    user = "u-window"
    try:
        async with running_zalo_bot(
            api, url, MOTCUA_ZALO_REPLY_WINDOW_HOURS=str(TINY_WINDOW_HOURS)
        ) as bot:
            code, sent = await file_feedback(bot, user, files=False)
            assert window_note(TINY_WINDOW_HOURS) in sent.text
            contact = await desk.contact(user)
            last = contact.last_inbound_at.timestamp()
            # The one blind wait: the window must really pass.
            await asyncio.sleep(max(0.0, last + TINY_WINDOW_HOURS * 3600 + 0.2 - time.time()))
            before = len(api.messages(user))
            await desk.answer(code, "Cán bộ đã xử lý.")
            await desk.wait_held(user)
            await api.quiet(0.2)
            assert len(api.messages(user)) == before

            await bot.say(user, "xin chao")
            messages = (await api.wait_for(user, before + 4))[before:]
            assert "Xin chào!" in messages[0].text
            assert "Cán bộ đã xử lý." in messages[2].text and code in messages[2].text
            await desk.wait_all_sent(user)
    finally:
        await desk.close()
        await api.stop()


# -- the access token, across a restart, on SQLite and PostgreSQL -------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_text_dedupe_and_token_rotation_across_a_restart(backend, tmp_path) -> None:
    if backend == "postgresql" and not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    api = FakeZaloAPI()
    await api.start()
    try:
        if backend == "postgresql":
            async with postgres_database(POSTGRES_URL) as url:
                await _rotation_across_a_restart(api, url)
        else:
            await _rotation_across_a_restart(api, f"sqlite:///{tmp_path}/bot.sqlite3")
    finally:
        await api.stop()


async def _rotation_across_a_restart(api: FakeZaloAPI, url: str) -> None:
    user = "u-rotation"
    desk = Desk(url)
    try:
        async with running_zalo_bot(api, url) as bot:
            first = await bot.say(user, "xin chao")
            await api.wait_for(user, 2)
            assert await bot.post(first) == 200  # re-delivered
            # The access token expires: refreshed once, the message still arrives once.
            expired = api.expire_token()
            await bot.say(user, "lam giay khai sinh")
            card = (await api.wait_for(user, 5))[2]
            await api.quiet(0.3)
            assert len(api.messages(user)) == 5 and "1.001193" in card.text
            assert [c.outcome for c in api.calls_to("message", user)][2:4] == ["error -216", "ok"]
            assert api.refreshes == [(api.issued[0][1], True)]
            stored = await desk.one(select(ChannelToken))
            assert (stored.access_token, stored.refresh_token) == api.issued[-1]
            log = bot.log()
        assert expired not in log and api.issued[-1][0] not in log

        # Restarted with the same settings (the first, spent, refresh token): the bot uses
        # the stored pair; Zalo would refuse the old refresh token.
        async with running_zalo_bot(api, url) as bot:
            assert await bot.post(first) == 200  # handled before the restart: no reply
            await bot.say(user, "xin chao")
            later = await api.wait_for(user, 7)
            await api.quiet(0.3)
            assert len(api.messages(user)) == 7 and "Xin chào!" in later[5].text
            assert [c.outcome for c in api.calls_to("message", user)][-2:] == ["ok", "ok"]
            assert len(api.refreshes) == 1  # no refresh needed

            # Expiring again spends the rotated refresh token.
            api.expire_token()
            await bot.say(user, "xin chao")
            await api.wait_for(user, 9)
            assert api.refreshes[1] == (api.issued[1][1], True)
            assert all(ok for _token, ok in api.refreshes)  # never the spent one
            stored = await desk.one(select(ChannelToken))
            assert (stored.access_token, stored.refresh_token) == api.issued[2]
    finally:
        await desk.close()
