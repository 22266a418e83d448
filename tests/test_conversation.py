"""Conversations through the neutral types, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.conftest import Chat

MENU_VI = [
    "🔎 Tìm thủ tục",
    "📄 Tra cứu hồ sơ",
    "✉️ Gửi phản ánh, kiến nghị",
    "🌐 Ngôn ngữ / Language",
]
MENU_EN = ["🔎 Find a procedure", "📄 Check a dossier", "✉️ Send feedback", "🌐 Language / Ngôn ngữ"]


async def test_greeting_shows_vietnamese_menu(chat: Chat) -> None:
    await chat.say("xin chào")
    assert chat.text.startswith("Xin chào! Tôi là trợ lý ảo của Bộ phận Một cửa.")
    assert chat.buttons == MENU_VI
    assert chat.payloads == ["proc:search", "dossier:check", "feedback:new", "lang:choose"]


async def test_greeting_without_accents_or_in_nfd(chat: Chat) -> None:
    for typed in ("xin chao", "XIN CHÀO!!", "xin cha\u0300o", "  Chào  "):
        await chat.say(typed)
        assert chat.buttons == MENU_VI, typed


async def test_start_command_and_bot_mention(chat: Chat) -> None:
    await chat.say("/start")
    assert chat.buttons == MENU_VI
    await chat.say("/start@MotCuaBot")
    assert chat.buttons == MENU_VI


async def test_switch_to_english_with_buttons_and_it_is_remembered(chat: Chat) -> None:
    await chat.say("xin chào")
    await chat.press("lang:choose")
    assert chat.buttons == ["Tiếng Việt", "English"]
    await chat.press("lang:set:en")
    assert chat.text == "From now on I will reply in English. What would you like to do?"
    assert chat.buttons == MENU_EN
    await chat.say("xin chào")
    assert chat.text.startswith("Hello! I am the virtual assistant")
    assert chat.buttons == MENU_EN


async def test_switch_language_in_words(chat: Chat) -> None:
    await chat.say("english")
    assert chat.buttons == MENU_EN
    await chat.say("tieng viet")
    assert chat.text == "Từ giờ tôi sẽ trả lời bằng tiếng Việt. Bạn cần giúp gì?"
    assert chat.buttons == MENU_VI


async def test_unknown_language_code_offers_the_choice_again(chat: Chat) -> None:
    await chat.press("lang:set:fr")
    assert chat.buttons == ["Tiếng Việt", "English"]


async def test_language_is_per_conversation(engine) -> None:
    first, second = Chat(engine, conversation_id="a"), Chat(engine, conversation_id="b")
    await first.say("english")
    await second.say("xin chào")
    assert second.buttons == MENU_VI
    other_channel = Chat(engine, channel="other", conversation_id="a")
    await other_channel.say("menu")
    assert other_channel.buttons == MENU_VI


async def test_channel_locale_guess_is_used_until_the_user_chooses(engine) -> None:
    chat = Chat(engine, locale="en-US")
    await chat.say("hello")
    assert chat.buttons == MENU_EN
    await chat.press("lang:set:vi")
    await chat.say("hello")
    assert chat.buttons == MENU_VI


async def test_help_lists_commands_and_offers_menu(chat: Chat) -> None:
    await chat.say("hướng dẫn")
    assert "Cách sử dụng trợ lý" in chat.text
    assert "/start" in chat.text and "/language" in chat.text
    assert chat.buttons == MENU_VI
    await chat.say("/help")
    assert "Cách sử dụng trợ lý" in chat.text


async def test_fallback_never_leaves_the_user_stuck(chat: Chat) -> None:
    await chat.say("asdkjh qwe")
    assert chat.text.startswith("Xin lỗi, tôi chưa hiểu ý bạn.")
    assert chat.buttons == MENU_VI
    await chat.say("/nosuchcommand")
    assert chat.buttons == MENU_VI


async def test_cancel_returns_to_menu(chat: Chat) -> None:
    await chat.say("huỷ")
    assert chat.text.startswith("Đã hủy.")
    assert chat.buttons == MENU_VI


async def test_console_channel_accepts_the_number_of_a_button(engine) -> None:
    chat = Chat(engine, channel="console")
    await chat.say("xin chào")
    await chat.say("4")  # the fourth button: language
    assert chat.buttons == ["Tiếng Việt", "English"]
    await chat.say("2")
    assert chat.buttons == MENU_EN
    await chat.say("9")  # no such button: not understood, menu again
    assert chat.text.startswith("Sorry, I did not understand that.")


async def test_numbers_are_plain_text_on_channels_with_buttons(engine) -> None:
    chat = Chat(engine, channel="web")
    await chat.say("xin chào")
    await chat.say("4")
    assert chat.text.startswith("Xin lỗi, tôi chưa hiểu ý bạn.")


async def test_state_survives_a_new_engine(databases) -> None:
    from tests.conftest import make_engine

    first = Chat(make_engine(await databases.open()))
    await first.say("english")
    restarted = Chat(make_engine(await databases.open()))
    await restarted.say("menu")
    assert restarted.buttons == MENU_EN
