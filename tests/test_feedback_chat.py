"""Feedback in the chat: the whole guided flow in Vietnamese and English, with cancel, edit,
anonymous, bad phone, too-long text, too many / too large / fake files, double tap, a draft that
survives a restart, and the staff's answer coming back ("not solved" reopens it)."""

from __future__ import annotations

import re
import struct
import zlib

import pytest
from sqlalchemy import func, select

from bot.channels.telegram import TelegramChannel
from bot.core.messages import Attachment, Incoming
from bot.outbox import OutboxDispatcher
from bot.storage.models import (
    Conversation,
    Feedback,
    FeedbackAttachment,
    FeedbackEvent,
    OutboxMessage,
)
from tests.conftest import Chat, make_engine
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram_helpers import TOKEN, webhook_settings

CODE = re.compile(r"\b(PA|KN)-\d{4}-\d{6}\b")


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def photo(name: str = "anh.png", data: bytes | None = None, mime: str = "image/png") -> Attachment:
    data = png() if data is None else data
    return Attachment("photo", name, mime, len(data), data)


async def send_files(chat: Chat, *files: Attachment) -> None:
    chat.replies = await chat.engine.handle(
        Incoming(chat.channel, chat.conversation_id, "u", attachments=files, locale=chat.locale)
    )


async def walk_to_content(chat: Chat, kind: str = "report", topic: str = "other") -> None:
    await chat.press("feedback:new")
    await chat.press(f"fb:kind:{kind}")
    await chat.press(f"fb:topic:{topic}")


async def feedback_rows(db) -> list[Feedback]:
    async with db.session() as session:
        return list(await session.scalars(select(Feedback)))


@pytest.fixture
def fb_engine(db):
    return make_engine(db, push_channels=["test", "telegram"])


async def test_whole_flow_in_vietnamese_anonymous_with_a_photo(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await chat.say("phản ánh")
    assert "Phản ánh (báo một vấn đề)" in chat.buttons
    await chat.press("fb:kind:report")
    await chat.press("fb:topic:procedure")
    await chat.say("lam giay khai sinh")
    assert "fb:proc:1.001193" in chat.payloads
    await chat.press("fb:proc:1.001193")
    text = "Nộp hồ sơ khai sinh cho cháu đã 5 ngày vẫn chưa có kết quả."
    await chat.say(text)
    assert f"Đã nhận nội dung ({len(text)}/2000 ký tự)" in chat.text
    await send_files(chat, photo())
    assert "Đã thêm “anh.png” (1/5)" in chat.text
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    assert "Liên hệ: ẩn danh" in chat.text and "Thủ tục đăng ký khai sinh" in chat.text
    send = next(p for p in chat.payloads if p.startswith("fb:send:"))
    await chat.press(send)
    code = CODE.search(chat.text).group(0)
    assert code.startswith("PA-")
    (row,) = await feedback_rows(db)
    assert (row.tracking_code, row.kind, row.topic, row.procedure_code) == (
        code,
        "report",
        "procedure",
        "1.001193",
    )
    assert row.phone is None and row.consent_at is None and row.status == "received"
    assert row.due_at is not None
    async with db.session() as session:
        files = list(await session.scalars(select(FeedbackAttachment)))
        events = list(await session.scalars(select(FeedbackEvent)))
    assert [f.mime_type for f in files] == ["image/png"]
    assert fb_engine.services.attachments.open(files[0].sha256) == png()
    assert [(e.actor, e.action) for e in events] == [("citizen", "create")]
    # The citizen can look it up by its code.
    await chat.say(f"phản ánh {code.lower()} đến đâu rồi")
    assert "Đã tiếp nhận" in chat.text and "Hạn xử lý" in chat.text


async def test_whole_flow_in_english_with_a_phone_after_consent(db, fb_engine) -> None:
    chat = Chat(fb_engine, locale="en")
    await walk_to_content(chat, kind="proposal", topic="portal")
    await chat.say("Please add a way to pay fees by QR code on the portal.")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:phone")
    assert "personal data" in chat.text
    async with db.session() as session:  # nothing about a phone is stored before consent
        data = (await session.scalars(select(Conversation))).one().data
    assert "phone" not in data["fb"] and "consent_at" not in data["fb"]
    await chat.press("fb:consent:yes")
    await chat.say("+84 912.345.678")
    assert "Contact: •••••••678" in chat.text
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    assert "Your tracking code is KN-" in chat.text
    (row,) = await feedback_rows(db)
    assert row.phone == "0912345678" and row.consent_at is not None and row.locale == "en"


async def test_declining_consent_sends_anonymously(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Đèn đường trước bộ phận một cửa bị hỏng.")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:phone")
    await chat.press("fb:consent:no")
    assert "Liên hệ: ẩn danh" in chat.text


async def test_cancel_at_any_step_leaves_nothing(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung thử")
    await chat.say("hủy")
    assert "Đã hủy" in chat.text
    await chat.say("một tin nhắn bình thường")
    assert await feedback_rows(db) == []


async def test_edit_the_text_from_the_summary(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung cũ")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    await chat.press("fb:edit:content")
    await chat.say("Nội dung mới, đầy đủ hơn")
    assert "Nội dung: Nội dung mới, đầy đủ hơn" in chat.text  # straight back to the summary
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    assert (await feedback_rows(db))[0].content == "Nội dung mới, đầy đủ hơn"


async def test_invalid_phone_is_explained(fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:phone")
    await chat.press("fb:consent:yes")
    for wrong in ("12345", "0123 456 789", "0912 345 6789"):
        await chat.say(wrong)
        assert "không phải số điện thoại Việt Nam" in chat.text
    await chat.say("024 3825 3536")  # a Hà Nội landline
    assert "Liên hệ: ••••••••536" in chat.text


async def test_too_long_text_is_refused_with_a_counter(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("a" * 2001)
    assert "2001/2000 ký tự" in chat.text
    await chat.say("Ngắn gọn thôi")
    assert "Đã nhận nội dung (13/2000 ký tự)" in chat.text


async def test_sixth_file_large_file_and_fake_jpeg_are_refused(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung")
    await send_files(chat, photo("gia.jpg", b"this is not a picture at all", "image/jpeg"))
    assert "Chưa thêm “gia.jpg”: chỉ nhận ảnh" in chat.text
    big = bytes(30 * 1024 * 1024)
    await send_files(chat, Attachment("document", "lon.pdf", "application/pdf", len(big), big))
    assert "Chưa thêm “lon.pdf”: tệp nặng 30 MB, giới hạn là 10 MB" in chat.text
    await send_files(chat, *(photo(f"anh{n}.png") for n in range(1, 6)))
    assert "(5/5)" in chat.text
    await send_files(chat, photo("anh6.png"))
    assert "Chưa thêm “anh6.png”: tối đa 5 tệp" in chat.text
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    assert "Tệp đính kèm: 5" in chat.text


async def test_double_tap_creates_one_feedback(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    send = next(p for p in chat.payloads if p.startswith("fb:send:"))
    await chat.press(send)
    first = CODE.search(chat.text).group(0)
    await chat.press(send)
    assert CODE.search(chat.text).group(0) == first
    assert len(await feedback_rows(db)) == 1


async def test_unfinished_draft_survives_a_restart(db) -> None:
    chat = Chat(make_engine(db))
    await walk_to_content(chat)
    await chat.say("Viết dở trước khi máy chủ khởi động lại")
    restarted = Chat(make_engine(db))  # a new process: nothing in memory, same database
    await restarted.press("fb:files:done")
    await restarted.press("fb:contact:anon")
    assert "Viết dở trước khi máy chủ khởi động lại" in restarted.text
    await restarted.press(next(p for p in restarted.payloads if p.startswith("fb:send:")))
    assert CODE.search(restarted.text)


async def test_staff_answer_reaches_the_chat_and_not_solved_reopens(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Cổng dịch vụ công báo lỗi khi nộp hồ sơ.")
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    code = CODE.search(chat.text).group(0)
    service = fb_engine.services.feedback
    async with db.write_transaction() as session:
        await service.answer(session, code, "Đã khắc phục lỗi, mời bạn nộp lại.", "staff:Lan")
    async with db.session() as session:
        (queued,) = (await session.scalars(select(OutboxMessage))).all()
    assert (queued.channel, queued.conversation_id) == ("test", "c1")
    (notice,) = queued.replies
    assert "Đã khắc phục lỗi" in notice["text"]
    assert [b[1] for b in notice["buttons"]] == [f"fb:ok:{code}", f"fb:no:{code}"]
    await chat.press(f"fb:no:{code}")
    await chat.say("Vẫn báo lỗi ở bước thanh toán")
    assert "đã được mở lại" in chat.text
    view = await _view(db, service, code)
    assert view.row.status == "in_progress"
    assert [(e.actor, e.action, e.status) for e in view.events] == [
        ("citizen", "create", "received"),
        ("staff:Lan", "answer", "answered"),
        ("citizen", "reopen", "in_progress"),
    ]
    assert view.events[-1].text == "Vẫn báo lỗi ở bước thanh toán"
    # Another chat cannot close or reopen it.
    other = Chat(fb_engine, conversation_id="c2")
    await other.press(f"fb:ok:{code}")
    assert "không tìm thấy" in other.text
    assert (await _view(db, service, code)).row.status == "in_progress"


async def _view(db, service, code):
    async with db.session() as session:
        return await service.get(session, code)


async def test_answer_is_delivered_to_telegram_with_its_buttons(db) -> None:
    api = FakeBotAPI(TOKEN)
    await api.start()
    settings = webhook_settings(api, db)
    engine = make_engine(db, push_channels=["telegram"])
    telegram = TelegramChannel(engine, settings)
    await telegram.start()
    try:
        chat = Chat(engine, channel="telegram", conversation_id="555")
        await walk_to_content(chat)
        await chat.say("Cán bộ không hướng dẫn rõ.")
        await chat.press("fb:files:done")
        await chat.press("fb:contact:anon")
        await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
        code = CODE.search(chat.text).group(0)
        async with db.write_transaction() as session:
            await engine.services.feedback.answer(session, code, "Xin lỗi bạn, …", "staff:Lan")
        assert await OutboxDispatcher(db, {"telegram": telegram}).run_once() == 1
        (sent,) = api.sent(555)
        assert "Xin lỗi bạn" in sent.text and code in sent.text
        assert ("👍 Đã giải quyết", f"fb:ok:{code}") in sent.buttons
    finally:
        await telegram.stop()
        await api.stop()
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


async def test_chats_that_cannot_send_files_skip_the_files_step(db) -> None:
    engine = make_engine(db)
    engine.services.file_channels = frozenset({"telegram"})  # as `motcua run` sets it
    chat = Chat(engine, channel="web")
    await walk_to_content(chat)
    await chat.say("Trang web không gửi được ảnh")
    assert "Đã nhận nội dung" in chat.text and "để lại số điện thoại" in chat.text
    assert "fb:files:done" not in chat.payloads
    await chat.press("fb:contact:anon")
    assert "fb:edit:files" not in chat.payloads and "Tệp đính kèm: 0" in chat.text


async def test_text_where_a_button_is_expected_repeats_the_question(db, fb_engine) -> None:
    chat = Chat(fb_engine)
    await walk_to_content(chat)
    await chat.say("Nội dung")
    await chat.press("fb:files:done")
    await chat.say("0912345678")  # a number typed before consent is not kept
    assert "Bạn vui lòng chọn một trong các nút" in chat.text
    assert "fb:contact:anon" in chat.payloads
    await chat.press("fb:contact:phone")
    await chat.say("đồng ý")
    assert "fb:consent:yes" in chat.payloads
    async with db.session() as session:
        data = (await session.scalars(select(Conversation))).one().data
    assert "phone" not in data["fb"] and "0912345678" not in str(data)
