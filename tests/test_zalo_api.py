"""The Zalo OA API client in process, against the fake: retries, the single-use refresh token
(one refresh even when two processes find the token expired at once), what is stored and
reloaded, file upload and download, and how the channel renders replies for Zalo."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from bot.channels.zalo import LIST_MAX, MAX_TEXT, ZaloChannel, list_template
from bot.channels.zalo_api import ATTEMPTS, EXPIRED_TOKEN, TokenStore, ZaloApi, ZaloError
from bot.config import load_settings
from bot.core import Button, Reply
from bot.core.messages import Document
from bot.storage.models import ChannelToken, as_utc, utcnow
from tests.conftest import make_engine
from tests.fakes.zalo_api import FakeZaloAPI

USER = "8411223344556677"


@pytest.fixture
async def fake():
    api = FakeZaloAPI()
    await api.start()
    yield api
    await api.stop()


def client(fake: FakeZaloAPI, db, *, refresh: str | None = None) -> ZaloApi:
    access, initial_refresh = fake.issued[0]
    tokens = TokenStore(db, access, initial_refresh if refresh is None else refresh)
    api = ZaloApi(fake.base_url, fake.base_url, fake.app_id, fake.app_secret, tokens)
    api.retry_delay = 0.01
    return api


@pytest.fixture
async def api(fake, db):
    zalo = client(fake, db)
    await zalo.start()
    yield zalo
    await zalo.close()


async def stored(db) -> ChannelToken | None:
    async with db.session() as session:
        return (await session.scalars(select(ChannelToken))).one_or_none()


async def test_a_message_is_sent_with_the_access_token(fake, api) -> None:
    data = await api.send_message(USER, {"text": "Xin chào"})
    assert data["message_id"] == fake.messages(USER)[0].message_id
    assert fake.texts(USER) == ["Xin chào"]


async def test_5xx_is_retried_then_given_up(fake, api) -> None:
    fake.fail_http(503, times=ATTEMPTS - 1)
    await api.send_message(USER, {"text": "lần một"})
    assert fake.texts(USER) == ["lần một"]
    assert [c.outcome for c in fake.calls_to("message")] == ["http 503"] * (ATTEMPTS - 1) + ["ok"]

    fake.fail_always(500)
    with pytest.raises(ZaloError) as refused:
        await api.send_message(USER, {"text": "lần hai"})
    assert refused.value.code is None and f"failed {ATTEMPTS} times" in str(refused.value)
    assert len([c for c in fake.calls_to("message") if c.outcome == "http 500"]) == ATTEMPTS


async def test_an_error_code_is_final(fake, api) -> None:
    fake.refuse_user(USER, -230)
    with pytest.raises(ZaloError) as refused:
        await api.send_message(USER, {"text": "muộn"})
    assert refused.value.code == -230
    assert len(fake.calls_to("message")) == 1  # not retried
    with pytest.raises(ZaloError) as invalid:
        await api.send_message("u2", {"text": "x" * (MAX_TEXT + 1)})
    assert invalid.value.code == -201


async def test_an_expired_token_is_refreshed_once_and_stored(fake, api, db) -> None:
    fake.expire_token()
    await api.send_message(USER, {"text": "sau khi làm mới"})
    assert fake.texts(USER) == ["sau khi làm mới"]
    assert [c.outcome for c in fake.calls_to("message")] == [f"error {EXPIRED_TOKEN}", "ok"]
    assert fake.refreshes == [(fake.issued[0][1], True)]
    row = await stored(db)
    assert (row.access_token, row.refresh_token) == fake.issued[-1]
    assert row.expires_at is not None
    assert await api.refresh_tokens(fake.issued[0][1]) is None  # spent: Zalo refuses it

    # A second expiry spends the rotated refresh token, not the first one.
    fake.expire_token()
    await api.send_message(USER, {"text": "lần nữa"})
    accepted = [token for token, ok in fake.refreshes if ok]
    assert accepted == [fake.issued[0][1], fake.issued[1][1]]
    assert (await stored(db)).refresh_token == fake.issued[2][1]


async def test_a_restart_takes_the_stored_pair_unless_the_operator_set_new_tokens(
    fake, api, db
) -> None:
    fake.expire_token()
    await api.send_message(USER, {"text": "một"})
    restarted = client(fake, db)  # same settings as before the refresh
    await restarted.start()
    try:
        assert restarted.tokens.tokens.access == fake.issued[-1][0]
        await restarted.send_message(USER, {"text": "hai"})
        assert fake.calls_to("message")[-1].outcome == "ok"
    finally:
        await restarted.close()
    # New tokens in the settings (another seed): they win over the stored pair.
    reset = client(fake, db, refresh="ref-set-by-the-operator")
    await reset.start()
    try:
        assert reset.tokens.tokens.access == fake.issued[0][0]
    finally:
        await reset.close()


async def test_concurrent_expiries_in_one_process_refresh_once(fake, api) -> None:
    fake.expire_token()
    await asyncio.gather(*(api.send_message(f"u{n}", {"text": f"tin {n}"}) for n in range(5)))
    assert len(fake.refreshes) == 1 and fake.refreshes[0][1]
    assert sorted(s.text for s in fake.messages()) == [f"tin {n}" for n in range(5)]


async def test_two_processes_never_spend_one_refresh_token_twice(fake, databases, db) -> None:
    """Two bots on one database find the token expired at the same moment: one refreshes, the
    other takes the new pair from the database; both messages go out."""
    other_db = await databases.open()
    first, second = client(fake, db), client(fake, other_db)
    await first.start()
    await second.start()
    try:
        fake.expire_token()
        await asyncio.gather(
            first.send_message("a", {"text": "từ bot một"}),
            second.send_message("b", {"text": "từ bot hai"}),
        )
    finally:
        await first.close()
        await second.close()
    assert fake.refreshes == [(fake.issued[0][1], True)]
    assert sorted(s.text for s in fake.messages()) == ["từ bot hai", "từ bot một"]


async def test_a_refused_refresh_is_logged_and_the_call_fails(fake, api, caplog) -> None:
    fake.refresh_token = "ref-spent-elsewhere"  # someone else used ours
    fake.expire_token()
    with caplog.at_level(logging.ERROR, logger="motcua.zalo"):
        with pytest.raises(ZaloError) as refused:
            await api.send_message(USER, {"text": "x"})
    assert refused.value.code == EXPIRED_TOKEN
    assert "token refresh refused: Invalid refresh token" in caplog.text
    assert fake.messages() == []


async def test_without_a_refresh_token_the_operator_is_told(fake, db, caplog) -> None:
    api = client(fake, db, refresh="")
    await api.start()
    try:
        fake.expire_token()
        with caplog.at_level(logging.ERROR, logger="motcua.zalo"):
            with pytest.raises(ZaloError):
                await api.send_message(USER, {"text": "x"})
    finally:
        await api.close()
    assert "MOTCUA_ZALO_REFRESH_TOKEN" in caplog.text and fake.refreshes == []


async def test_upload_and_download(fake, api) -> None:
    token = await api.upload_file(b"%PDF-1.4 x", "danh-sach.pdf", "application/pdf")
    assert fake.uploads[token] == ("danh-sach.pdf", "application/pdf", b"%PDF-1.4 x")
    url = fake.add_file("a.jpg", b"\xff\xd8\xff" + b"1" * 100)
    fake.fail_http(502, times=1, path="/files/")
    assert await api.download(url, 1000) == b"\xff\xd8\xff" + b"1" * 100  # retried
    assert await api.download(url, 50) is None  # larger than the limit
    assert await api.download(fake.base_url + "/files/none.jpg", 1000) is None


# -- rendering and sending through the channel ------------------------------------------------


@pytest.fixture
async def channel(fake, sqlite_db):
    settings = load_settings(
        database_url=str(sqlite_db.url),
        **fake.settings(),
    )
    zalo = ZaloChannel(make_engine(sqlite_db), settings)
    zalo.api.retry_delay = 0.01
    await zalo.start()
    yield zalo
    await zalo.stop()


def test_buttons_become_numbered_lines_and_a_list_of_at_most_five() -> None:
    zalo = ZaloChannel.__new__(ZaloChannel)  # rendering needs no engine nor settings
    zalo.list_buttons = True
    few = Reply("Chọn:", [Button("Có", "yes"), Button("Không", "no")])
    many = Reply("Nhiều:", [Button(f"Mục {n}", f"p{n}") for n in range(LIST_MAX + 1)])
    first, second = zalo.render_all([few, many])
    assert first[0] == {"text": "Chọn:\n\n  1. Có\n  2. Không"}
    assert first[1] == list_template(few.buttons)
    elements = first[1]["attachment"]["payload"]["elements"]
    assert [e["default_action"]["payload"] for e in elements] == ["#mc:yes", "#mc:no"]
    assert len(second) == 1 and "  3. Mục 0" in second[0]["text"]  # numbered on, no list
    long = zalo.render(Reply("dòng dài\n" * 600))
    assert len(long) > 1 and all(len(m["text"]) <= MAX_TEXT for m in long)
    title = list_template([Button("x" * 300, "p")])["attachment"]["payload"]["elements"][0]
    assert len(title["title"]) == 100


async def test_a_document_is_uploaded_then_sent_as_a_file(fake, channel) -> None:
    await channel._touch(USER)
    reply = Reply("Danh sách", documents=[Document("danh-sach.pdf", "application/pdf", b"%PDF-1")])
    assert await channel.send(USER, [reply]) is True
    text, file = fake.messages(USER)
    assert text.text == "Danh sách" and file.kind == "file"
    assert fake.uploads[file.file_token] == ("danh-sach.pdf", "application/pdf", b"%PDF-1")


async def test_a_refused_list_falls_back_to_numbered_lines(fake, channel, caplog) -> None:
    await channel._touch(USER)
    original = fake._check_message

    def no_lists(body):
        if "attachment" in (body.get("message") or {}):
            return "template not allowed for this OA"
        return original(body)

    fake._check_message = no_lists
    with caplog.at_level(logging.WARNING, logger="motcua.zalo"):
        assert await channel.send(USER, [Reply("Chọn:", [Button("Có", "yes")])]) is True
        assert await channel.send(USER, [Reply("Lại:", [Button("Có", "yes")])]) is True
    assert [s.kind for s in fake.messages(USER)] == ["text", "text"]
    assert len(fake.calls_to("message")) == 3  # the list was tried once
    assert "list buttons refused" in caplog.text


async def test_a_push_outside_the_window_is_held(fake, channel) -> None:
    assert await channel.send("stranger", [Reply("Tin")]) == "held"  # never wrote
    await channel._touch(USER)
    fake.refuse_user(USER, -230)  # the bot thinks the window is open; Zalo says no
    assert await channel.send(USER, [Reply("Tin")]) == "held"
    fake.allow_user(USER)
    # Zalo's refusal shut the window until the citizen writes (no release-refuse loop).
    assert await channel.send(USER, [Reply("Tin")]) == "held"
    await asyncio.sleep(0.01)  # the new message is later than the last one recorded
    await channel._touch(USER)
    replies = [Reply(f"tin {n}") for n in range(8)]
    assert await channel.send(USER, replies) is True
    assert await channel.send(USER, [Reply("tin thứ 9")]) == "held"  # the quota is spent
    await channel._touch(USER)
    assert await channel.send(USER, [Reply("tin thứ 9")]) is True


async def test_a_file_that_cannot_be_fetched_is_not_called_too_large(fake, channel) -> None:
    from bot.feedback.attachments import MAX_BYTES, check

    gone = await channel._fetch("photo", {"url": fake.base_url + "/files/expired.jpg"})
    assert gone.data is None and check(gone).reason == "missing_data"
    huge = {"url": fake.add_file("big.pdf", b"%PDF-"), "name": "big.pdf", "size": MAX_BYTES + 1}
    too_big = await channel._fetch("document", huge)
    assert check(too_big).reason == "too_large" and "big.pdf" not in fake.downloads
    fine = await channel._fetch("photo", {"url": fake.add_file("ok.jpg", b"\xff\xd8\xff1")})
    assert (fine.data, fine.mime_type, check(fine)) == (b"\xff\xd8\xff1", "image/jpeg", None)


async def test_a_late_delivered_older_event_does_not_move_the_window_back(fake, channel) -> None:
    from bot.storage.models import ChannelContact

    await channel.handle_event(fake.text_event(USER, "xin chao"))
    older = fake.text_event(USER, "tin gửi từ hôm kia")
    older["timestamp"] = str(int(older["timestamp"]) - 3 * 24 * 3600 * 1000)
    await channel.handle_event(older)
    async with channel.db.session() as session:
        contact = await session.get(ChannelContact, ("zalo", USER))
    assert (utcnow() - as_utc(contact.last_inbound_at)).total_seconds() < 60
    assert await channel.send(USER, [Reply("Kết quả")]) is True


async def test_a_hold_stored_after_the_citizen_wrote_is_released_at_once(fake, channel) -> None:
    """The outbox decided "held", then the citizen wrote and their turn found nothing held,
    then the hold was stored: the dispatcher's recheck must release it, not wait for yet
    another message."""
    from sqlalchemy import select

    from bot.outbox import OutboxDispatcher, enqueue
    from bot.storage.models import OutboxMessage

    async with channel.db.write_transaction() as session:
        enqueue(session, "zalo", USER, [Reply("Cán bộ đã trả lời")], "test")
    woken = []
    channel.wake_outbox = lambda: woken.append(True)
    real_send = channel.send

    async def send_then_citizen_writes(user, replies):
        verdict = await real_send(user, replies)  # no window yet: held
        await channel._touch(user)  # the citizen writes before the hold is stored
        return verdict

    channel.send = send_then_citizen_writes
    await OutboxDispatcher(channel.db, {"zalo": channel}).run_once()
    async with channel.db.session() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row.held_since is None and row.sent_at is None and woken == [True]
