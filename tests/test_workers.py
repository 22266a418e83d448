"""``motcua run --workers N``: several processes on one port behind the supervisor."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp

from tests.cli_helpers import run_in_process
from tests.conftest import POSTGRES_URL, skip_or_fail
from tests.pg_helpers import postgres_database

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_workers_need_postgresql_and_webhook_mode(tmp_path) -> None:
    env = {"MOTCUA_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3"}
    code, _out, err = run_in_process(["run", "--workers", "2"], env)
    assert code == 2 and "PostgreSQL" in err
    env = {
        "MOTCUA_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/none",
        "MOTCUA_TELEGRAM_TOKEN": "123456789:TESTtokenABCDEFGHIJKLMNOPQRSTUVWXYZ01",
    }
    code, _out, err = run_in_process(["run", "--workers", "2"], env)
    assert code == 2 and "MOTCUA_TELEGRAM_MODE=webhook" in err
    code, _out, err = run_in_process(["run", "--workers", "0"], {})
    assert code == 2 and "--workers" in err


async def _chat(http: aiohttp.ClientSession, base: str, n: int) -> list[str]:
    """One citizen's short conversation; returns the reply texts."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as own:
        texts = []
        for message in ({"payload": "menu"}, {"text": "lam giay khai sinh"}):
            async with own.post(f"{base}/api/messages", json=message) as response:
                assert response.status == 200, (n, response.status)
                texts += [reply["text"] for reply in (await response.json())["replies"]]
        return texts


async def test_two_workers_share_the_port_survive_a_kill_and_stop_cleanly() -> None:
    if not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    async with postgres_database(POSTGRES_URL) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
        env.update(MOTCUA_DATABASE_URL=url, MOTCUA_PORT="0", MOTCUA_LOG_FORMAT="json")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--workers", "2",
            cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            base = re.search(r"http://127\.0\.0\.1:\d+", line.decode()).group(0)
            async with aiohttp.ClientSession() as http:
                results = await asyncio.gather(*(_chat(http, base, n) for n in range(40)))
                for texts in results:
                    assert any("Thủ tục đăng ký khai sinh" in text for text in texts)
                for _ in range(5):
                    async with http.get(f"{base}/readyz") as response:
                        assert response.status == 200
                    async with http.get(f"{base}/metrics") as response:
                        metrics = await response.text()
                # A scrape, whichever worker answers it, adds up both workers' counts.
                handled = sum(
                    float(v)
                    for v in re.findall(
                        r'motcua_messages_total\{channel="web",[^}]*\} (\S+)', metrics
                    )
                )
                assert handled == 80

                # A worker killed outright is started again; the bot keeps answering meanwhile.
                children = [int(p) for p in os.popen(f"pgrep -P {proc.pid}").read().split()]
                workers = [pid for pid in children if _is_worker(pid)]
                assert len(workers) == 2
                os.kill(workers[0], signal.SIGKILL)
                # Connections queued at the killed worker are reset; a client tries again (as
                # Telegram and the chat page do) and the other worker answers.
                for _attempt in range(20):
                    try:
                        texts = await _chat(http, base, 99)
                        break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("no worker answered after the kill")
                assert any("Thủ tục" in text for text in texts)
                for _ in range(200):
                    children = [int(p) for p in os.popen(f"pgrep -P {proc.pid}").read().split()]
                    if len([pid for pid in children if _is_worker(pid)]) == 2:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the killed worker was not started again")
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert "starting it again" in err.decode()


def _is_worker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"spawn_main" in f.read()  # not multiprocessing's resource tracker
    except OSError:
        return False


import pytest  # noqa


def test_the_postgresql_pool_size_is_a_setting() -> None:
    from bot.config import SettingsError, load_settings
    from bot.storage.db import POOL_OVERFLOW, Database

    assert load_settings().database_pool_size == 15
    with pytest.raises(SettingsError, match="MOTCUA_DATABASE_POOL_SIZE"):
        load_settings(database_pool_size=0)
    db = Database("postgresql://postgres@127.0.0.1:5432/test", pool_size=7)
    assert (db.engine.pool.size(), db.engine.pool._max_overflow) == (7, POOL_OVERFLOW)
