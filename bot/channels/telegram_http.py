"""python-telegram-bot's HTTP requests carried by aiohttp instead of httpx.

PTB lets an application bring its own transport (``telegram.request.BaseRequest``; set with
``ApplicationBuilder.request`` and ``.get_updates_request``). Everything above the transport —
the Bot methods, parameters, files, error mapping (RetryAfter, BadRequest...) — stays PTB's.
We use aiohttp because the bot already runs on it, and because under load httpx's client cost
more CPU than the whole dialogue turn: see docs/BENCHMARKS.md (Telegram webhook).

Requests without files go out as one JSON body (the Bot API takes ``application/json``), which
costs a fraction of PTB's default form encoding. ``call`` is the lean way to the two methods
the bot calls for every update (sendMessage, answerCallbackQuery): plain JSON parameters in,
the plain result out, through this transport and PTB's own answer checking and error mapping
(``BaseRequest.post``), without building and parsing Telegram objects around it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from telegram import Bot
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_JSON = {"Content-Type": "application/json"}


class AiohttpRequest(BaseRequest):
    """A PTB request backend on one aiohttp ClientSession with a bounded connection pool."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        *,
        pool_size: int = 64,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        pool_timeout: float = 1.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        self._pool_size = pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                # Telegram answers JSON; no cookies, no redirects to follow.
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": "motcua-bot (python-telegram-bot, aiohttp)"},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout=BaseRequest.DEFAULT_NONE,
        write_timeout=BaseRequest.DEFAULT_NONE,
        connect_timeout=BaseRequest.DEFAULT_NONE,
        pool_timeout=BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        files = (
            request_data.multipart_data if request_data and request_data.contains_files else None
        )
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        connect = _given(connect_timeout, self._connect_timeout)
        pool = _given(pool_timeout, self._pool_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            # aiohttp's "connect" covers waiting for a pooled connection and opening one.
            connect=None if connect is None or pool is None else connect + pool,
            sock_connect=connect,
            # aiohttp has no separate write timeout; an upload must not be cut by a short read
            # timeout meanwhile, so the socket timeout is the larger of the two.
            sock_read=None if read is None else max(read, write or 0),
        )
        body: aiohttp.FormData | bytes | None = None
        headers = None
        if request_data and not files:
            body = json.dumps(request_data.parameters, ensure_ascii=False).encode()
            headers = _JSON
        elif files:
            body = aiohttp.FormData()
            for name, value in request_data.json_parameters.items():
                body.add_field(name, value)
            for name, (filename, content, mime_type) in files.items():
                body.add_field(name, content, filename=filename, content_type=mime_type)
        try:
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut("Timed out talking to the Bot API") from exc
        except aiohttp.ClientError as exc:
            # Never the URL in the message: it holds the bot token.
            detail = "" if isinstance(exc, aiohttp.InvalidURL) else f": {exc}"
            raise NetworkError(f"aiohttp.{type(exc).__name__}{detail}") from exc


class JsonParameters(RequestData):
    """Ready JSON parameters (no files) handed to a transport as PTB's RequestData."""

    __slots__ = ("_plain",)

    def __init__(self, parameters: dict[str, Any]) -> None:
        super().__init__()
        self._plain = {key: value for key, value in parameters.items() if value is not None}

    @property
    def parameters(self) -> dict[str, Any]:
        return self._plain

    @property
    def json_parameters(self) -> dict[str, str]:
        return {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in self._plain.items()
        }


async def call(bot: Bot, method: str, parameters: dict[str, Any]) -> Any:
    """Call a Bot API method with JSON parameters; its result, or PTB's exception for the error
    Telegram answered (RetryAfter, BadRequest, Forbidden...) or NetworkError/TimedOut."""
    return await bot.request.post(f"{bot.base_url}/{method}", JsonParameters(parameters))


def _given(value, default: float | None) -> float | None:
    return default if isinstance(value, type(BaseRequest.DEFAULT_NONE)) else value
