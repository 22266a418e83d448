"""Kill test: feedbacks sent through the web chat survive SIGKILL, each one exactly once; and
with ``--fault pg-restart``, PostgreSQL restarted under the same load.

Usage:
    python bench/feedback_kill.py [--feedbacks 2000] [--kills 5] [--concurrency 8] [--seed 1]
        [--database-url URL | --postgres-url postgresql://postgres@127.0.0.1:5432/test]
        [--workers N] [--fault kill|pg-restart]

What runs: ``motcua run`` (web chat only, log level WARNING) in its own process on a fixed
port; the citizens and the killer share this process. ``--concurrency`` citizens at once each
walk the whole feedback flow for one feedback in a conversation of their own (their own cookie
jar): "feedback:new" -> kind "report" -> topic "other" -> a unique text -> no files ->
anonymous -> the summary's "fb:send:<draft key>" button -> the tracking code. A step that fails
(connection refused or reset, a 5xx, a timeout, or the apology the bot gives when a handler
fails) is sent again, unchanged, once the server answers: the conversation's state is in the
database, so the same step either moves it on or repeats the question it is already at; the
send button is pressed again with the same payload, which must find the feedback committed
before the crash rather than create a second one.

Meanwhile the killer sends SIGKILL to the server ``--kills`` times, each when the count of
confirmed feedbacks reaches a random point of the run (plus a few random milliseconds, so the
kill lands mid-request; every second kill also waits for a "send" press to be on its way, so a
kill around the commit of a feedback happens in every run), and starts it again on the same
port and database, waiting until it prints that it is ready.

At the end the server is stopped with SIGTERM and the database is read directly (SQLAlchemy):
every tracking code a citizen was shown exists, with that citizen's text, kind, topic,
conversation and no files, and exactly one "create" history row; no text is stored twice; no
feedback row lacks its tracking code; no history row points at a missing feedback. Feedbacks
committed whose code no citizen saw are counted (allowed only for a citizen who gave up).
Exit status 1 on any violation.

``--fault pg-restart``: instead of killing the bot, the killer stops PostgreSQL (``pg_ctl stop
-m fast``: connections are cut, transactions in flight roll back), keeps it down for a random
0.5–2.5 s and starts it again, ``--kills`` times; the bot is never restarted. Meanwhile the bot
must answer every message with the "briefly unavailable, send it again" reply (citizens then
send the step again, as told), never a 5xx or an error in its log, and recover by itself. The
server is a private one (initdb in a temporary folder, its own port: tests/pg_helpers.py), so
the shared server is never touched.

The database is a fresh SQLite file in a temporary directory; ``--database-url`` uses the given
database instead (rows of this run are told apart by a random tag in their text; the checks
for rows without a code and history rows of no feedback still cover the whole table);
``--postgres-url`` creates a throwaway PostgreSQL database through that server and drops it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import secrets
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._processes import worker_pids  # noqa: E402
from bot.channels.web import COOKIE  # noqa: E402
from bot.feedback.model import TRACKING_CODE, tracking_code  # noqa: E402
from bot.i18n import SUPPORTED_LOCALES, translator  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.models import Feedback, FeedbackAttachment, FeedbackEvent, as_utc  # noqa: E402
from handlers.fallback import UNAVAILABLE  # noqa: E402
from tests.pg_helpers import PrivatePostgres, create_database, drop_database  # noqa: E402

UNAVAILABLE_TEXTS = {translator(locale)(UNAVAILABLE) for locale in SUPPORTED_LOCALES}

# How long one step may keep failing before its citizen gives up (the server restarts in a few
# seconds; this is far beyond that).
STEP_DEADLINE = 120.0
# A well-formed reply that is not the expected one (e.g. the bot's apology when a handler
# fails), this many times for one step, is a bug.
MAX_UNEXPECTED = 5
READY_TIMEOUT = 60.0


# -- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``motcua run`` on a fixed port, started again after each kill."""

    def __init__(self, port: int, database_url: str, workdir: Path, workers: int = 1) -> None:
        self.port = port
        self.workers = workers  # > 1: `motcua run --workers N`; a kill takes one worker down
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
        self.env.update(
            MOTCUA_DATABASE_URL=database_url,
            MOTCUA_LOG_LEVEL="WARNING",
            MOTCUA_ATTACHMENTS_DIR=str(workdir / "attachments"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: list[str] = []  # ERROR lines and tracebacks the bot logged
        self.start_seconds: list[float] = []
        self._drains: list[asyncio.Task] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/messages"

    async def start(self) -> None:
        """Start the bot and wait until it prints that it is ready."""
        began = time.perf_counter()
        # cwd is the scratch directory, so no .env of the checkout is read.
        self.proc = proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--port",
            str(self.port),
            *(["--workers", str(self.workers)] if self.workers > 1 else []),
            env=self.env,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._drains.append(asyncio.create_task(self._drain_stderr(proc)))
        seen = []
        async with asyncio.timeout(READY_TIMEOUT):
            while True:
                line = (await proc.stdout.readline()).decode("utf-8", "replace")
                if not line:
                    await proc.wait()
                    raise RuntimeError(
                        f"motcua run exited early ({proc.returncode}):\n"
                        + "".join(seen)
                        + "\n".join(self.errors[-20:])
                    )
                seen.append(line)
                if "Ctrl+C" in line:
                    break
        if f":{self.port}/" not in "".join(seen):
            raise RuntimeError(f"motcua run is not on port {self.port}:\n{''.join(seen)}")
        self._drains.append(asyncio.create_task(_drain(proc.stdout)))
        self.start_seconds.append(time.perf_counter() - began)

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        # A full pipe would block the bot; keep what says something went wrong.
        in_traceback = False
        async for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and not line.startswith((" ", "\t")) and ":" in line:
                self.errors.append(line)
                in_traceback = False
            if " ERROR " in line or " CRITICAL " in line:
                self.errors.append(line)

    async def kill(self) -> None:
        if self.workers > 1:  # one worker; the supervisor starts it again, the others serve on
            os.kill(random.choice(self.worker_pids()), signal.SIGKILL)
            return
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    def worker_pids(self) -> list[int]:
        """The supervisor's worker processes (not multiprocessing's resource tracker)."""
        return worker_pids(self.proc.pid)

    async def stop(self) -> int:
        """SIGTERM, as a service manager stops it; return its exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.gather(*self._drains, return_exceptions=True)
        return self.proc.returncode


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


# -- the citizens -----------------------------------------------------------------------------


class GaveUp(Exception):
    """A step kept failing past its deadline, or kept getting the wrong answer."""


@dataclass
class Submission:
    """What one citizen sent and what they were told."""

    number: int
    content: str
    conversation_id: str = ""
    code: str | None = None
    codes_seen: set[str] = field(default_factory=set)
    send_presses: int = 0
    # When the first press of "send" failed without an answer (UTC): a feedback created before
    # then was committed by the server that died, and the retry had to find it.
    send_lost_at: datetime | None = None
    problem: str | None = None


@dataclass
class Stats:
    confirmed: int = 0
    retries: int = 0
    connection_errors: int = 0
    server_errors: int = 0  # HTTP 5xx
    timeouts: int = 0
    unavailable: int = 0  # "briefly unavailable, send it again" replies (database down)
    unexpected: list[str] = field(default_factory=list)
    in_flight: dict[int, str] = field(default_factory=dict)  # citizen -> step being sent
    killed_in_flight: Counter = field(default_factory=Counter)


def _payloads(replies: list[dict]) -> list[str]:
    return [b["payload"] for reply in replies for b in reply.get("buttons", [])]


def has(payload: str) -> Callable[[list[dict]], bool]:
    return lambda replies: payload in _payloads(replies)


def has_any(*payloads: str) -> Callable[[list[dict]], bool]:
    return lambda replies: any(p in _payloads(replies) for p in payloads)


def only_cancel(replies: list[dict]) -> bool:
    """The question for the text: its only button is "cancel"."""
    return _payloads(replies) == ["cancel"]


def unavailable(replies: list[dict]) -> bool:
    """The bot's answer while its database is down: send the same message again later."""
    return any(r["text"] in UNAVAILABLE_TEXTS for r in replies)


def sent_code(replies: list[dict]) -> bool:
    return any(TRACKING_CODE.search(r["text"]) for r in replies) and "menu" in _payloads(replies)


class Citizen:
    """One worker: submits feedbacks one after another, each in a new conversation."""

    def __init__(
        self, worker: int, server: Server, connector: aiohttp.BaseConnector, stats: Stats
    ) -> None:
        self.worker = worker
        self.server = server
        self.connector = connector
        self.stats = stats

    async def submit(self, sub: Submission) -> None:
        jar = aiohttp.CookieJar(unsafe=True)  # the server is 127.0.0.1
        async with aiohttp.ClientSession(
            connector=self.connector,
            connector_owner=False,
            cookie_jar=jar,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as session:
            step = self._step_in(session)
            await step("new", {"payload": "feedback:new"}, has("fb:kind:report"))
            await step("kind", {"payload": "fb:kind:report"}, has("fb:topic:other"))
            await step("topic", {"payload": "fb:topic:other"}, only_cancel)
            # The web chat cannot send files, so the bot goes straight to the contact question
            # (a chat that can would get the files step first).
            after = await step(
                "content", {"text": sub.content}, has_any("fb:files:done", "fb:contact:anon")
            )
            if "fb:files:done" in _payloads(after):
                await step("files", {"payload": "fb:files:done"}, has("fb:contact:anon"))
            summary = await step("contact", {"payload": "fb:contact:anon"}, _has_send)
            send = next(p for p in _payloads(summary) if p.startswith("fb:send:"))

            def lost(_exc: BaseException) -> None:
                if sub.send_lost_at is None:
                    sub.send_lost_at = datetime.now(UTC)

            while True:
                sub.send_presses += 1
                first = sub.send_presses == 1
                replies = await step("send", {"payload": send}, sent_code, lost if first else None)
                code = _code_in(replies)
                sub.codes_seen.add(code)
                sub.code = sub.code or code
                # Press once more now and then, as an impatient citizen does: same code.
                if sub.send_presses > 1 or sub.number % 10:
                    break
            token = next((c.value for c in jar if c.key == COOKIE), "")
            sub.conversation_id = hashlib.sha256(token.encode()).hexdigest()[:32]

    def _step_in(self, session: aiohttp.ClientSession):
        stats, url = self.stats, self.server.url

        async def step(name: str, body: dict, ok, on_lost=None) -> list[dict]:
            """Send one message until its answer is the expected one."""
            deadline = time.monotonic() + STEP_DEADLINE
            delay, wrong = 0.02, 0
            while True:
                stats.in_flight[self.worker] = name
                try:
                    async with session.post(url, json=body) as response:
                        if response.status >= 500:
                            stats.server_errors += 1
                            raise _Lost(f"HTTP {response.status}")
                        if response.status != 200:
                            raise GaveUp(f"{name}: HTTP {response.status}")
                        try:
                            replies = (await response.json())["replies"]
                        except (ValueError, KeyError, TypeError) as exc:
                            raise GaveUp(f"{name}: not the chat's JSON ({exc})") from None
                except (aiohttp.ClientError, _Lost, TimeoutError) as exc:
                    if isinstance(exc, TimeoutError):
                        stats.timeouts += 1
                    elif not isinstance(exc, _Lost):
                        stats.connection_errors += 1
                    if on_lost:
                        on_lost(exc)
                else:
                    if ok(replies):
                        return replies
                    if unavailable(replies):  # sent again below, as the bot asked
                        stats.unavailable += 1
                    else:
                        wrong += 1
                        text = replies[0]["text"][:120] if replies else "(no reply)"
                        stats.unexpected.append(f"{name}: {text!r} {_payloads(replies)}")
                        if wrong >= MAX_UNEXPECTED:
                            raise GaveUp(f"{name}: unexpected reply {text!r}")
                finally:
                    stats.in_flight.pop(self.worker, None)
                stats.retries += 1
                if time.monotonic() > deadline:
                    raise GaveUp(f"{name}: no answer for {STEP_DEADLINE:.0f} s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

        return step


class _Lost(Exception):
    """The server answered 5xx: as good as no answer."""


def _has_send(replies: list[dict]) -> bool:
    return any(p.startswith("fb:send:") for p in _payloads(replies))


def _code_in(replies: list[dict]) -> str:
    for reply in replies:
        found = TRACKING_CODE.search(reply["text"])
        if found:
            return found.group(0).upper()
    raise AssertionError("no tracking code")


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Report:
    requested: int
    confirmed: int = 0
    gave_up: int = 0
    kills: int = 0
    killed_in_flight: Counter = field(default_factory=Counter)
    retries: int = 0
    connection_errors: int = 0
    server_errors: int = 0
    timeouts: int = 0
    unexpected: int = 0
    unavailable: int = 0
    double_taps: int = 0
    send_lost: int = 0  # "send" pressed again because its answer was lost in a kill
    send_recovered: int = 0  # ... and the feedback had been committed before the kill
    rows: int = 0
    missing: int = 0
    incomplete: int = 0
    duplicates: int = 0
    without_code: int = 0
    orphan_events: int = 0
    code_changed: int = 0
    unseen: int = 0  # committed, but no citizen was shown its code
    server_log_errors: int = 0
    exit_status: int | None = None
    start_seconds: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


async def run(args: argparse.Namespace) -> Report:
    """Submit, kill, restart, then check the database; return the figures."""
    rng = random.Random(args.seed)
    tag = secrets.token_hex(4)
    report = Report(args.feedbacks)
    with tempfile.TemporaryDirectory(prefix="motcua-kill-") as tmp:
        workdir = Path(tmp)
        drop = None
        private = None
        url = args.database_url or f"sqlite:///{workdir}/kill.sqlite3"
        try:
            if args.fault == "pg-restart":
                private = PrivatePostgres()
                await asyncio.to_thread(private.init)
                await asyncio.to_thread(private.start)
                url = await create_database(private.admin_url, "motcua_restart")
            elif args.postgres_url:
                url, drop = await postgres_database(args.postgres_url)
            await _run(args, rng, tag, url, workdir, report, private)
        finally:
            if drop:
                await drop()
            if private is not None:
                await asyncio.to_thread(private.remove)
    return report


async def _run(
    args,
    rng: random.Random,
    tag: str,
    url: str,
    workdir: Path,
    report: Report,
    database: PrivatePostgres | None = None,
):
    # Unique per citizen, with Vietnamese letters to see them come back unchanged.
    texts = (f"kill-test {tag} #{n:05d} {rng.getrandbits(48):012x}" for n in range(args.feedbacks))
    subs = [Submission(n, f"{text}: đèn đường hỏng ở ngõ {n}") for n, text in enumerate(texts)]
    server = Server(free_port(), url, workdir, args.workers)
    stats = Stats()
    await server.start()
    began = time.perf_counter()
    try:
        await _load(args, rng, server, subs, stats, report, database)
        report.elapsed = time.perf_counter() - began
    finally:
        report.exit_status = await server.stop()
    report.start_seconds = server.start_seconds
    report.server_log_errors = len(server.errors)
    for name in (
        "confirmed",
        "retries",
        "connection_errors",
        "server_errors",
        "timeouts",
        "unavailable",
    ):
        setattr(report, name, getattr(stats, name))
    report.unexpected = len(stats.unexpected)
    report.killed_in_flight = stats.killed_in_flight
    await check(url, tag, subs, report)
    if report.exit_status != 0:
        report.violations.append(f"the server exited with {report.exit_status} on SIGTERM")
    if report.kills < args.kills:
        report.violations.append(f"only {report.kills} of {args.kills} kills happened")
    for line in server.errors[:5]:
        print(f"  server log: {line}", file=sys.stderr)
    for line in stats.unexpected[:5]:
        print(f"  unexpected reply: {line}", file=sys.stderr)


async def _load(
    args,
    rng,
    server: Server,
    subs: list[Submission],
    stats: Stats,
    report: Report,
    database: PrivatePostgres | None = None,
):
    queue = iter(subs)
    connector = aiohttp.TCPConnector(limit=args.concurrency)

    async def worker(index: int) -> None:
        citizen = Citizen(index, server, connector, stats)
        for sub in queue:
            try:
                await citizen.submit(sub)
                stats.confirmed += 1
            except GaveUp as exc:
                sub.problem = str(exc)

    # Kill points: random counts of confirmed feedbacks, all before the end of the run.
    points = sorted(rng.uniform(0.05, 0.9) * len(subs) for _ in range(args.kills))

    async def killer() -> None:
        for number, point in enumerate(points, 1):
            while stats.confirmed < point and not workers_done.is_set():
                await asyncio.sleep(0.005)
            if workers_done.is_set():
                return
            if number % 2 == 0:
                # Every second kill waits for a "send" press on its way, so that the case that
                # matters most (killed around the commit of a feedback) comes up in every run.
                for _ in range(2000):
                    if "send" in stats.in_flight.values():
                        break
                    await asyncio.sleep(0.001)
                await asyncio.sleep(rng.uniform(0, 0.01))
            else:
                await asyncio.sleep(rng.uniform(0, 0.05))
            flying = Counter(stats.in_flight.values())
            down = time.perf_counter()
            if database is not None:  # PostgreSQL restarted; the bot is left to recover
                await asyncio.to_thread(database.stop, "fast")
                report.kills += 1
                stats.killed_in_flight.update(flying)
                await asyncio.sleep(rng.uniform(0.5, 2.5))
                await asyncio.to_thread(database.start)
                print(
                    f"  PostgreSQL restart {report.kills} at {stats.confirmed}/{len(subs)} "
                    f"confirmed, in flight {dict(flying)}, "
                    f"down {time.perf_counter() - down:.1f} s",
                    file=sys.stderr,
                )
                continue
            await server.kill()
            report.kills += 1
            stats.killed_in_flight.update(flying)
            if server.workers > 1:  # the others keep serving; wait for the supervisor's restart
                while len(server.worker_pids()) < server.workers:
                    await asyncio.sleep(0.05)
            else:
                await asyncio.sleep(rng.uniform(0, 0.5))  # citizens knock on a closed port
                await server.start()
            print(
                f"  kill {report.kills} at {stats.confirmed}/{len(subs)} confirmed, "
                f"in flight {dict(flying)}, back in {time.perf_counter() - down:.1f} s",
                file=sys.stderr,
            )

    workers_done = asyncio.Event()
    killing = asyncio.create_task(killer())
    try:
        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    finally:
        workers_done.set()
        await killing
        await connector.close()


async def check(url: str, tag: str, subs: list[Submission], report: Report) -> None:
    """Read the database directly and hold it against what each citizen was told."""
    db = Database(url)
    try:
        async with db.session() as session:
            rows = list(
                await session.scalars(
                    select(Feedback).where(Feedback.content.like(f"kill-test {tag} #%"))
                )
            )
            creates = dict(
                (
                    await session.execute(
                        select(FeedbackEvent.feedback_id, func.count())
                        .where(FeedbackEvent.action == "create")
                        .group_by(FeedbackEvent.feedback_id)
                    )
                ).all()
            )
            files = dict(
                (
                    await session.execute(
                        select(FeedbackAttachment.feedback_id, func.count()).group_by(
                            FeedbackAttachment.feedback_id
                        )
                    )
                ).all()
            )
            report.without_code = await session.scalar(
                select(func.count()).select_from(Feedback).where(Feedback.tracking_code.is_(None))
            )
            report.orphan_events = await session.scalar(
                select(func.count())
                .select_from(FeedbackEvent)
                .where(~FeedbackEvent.feedback_id.in_(select(Feedback.id)))
            )
    finally:
        await db.dispose()

    v = report.violations
    report.rows = len(rows)
    by_code = {row.tracking_code: row for row in rows}
    by_content: dict[str, list[Feedback]] = {}
    for row in rows:
        by_content.setdefault(row.content, []).append(row)
    seen_codes = set()
    for sub in subs:
        if sub.problem:
            report.gave_up += 1
            v.append(f"#{sub.number} gave up: {sub.problem}")
        if sub.send_presses > 1 and sub.send_lost_at is None:
            report.double_taps += 1
        if len(sub.codes_seen) > 1:
            report.code_changed += 1
            v.append(f"#{sub.number} was shown different codes {sorted(sub.codes_seen)}")
        same = by_content.get(sub.content, [])
        if len(same) > 1:
            report.duplicates += len(same) - 1
            v.append(f"#{sub.number} stored {len(same)} times: {[r.tracking_code for r in same]}")
        if sub.code is None:
            continue
        seen_codes |= sub.codes_seen
        row = by_code.get(sub.code)
        if row is None:
            report.missing += 1
            v.append(f"#{sub.number} was shown {sub.code}, which is not in the database")
            continue
        problems = _incomplete(row, sub, creates.get(row.id, 0), files.get(row.id, 0))
        if problems:
            report.incomplete += 1
            v.append(f"{sub.code} (#{sub.number}) is incomplete: {'; '.join(problems)}")
        if sub.send_lost_at is not None:
            report.send_lost += 1
            if as_utc(row.created_at) < sub.send_lost_at:
                report.send_recovered += 1
    unseen = [row for row in rows if row.tracking_code not in seen_codes]
    report.unseen = len(unseen)
    stranded = [r for r in unseen if not any(s.problem for s in subs if s.content == r.content)]
    for row in stranded[:20]:
        v.append(f"{row.tracking_code} was committed but its citizen never saw its code")
    if report.without_code:
        v.append(f"{report.without_code} feedback rows have no tracking code")
    if report.orphan_events:
        v.append(f"{report.orphan_events} history rows point at no feedback")


def _incomplete(row: Feedback, sub: Submission, creates: int, files: int) -> list[str]:
    problems = []
    if row.content != sub.content:
        problems.append(f"content {row.content!r} != {sub.content!r}")
    if (row.kind, row.topic, row.status, row.phone) != ("report", "other", "received", None):
        problems.append(f"kind/topic/status/phone {row.kind}/{row.topic}/{row.status}/{row.phone}")
    if (row.channel, row.conversation_id) != ("web", sub.conversation_id):
        problems.append("not from the citizen's conversation")
    expected = tracking_code(row.kind, as_utc(row.created_at).year, row.id)
    if row.tracking_code != expected:
        problems.append(f"code {row.tracking_code} != {expected} from its id")
    if creates != 1:
        problems.append(f"{creates} 'create' history rows")
    if files:
        problems.append(f"{files} attachment rows, none sent")
    if row.due_at is None:
        problems.append("no due date")
    return problems


async def postgres_database(admin_url: str) -> tuple[str, Callable]:
    """A throwaway database on that server, and a coroutine function that drops it."""
    url = await create_database(admin_url, "motcua_kill")
    return url, lambda: drop_database(admin_url, url)


def print_report(report: Report, args: argparse.Namespace, backend: str) -> None:
    flying = ", ".join(f"{k} {n}" for k, n in sorted(report.killed_in_flight.items())) or "none"
    starts = report.start_seconds
    print(
        f"{backend}: {report.requested} feedbacks, {args.concurrency} citizens at once, "
        f"{report.kills} {'PostgreSQL restarts' if args.fault == 'pg-restart' else 'kills'}, "
        f"seed {args.seed}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}"
    )
    print(f"| feedbacks confirmed | {report.confirmed} |")
    print(f"| citizens who gave up | {report.gave_up} |")
    what = "PostgreSQL restarts" if args.fault == "pg-restart" else "kills (SIGKILL)"
    print(f"| {what} | {report.kills} |")
    print(
        f"| requests in flight when killed | {sum(report.killed_in_flight.values())} ({flying}) |"
    )
    print(
        f"| retries | {report.retries} (connection {report.connection_errors}, "
        f"5xx {report.server_errors}, timeouts {report.timeouts}, "
        f"unexpected replies {report.unexpected}, "
        f"'unavailable, send again' replies {report.unavailable}) |"
    )
    print(
        f"| send failed and pressed again | {report.send_lost} "
        f"(committed before the kill: {report.send_recovered}) |"
    )
    print(f"| double taps on send (same code) | {report.double_taps} |")
    print(f"| feedback rows of this run | {report.rows} |")
    print(f"| missing | {report.missing} |")
    print(f"| incomplete | {report.incomplete} |")
    print(f"| duplicates | {report.duplicates} |")
    print(f"| rows without tracking code | {report.without_code} |")
    print(f"| committed, code never seen | {report.unseen} |")
    print(f"| codes changed between presses | {report.code_changed} |")
    print(f"| errors in the server log | {report.server_log_errors} |")
    if starts and args.fault == "pg-restart":
        print(f"| server start s (never restarted) | {starts[0]:.1f} |")
    elif starts:
        print(
            f"| server start s (first, median restart) | {starts[0]:.1f}, "
            f"{statistics.median(starts[1:] or starts):.1f} |"
        )
    rate = report.confirmed / report.elapsed if report.elapsed else 0
    print(f"| elapsed s | {report.elapsed:.1f} ({rate:.0f} feedbacks/s) |")
    if report.ok:
        print("OK")
    else:
        print(f"FAILED: {len(report.violations)} violations")
        for line in report.violations[:30]:
            print(f"  {line}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feedbacks", type=int, default=2000, help="feedbacks to submit")
    parser.add_argument("--kills", type=int, default=5, help="times to SIGKILL the server")
    parser.add_argument("--concurrency", type=int, default=8, help="citizens at once")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill points and texts")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run `motcua run --workers N` (PostgreSQL) and kill one worker at a time",
    )
    parser.add_argument(
        "--fault",
        choices=["kill", "pg-restart"],
        default="kill",
        help="kill: SIGKILL the bot (default); pg-restart: restart a private PostgreSQL server "
        "under the bot, which keeps running",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database-url", help="use this database (default: fresh SQLite file)")
    where.add_argument(
        "--postgres-url", help="admin URL of a PostgreSQL server: run on a throwaway database"
    )
    args = parser.parse_args(argv)
    if args.feedbacks < 1 or args.concurrency < 1 or args.kills < 0:
        parser.error("--feedbacks and --concurrency must be positive, --kills not negative")
    if args.fault == "pg-restart":
        if args.database_url or args.postgres_url:
            parser.error("--fault pg-restart runs its own PostgreSQL server; give no database")
        reason = PrivatePostgres.available()
        if reason:
            parser.error(f"--fault pg-restart cannot run here: {reason}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    backend = (
        "PostgreSQL (private, restarted)"
        if args.fault == "pg-restart"
        else "PostgreSQL"
        if args.postgres_url
        else "database"
        if args.database_url
        else "SQLite"
    )
    print_report(report, args, backend)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
