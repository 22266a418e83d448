"""Soak: the bot under moderate load for a long time; its memory must stay flat.

Usage:
    python bench/soak.py [--minutes 30] [--rate 40] [--sample-seconds 60] [--warm-up 5]
        [--workers 1] [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
        [--out bench/output]

What runs, all on loopback: ``motcua run`` in Telegram webhook mode (log level WARNING) with its
web chat, on a fresh SQLite file (the single-commune set-up) or, with ``--postgres-url``, on a
throwaway PostgreSQL database (``--workers N`` then runs ``motcua run --workers N``); the fake
Bot API (tests/fakes/telegram_api.py) and the load generator in this process.

The load, ``--rate`` messages a second in all, mixes what citizens do: Telegram updates from an
ever-growing crowd of chats (a new chat every few messages, so that anything kept per chat
shows up as growth) — /start, procedure searches typed without diacritics and with typos,
button presses on the cards, /help, dossier codes, the first steps of a feedback — and web chat
messages, each web conversation a new cookie. Every update must be answered (the webhook's 200
and at least one sendMessage), every web message with replies.

Every ``--sample-seconds`` the resident memory (VmRSS) of each bot process is read from /proc.
Written to ``--out``: ``soak-<time>-<sqlite|pg-wN>.csv`` (minute, process, RSS MiB, messages
so far) and ``soak-<time>-<...>.png``, the RSS of each process over time (drawn with Pillow, a
dependency of the bot). The verdict: memory is flat when, after ``--warm-up`` minutes, no
process grew by more than 10% or 15 MiB, whichever is larger, from its warm-up sample to its
last; exit status 1 otherwise or if messages went unanswered.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._processes import rss_mib, worker_pids  # noqa: E402
from procedures_catalog.loader import load_bundled  # noqa: E402
from procedures_catalog.normalize import strip_marks  # noqa: E402
from tests.fakes.telegram_api import Call, FakeBotAPI  # noqa: E402
from tests.pg_helpers import postgres_database  # noqa: E402
from tests.telegram_helpers import SECRET, TOKEN, bot_env, running_bot  # noqa: E402

GROWTH_SHARE = 0.10  # a process may grow by this share after the warm-up...
GROWTH_MIB = 15.0  # ... or by this much, whichever is larger


@dataclass
class Tally:
    sent: int = 0  # messages sent (Telegram updates + web messages)
    unanswered: int = 0
    errors: list[str] = field(default_factory=list)
    replies: dict[int, int] = field(default_factory=dict)  # chat -> sendMessage calls

    def on_call(self, call: Call) -> None:
        if call.method == "sendMessage" and call.chat_id is not None:
            self.replies[call.chat_id] = self.replies.get(call.chat_id, 0) + 1


def queries(rng: random.Random) -> list[str]:
    """Procedure searches as people type them: names cut short, without diacritics, with a
    typo now and then."""
    names = [p.name for p in load_bundled("commune").procedures.values()]
    out = []
    for name in names:
        words = strip_marks(name).lower().split()
        start = rng.randrange(max(1, len(words) - 3))
        text = " ".join(words[start : start + rng.randint(2, 5)])
        if rng.random() < 0.3 and len(text) > 6:
            cut = rng.randrange(1, len(text) - 1)
            text = text[:cut] + text[cut + 1 :]  # a letter missed
        out.append(text)
    return out


def bot_processes(root_pid: int) -> dict[str, int]:
    """The bot's processes: the one we started and, with --workers, its workers."""
    found = {"main": root_pid}
    for number, pid in enumerate(worker_pids(root_pid), 1):
        found[f"worker {number}"] = pid
    return found


class Load:
    """Sends ``rate`` messages a second until stopped, at most ``rate`` in flight."""

    def __init__(self, api: FakeBotAPI, port: int, rate: float, rng: random.Random) -> None:
        self.api = api
        self.base = f"http://127.0.0.1:{port}"
        self.rate = rate
        self.rng = rng
        self.tally = Tally()
        self.searches = queries(rng)
        self.codes = sorted(load_bundled("commune").procedures)
        self.chat = 10_000_000
        self.web_jar: aiohttp.CookieJar | None = None
        self.web_left = 0

    def telegram_update(self) -> tuple[int, dict]:
        if self.rng.random() < 0.25:  # a new citizen
            self.chat += 1
        chat = self.rng.randint(self.chat - 20, self.chat)
        roll = self.rng.random()
        if roll < 0.15:
            return chat, self.api.text_update(chat, "/start")
        if roll < 0.55:
            return chat, self.api.text_update(chat, self.rng.choice(self.searches))
        if roll < 0.75:
            code = self.rng.choice(self.codes)
            section = self.rng.choice(["docs", "fee", "time", "where", "show"])
            return chat, self.api.callback_update(chat, f"proc:{section}:{code}")
        if roll < 0.82:
            return chat, self.api.text_update(chat, "/help")
        if roll < 0.90:
            number = self.rng.randint(1, 99_999)
            return chat, self.api.text_update(
                chat, f"tra cứu hồ sơ 000.00.12.H12-261122-{number:04d}"
            )
        if roll < 0.95:
            return chat, self.api.callback_update(chat, "feedback:new")
        return chat, self.api.text_update(chat, "cam on")

    async def one_telegram(self, session: aiohttp.ClientSession) -> None:
        chat, update = self.telegram_update()
        before = self.tally.replies.get(chat, 0)
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with session.post(
            f"{self.base}/telegram/webhook", json=update, headers=headers
        ) as response:
            await response.read()
            if response.status != 200:
                self.tally.errors.append(f"webhook answered {response.status}")
                return
        for _ in range(100):  # the replies go out after the webhook's answer
            if self.tally.replies.get(chat, 0) > before:
                return
            await asyncio.sleep(0.05)
        self.tally.unanswered += 1

    async def one_web(self, connector: aiohttp.BaseConnector) -> None:
        if self.web_left <= 0:  # a new web conversation every few messages
            self.web_jar = aiohttp.CookieJar(unsafe=True)
            self.web_left = self.rng.randint(2, 6)
        self.web_left -= 1
        body = (
            {"text": self.rng.choice(self.searches)}
            if self.rng.random() < 0.7
            else {"payload": "menu"}
        )
        async with aiohttp.ClientSession(
            connector=connector, connector_owner=False, cookie_jar=self.web_jar
        ) as session:
            async with session.post(f"{self.base}/api/messages", json=body) as response:
                if response.status != 200:
                    self.tally.errors.append(f"web chat answered {response.status}")
                    return
                if not (await response.json()).get("replies"):
                    self.tally.unanswered += 1

    async def run(self, stop: asyncio.Event) -> None:
        self.api.on_call = self.tally.on_call
        connector = aiohttp.TCPConnector(limit=int(self.rate) * 2)
        inflight: set[asyncio.Task] = set()
        async with aiohttp.ClientSession(connector=connector, connector_owner=False) as session:
            interval = 1 / self.rate
            due = time.perf_counter()
            while not stop.is_set():
                now = time.perf_counter()
                if now < due:
                    await asyncio.sleep(due - now)
                due += interval
                if len(inflight) >= self.rate:  # the bot is behind: do not pile up
                    continue
                web = self.rng.random() < 0.2
                task = asyncio.create_task(
                    self.one_web(connector) if web else self.one_telegram(session)
                )
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                self.tally.sent += 1
            await asyncio.gather(*inflight, return_exceptions=True)
        await connector.close()
        self.api.on_call = None


async def soak(args, out: Path, stamp: str) -> int:
    api = FakeBotAPI(TOKEN)
    await api.start()
    rng = random.Random(args.seed)
    samples: list[tuple[float, str, float, int]] = []
    try:
        async with _database(args) as url:
            env = bot_env(api, url, "webhook", MOTCUA_LOG_LEVEL="WARNING")
            extra = ["--workers", str(args.workers)] if args.workers > 1 else []
            async with running_bot(env, timeout=180, args=extra) as bot:
                load = Load(api, bot.port, args.rate, rng)
                stop = asyncio.Event()
                driving = asyncio.create_task(load.run(stop))
                began = time.monotonic()
                end = began + args.minutes * 60
                try:
                    while True:
                        minute = (time.monotonic() - began) / 60
                        for name, pid in bot_processes(bot.proc.pid).items():
                            mib = rss_mib(pid)
                            if mib is not None:
                                samples.append((minute, name, mib, load.tally.sent))
                        line = ", ".join(
                            f"{n} {m:.1f} MiB" for t, n, m, _s in samples if t == minute
                        )
                        print(
                            f"  {minute:5.1f} min: {line}; {load.tally.sent:,} messages, "
                            f"{load.tally.unanswered} unanswered, {len(load.tally.errors)} errors",
                            file=sys.stderr,
                            flush=True,
                        )
                        api.calls.clear()  # the fake keeps every call; this is a long run
                        if time.monotonic() >= end:
                            break
                        await asyncio.sleep(min(args.sample_seconds, end - time.monotonic()))
                finally:
                    stop.set()
                    await driving
                tally = load.tally
    finally:
        await api.stop()

    csv_path = out / f"soak-{stamp}.csv"
    with open(csv_path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["minute", "process", "rss_mib", "messages_sent"])
        for minute, name, mib, sent in samples:
            writer.writerow([f"{minute:.2f}", name, f"{mib:.1f}", sent])
    png_path = out / f"soak-{stamp}.png"
    title = (
        f"motcua run{' --workers ' + str(args.workers) if args.workers > 1 else ''} on "
        f"{'PostgreSQL' if args.postgres_url else 'SQLite'}, {args.rate:g} msg/s, "
        f"{tally.sent:,} messages"
    )
    plot(samples, png_path, title, args.warm_up)

    verdicts = flatness(samples, args.warm_up)
    print(
        f"{args.minutes:g} minutes at {args.rate:g} messages/s, {tally.sent:,} messages "
        f"({tally.unanswered} unanswered, {len(tally.errors)} errors), "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    )
    print("| process | RSS at start | after warm-up | at the end | growth after warm-up | flat |")
    print("|---|---|---|---|---|---|")
    flat = True
    for name, (first, warm, last, ok) in verdicts.items():
        flat &= ok
        print(
            f"| {name} | {first:.1f} MiB | {warm:.1f} MiB | {last:.1f} MiB | "
            f"{last - warm:+.1f} MiB ({(last - warm) / warm:+.1%}) | {'yes' if ok else 'NO'} |"
        )
    print(f"written: {csv_path}, {png_path}")
    for error in tally.errors[:5]:
        print(f"  error: {error}", file=sys.stderr)
    return 0 if flat and not tally.unanswered and not tally.errors else 1


def flatness(samples, warm_up: float) -> dict[str, tuple[float, float, float, bool]]:
    verdicts = {}
    for name in dict.fromkeys(name for _t, name, _m, _s in samples):
        series = [(t, mib) for t, n, mib, _s in samples if n == name]
        after = [mib for t, mib in series if t >= warm_up] or [series[-1][1]]
        first, warm, last = series[0][1], after[0], series[-1][1]
        verdicts[name] = (first, warm, last, last - warm <= max(GROWTH_MIB, GROWTH_SHARE * warm))
    return verdicts


def plot(samples, path: Path, title: str, warm_up: float) -> None:
    """RSS of each process over time, as a PNG (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 960, 540, 80, 30, 50, 60
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    t_max = max((t for t, *_ in samples), default=1) or 1
    top_mib = max((m for _t, _n, m, _s in samples), default=1) * 1.15
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(t: float, mib: float) -> tuple[float, float]:
        return left + t / t_max * plot_w, top + plot_h - mib / top_mib * plot_h

    draw.text((left, 15), title, fill="black", font=font)
    for i in range(6):  # horizontal grid, MiB
        mib = top_mib * i / 5
        y = xy(0, mib)[1]
        draw.line([(left, y), (width - right, y)], fill=(225, 225, 225))
        draw.text((10, y - 7), f"{mib:.0f} MiB", fill="black", font=small)
    for i in range(7):  # vertical grid, minutes
        t = t_max * i / 6
        x = xy(t, 0)[0]
        draw.line([(x, top), (x, top + plot_h)], fill=(235, 235, 235))
        label = f"{t:.1f}" if t_max < 10 else f"{t:.0f}"
        draw.text((x - 12, top + plot_h + 8), label, fill="black", font=small)
    draw.text((left + plot_w / 2 - 30, height - 25), "minutes", fill="black", font=font)
    if warm_up < t_max:
        x = xy(warm_up, 0)[0]
        draw.line([(x, top), (x, top + plot_h)], fill=(180, 180, 180), width=1)
        draw.text((x + 4, top + 4), "end of warm-up", fill=(120, 120, 120), font=small)
    draw.rectangle([left, top, left + plot_w, top + plot_h], outline="black")
    colours = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189)]
    names = list(dict.fromkeys(name for _t, name, _m, _s in samples))
    for index, name in enumerate(names):
        colour = colours[index % len(colours)]
        points = [xy(t, m) for t, n, m, _s in samples if n == name]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        # The legend sits at the bottom right, away from the lines (which run near the top).
        legend_y = top + plot_h - 22 - 18 * (len(names) - 1 - index)
        draw.text((width - right - 150, legend_y), name, fill=colour, font=font)
    image.save(path)


def replot(path: Path, warm_up: float) -> int:
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    samples = [
        (float(r["minute"]), r["process"], float(r["rss_mib"]), int(r["messages_sent"]))
        for r in rows
    ]
    # soak-<date>-<time>-<sqlite | pg-wN>.csv
    setup = path.stem.split("-", 3)[-1]
    where = (
        f"motcua run --workers {setup.removeprefix('pg-w')} on PostgreSQL"
        if setup.startswith("pg-w")
        else "motcua run on SQLite"
    )
    minutes, sent = (samples[-1][0], samples[-1][3]) if samples else (0, 0)
    rate = f", {sent / (minutes * 60):.0f} msg/s" if minutes else ""
    title = f"{where}{rate}, {sent:,} messages"
    plot(samples, path.with_suffix(".png"), title, warm_up)
    print(f"written: {path.with_suffix('.png')}")
    return 0


class _database:
    """A fresh SQLite file, or a throwaway PostgreSQL database."""

    def __init__(self, args) -> None:
        self.args = args
        self._pg = None
        self._tmp = None

    async def __aenter__(self) -> str:
        if self.args.postgres_url:
            admin = re.sub(r"^postgresql\+asyncpg://", "postgresql://", self.args.postgres_url)
            self._pg = postgres_database(admin, "motcua_soak")
            return await self._pg.__aenter__()
        import tempfile

        self._tmp = tempfile.TemporaryDirectory(prefix="motcua-soak-")
        return f"sqlite:///{self._tmp.name}/soak.sqlite3"

    async def __aexit__(self, *exc) -> None:
        if self._pg is not None:
            await self._pg.__aexit__(*exc)
        if self._tmp is not None:
            self._tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="length of the run")
    parser.add_argument("--rate", type=float, default=40, help="messages a second, in all")
    parser.add_argument("--sample-seconds", type=float, default=60, help="RSS sampling period")
    parser.add_argument(
        "--warm-up", type=float, default=5, help="minutes before memory must stay flat"
    )
    parser.add_argument("--workers", type=int, default=1, help="motcua run --workers N (PG)")
    parser.add_argument("--postgres-url", help="run on a throwaway database of this server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--plot-only",
        type=Path,
        metavar="CSV",
        help="draw the PNG of an earlier run's CSV again (beside it) and stop",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "output", help="folder for the CSV and PNG"
    )
    args = parser.parse_args()
    if args.plot_only:
        return replot(args.plot_only, args.warm_up)
    if args.workers > 1 and not args.postgres_url:
        parser.error("--workers needs --postgres-url (several processes share PostgreSQL)")
    if args.minutes <= 0 or args.rate <= 0 or args.sample_seconds <= 0:
        parser.error("--minutes, --rate and --sample-seconds must be positive")
    args.out.mkdir(parents=True, exist_ok=True)
    setup = f"pg-w{args.workers}" if args.postgres_url else "sqlite"
    stamp = f"{datetime.now().strftime('%Y%m%d-%H%M')}-{setup}"
    return asyncio.run(soak(args, args.out, stamp))


if __name__ == "__main__":
    sys.exit(main())
