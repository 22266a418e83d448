"""Telegram end to end: ``motcua run`` in a subprocess, the real python-telegram-bot HTTP stack,
and a fake Bot API on 127.0.0.1 — in polling mode and in webhook mode."""

from __future__ import annotations

import asyncio
import re
import sqlite3

import aiohttp
import pytest
import pytest_asyncio

from tests.fakes.telegram_api import BOT_USERNAME, FakeBotAPI
from tests.telegram_helpers import (
    SECRET,
    TOKEN,
    WEBHOOK_URL,
    bot_env,
    running_bot,
    spawn_bot,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def polling(tmp_path_factory):
    api = FakeBotAPI(TOKEN)
    await api.start()
    db = tmp_path_factory.mktemp("polling") / "bot.sqlite3"
    async with running_bot(bot_env(api, f"sqlite:///{db}", "polling")) as bot:
        yield api, bot
    await api.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def webhook(tmp_path_factory):
    api = FakeBotAPI(TOKEN)
    await api.start()
    db = tmp_path_factory.mktemp("webhook") / "bot.sqlite3"
    async with running_bot(bot_env(api, f"sqlite:///{db}", "webhook")) as bot:
        async with aiohttp.ClientSession() as session:
            yield api, bot, session, db
    await api.stop()


async def _conversation(api: FakeBotAPI, deliver, chat_id: int) -> None:
    """/start -> menu; a search -> the card; a button -> the next step; a photo -> received."""
    await deliver(api.text_update(chat_id, "/start"))
    (menu,) = await api.wait_for("sendMessage", chat_id=chat_id)
    assert "Bộ phận Một cửa" in menu.text
    assert [p for _, p in menu.buttons] == [
        "proc:search",
        "dossier:check",
        "feedback:new",
        "lang:choose",
    ]

    await deliver(api.text_update(chat_id, "lam giay khai sinh cho con"))
    calls = await api.wait_for("sendMessage", chat_id=chat_id, count=2)
    card = calls[1]
    assert "Thủ tục đăng ký khai sinh" in card.text and "1.001193" in card.text
    assert ("📄 Giấy tờ cần chuẩn bị", "proc:docs:1.001193") in card.buttons

    press = api.callback_update(chat_id, "proc:docs:1.001193")
    await deliver(press)
    await api.wait_for(
        "answerCallbackQuery",
        where=lambda c: c.params.get("callback_query_id") == press["callback_query"]["id"],
    )
    docs = await api.wait_for(
        "sendMessage", chat_id=chat_id, where=lambda c: "Giấy tờ cần nộp" in c.text
    )
    assert "Tờ khai đăng ký khai sinh" in docs[0].text

    photos_before = len(api.downloads)
    await deliver(api.photo_update(chat_id, JPEG))
    received = await api.wait_for(
        "sendMessage", chat_id=chat_id, where=lambda c: "Tôi đã nhận" in c.text
    )
    assert "photo-" in received[0].text
    # The photo really went through getFile and the file download.
    assert api.downloads[photos_before:] == [JPEG]


async def test_polling_start_search_button_photo(polling) -> None:
    api, _bot = polling

    async def deliver(update: dict) -> None:
        api.push(update)

    await _conversation(api, deliver, chat_id=1001)


async def test_webhook_start_search_button_photo(webhook) -> None:
    api, bot, session, _db = webhook

    async def deliver(update: dict) -> None:
        assert await bot.post(session, update) == 200

    await _conversation(api, deliver, chat_id=2001)


async def test_polling_mode_removes_any_webhook_and_publishes_commands(polling) -> None:
    api, bot = polling
    assert api.sent(method="deleteWebhook")
    assert [c["command"] for c in api.commands["vi"]] == [
        "start",
        "hoso",
        "theodoi",
        "help",
        "language",
        "cancel",
    ]
    assert api.commands["vi"][0]["description"] == "Menu chính"
    assert api.commands["en"][0]["description"] == "Main menu"
    assert api.commands[None] == api.commands["vi"]  # default language of the deployment
    assert f"@{BOT_USERNAME}" in "".join(bot.stdout)


async def test_webhook_is_registered_with_its_secret(webhook) -> None:
    api, bot, _session, _db = webhook
    assert api.webhook["url"] == WEBHOOK_URL
    assert api.webhook["secret_token"] == SECRET
    assert api.webhook["allowed_updates"] == ["message", "callback_query"]
    assert not api.sent(method="getUpdates")


async def test_user_language_is_the_first_guess(polling) -> None:
    api, _bot = polling
    api.push(api.text_update(1002, "/start", language="en-US"))
    (menu,) = await api.wait_for("sendMessage", chat_id=1002)
    assert menu.text.startswith("Hello!")
    assert menu.buttons[0][0] == "🔎 Find a procedure"


async def test_group_chat_answers_only_when_addressed(polling) -> None:
    api, _bot = polling
    group = -100500
    api.push(api.text_update(group, "xin chào mọi người", chat_type="supergroup", user_id=31))
    api.push(api.text_update(group, "/help@SomeOtherBot", chat_type="supergroup", user_id=31))
    api.push(api.text_update(group, f"/help@{BOT_USERNAME}", chat_type="supergroup", user_id=31))
    (answer,) = await api.wait_for("sendMessage", chat_id=group)
    assert "Cách sử dụng" in answer.text
    api.push(
        api.text_update(group, f"@{BOT_USERNAME} khai sinh", chat_type="supergroup", user_id=32)
    )
    calls = await api.wait_for("sendMessage", chat_id=group, count=2)
    assert "khai sinh" in calls[1].text.lower()
    await api.quiet(0.3)
    assert len(api.sent(group)) >= 2
    assert not any("mọi người" in c.text for c in api.sent(group))


async def test_unsupported_message_kinds_get_a_polite_answer(polling) -> None:
    api, _bot = polling
    sticker = {
        "file_id": "st1",
        "file_unique_id": "ust1",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    api.push(api.message_update(1003, sticker=sticker))
    (answer,) = await api.wait_for("sendMessage", chat_id=1003)
    assert "chỉ đọc được" in answer.text


async def test_webhook_rejects_a_wrong_or_missing_secret(webhook) -> None:
    api, bot, session, db = webhook
    chat = 2002
    assert await bot.post(session, api.text_update(chat, "/start"), secret=None) == 403
    assert await bot.post(session, api.text_update(chat, "/start"), secret="wrong" * 4) == 403
    assert await bot.post(session, api.text_update(chat, "/start"), secret=SECRET[:-1]) == 403
    await api.quiet(0.3)
    assert api.sent(chat) == []
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM conversations WHERE channel='telegram' AND conversation_id=?",
            (str(chat),),
        ).fetchone()
    assert rows == (0,)
    assert SECRET not in bot.log() and "wrong" * 4 not in bot.log()
    assert "without the right secret token" in bot.log()


async def test_webhook_rejects_malformed_updates(webhook) -> None:
    api, bot, session, _db = webhook
    assert await bot.post(session, b"{not json") == 400
    assert await bot.post(session, b"[1, 2]") == 400
    assert await bot.post(session, b'{"update_id": "seven"}') == 400
    assert await bot.post(session, "Cập nhật".encode("utf-16")) == 400
    assert await bot.post(session, b'{"update_id": 1, "message": "x"}') == 400
    assert await bot.post(session, b'{"update_id": 2, "callback_query": {}}') == 400
    # Still serving afterwards.
    assert await bot.post(session, api.text_update(2003, "/start")) == 200
    await api.wait_for("sendMessage", chat_id=2003)


async def test_the_same_update_twice_gets_one_reply(webhook) -> None:
    api, bot, session, _db = webhook
    update = api.text_update(2004, "/help")
    assert await bot.post(session, update) == 200
    assert await bot.post(session, update) == 200
    again = api.text_update(2004, "/start")
    statuses = await asyncio.gather(*(bot.post(session, again) for _ in range(5)))
    assert statuses == [200] * 5
    await api.wait_for("sendMessage", chat_id=2004, count=2)
    await api.quiet(0.5)
    assert len(api.sent(2004)) == 2


async def test_thousand_updates_from_hundred_chats_each_get_their_replies_in_order(
    webhook,
) -> None:
    """100 chats write at once, each sending 10 procedure codes one after another; every
    chat must get exactly one card per code, in the order it asked."""
    from procedures_catalog.loader import load_bundled

    api, bot, _session, _db = webhook
    codes = sorted(load_bundled("commune").procedures)[::29][:10]
    assert len(codes) == 10
    chats = [300_000 + i for i in range(100)]
    script = {chat: codes[i % 10 :] + codes[: i % 10] for i, chat in enumerate(chats)}

    async def one_chat(client: aiohttp.ClientSession, chat: int) -> None:
        for code in script[chat]:
            assert await bot.post(client, api.text_update(chat, code)) == 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as client:
        await asyncio.gather(*(one_chat(client, chat) for chat in chats))
    await api.wait_for(
        "sendMessage", where=lambda c: (c.chat_id or 0) >= 300_000, count=1000, timeout=120
    )
    await api.quiet(0.5)
    code_pattern = re.compile(r"\d\.\d{6}")
    for chat in chats:
        got = [code_pattern.search(c.text).group(0) for c in api.sent(chat)]
        assert got == script[chat], chat


async def test_webhook_update_is_handled_once_across_a_restart(tmp_path) -> None:
    api = FakeBotAPI(TOKEN)
    await api.start()
    env = bot_env(api, f"sqlite:///{tmp_path}/bot.sqlite3", "webhook")
    update = api.text_update(2100, "/help")
    try:
        async with aiohttp.ClientSession() as session:
            async with running_bot(env) as bot:
                assert await bot.post(session, update) == 200
                await api.wait_for("sendMessage", chat_id=2100)
            async with running_bot(env) as bot:
                assert await bot.post(session, update) == 200  # Telegram re-delivers
                assert await bot.post(session, api.text_update(2100, "/start")) == 200
                calls = await api.wait_for("sendMessage", chat_id=2100, count=2)
                await api.quiet(0.3)
        assert len(api.sent(2100)) == 2
        assert "Cách sử dụng" in calls[0].text and "Xin chào" in calls[1].text
    finally:
        await api.stop()


async def test_tokens_never_reach_the_logs(polling, webhook) -> None:
    _api, polling_bot = polling
    _api, webhook_bot, _session, _db = webhook
    for bot in (polling_bot, webhook_bot):
        text = bot.log() + "".join(bot.stdout)
        assert TOKEN not in text
        assert TOKEN.split(":")[1] not in text
        assert SECRET not in text


async def test_a_token_telegram_refuses_stops_start_up_with_a_clear_message(tmp_path) -> None:
    api = FakeBotAPI("999999999:SOMEoneELSEStokenABCDEFGHIJKLMNOPQRS")
    await api.start()
    try:
        proc = await spawn_bot(bot_env(api, f"sqlite:///{tmp_path}/bot.sqlite3", "polling"))
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await api.stop()
    assert proc.returncode == 1
    text = err.decode()
    assert "Telegram từ chối mã bot (token)" in text
    assert "Traceback" not in text and TOKEN not in text


async def test_web_chat_serves_while_telegram_is_unreachable(tmp_path) -> None:
    api = FakeBotAPI(TOKEN)  # never started: nothing listens on its address
    api.port = _free_port()
    env = bot_env(api, f"sqlite:///{tmp_path}/bot.sqlite3", "polling")
    async with running_bot(env) as bot:
        assert "chưa kết nối được tới Bot API" in "".join(bot.stdout)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{bot.port}/") as page:
                assert page.status == 200


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
