"""Once-only background jobs across processes: the advisory-lock leader (bot/leader.py)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from sqlalchemy import text

from bot.background import Periodic
from bot.leader import Leadership


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
async def test_one_process_leads_and_another_takes_over_when_it_dies(databases) -> None:
    key = secrets.randbelow(2**62)
    first, second = await databases.open(), await databases.open()  # two "processes"
    a, b = Leadership(first, key), Leadership(second, key)
    assert await a.check() is True
    assert await b.check() is False
    assert await a.check() is True  # still holding

    # The leader's session ends (the process was killed): the lock is free again.
    pid = await a._connection.scalar(text("SELECT pg_backend_pid()"))
    async with second.engine.connect() as admin:
        await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(200):  # the backend exits (and frees its locks) a moment later
            gone = await admin.scalar(
                text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            )
            if gone:
                break
            await asyncio.sleep(0.01)
    assert await b.check() is True
    assert await a.check() is False  # notices its connection is gone; b holds the lock now

    await b.close()  # a clean shutdown hands over at once
    assert await a.check() is True
    await a.close()


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
async def test_only_the_leader_runs_a_job(databases) -> None:
    key = secrets.randbelow(2**62)
    runs: list[str] = []

    class Job(Periodic):
        def __init__(self, who: str, leader: Leadership) -> None:
            self.who, self.leader = who, leader

        async def run_once(self) -> None:
            runs.append(self.who)

    jobs = [Job(f"p{n}", Leadership(await databases.open(), key)) for n in range(3)]
    for _ in range(3):
        for job in jobs:
            if await job.leader.check():
                await job.run_once()
    assert runs == ["p0", "p0", "p0"]
    for job in jobs:
        await job.leader.close()


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
async def test_on_sqlite_the_one_process_always_leads(db) -> None:
    leader = Leadership(db)
    assert await leader.check() is True
    await leader.close()
    assert await leader.check() is True
