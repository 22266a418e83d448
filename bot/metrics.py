"""Prometheus metrics at ``/metrics`` and the readiness check at ``/readyz``.

Counted in the process (prometheus-client): messages by channel and handler, turn latency,
search misses, dossier upstream errors. With several workers (``motcua run --workers N``) the
supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before starting them, every worker writes its
counts there, and whichever worker answers a scrape adds them all up (prometheus-client's
multiprocess mode), so a scrape through the shared port sees the whole deployment.

Read from the database at each scrape, so they are the same whichever process answers and
survive restarts: feedback created, answered and overdue (not answered by its due time).

Labels are bounded: channel names and handler (route) names only; never a user, a code or text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from bot.storage.models import Feedback, FeedbackEvent, utcnow

log = logging.getLogger("motcua.metrics")
disable_created_metrics()  # the *_created series only double what a scrape shows

MESSAGES = Counter(
    "motcua_messages", "Messages handled, by channel and handler", ["channel", "handler"]
)
TURN_SECONDS = Histogram(
    "motcua_turn_seconds",
    "Time to handle one message (lock, database, handler), by channel",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SEARCH_MISSES = Counter("motcua_search_misses", "Procedure searches that found nothing")
UPSTREAM_ERRORS = Counter(
    "motcua_dossier_upstream_errors", "Dossier lookups the provincial system failed to answer"
)
READY_TIMEOUT = 2.0  # seconds the database may take to answer /readyz


def observe_turn(channel: str, handler: str, seconds: float) -> None:
    MESSAGES.labels(channel, handler).inc()
    TURN_SECONDS.labels(channel).observe(seconds)


class _FeedbackFigures:
    """A one-off collector of the feedback figures read just before a scrape."""

    def __init__(self, created: int, answered: int, overdue: int) -> None:
        self.values = (created, answered, overdue)

    def collect(self):
        created, answered, overdue = self.values
        for name, doc, value in (
            ("motcua_feedback_created", "Feedback received (all time)", created),
            ("motcua_feedback_answered", "Staff answers given (all time)", answered),
            ("motcua_feedback_overdue", "Feedback not answered by its due time", overdue),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


async def _feedback_figures(db) -> _FeedbackFigures | None:
    try:
        async with db.session() as session:
            created = await session.scalar(select(func.count()).select_from(Feedback))
            answered = await session.scalar(
                select(func.count())
                .select_from(FeedbackEvent)
                .where(FeedbackEvent.action == "answer")
            )
            overdue = await session.scalar(
                select(func.count())
                .select_from(Feedback)
                .where(
                    Feedback.status.in_(("received", "in_progress")),  # not answered yet
                    Feedback.due_at < utcnow(),
                )
            )
    except Exception as exc:  # the database is down: the process counts still go out
        log.warning("metrics: feedback figures unavailable (%s)", type(exc).__name__)
        return None
    return _FeedbackFigures(created or 0, answered or 0, overdue or 0)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def add_routes(app: web.Application, services) -> None:
    """``/metrics`` and ``/readyz`` on the shared application."""

    async def metrics(_request: web.Request) -> web.Response:
        figures = await _feedback_figures(services.db)
        body = generate_latest(_registry())
        if figures is not None:
            extra = CollectorRegistry()
            extra.register(figures)
            body += generate_latest(extra)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(_request: web.Request) -> web.Response:
        problems = []
        started = time.perf_counter()
        try:
            async with services.db.session() as session:
                await _with_timeout(session.execute(text("SELECT 1")))
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        if not len(services.catalogue):
            problems.append("catalogue: empty")
        body = {
            "status": "not ready" if problems else "ready",
            "problems": problems,
            "catalogue_procedures": len(services.catalogue),
            "check_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        return web.json_response(body, status=503 if problems else 200)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)


async def _with_timeout(awaitable):
    async with asyncio.timeout(READY_TIMEOUT):
        return await awaitable
