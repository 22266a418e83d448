"""A fake Telegram Bot API: a real aiohttp server on 127.0.0.1 that python-telegram-bot talks to.

It answers the methods the bot uses, checks what Telegram itself would refuse (wrong token,
text over 4096 UTF-16 units, callback data over 64 bytes), records every call in order, serves
files for getFile, queues updates for getUpdates (long polling), and can be told to fail
(flood control, server error, dropped connection) to exercise the bot's retries.

    api = FakeBotAPI(token)
    await api.start()                      # api.base_url -> MOTCUA_TELEGRAM_API_BASE_URL
    api.push(api.text_update(chat_id=1, text="/start"))
    call = await api.wait_for("sendMessage", chat_id=1)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

BOT_ID = 7000001
BOT_USERNAME = "MotCuaTestBot"
# Parameters PTB sends JSON-encoded inside form fields.
_JSON_FIELDS = {
    "reply_markup",
    "commands",
    "allowed_updates",
    "scope",
    "chat_id",
    "offset",
    "timeout",
    "limit",
    "message_id",
    "show_alert",
    "max_connections",
    "drop_pending_updates",
    "entities",
    "link_preview_options",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return self.params.get("text", "")

    @property
    def buttons(self) -> list[tuple[str, str]]:
        markup = self.params.get("reply_markup") or {}
        return [
            (button["text"], button.get("callback_data", ""))
            for row in markup.get("inline_keyboard", [])
            for button in row
        ]


class FakeBotAPI(LoopbackServer):
    """The Bot API methods the bot calls, on http://127.0.0.1:<port>."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (path, content)
        self.webhook: dict[str, Any] = {}
        self.commands: dict[str | None, list[dict]] = {}
        self.downloads: list[bytes] = []  # file contents served, in order
        # Called with every recorded call (the benchmark uses it instead of wait_for).
        self.on_call: Callable[[Call], None] | None = None
        self._faults: list[tuple[str, str]] = []  # (method, kind), consumed in order
        self._changed = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self.port = 0

    # -- server ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        await self.serve(app)

    # -- building updates --------------------------------------------------------------------

    def _user(self, user_id: int, language: str | None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": "Dân"}
        if language:
            user["language_code"] = language
        return user

    def _chat(self, chat_id: int, chat_type: str) -> dict:
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "Nhóm thử"
        return chat

    def message_update(
        self,
        chat_id: int,
        *,
        user_id: int | None = None,
        language: str | None = "vi",
        chat_type: str = "private",
        update_id: int | None = None,
        **message: Any,
    ) -> dict:
        """An update with a message; ``message`` adds its fields (text, photo, document...)."""
        body = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, chat_type),
            "from": self._user(user_id or chat_id, language),
            **message,
        }
        if isinstance(body.get("text"), str) and body["text"].startswith("/"):
            command = body["text"].split()[0]
            body["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return {"update_id": update_id or next(self._update_ids), "message": body}

    def text_update(self, chat_id: int, text: str, **kwargs: Any) -> dict:
        return self.message_update(chat_id, text=text, **kwargs)

    def callback_update(
        self,
        chat_id: int,
        data: str,
        *,
        user_id: int | None = None,
        language: str = "vi",
        update_id: int | None = None,
    ) -> dict:
        """A button press on a message the bot sent earlier."""
        return {
            "update_id": update_id or next(self._update_ids),
            "callback_query": {
                "id": f"cq{next(self._message_ids)}",
                "from": self._user(user_id or chat_id, language),
                "chat_instance": f"ci{chat_id}",
                "data": data,
                "message": {
                    "message_id": next(self._message_ids),
                    "date": int(time.time()),
                    "chat": self._chat(chat_id, "private"),
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Một Cửa"},
                    "text": "…",
                },
            },
        }

    def add_file(self, content: bytes, path: str) -> tuple[str, str]:
        """Make a file downloadable; returns (file_id, file_unique_id)."""
        file_id = f"file{len(self.files) + 1}"
        self.files[file_id] = (path, content)
        return file_id, f"u{file_id}"

    def photo_update(self, chat_id: int, content: bytes, caption: str | None = None) -> dict:
        file_id, unique = self.add_file(content, f"photos/{len(self.files)}.jpg")
        sizes = [
            {
                "file_id": file_id + "s",
                "file_unique_id": unique + "s",
                "width": 90,
                "height": 90,
                "file_size": 100,
            },
            {
                "file_id": file_id,
                "file_unique_id": unique,
                "width": 1280,
                "height": 960,
                "file_size": len(content),
            },
        ]
        extra = {"caption": caption} if caption else {}
        return self.message_update(chat_id, photo=sizes, **extra)

    def document_update(self, chat_id: int, content: bytes, name: str, mime: str) -> dict:
        file_id, unique = self.add_file(content, f"documents/{name}")
        doc = {
            "file_id": file_id,
            "file_unique_id": unique,
            "file_name": name,
            "mime_type": mime,
            "file_size": len(content),
        }
        return self.message_update(chat_id, document=doc)

    # -- feeding and observing ---------------------------------------------------------------

    def push(self, *updates: dict) -> None:
        """Queue updates for getUpdates (polling mode)."""
        self.updates.extend(updates)
        asyncio.get_running_loop().create_task(self._notify())

    def fail(self, method: str, kind: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail: "retry_after" (429 with
        retry_after 1), "server" (502), "reset" (connection dropped), "blocked" (403)."""
        self._faults.extend([(method, kind)] * times)

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id)
        ]

    async def wait_for(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        count: int = 1,
        timeout: float = 20,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Wait until ``count`` matching calls have been received; return them."""

        def matching() -> list[Call]:
            found = self.sent(chat_id, method)
            return [c for c in found if where(c)] if where else found

        async def ready() -> list[Call]:
            async with self._changed:
                await self._changed.wait_for(lambda: len(matching()) >= count)
            return matching()

        try:
            return await asyncio.wait_for(ready(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"expected {count} {method} call(s) to chat {chat_id}, got {len(matching())}: "
                f"{[c.text[:60] for c in matching()]}"
            ) from None

    async def quiet(self, seconds: float = 0.5) -> None:
        """Wait until no call has arrived for ``seconds``."""
        while True:
            last = self.calls[-1].at if self.calls else 0
            await asyncio.sleep(seconds)
            if (self.calls[-1].at if self.calls else 0) == last:
                return

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the API -----------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await _parameters(request)
        for index, (name, kind) in enumerate(self._faults):
            if name == method:
                del self._faults[index]
                fault = await _fault(request, kind)
                if fault is not None:
                    self.calls.append(Call(method + "!" + kind, params))
                    return fault
                break
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        if method != "getUpdates":
            call = Call(method, params, files=files)
            self.calls.append(call)
            if self.on_call is not None:
                self.on_call(call)
            await self._notify()
        return await handler(params, files)

    async def _api_getMe(self, params, files):
        return _ok(
            {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Một Cửa",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        )

    async def _api_getUpdates(self, params, files):
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + min(timeout, 5)
        while not self.updates and time.monotonic() < deadline:
            try:
                async with self._changed:
                    await asyncio.wait_for(
                        self._changed.wait(), max(0.01, deadline - time.monotonic())
                    )
            except TimeoutError:
                break
        limit = int(params.get("limit") or 100)
        return _ok(self.updates[:limit])

    async def _api_sendMessage(self, params, files):
        text = params.get("text", "")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return _error(400, "Bad Request: message is too long")
        problem = _check_markup(params.get("reply_markup"))
        if problem:
            return _error(400, problem)
        return _ok(self._message(params, text=text))

    async def _api_editMessageText(self, params, files):
        return _ok(self._message(params, text=params.get("text", "")))

    async def _api_sendDocument(self, params, files):
        if "document" not in files:
            return _error(400, "Bad Request: there is no document in the request")
        name, content = files["document"]
        return _ok(
            self._message(
                params,
                document={
                    "file_id": f"sent{len(self.calls)}",
                    "file_unique_id": f"us{len(self.calls)}",
                    "file_name": name,
                    "file_size": len(content),
                },
            )
        )

    async def _api_answerCallbackQuery(self, params, files):
        return _ok(True)

    async def _api_getFile(self, params, files):
        file_id = params.get("file_id", "")
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return _ok(
            {
                "file_id": file_id,
                "file_unique_id": "u" + file_id,
                "file_size": len(content),
                "file_path": path,
            }
        )

    async def _api_setWebhook(self, params, files):
        self.webhook = dict(params)
        return _ok(True)

    async def _api_deleteWebhook(self, params, files):
        self.webhook = {}
        return _ok(True)

    async def _api_setMyCommands(self, params, files):
        self.commands[params.get("language_code")] = params.get("commands", [])
        return _ok(True)

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored_path, content in self.files.values():
            if stored_path == path:
                self.downloads.append(content)
                return web.Response(body=content)
        return web.Response(status=404)

    def _message(self, params: dict, **content: Any) -> dict:
        chat_id = int(params.get("chat_id", 0))
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "x"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Một Cửa"},
            **content,
        }


async def _parameters(request: web.Request) -> tuple[dict, dict]:
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if request.content_type == "application/json":
        params = await request.json()
    elif request.can_read_body:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = (value.filename, value.file.read())
            else:
                params[key] = value
    params.update(request.query)
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str):
            try:
                params[key] = json.loads(params[key])
            except ValueError:
                pass
    return params, files


def _check_markup(markup: Any) -> str | None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
            if not button.get("text"):
                return "Bad Request: button text is empty"
    return None


async def _fault(request: web.Request, kind: str) -> web.StreamResponse | None:
    if kind == "retry_after":
        return web.json_response(
            {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            },
            status=429,
        )
    if kind == "server":
        return web.json_response(
            {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
        )
    if kind == "blocked":
        return _error(403, "Forbidden: bot was blocked by the user")
    if kind == "reset":
        request.transport.close()
        return web.Response(status=500)
    raise ValueError(f"unknown fault {kind!r}")


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str) -> web.Response:
    return web.json_response(
        {"ok": False, "error_code": code, "description": description}, status=code
    )
