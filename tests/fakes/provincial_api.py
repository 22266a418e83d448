"""A fake provincial one-stop system: a real aiohttp server on 127.0.0.1 serving dossier records.

Records are kept in the shape of ``bot.dossiers.http_source.DEFAULT_FIELDS`` ({"data": {...}}),
with the applicant's personal fields that real systems send and the bot must drop. Every request
is recorded in ``calls``; ``fault`` switches the answer to one of the outages the source must
survive, for every request or (with ``fail_times``) for the next N requests only.

    async with FakeProvincialAPI() as api:   # api.url_template -> HttpDossierSource
        api.add_dossier("H26.22-251002-0012")
        api.add_status("H26.22-251002-0012", "Đang xử lý", "16/01/2026 10:00")
        api.fault, api.fail_times = "http_500", 1
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

FAULTS = ("slow", "http_500", "invalid_json", "reset", "wrong_schema")


@dataclass
class Call:
    code: str
    headers: dict[str, str]
    fault: str | None  # the fault served to this request, None when answered normally
    at: float = field(default_factory=time.monotonic)


class FakeProvincialAPI(LoopbackServer):
    """GET /api/hoso/{code} on http://127.0.0.1:<port>."""

    def __init__(self, *, require_token: str | None = None, delay: float = 5.0) -> None:
        self.require_token = require_token
        self.delay = delay  # seconds the "slow" fault waits before answering
        self.dossiers: dict[str, dict] = {}
        self.calls: list[Call] = []
        self.fault: str | None = None
        self.fail_times: int | None = None  # None: every request; N: the next N, then healthy
        self._stopping = asyncio.Event()
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/hoso/{code}", self._get)
        # handler_cancellation: a client that gave up ends the "slow" handler at once.
        await self.serve(app, handler_cancellation=True, shutdown_timeout=0.5)

    async def stop(self) -> None:
        self._stopping.set()
        await super().stop()

    async def __aenter__(self) -> FakeProvincialAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/hoso/{{code}}"

    # -- data ---------------------------------------------------------------------------------

    def add_dossier(
        self,
        code: str,
        *,
        status: str = "Mới tiếp nhận",
        received_at: str = "15/01/2026 08:30",
        due_at: str | None = "22/01/2026",
        channel: str | None = "Trực tiếp",
        procedure_code: str | None = "1.001193",
        procedure_name: str | None = "Đăng ký khai sinh",
        phone: str | None = "0912 345 678",
        **extra: Any,
    ) -> dict:
        """Add a record (with the personal fields a real system sends); ``extra`` adds fields."""
        record = {
            "MaHoSo": code,
            "TrangThai": status,
            "MaTTHC": procedure_code,
            "TenTTHC": procedure_name,
            "NgayTiepNhan": received_at,
            "NgayHenTra": due_at,
            "HinhThuc": channel,
            "SoDienThoai": phone,
            "HoTen": "Nguyễn Thị Hoa",
            "DiaChi": "Số 12 ngõ 34 đường Láng, Hà Nội",
            "SoCCCD": "001190012345",
            "QuaTrinhXuLy": [{"TrangThai": status, "ThoiDiem": received_at, "GhiChu": ""}],
            **extra,
        }
        self.dossiers[code] = {"data": record}
        return record

    def add_status(self, code: str, status: str, at: str, note: str = "") -> None:
        """Append a status change to a record's history and make it the current status."""
        record = self.dossiers[code]["data"]
        record["TrangThai"] = status
        record["QuaTrinhXuLy"].append({"TrangThai": status, "ThoiDiem": at, "GhiChu": note})

    # -- serving ------------------------------------------------------------------------------

    def _take_fault(self) -> str | None:
        if self.fault is None or self.fail_times == 0:
            return None
        if self.fail_times is not None:
            self.fail_times -= 1
        return self.fault

    async def _get(self, request: web.Request) -> web.StreamResponse:
        code = request.match_info["code"]
        fault = self._take_fault()
        self.calls.append(Call(code, dict(request.headers), fault))
        if fault == "slow":
            try:
                await asyncio.wait_for(self._stopping.wait(), self.delay)
            except TimeoutError:
                pass
        elif fault == "http_500":
            return web.json_response({"error": "Internal Server Error"}, status=500)
        elif fault == "invalid_json":
            # What a proxy in front of the system returns during maintenance.
            return web.Response(
                text="<html><body>Hệ thống đang bảo trì</body></html>",
                content_type="application/json",
            )
        elif fault == "reset":
            # SO_LINGER 0 makes close() send a TCP RST: the client sees the connection reset.
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            request.transport.abort()
            raise asyncio.CancelledError
        elif fault == "wrong_schema":
            return web.json_response({"success": True, "result": {"id": 17, "state": 2}})
        elif fault is not None:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        if self.require_token and request.headers.get("Authorization") != (
            f"Bearer {self.require_token}"
        ):
            return web.json_response({"error": "Unauthorized"}, status=401)
        if code not in self.dossiers:
            return web.json_response({"error": "Not Found"}, status=404)
        return web.json_response(self.dossiers[code])
