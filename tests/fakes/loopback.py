"""What every fake service shares: an aiohttp application on 127.0.0.1 at a free port."""

from __future__ import annotations

from aiohttp import web


class LoopbackServer:
    port = 0
    _runner: web.AppRunner | None = None

    async def serve(self, app: web.Application, **runner_options) -> None:
        """Start serving ``app``; ``port`` is the port it got."""
        self._runner = web.AppRunner(app, access_log=None, **runner_options)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
