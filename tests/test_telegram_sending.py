"""Telegram sending in process: the real PTB HTTP stack against the fake Bot API — long texts,
keyboards, documents, flood control, retries and what is logged when delivery fails."""

from __future__ import annotations

import logging

import pytest

from bot.channels.split import split_text, utf16_length
from bot.channels.telegram import MAX_TEXT, SEND_ATTEMPTS, TelegramChannel, keyboard
from bot.channels.telegram_update import read_update
from bot.core import Button, Context, Reply, Router
from bot.core.messages import Document
from tests.conftest import make_engine
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram_helpers import SECRET, TOKEN, webhook_settings

LONG = "\n".join(
    f"{n}. Giấy tờ số {n}: bản sao có chứng thực hoặc bản chính để đối chiếu." * 3
    for n in range(1, 120)
)

extra = Router("test-extra")


@extra.command("long")
async def long_reply(ctx: Context) -> Reply:
    return Reply(LONG, [Button("OK", "menu")])


@extra.command("doc")
async def with_document(ctx: Context) -> Reply:
    return Reply("Danh sách", documents=[Document("danh-sach.pdf", "application/pdf", b"%PDF-1")])


@pytest.fixture
async def api():
    fake = FakeBotAPI(TOKEN)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def channel(api, sqlite_db):
    settings = webhook_settings(api, sqlite_db)
    tg = TelegramChannel(make_engine(sqlite_db, [extra]), settings)
    tg.retry_delay = 0.01
    await tg.start()
    yield tg
    await tg.stop()


async def _say(api: FakeBotAPI, tg: TelegramChannel, chat_id: int, text: str) -> None:
    await tg.handle_update(read_update(api.text_update(chat_id, text)))


async def test_long_reply_is_split_between_lines_with_buttons_on_the_last_part(
    api, channel
) -> None:
    assert utf16_length(LONG) > 2 * MAX_TEXT
    await _say(api, channel, 42, "/long")
    await api.wait_for("sendMessage", chat_id=42, count=3)
    await api.quiet(0.2)
    parts = api.sent(42)
    assert all(utf16_length(c.text) <= MAX_TEXT for c in parts)
    assert "\n".join(c.text for c in parts) == LONG  # cut only at line breaks
    assert [bool(c.buttons) for c in parts] == [False] * (len(parts) - 1) + [True]


async def test_documents_are_sent_with_their_file_name(api, channel) -> None:
    await _say(api, channel, 43, "/doc")
    (call,) = await api.wait_for("sendDocument", chat_id=43)
    assert call.files["document"] == ("danh-sach.pdf", b"%PDF-1")
    assert api.sent(43)[0].text == "Danh sách"


async def test_flood_control_is_waited_out_and_order_kept(api, channel) -> None:
    api.fail("sendMessage", "retry_after")
    await _say(api, channel, 44, "/start")
    await _say(api, channel, 44, "/help")
    await api.wait_for("sendMessage", chat_id=44, count=2)
    methods = [c.method for c in api.calls if c.chat_id == 44]
    assert methods == ["sendMessage!retry_after", "sendMessage", "sendMessage"]
    first, second = api.sent(44)
    assert first.text.startswith("Xin chào") and second.text.startswith("Cách sử dụng")
    # Telegram asked for 1 second; the retry came no sooner.
    assert (
        first.at - api.calls[[c.method for c in api.calls].index("sendMessage!retry_after")].at
        >= 0.95
    )


@pytest.mark.parametrize("fault", ["server", "reset"])
async def test_transient_network_errors_are_retried(api, channel, fault) -> None:
    api.fail("sendMessage", fault, times=2)
    assert await channel.send("45", [Reply("Kết quả hồ sơ đã có.")])
    assert [c.text for c in api.sent(45)] == ["Kết quả hồ sơ đã có."]


async def test_a_message_that_finally_fails_is_logged_with_the_chat_id(
    api, channel, caplog
) -> None:
    api.fail("sendMessage", "server", times=SEND_ATTEMPTS)
    with caplog.at_level(logging.WARNING, logger="motcua.telegram"):
        delivered = await channel.send("46", [Reply("một"), Reply("hai")])
    assert delivered is False
    assert len([c for c in api.calls if c.method == "sendMessage!server"]) == SEND_ATTEMPTS
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("chat_id=46" in e and "failed 5 times" in e for e in errors), errors
    assert any("2 of 2 replies not delivered to chat_id=46" in e for e in errors), errors


async def test_a_blocked_bot_is_not_retried(api, channel, caplog) -> None:
    api.fail("sendMessage", "blocked")
    with caplog.at_level(logging.ERROR, logger="motcua.telegram"):
        assert await channel.send("47", [Reply("xin chào")]) is False
    assert [c.method for c in api.calls if c.chat_id == 47] == ["sendMessage!blocked"]
    assert "chat_id=47 refused" in caplog.text


async def test_group_conversations_push_to_the_group(api, channel) -> None:
    assert await channel.send("-100777:31", [Reply("Trả lời phản ánh")])
    assert api.sent(-100777)[0].text == "Trả lời phản ánh"


def test_split_prefers_paragraphs_then_lines_then_spaces() -> None:
    text = "Đoạn một.\n\n" + "dòng dài " * 30 + "\nkết"
    parts = split_text(text, 100)
    assert parts[0] == "Đoạn một."
    assert all(len(p) <= 100 for p in parts)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_split_counts_utf16_units_and_cuts_only_an_overlong_word() -> None:
    emoji = "📄" * 3000  # 2 UTF-16 units each
    parts = split_text(emoji, MAX_TEXT)
    assert [utf16_length(p) for p in parts] == [4096, 1904]
    assert "".join(parts) == emoji
    assert split_text("ngắn", MAX_TEXT) == ["ngắn"]
    assert split_text("a b c d e f", 3) == ["a b", "c d", "e f"]


def test_keyboard_pairs_short_labels_and_keeps_payloads() -> None:
    markup = keyboard(
        [
            Button("Có", "yes"),
            Button("Không", "no"),
            Button("Thủ tục đăng ký khai sinh có yếu tố nước ngoài", "proc:show:1.001695"),
            Button("Quay lại", "menu"),
        ]
    )
    rows = [[(b["text"], b["callback_data"]) for b in row] for row in markup["inline_keyboard"]]
    assert rows == [
        [("Có", "yes"), ("Không", "no")],
        [("Thủ tục đăng ký khai sinh có yếu tố nước ngoài", "proc:show:1.001695")],
        [("Quay lại", "menu")],
    ]
    assert keyboard([]) is None


@pytest.mark.parametrize("workers", [1, 2])
async def test_with_several_processes_the_webhook_is_answered_after_the_replies(
    api, channel, workers
) -> None:
    """MOTCUA_WORKERS > 1: a chat's next update may reach another process, so the webhook is
    answered only once this update's replies are out (else they could be overtaken)."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    channel.ack_after_send = workers > 1
    app = web.Application()
    channel.add_routes(app)
    api.fail("sendMessage", "server", times=2)  # the reply needs retries: it takes a while
    async with TestClient(TestServer(app)) as client:
        response = await client.post(
            "/telegram/webhook",
            json=api.text_update(7100, "/help"),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status == 200
        delivered_at_ack = len(api.sent(7100))
    await api.wait_for("sendMessage", chat_id=7100)
    assert (delivered_at_ack > 0) == (workers > 1)
