"""Periodic work beside the bot (outbox dispatch, dossier notifications, pruning): one loop
shape for all, started and stopped by ``bot.app.serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.storage.db import is_unavailable, unavailable_reason

log = logging.getLogger("motcua.background")


class Periodic:
    """Runs ``run_once`` every ``interval`` seconds until stopped; a failed round is logged and
    the next one tried. Subclasses set ``name`` and may override ``enabled`` and ``wait``."""

    name = "periodic"
    interval = 60.0
    # Set by the app: the job runs only in the process that leads (see bot/leader.py).
    leader = None
    _task: asyncio.Task | None = None

    @property
    def enabled(self) -> bool:
        return True

    async def run_once(self) -> object:
        raise NotImplementedError

    async def wait(self) -> None:
        await asyncio.sleep(self.interval)

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                if self.leader is None or await self.leader.check():
                    await self.run_once()
            except Exception as exc:
                if is_unavailable(exc):  # an outage: one line each round until it is back
                    reason = unavailable_reason(exc)
                    log.warning("%s: database unavailable (%s); trying again", self.name, reason)
                else:
                    log.exception("%s: round failed; trying again", self.name)
            await self.wait()
