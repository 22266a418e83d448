"""One deployment, several units: an entry point that names a unit (the web chat's demo mode)
gets that unit's dossier source and feedback inbox; and channels that may write only within a
window after the citizen's last message have confirmations say that late news waits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.core import Incoming, Reply
from bot.storage.models import Feedback
from tests.conftest import make_engine

DEMO_CODE = "DEMO-000000-0001"
pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)


class UnitChat:
    def __init__(self, engine, cid: str, channel: str = "test", unit: str | None = None):
        self.engine, self.cid, self.channel, self.unit = engine, cid, channel, unit
        self.replies: list[Reply] = []

    async def send(self, text: str = "", payload: str | None = None) -> str:
        self.replies = await self.engine.handle(
            Incoming(
                channel=self.channel,
                conversation_id=self.cid,
                user_id="u",
                text=text,
                payload=payload,
                unit=self.unit,
            )
        )
        return "\n".join(reply.text for reply in self.replies)

    @property
    def payloads(self) -> list[str]:
        return [b.payload for r in self.replies for b in r.buttons]


async def test_an_entry_point_unit_brings_its_own_dossiers_and_inbox(db) -> None:
    engine = make_engine(db, unit="xa-that", push_channels=("test",))  # a real commune
    services = engine.services
    view = services.for_unit("demo")
    assert view is services.for_unit("demo")  # built once, then kept
    assert services.for_unit(None) is services and services.for_unit("xa-that") is services
    assert (services.dossiers.source.name, view.dossiers.source.name) == ("local", "demo")
    assert (services.feedback.unit, view.feedback.unit) == ("xa-that", "demo")

    real = UnitChat(engine, "real")
    assert (await real.send(DEMO_CODE)).startswith(f"Không tìm thấy hồ sơ có mã {DEMO_CODE}")
    demo = UnitChat(engine, "demo", unit="demo")
    await demo.send(DEMO_CODE)
    assert any(p.startswith("ds:s:") for p in demo.payloads)  # found: can be followed

    # A feedback written in demo mode lands in the demo unit's inbox, not the commune's.
    await demo.send("phản ánh")
    await demo.send(payload="fb:kind:report")
    await demo.send(payload="fb:topic:other")
    await demo.send("Đây là phản ánh thử trong buổi trình diễn.")
    for payload in ("fb:files:done", "fb:contact:anon"):
        if payload in demo.payloads:
            await demo.send(payload=payload)
    await demo.send(payload=next(p for p in demo.payloads if p.startswith("fb:send:")))
    async with db.session() as session:
        units = (await session.scalars(select(Feedback.unit))).all()
    assert units == ["demo"]


async def test_windowed_channels_are_told_that_late_news_waits(db) -> None:
    engine = make_engine(db, push_channels=("zalo", "test"))
    engine.services.windowed_channels = frozenset({"zalo"})

    zalo = UnitChat(engine, "z1", channel="zalo")
    await zalo.send(DEMO_CODE)
    confirmed = await zalo.send(payload=f"ds:s:{DEMO_CODE}")
    assert "🔔" in confirmed and "48 giờ" in confirmed

    other = UnitChat(engine, "t1")
    await other.send(DEMO_CODE)
    confirmed = await other.send(payload=f"ds:s:{DEMO_CODE}")
    assert "🔔" in confirmed and "48 giờ" not in confirmed
