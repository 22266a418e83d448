"""Scale-out: `motcua run --workers N` behind nginx on PostgreSQL, Telegram webhook load.

Usage:
    python bench/scale_out.py [--workers 1,2,4] [--chats 2000] [--per-chat 25]
        [--connections 200] [--profile SECONDS]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test]

What runs, all on loopback: the fake Bot API (tests/fakes/telegram_api.py) and the load
generator in this process; nginx (Debian package) in front of the bot, as deployed; the bot as
`motcua run --workers N` in webhook mode on a throwaway PostgreSQL database (created and dropped
through --postgres-url). For each N: ``--chats`` simulated citizens each send ``--per-chat``
procedure codes one after another (the next once the webhook answered the previous), over at
most ``--connections`` HTTP connections, served first come first served (one sender per
connection takes the chat waiting longest). Every code must come back as exactly one procedure
card, in the order asked. Reported per N: updates/s (all replies arrived / wall time), per
busy core, latency to the webhook's answer ("ack") and to the reply reaching the Bot API
("reply", p50/p99), how long updates waited in the load generator for a free connection
("waited": with 2,000 citizens on 200 connections most of a citizen's time is spent here),
the cores each part of the machine used (bot, PostgreSQL, nginx, this process), and the
checks: lost (a code never answered), duplicated (answered twice), out of order, and the
update ids stored once each in inbound_messages.

``--profile SECONDS`` samples one worker with py-spy (bench/_profile.py) from 3 s into each run
and prints where its time goes, by part of the stack; the raw samples are kept in
bench/output/. The figures and the profile are in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._processes import cpu_seconds, pids_of_user, tree, worker_pids  # noqa: E402
from bench._profile import profile_process  # noqa: E402
from procedures_catalog.loader import load_bundled  # noqa: E402
from tests.fakes.telegram_api import Call, FakeBotAPI  # noqa: E402
from tests.pg_helpers import postgres_database  # noqa: E402
from tests.telegram_helpers import SECRET, TOKEN, bot_env, running_bot  # noqa: E402

CODE = re.compile(r"\d\.\d{6}")
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream bot {{ server 127.0.0.1:{bot}; keepalive 512; }}
    server {{
        listen 127.0.0.1:{port} reuseport;
        location / {{
            proxy_pass http://bot;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_read_timeout 120s;
        }}
    }}
}}
"""


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if values else 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Nginx:
    def __init__(self, bot_port: int) -> None:
        self.dir = tempfile.mkdtemp(prefix="motcua-nginx-")
        self.port = free_port()
        conf = Path(self.dir, "nginx.conf")
        conf.write_text(NGINX_CONF.format(dir=self.dir, bot=bot_port, port=self.port))
        self.proc = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise SystemExit(f"nginx did not start: {self.proc.stderr.read().decode()[-500:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Arrivals:
    """Every card the fake Bot API receives, per chat, with its arrival time."""

    def __init__(self) -> None:
        self.cards: dict[int, list[tuple[str, float]]] = {}
        self.total = 0
        self.done = asyncio.Event()
        self.expected = 0

    def __call__(self, call: Call) -> None:
        if call.method != "sendMessage":
            return
        found = CODE.search(call.text or "")
        self.cards.setdefault(call.chat_id, []).append(
            (found.group(0) if found else "?", time.perf_counter())
        )
        self.total += 1
        if self.total >= self.expected:
            self.done.set()


async def one_run(api: FakeBotAPI, admin_url: str, workers: int, args, codes: list[str]) -> dict:
    async with postgres_database(admin_url, "motcua_scale") as url:
        env = bot_env(api, url, "webhook", MOTCUA_LOG_LEVEL="WARNING")
        async with running_bot(env, timeout=180, args=["--workers", str(workers)]) as bot:
            nginx = Nginx(bot.port)
            try:
                webhook = f"http://127.0.0.1:{nginx.port}/telegram/webhook"
                return await load(
                    api, webhook, url, workers, args, codes, bot.proc.pid, nginx.proc.pid
                )
            finally:
                nginx.stop()


async def load(
    api: FakeBotAPI,
    url: str,
    db_url: str,
    workers: int,
    args,
    codes,
    bot_pid: int,
    nginx_pid: int,
) -> dict:
    import asyncpg

    chats = [5_000_000 + n for n in range(args.chats)]
    script = {chat: [codes[(i + k) % len(codes)] for k in range(args.per_chat)]
              for i, chat in enumerate(chats)}  # fmt: skip
    arrivals = Arrivals()
    arrivals.expected = args.chats * args.per_chat
    api.on_call = arrivals
    sent_at: dict[int, list[float]] = {chat: [] for chat in chats}
    acks: list[float] = []
    waits: list[float] = []  # from when a chat's next update was ready to when it went out
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # Fair service: one sender per connection, chats served first come first served from
        # one queue; a chat goes back in line once its update is acknowledged, so it never has
        # two updates in flight and its updates go out in order.
        ready: asyncio.Queue[tuple[int, int, float]] = asyncio.Queue()

        async def sender() -> None:
            while True:
                chat, step, since = await ready.get()
                if chat < 0:
                    return
                started = time.perf_counter()
                waits.append((started - since) * 1000)
                sent_at[chat].append(started)
                update = api.text_update(chat, script[chat][step])
                async with session.post(url, json=update) as response:
                    await response.read()
                    if response.status != 200:
                        raise SystemExit(f"webhook answered {response.status}")
                acked = time.perf_counter()
                acks.append((acked - started) * 1000)
                if step + 1 < args.per_chat:
                    ready.put_nowait((chat, step + 1, acked))
                    continue
                finished.add(chat)
                if len(finished) == len(chats):  # the last one: let every sender stop
                    for _ in range(args.connections):
                        ready.put_nowait((-1, 0, 0.0))

        finished: set[int] = set()
        # The load generator must not pause (see bench/telegram_webhook.py): a full collection
        # of this process, which holds every call the fake API got, stalls every citizen.
        gc.collect()
        gc.freeze()
        gc.disable()
        groups = cpu_groups(bot_pid, nginx_pid)
        cpu_before = {
            name: cpu_seconds(pids, reaped=name == "PostgreSQL") for name, pids in groups.items()
        }
        begin = time.perf_counter()
        for chat in chats:
            ready.put_nowait((chat, 0, begin))
        profiling = (
            asyncio.create_task(profile_worker(bot_pid, workers, args)) if args.profile else None
        )
        try:
            await asyncio.gather(*(sender() for _ in range(args.connections)))
        finally:
            gc.enable()
        profile = await profiling if profiling else None
        try:
            await asyncio.wait_for(arrivals.done.wait(), 300)
        except TimeoutError:
            pass
        seconds = max(t for cards in arrivals.cards.values() for _c, t in cards) - begin
        groups = cpu_groups(bot_pid, nginx_pid)  # again: workers may have been restarted
        cpu = {
            name: (cpu_seconds(pids, reaped=name == "PostgreSQL") - cpu_before.get(name, 0.0))
            / seconds
            for name, pids in groups.items()
        }
        await api.quiet(1.0)
    api.on_call = None

    lost = duplicated = disorder = 0
    replies: list[float] = []
    for chat in chats:
        got = [code for code, _t in arrivals.cards.get(chat, [])]
        wanted = script[chat]
        lost += sum(max(0, wanted.count(c) - got.count(c)) for c in set(wanted))
        duplicated += max(0, len(got) - len(wanted))
        if got != wanted and sorted(got) == sorted(wanted):
            disorder += 1
        for (_code, arrived), posted in zip(
            arrivals.cards.get(chat, []), sent_at[chat], strict=False
        ):
            replies.append((arrived - posted) * 1000)
    conn = await asyncpg.connect(db_url)
    stored = await conn.fetchval("SELECT count(*) FROM inbound_messages WHERE channel = 'telegram'")
    await conn.close()
    total = args.chats * args.per_chat
    return {
        "workers": workers,
        "updates": total,
        "seconds": seconds,
        "rate": total / seconds,
        "ack50": pct(acks, 50),
        "ack99": pct(acks, 99),
        "reply50": pct(replies, 50),
        "reply99": pct(replies, 99),
        "lost": lost,
        "duplicated": duplicated,
        "disorder": disorder,
        "stored": stored,
        "profile": profile,
        "wait50": pct(waits, 50),
        "wait99": pct(waits, 99),
        "cpu": cpu,
    }


def cpu_groups(bot_pid: int, nginx_pid: int) -> dict[str, list[int]]:
    """The processes sharing the machine, by part (for cores used per part)."""
    return {
        "bot": tree(bot_pid),
        "PostgreSQL": pids_of_user("postgres"),
        "nginx": tree(nginx_pid),
        "load generator + fake Bot API": [os.getpid()],
    }


async def profile_worker(bot_pid: int, workers: int, args):
    """py-spy on one worker for --profile seconds, from a few seconds into the load."""
    await asyncio.sleep(3)
    pids = worker_pids(bot_pid) or [bot_pid]
    output = ROOT / "bench" / "output" / f"scale-out-{workers}-workers-py-spy.txt"
    try:
        return await profile_process(pids[0], args.profile, output)
    except RuntimeError as exc:
        print(f"  profile: {exc}", file=sys.stderr)
        return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, e.g. 1,2,4")
    parser.add_argument("--chats", type=int, default=2000, help="simulated citizens")
    parser.add_argument("--per-chat", type=int, default=25, help="updates per citizen")
    parser.add_argument("--connections", type=int, default=200, help="HTTP connections at most")
    parser.add_argument(
        "--profile",
        type=float,
        default=0,
        metavar="SECONDS",
        help="sample one worker with py-spy for this long during each run (0: off)",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="admin URL of the PostgreSQL server (a throwaway database is made per run)",
    )
    args = parser.parse_args()
    if not shutil.which("nginx"):
        raise SystemExit("nginx is needed: apt-get install nginx-light")
    admin_url = re.sub(r"^postgresql\+asyncpg://", "postgresql://", args.postgres_url)
    codes = sorted(load_bundled("commune").procedures)[::7][:40]
    api = FakeBotAPI(TOKEN)
    await api.start()
    rows = []
    try:
        for workers in [int(n) for n in args.workers.split(",")]:
            print(f"{workers} worker(s)…", file=sys.stderr, flush=True)
            rows.append(await one_run(api, admin_url, workers, args, codes))
    finally:
        await api.stop()
    cores = os.cpu_count() or 1
    print(
        f"{args.chats:,} chats × {args.per_chat} updates, at most {args.connections} connections, "
        f"nginx → motcua run --workers N → PostgreSQL, {cores} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    print(
        "| workers | updates | updates/s | per busy core | ack p50 ms | ack p99 ms | "
        "reply p50 ms | reply p99 ms | waited p50 ms | waited p99 ms | lost | duplicated | "
        "chats out of order | ids stored |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        busy = min(row["workers"], cores)
        print(
            f"| {row['workers']} | {row['updates']:,} | {row['rate']:,.0f} | "
            f"{row['rate'] / busy:,.0f} | {row['ack50']:.1f} | {row['ack99']:.1f} | "
            f"{row['reply50']:.1f} | {row['reply99']:.1f} | {row['wait50']:.0f} | "
            f"{row['wait99']:.0f} | {row['lost']} | "
            f"{row['duplicated']} | {row['disorder']} | {row['stored']:,} |"
        )
    parts = list(rows[0]["cpu"]) if rows else []
    print("\nCores in use during the load (CPU seconds per second of the run):\n")
    print("| workers | " + " | ".join(parts) + " | all |")
    print("|---" * (len(parts) + 2) + "|")
    for row in rows:
        used = [row["cpu"][part] for part in parts]
        print(
            f"| {row['workers']} | "
            + " | ".join(f"{value:.2f}" for value in used)
            + f" | {sum(used):.2f} |"
        )
    for row in rows:
        if row["profile"] is not None:
            print(
                f"\nOne worker of {row['workers']}, {args.profile:g} s of py-spy "
                f"({row['profile'].samples:,} samples, {row['profile'].path}):\n"
            )
            print(row["profile"].table())


if __name__ == "__main__":
    asyncio.run(main())
