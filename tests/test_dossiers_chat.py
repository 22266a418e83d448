"""Dossier status in the chat: status card, unknown and malformed codes, rate limits, the
second factor, subscriptions, privacy, and an upstream that is down (through the engine)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.dossiers.http_source import DEFAULT_MAPPING, HttpDossierSource
from bot.dossiers.sources import DatabaseCache
from bot.storage.models import DossierEvent, DossierRecord, DossierSubscription
from tests.conftest import Chat, make_engine
from tests.fakes.provincial_api import FakeProvincialAPI

CODE = "000.00.15.H26-260212-0007"
RECEIVED = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)  # Thu 12/02/2026 09:00 Vietnam time


async def add_dossier(db, code=CODE, *, unit="demo", status="in_progress", note="", phone=None):
    """A local dossier received before Tết 2026 for birth registration (1 working day)."""
    async with db.write_transaction() as session:
        session.add(
            DossierRecord(
                unit=unit,
                code=code,
                procedure_code="1.001193",
                received_at=RECEIVED,
                channel="in_person",
                status=status,
                phone_last4=phone,
            )
        )
        session.add(DossierEvent(unit=unit, code=code, status="received", at=RECEIVED, note=""))
        if status != "received":
            at = RECEIVED + timedelta(hours=3)
            session.add(DossierEvent(unit=unit, code=code, status=status, at=at, note=note))


async def change_status(db, status, note="", code=CODE, unit="demo"):
    async with db.write_transaction() as session:
        record = await session.get(DossierRecord, (unit, code))
        record.status = status
        session.add(
            DossierEvent(unit=unit, code=code, status=status, at=datetime.now(UTC), note=note)
        )


@pytest.fixture
def local_engine(db):
    return make_engine(db, dossier_source="local", push_channels=["test"])


async def test_valid_code_shows_the_status_card(db, local_engine) -> None:
    await add_dossier(db)
    chat = Chat(local_engine)
    await chat.press("dossier:check")
    assert "mã hồ sơ" in chat.text
    await chat.say(f" {CODE.lower()} ")  # pasted with spaces, in lower case
    text = chat.text
    assert f"Hồ sơ {CODE}" in text
    assert "Thủ tục đăng ký khai sinh (1.001193)" in text
    assert "09:00 12/02/2026" in text and "trực tiếp" in text
    # 1 working day from Thu 12/02: Fri 13/02 (Tết 2026 starts on Sat 14/02).
    assert "13/02/2026" in text
    assert "Đang xử lý" in text
    assert "ds:s:" + CODE in chat.payloads


async def test_code_inside_a_sentence_without_the_menu(db, local_engine) -> None:
    await add_dossier(db)
    chat = Chat(local_engine)
    await chat.say(f"cho hỏi hồ sơ {CODE.replace('-', ' - ')} đến đâu rồi ạ")
    assert f"Hồ sơ {CODE}" in chat.text


async def test_unknown_code_says_how_to_check_it(local_engine) -> None:
    chat = Chat(local_engine)
    await chat.press("dossier:check")
    await chat.say("000.00.15.H26-260212-9999")
    assert "Không tìm thấy hồ sơ" in chat.text
    assert "Phiếu tiếp nhận" in chat.text or "phiếu tiếp nhận" in chat.text
    # Still waiting for a code: the next message is read as one.
    await chat.say("xyz")
    assert "không giống mã hồ sơ" in chat.text


async def test_malformed_code_gets_a_format_hint_and_no_lookup(db, local_engine) -> None:
    chat = Chat(local_engine)
    await chat.press("dossier:check")
    await chat.say("12345")
    assert "không giống mã hồ sơ" in chat.text
    assert "000.00.15.H26-260115-0001" in chat.text  # the example shown to the citizen
    async with db.session() as session:
        # Format is checked before any lookup: nothing counted against the limits.
        assert await session.scalar(select(func.count()).select_from(DossierRecord)) == 0


async def test_rate_limit_hit_gets_a_polite_wait_message(db) -> None:
    engine = make_engine(db, dossier_source="local", dossier_lookup_limit="3/600")
    chat = Chat(engine)
    for n in range(3):
        await chat.say(f"000.00.15.H26-260212-000{n}")
        assert "Không tìm thấy hồ sơ" in chat.text
    await chat.say("000.00.15.H26-260212-0009")
    assert "thử lại sau khoảng 10 phút" in chat.text
    # Another chat is not affected by this one's limit.
    other = Chat(engine, conversation_id="c2")
    await other.say("000.00.15.H26-260212-0009")
    assert "Không tìm thấy hồ sơ" in other.text


async def test_global_rate_limit_covers_all_chats(db) -> None:
    engine = make_engine(db, dossier_source="local", dossier_global_lookup_limit="2/60")
    for n in range(2):
        await Chat(engine, conversation_id=f"c{n}").say("000.00.15.H26-260212-0001")
    late = Chat(engine, conversation_id="c9")
    await late.say("000.00.15.H26-260212-0001")
    assert "thử lại sau khoảng 1 phút" in late.text


async def test_second_factor_asks_for_the_last_phone_digits(db) -> None:
    await add_dossier(db, phone="5678")
    engine = make_engine(db, dossier_source="local", dossier_phone_check_units=["demo"])
    chat = Chat(engine)
    await chat.say(CODE)
    assert "4 số cuối" in chat.text and "Đang xử lý" not in chat.text
    await chat.say("1111")
    assert "không khớp" in chat.text and "Đang xử lý" not in chat.text
    await chat.say(CODE)
    await chat.say("09x1 23 5678")
    assert "Đang xử lý" in chat.text


async def test_card_never_shows_personal_data_and_shows_the_desk_note(db, local_engine) -> None:
    await add_dossier(db, status="needs_documents", note="Bổ sung bản sao CCCD của người cha")
    chat = Chat(local_engine)
    await chat.say(CODE)
    assert "Chờ bổ sung hồ sơ" in chat.text
    assert "Bổ sung bản sao CCCD của người cha" in chat.text
    assert "tạm dừng" in chat.text.lower()  # the clock is not running against the desk


async def test_subscribe_and_unsubscribe(db, local_engine) -> None:
    await add_dossier(db)
    chat = Chat(local_engine)
    await chat.say(CODE)
    await chat.press("ds:s:" + CODE)
    assert "mỗi khi hồ sơ" in chat.text
    async with db.session() as session:
        sub = (await session.scalars(select(DossierSubscription))).one()
        assert (sub.code, sub.notified, sub.ended_at) == (CODE, 2, None)
    await chat.say(CODE)
    assert "ds:u:" + CODE in chat.payloads  # the card knows the chat follows it
    await chat.press("ds:u:" + CODE)
    assert "không nhận thông báo" in chat.text
    async with db.session() as session:
        assert (await session.scalars(select(DossierSubscription))).one().ended_at is not None


async def test_subscribe_button_for_an_unseen_code_runs_the_checks_first(db) -> None:
    await add_dossier(db, phone="5678")
    engine = make_engine(
        db, dossier_source="local", push_channels=["test"], dossier_phone_check_units=["demo"]
    )
    chat = Chat(engine)
    await chat.press("ds:s:" + CODE)  # a forged button press
    assert "4 số cuối" in chat.text
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(DossierSubscription)) == 0
    await chat.say("5678")
    assert "Đang xử lý" in chat.text and "mỗi khi hồ sơ" in chat.text


async def test_channels_that_cannot_push_get_no_subscribe_button(db) -> None:
    await add_dossier(db)
    chat = Chat(make_engine(db, dossier_source="local"))
    await chat.say(CODE)
    assert not any(p.startswith("ds:s:") for p in chat.payloads)


async def test_english_card(db, local_engine) -> None:
    await add_dossier(db)
    chat = Chat(local_engine, locale="en")
    await chat.say(CODE)
    assert "Dossier " + CODE in chat.text and "Being processed" in chat.text


async def test_demo_source_answers_demo_codes(engine) -> None:
    chat = Chat(engine)  # the default unit "demo" uses the demo source
    await chat.say("DEMO-000000-0004")
    assert "Có kết quả" in chat.text and "Dữ liệu minh họa" not in chat.text
    await chat.say("DEMO-000000-0003")
    assert "Dữ liệu minh họa" in chat.text


async def test_upstream_down_shows_the_last_known_answer_with_its_time(db) -> None:
    async with FakeProvincialAPI(delay=5.0) as fake:
        fake.add_dossier(CODE, status="Đang xử lý")
        source = HttpDossierSource(
            "demo", fake.url_template, DEFAULT_MAPPING, cache=DatabaseCache(db)
        )
        engine = make_engine(db, dossier_source=source)
        try:
            chat = Chat(engine)
            await chat.say(CODE)
            assert "Đang xử lý" in chat.text and "gián đoạn" not in chat.text
            fake.fault = "slow"
            started = time.monotonic()
            other = Chat(engine, conversation_id="c2")  # no memo of the first chat's answer
            engine.services.dossiers._memo.clear()
            await other.say(CODE)
            assert time.monotonic() - started < 3.0
            assert "gián đoạn, thông tin lúc" in other.text
            assert "Đang xử lý" in other.text
            # A code never seen before while the upstream is down: an honest apology.
            await other.say("000.00.15.H26-260212-0008")
            assert "gián đoạn" in other.text and "thử lại" in other.text
        finally:
            await source.close()


async def test_http_source_is_built_from_settings(db) -> None:
    async with FakeProvincialAPI() as fake:
        fake.add_dossier(CODE, status="Đang xử lý")
        engine = make_engine(
            db,
            dossier_source="http",
            dossier_http_url=fake.url_template,
            dossier_http_statuses={"Đang xử lý": "returned_early"},
        )
        try:
            assert isinstance(engine.services.dossiers.source, HttpDossierSource)
            chat = Chat(engine)
            await chat.say(CODE)
            # The province's own status words are read through the mapping from settings.
            assert "Đã trả kết quả trước hạn" in chat.text
        finally:
            await engine.services.dossiers.close()


def test_bad_http_settings_are_refused_at_start_up() -> None:
    from bot.config import SettingsError, load_settings

    with pytest.raises(SettingsError) as missing_url:
        load_settings(dossier_source="http")
    assert "MOTCUA_DOSSIER_HTTP_URL" in str(missing_url.value)
    with pytest.raises(SettingsError) as bad_status:
        load_settings(
            dossier_source="http",
            dossier_http_url="https://motcua.example.gov.vn/api/{code}",
            dossier_http_statuses={"1": "nonsense"},
        )
    assert "nonsense" in str(bad_status.value)


async def test_a_slow_upstream_does_not_hold_up_other_chats(db) -> None:
    """The lookup runs before the conversation's transaction: on SQLite (one writer at a
    time) another citizen's message is answered while the upstream is still thinking."""
    async with FakeProvincialAPI(delay=1.5) as fake:
        fake.add_dossier(CODE, status="Đang xử lý")
        fake.fault = "slow"
        source = HttpDossierSource(
            "demo",
            fake.url_template,
            DEFAULT_MAPPING,
            cache=DatabaseCache(db),
            deadline=2.5,
            attempt_timeout=2.0,
            attempts=1,
        )
        engine = make_engine(db, dossier_source=source)
        finished: list[str] = []

        async def say(chat: Chat, text: str) -> None:
            await chat.say(text)
            finished.append(chat.conversation_id)

        try:
            slow = asyncio.create_task(say(Chat(engine, conversation_id="slow"), CODE))
            await asyncio.sleep(0.2)  # the lookup is under way
            await say(Chat(engine, conversation_id="quick"), "/start")
            await slow
            assert finished == ["quick", "slow"]
        finally:
            await source.close()


async def test_status_questions_ask_for_the_code_but_procedure_questions_are_searched(
    local_engine,
) -> None:
    chat = Chat(local_engine)
    await chat.say("ho so cua em xong chua a")
    assert "nhập mã hồ sơ" in chat.text
    await chat.say("hủy")
    # "tình trạng hôn nhân" (marital status) with "hồ sơ" is a procedure, not a dossier.
    await chat.say("cho hỏi thủ tục xác nhận tình trạng hôn nhân thì hồ sơ gồm những gì")
    assert "nhập mã hồ sơ" not in chat.text
    assert "tình trạng hôn nhân" in chat.text.lower()


async def test_typed_follow_and_stop(db, local_engine) -> None:
    await add_dossier(db)
    chat = Chat(local_engine)
    await chat.say("theo doi ho so")  # nothing shown yet: asks for the code
    assert "nhập mã hồ sơ" in chat.text
    await chat.say(CODE)
    await chat.say("báo cho tôi khi có thay đổi")
    assert "mỗi khi hồ sơ" in chat.text
    await chat.say("huy theo doi")
    assert chat.payloads[0] == "ds:u:" + CODE
    await chat.press(chat.payloads[0])
    await chat.say("huy theo doi")
    assert "không theo dõi hồ sơ nào" in chat.text
