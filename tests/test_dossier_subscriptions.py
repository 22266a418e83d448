"""Subscriptions end to end: ``motcua run`` with Telegram (webhook, fake Bot API), a citizen
subscribes to a local dossier, staff change its status -> exactly one message per change, also
for changes made while the bot was stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import DossierEvent, DossierRecord, DossierSubscription, OutboxMessage
from tests.fakes.telegram_api import FakeBotAPI
from tests.telegram_helpers import TOKEN, bot_env, running_bot

CODE = "000.00.15.H26-261116-0042"
CHAT = 4242


async def change(db: Database, status: str, note: str = "") -> None:
    """What staff do (or an import brings): a new row of history and the current status."""
    async with db.write_transaction() as session:
        (await session.get(DossierRecord, ("demo", CODE))).status = status
        session.add(
            DossierEvent(unit="demo", code=CODE, status=status, at=datetime.now(UTC), note=note)
        )


def updates(api: FakeBotAPI) -> list[str]:
    return [c.text for c in api.sent(CHAT) if "có cập nhật" in c.text]


@pytest.mark.asyncio
async def test_one_message_per_change_across_a_restart(tmp_path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(db)
    received = datetime.now(UTC) - timedelta(days=1)
    async with db.write_transaction() as session:
        session.add(
            DossierRecord(
                unit="demo",
                code=CODE,
                procedure_code="1.001193",
                received_at=received,
                channel="online",
                status="received",
            )
        )
        session.add(DossierEvent(unit="demo", code=CODE, status="received", at=received))
    api = FakeBotAPI(TOKEN)
    await api.start()
    env = bot_env(
        api,
        f"sqlite:///{path}",
        "webhook",
        MOTCUA_DOSSIER_SOURCE="local",
        MOTCUA_DOSSIER_POLL_SECONDS="0.2",
    )
    try:
        async with aiohttp.ClientSession() as http:
            async with running_bot(env) as bot:
                assert await bot.post(http, api.text_update(CHAT, f"hồ sơ {CODE}")) == 200
                card = (await api.wait_for("sendMessage", chat_id=CHAT))[0]
                assert "Đã tiếp nhận" in card.text
                assert ("🔔 Báo cho tôi khi có thay đổi", "ds:s:" + CODE) in card.buttons
                assert await bot.post(http, api.callback_update(CHAT, "ds:s:" + CODE)) == 200
                await api.wait_for("sendMessage", chat_id=CHAT, count=2)
                assert "mỗi khi hồ sơ" in api.sent(CHAT)[-1].text
                await api.quiet(0.6)
                assert updates(api) == []  # subscribing tells nothing new

                await change(db, "in_progress")
                await api.wait_for("sendMessage", chat_id=CHAT, count=3)
                await change(db, "needs_documents", "Bổ sung tờ khai có chữ ký")
                await change(db, "in_progress")
                await api.wait_for("sendMessage", chat_id=CHAT, count=5)
                await api.quiet(0.8)
                assert len(updates(api)) == 3
                assert "Chờ bổ sung hồ sơ" in updates(api)[1]
                assert "Bổ sung tờ khai có chữ ký" in updates(api)[1]

            # Changed while the bot is stopped: told once after the restart, and the
            # dossier closing ends the subscription.
            await change(db, "returned_on_time")
            async with running_bot(env):
                await api.wait_for("sendMessage", chat_id=CHAT, count=6)
                await api.quiet(0.8)
        assert len(updates(api)) == 4
        last = updates(api)[-1]
        assert "Đã trả kết quả đúng hạn" in last and "kết thúc" in last
        async with db.session() as session:
            sub = (await session.scalars(select(DossierSubscription))).one()
            assert sub.ended_at is not None and sub.notified == 5
            outbox = (await session.scalars(select(OutboxMessage))).all()
            assert len(outbox) == 4 and all(m.sent_at is not None for m in outbox)
    finally:
        await api.stop()
        await db.dispose()
