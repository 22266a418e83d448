"""One deployment serving several communes (MOTCUA_UNITS, issue 11): the citizen's choice
(/donvi, a typed name), a Telegram link (/start <unit>) and the web chat's /?unit= page pick the
unit; what a citizen sends lands in that unit's inbox, and each unit's staff see their own and
nothing else. The staff checks run once per unit."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from bot.channels.web import UNIT_SUFFIX, conversation_id
from bot.storage.models import Conversation, Feedback
from tests.conftest import Chat, make_engine
from tests.staff_helpers import UNIT_A, UNIT_B, StaffClient, add_user, use_cheap_hasher
from tests.test_feedback_chat import CODE, walk_to_content
from tests.test_web_demo import post, web_app

DEFAULT = "demo"  # MOTCUA_UNIT of these deployments: the bundled demonstration commune


@pytest.fixture
def engine(db):
    return make_engine(db, units=[UNIT_A, UNIT_B], push_channels=["test", "telegram", "web"])


async def submit_feedback(chat: Chat, text: str) -> str:
    await walk_to_content(chat)
    await chat.say(text)
    if "fb:files:done" in chat.payloads:
        await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    return CODE.search(chat.text).group(0)


async def units_of(db) -> dict[str, str]:
    async with db.session() as session:
        return {row.content: row.unit for row in await session.scalars(select(Feedback))}


async def test_the_citizen_chooses_the_unit_and_it_sticks(db, engine) -> None:
    chat = Chat(engine, channel="telegram", conversation_id="501")
    await chat.say("/start")
    assert "Bạn đang hỏi Bộ phận Một cửa của Xã Minh Họa" in chat.text  # the default's name
    await chat.say("/donvi")
    assert chat.payloads[:3] == [f"unit:set:{DEFAULT}", f"unit:set:{UNIT_A}", f"unit:set:{UNIT_B}"]
    assert chat.buttons[0].startswith("✓ ")  # the current one
    await chat.press(f"unit:set:{UNIT_B}")
    assert f"Từ bây giờ bạn đang hỏi Bộ phận Một cửa của {UNIT_B}" in chat.text
    await chat.press("cancel")  # leaving a flow keeps the unit
    await submit_feedback(chat, "Rác chưa được thu gom ở xóm 3.")
    # Typed, in any spelling: the unit's id (or its name).
    await chat.say(f"/donvi {UNIT_A.upper()}")
    assert f"Bộ phận Một cửa của {UNIT_A}" in chat.text
    await submit_feedback(chat, "Đường vào trường bị ngập.")
    await chat.say("/donvi không có xã này")
    assert "không tìm thấy đơn vị nào tên “không có xã này”" in chat.text
    assert f"unit:set:{UNIT_B}" in chat.payloads
    # A unit this deployment does not serve is not taken from a button payload either.
    await chat.press("unit:set:xa-la")
    assert "Câu hỏi của bạn dành cho xã, phường nào?" in chat.text
    await submit_feedback(chat, "Vẫn ở xã An Bình.")
    assert await units_of(db) == {
        "Rác chưa được thu gom ở xóm 3.": UNIT_B,
        "Đường vào trường bị ngập.": UNIT_A,
        "Vẫn ở xã An Bình.": UNIT_A,
    }


async def test_a_telegram_link_chooses_the_unit(db, engine) -> None:
    linked = Chat(engine, channel="telegram", conversation_id="502")
    await linked.say(f"/start {UNIT_B}")
    assert f"Bạn đang hỏi Bộ phận Một cửa của {UNIT_B}" in linked.text
    await submit_feedback(linked, "Cầu tre bị gãy.")
    stranger = Chat(engine, channel="telegram", conversation_id="503")
    await stranger.say("/start xa-khong-phuc-vu")  # not served: the default unit
    assert "Bạn đang hỏi Bộ phận Một cửa của Xã Minh Họa" in stranger.text
    await submit_feedback(stranger, "Xin thêm giờ làm việc thứ Bảy.")
    assert await units_of(db) == {
        "Cầu tre bị gãy.": UNIT_B,
        "Xin thêm giờ làm việc thứ Bảy.": DEFAULT,
    }


async def test_a_unit_no_longer_served_falls_back_to_the_default(db) -> None:
    before = make_engine(db, units=[UNIT_A, UNIT_B])
    chat = Chat(before, channel="telegram", conversation_id="504")
    await chat.press(f"unit:set:{UNIT_B}")
    after = make_engine(db, units=[UNIT_A])  # the operator removed UNIT_B
    chat.engine = after
    await submit_feedback(chat, "Gửi sau khi đổi cấu hình.")
    assert await units_of(db) == {"Gửi sau khi đổi cấu hình.": DEFAULT}


async def test_a_single_unit_deployment_says_so(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("/start")
    assert "Bạn đang hỏi" not in chat.text
    await chat.say("/donvi")
    assert "Trợ lý này chỉ trả lời cho một đơn vị: Xã Minh Họa." in chat.text


async def test_the_web_page_of_a_unit_speaks_for_it(aiohttp_client, db, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    page = await (await client.get(f"/?unit={UNIT_B}")).text()
    assert f'<p id="unit-name" class="unit-name">{UNIT_B}</p>' in page
    assert f'"unit": "{UNIT_B}"' in page
    ignored = await (await client.get("/?unit=<script>")).text()
    assert "unit-name" not in ignored and "<script>alert" not in ignored
    data = await post(client, {"payload": "feedback:new", "unit": UNIT_B})
    for step in ({"payload": "fb:kind:report"}, {"payload": "fb:topic:other"}):
        data = await post(client, {**step, "unit": UNIT_B})
    data = await post(client, {"text": "Nắp cống bị mất trước chợ.", "unit": UNIT_B})
    for step in ({"payload": "fb:files:done"}, {"payload": "fb:contact:anon"}):
        if any(b["payload"] == step["payload"] for r in data["replies"] for b in r["buttons"]):
            data = await post(client, {**step, "unit": UNIT_B})
    send = next(
        b["payload"]
        for r in data["replies"]
        for b in r["buttons"]
        if b["payload"].startswith("fb:send:")
    )
    data = await post(client, {"payload": send, "unit": UNIT_B})
    assert CODE.search(data["replies"][0]["text"])
    # The same cookie on the default page is another conversation.
    await post(client, {"text": "/start"})
    token = next(c.value for c in client.session.cookie_jar if c.key == "motcua_chat")
    async with db.session() as session:
        chats = set(await session.scalars(select(Conversation.conversation_id)))
    assert chats == {conversation_id(token) + UNIT_SUFFIX + UNIT_B, conversation_id(token)}
    # A unit the deployment does not serve is ignored: the default unit's chat.
    await post(client, {"text": "Góp ý khác", "unit": "xa-la"})
    assert await units_of(db) == {"Nắp cống bị mất trước chợ.": UNIT_B}


@pytest.mark.parametrize(("mine", "theirs"), [(UNIT_A, UNIT_B), (UNIT_B, UNIT_A)])
async def test_each_units_staff_see_their_own_citizens_feedback_only(
    aiohttp_client, db, engine, monkeypatch, mine, theirs
) -> None:
    """Feedback arriving through each unit's entry points (a Telegram link for one, the
    citizen's choice for the other) reaches that unit's officer, and only that officer."""
    use_cheap_hasher(monkeypatch)
    linked = Chat(engine, channel="telegram", conversation_id="601")
    await linked.say(f"/start {mine}")
    own = await submit_feedback(linked, f"Phản ánh của công dân {mine}.")
    chooser = Chat(engine, channel="telegram", conversation_id="602")
    await chooser.press(f"unit:set:{theirs}")
    other = await submit_feedback(chooser, f"Phản ánh của công dân {theirs}.")
    await add_user(db, f"canbo-{mine}", unit=mine)
    officer = await StaffClient.open(aiohttp_client, engine)
    await officer.login(f"canbo-{mine}")
    inbox = await officer.page("/staff/")
    assert own in inbox and other not in inbox
    assert f"Phản ánh của công dân {mine}." in await officer.page(f"/staff/feedback/{own}")
    response = await officer.get(f"/staff/feedback/{other}")
    assert response.status == 404
    assert f"công dân {theirs}" not in await response.text()
    assert re.search(rf"\b{re.escape(own)}\b", inbox)


def test_unit_profiles_are_added_listed_and_checked(tmp_path) -> None:
    import json

    from tests.cli_helpers import run_in_process

    env = {
        "MOTCUA_DATABASE_URL": f"sqlite:///{tmp_path}/units.sqlite3",
        "MOTCUA_UNITS": json.dumps([UNIT_A, UNIT_B]),
    }
    profile = {
        "id": UNIT_A,
        "name": "Xã An Bình",
        "province": "Tỉnh Minh Họa",
        "address": "Trụ sở UBND xã An Bình",
        "applied_codes": ["1.001193"],
    }
    good = tmp_path / "an-binh.json"
    good.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**profile, "id": "Xã Sai"}), encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "xa-x", "name": ""', encoding="utf-8")
    for wrong in (bad, broken):
        code, _out, err = run_in_process(["catalogue", "add-units", str(good), str(wrong)], env)
        assert code == 2 and str(wrong) in err
    code, out, _err = run_in_process(["catalogue", "units"], env)
    assert UNIT_A not in out  # nothing was written by the failed runs
    code, out, _err = run_in_process(["catalogue", "add-units", str(good)], env)
    assert code == 0 and f"{UNIT_A}: Xã An Bình" in out
    code, out, err = run_in_process(["catalogue", "units"], env)
    assert code == 0
    assert f"{UNIT_A}\tXã An Bình\tTỉnh Minh Họa\tđang phục vụ" in out
    assert "demo\tXã Minh Họa\tTỉnh Minh Họa\tđang phục vụ" in out  # MOTCUA_UNIT, the default
    assert f"{UNIT_B}: " in err  # served but without a profile
    profile["name"] = "Xã An Bình Mới"
    good.write_text(json.dumps(profile, ensure_ascii=False), encoding="utf-8")
    code, out, _err = run_in_process(["catalogue", "add-units", str(good)], env)
    assert code == 0 and "Xã An Bình Mới" in out
