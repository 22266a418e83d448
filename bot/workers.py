"""``motcua run --workers N``: N bot processes on one port, supervised.

The supervisor (this process) migrates the database once, then starts N workers; each runs the
whole bot (``bot.app.serve``) and listens on the same port with SO_REUSEPORT, so the kernel
spreads connections over them. Nothing that matters lives in a worker's memory: per-chat
order and once-only handling come from the database (the conversation row lock, the
``inbound_messages`` row), and the background jobs run in the worker holding the leader lock
(``bot.leader``). A worker that dies is started again; SIGINT/SIGTERM stops them all, each
finishing what it is doing (see ``serve``).

Workers need PostgreSQL (several processes writing one SQLite file would queue behind its one
writer) and, with Telegram, webhook mode (Telegram gives updates to one poller only).
Prometheus counters of all workers are added up through ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable

from bot.i18n import N_

log = logging.getLogger("motcua.workers")

READY_TIMEOUT = 120.0  # seconds a worker may take to start
STOP_TIMEOUT = 30.0  # seconds workers get to finish before they are killed
MAX_RESTARTS = 5  # per minute; more means something is wrong with every start


def problems(settings) -> list[str]:
    """Why this configuration cannot run several workers, as msgids (empty: it can)."""
    found = []
    if settings.database_url.split(":", 1)[0].startswith("sqlite"):
        found.append(
            N_(
                "several workers need PostgreSQL (MOTCUA_DATABASE_URL=postgresql://...); "
                "SQLite has one writer at a time."
            )
        )
    if settings.telegram_token and settings.telegram_mode == "polling":
        found.append(
            N_(
                "Telegram polling runs in one process only; set MOTCUA_TELEGRAM_MODE=webhook "
                "to run several workers."
            )
        )
    return found


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def supervise(
    count: int,
    overrides: dict,
    on_ready: Callable[[int], None],
    migrate: Callable[[], None],
) -> int:
    """Start ``count`` workers and keep them running until SIGINT/SIGTERM; exit status."""
    migrate()
    metrics_dir = tempfile.mkdtemp(prefix="motcua-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # inherited by the workers
    context = multiprocessing.get_context("spawn")
    ready = context.Queue()
    workers: dict[int, multiprocessing.Process] = {}
    stopping = False

    def start(index: int) -> None:
        process = context.Process(
            target=_worker, args=(index, overrides, ready), name=f"motcua-worker-{index}"
        )
        process.start()
        workers[index] = process

    def stop(_signum=None, _frame=None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for index in range(count):
            start(index)
        started = _wait_ready(ready, count, workers, lambda: stopping)
        if started is None:
            return 1
        on_ready(started)
        restarts: list[float] = []
        while not stopping:
            time.sleep(0.2)
            for index, process in list(workers.items()):
                if process.is_alive() or stopping:
                    continue
                now = time.monotonic()
                restarts = [moment for moment in restarts if now - moment < 60] + [now]
                if len(restarts) > MAX_RESTARTS:
                    log.error(
                        "workers keep dying (%d restarts in a minute); stopping", MAX_RESTARTS
                    )
                    return 1
                log.warning(
                    "worker %d (pid %s) ended with code %s; starting it again",
                    index,
                    process.pid,
                    process.exitcode,
                )
                start(index)
        return 0
    finally:
        _stop_all(workers)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _wait_ready(ready, count: int, workers: dict, stopping: Callable[[], bool]) -> int | None:
    """The port once every worker is serving, or None if one failed to start."""
    deadline = time.monotonic() + READY_TIMEOUT
    port, seen = 0, set()
    while len(seen) < count:
        if stopping() or time.monotonic() > deadline:
            return None
        with contextlib.suppress(Exception):
            kind, index, value = ready.get(timeout=0.2)
            if kind == "failed":
                log.error("worker %d could not start: %s", index, value)
                return None
            seen.add(index)
            port = value
        for index, process in workers.items():
            if index not in seen and not process.is_alive():
                log.error("worker %d ended while starting (code %s)", index, process.exitcode)
                return None
    return port


def _stop_all(workers: dict) -> None:
    for process in workers.values():
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in workers.values():
        process.join(max(0.1, deadline - time.monotonic()))
        if process.is_alive():
            log.error("worker pid %s did not stop in %.0f s; killing it", process.pid, STOP_TIMEOUT)
            process.kill()
            process.join(5)


def _worker(index: int, overrides: dict, ready) -> None:
    """One worker process: the whole bot on the shared port."""
    from bot.app import serve
    from bot.cli import _secrets_of, _setup_logging
    from bot.config import load_settings

    settings = load_settings(**overrides)
    _setup_logging(settings.log_level, _secrets_of(settings), settings.log_format == "json")

    def on_ready(port: int, _channels: list) -> None:
        ready.put(("ready", index, port))

    try:
        asyncio.run(serve(settings, on_ready, reuse_port=True))
    except Exception as exc:
        ready.put(("failed", index, f"{type(exc).__name__}: {exc}"))
        logging.getLogger("motcua.workers").exception("worker %d failed", index)
        sys.exit(1)
