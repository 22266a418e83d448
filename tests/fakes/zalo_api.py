"""A fake Zalo Official Account API: a real aiohttp server on 127.0.0.1 that the bot's Zalo
channel talks to, and the signed webhook events Zalo would post to the bot.

It answers the calls the bot makes (send a message, upload a file, refresh the access token,
fetch a file a citizen sent), checks what Zalo itself would refuse (a wrong or expired access
token, a text over 2,000 characters, a list template with more than 5 elements or a title over
100 characters, a file message whose token was never uploaded, a spent refresh token), records
every message per user, and can be told to fail (an expired token, HTTP 5xx, an error code for
one user) to exercise the bot's refresh and retries.

    api = FakeZaloAPI()
    await api.start()          # api.base_url -> MOTCUA_ZALO_API_BASE_URL and _OAUTH_BASE_URL
    raw, headers = api.signed(api.text_event("u1", "xin chao"))   # POST to the bot's webhook
    (reply, *_) = await api.wait_for("u1")

Zalo's conventions reproduced here: every API answer is HTTP 200 with ``{"error": 0, ...}`` or
``{"error": <negative>, "message": ...}``; the OAuth endpoint answers ``{"access_token",
"refresh_token", "expires_in"}`` or ``{"error", "error_name", "error_description"}``; a
refresh token can be used once (the answer carries the next one); webhook events carry the
timestamp in milliseconds as a string and are signed with ``X-ZEvent-Signature: mac=<hex
sha256(app id + raw body + timestamp + OA secret key)>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

APP_ID = "4331829371829371111"
OA_ID = "579745863508352884"
OA_SECRET = "oaSecretKey_Tc7yQ2pX9aLm"  # signs webhook events
APP_SECRET = "appSecretKey_Vb5Hn3Kd8Rw"  # goes with refresh_token to /v4/oa/access_token
SIGNATURE_HEADER = "X-ZEvent-Signature"

INVALID_TOKEN = -216
INVALID_PARAMS = -201
OUTSIDE_WINDOW = -230  # "user has not interacted with the OA recently"
INVALID_REFRESH = -14014

MAX_TEXT = 2000
LIST_MAX = 5
LIST_TITLE = 100
_ACTIONS = {"oa.open.url", "oa.query.show", "oa.query.hide", "oa.open.sms", "oa.open.phone"}


@dataclass
class Sent:
    """One message the fake accepted (answered with error 0)."""

    user: str
    message: dict
    message_id: str
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return self.message.get("text", "")

    @property
    def kind(self) -> str:
        """ "text", "list" or "file"."""
        if "text" in self.message:
            return "text"
        attachment = self.message["attachment"]
        if attachment["type"] == "template":
            return attachment["payload"]["template_type"]
        return attachment["type"]

    @property
    def elements(self) -> list[tuple[str, str]]:
        """A list template's elements as (title, payload its tap sends back)."""
        if self.kind != "list":
            return []
        return [
            (element["title"], (element.get("default_action") or {}).get("payload", ""))
            for element in self.message["attachment"]["payload"]["elements"]
        ]

    @property
    def file_token(self) -> str | None:
        return self.message["attachment"]["payload"]["token"] if self.kind == "file" else None


@dataclass
class Call:
    """Any request the fake received, with what it answered (for faults and counts)."""

    path: str
    user: str | None
    outcome: str  # "ok", "http 503", "error -216", ...
    at: float = field(default_factory=time.monotonic)


class FakeZaloAPI(LoopbackServer):
    """The OA API and OAuth endpoints the bot calls, on http://127.0.0.1:<port>."""

    def __init__(
        self,
        *,
        app_id: str = APP_ID,
        oa_secret: str = OA_SECRET,
        app_secret: str = APP_SECRET,
        access_token: str | None = None,
        refresh_token: str | None = None,
    ) -> None:
        self.app_id, self.oa_secret, self.app_secret = app_id, oa_secret, app_secret
        self.access_token = access_token or "acc-" + secrets.token_urlsafe(16)
        self.refresh_token = refresh_token or "ref-" + secrets.token_urlsafe(16)
        # Every pair handed out, first the initial one; refused refresh attempts are kept too.
        self.issued: list[tuple[str, str]] = [(self.access_token, self.refresh_token)]
        self.refreshes: list[tuple[str, bool]] = []  # (refresh token presented, accepted)
        self.sent: list[Sent] = []
        self.calls: list[Call] = []
        self.uploads: dict[str, tuple[str, str, bytes]] = {}  # token -> (name, mime, bytes)
        self.files: dict[str, bytes] = {}  # name -> content, served at /files/<name>
        self.downloads: list[str] = []  # names of the files fetched, in order
        # Called with every accepted message (e.g. to count without wait_for).
        self.on_sent: Callable[[Sent], None] | None = None
        # (path part, user or None for any, status): consumed in order / kept until heal().
        self._http_faults: list[tuple[str, str | None, int]] = []
        self._permanent: list[tuple[str, str | None, int]] = []
        self._user_errors: dict[str, tuple[int, str]] = {}
        self._changed = asyncio.Condition()
        self._msg_ids = itertools.count(1)
        self._event_ids = itertools.count(1)
        self.port = 0

    # -- server ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/v3.0/oa/message/cs", self._message)
        app.router.add_post("/v2.0/oa/upload/file", self._upload)
        app.router.add_post("/v4/oa/access_token", self._access_token)
        app.router.add_get("/files/{name}", self._download)
        await self.serve(app)

    def settings(self) -> dict[str, str]:
        """The bot's Zalo settings pointing at this fake (names as in bot/config.py)."""
        return {
            "zalo_app_id": self.app_id,
            "zalo_oa_secret_key": self.oa_secret,
            "zalo_app_secret_key": self.app_secret,
            "zalo_access_token": self.issued[0][0],
            "zalo_refresh_token": self.issued[0][1],
            "zalo_api_base_url": self.base_url,
            "zalo_oauth_base_url": self.base_url,
        }

    # -- faults ------------------------------------------------------------------------------

    def expire_token(self) -> str:
        """The current access token stops working (as after its 25 hours): the next call with
        it is answered -216 until the bot refreshes. Returns the expired token."""
        expired = self.access_token
        self.access_token = "acc-" + secrets.token_urlsafe(16)  # known to nobody yet
        return expired

    def fail_http(
        self, status: int = 503, times: int = 1, path: str = "message", user: str | None = None
    ) -> None:
        """Answer HTTP ``status`` to the next ``times`` calls whose path contains ``path``
        (and, given ``user``, that send a message to that user)."""
        self._http_faults.extend([(path, user, status)] * times)

    def fail_always(
        self, status: int = 500, path: str = "message", user: str | None = None
    ) -> None:
        """Answer HTTP ``status`` to every such call until ``heal``."""
        self._permanent.append((path, user, status))

    def heal(self) -> None:
        self._http_faults.clear()
        self._permanent.clear()

    def refuse_user(self, user: str, code: int = OUTSIDE_WINDOW, message: str = "") -> None:
        """Answer ``code`` to every message sent to ``user`` until ``allow_user``."""
        self._user_errors[user] = (
            code,
            message or "User has not interacted with the OA in the past 7 days",
        )

    def allow_user(self, user: str) -> None:
        self._user_errors.pop(user, None)

    # -- observing ---------------------------------------------------------------------------

    def messages(self, user: str | None = None) -> list[Sent]:
        return [s for s in self.sent if user is None or s.user == user]

    def texts(self, user: str) -> list[str]:
        return [s.text for s in self.messages(user) if s.kind == "text"]

    def calls_to(self, path: str, user: str | None = None) -> list[Call]:
        return [c for c in self.calls if path in c.path and (user is None or c.user == user)]

    async def wait_for(
        self,
        user: str | None = None,
        count: int = 1,
        timeout: float = 20,
        where: Callable[[Sent], bool] | None = None,
    ) -> list[Sent]:
        """Wait until ``count`` matching messages have been accepted; return all of them."""

        def matching() -> list[Sent]:
            found = self.messages(user)
            return [s for s in found if where(s)] if where else found

        return await self._wait(
            lambda: len(matching()) >= count,
            matching,
            timeout,
            lambda: (
                f"expected {count} message(s) to {user}, got {len(matching())}: "
                f"{[(s.kind, s.text[:60]) for s in matching()]}"
            ),
        )

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 20) -> None:
        """Wait until ``condition()`` holds after some request (e.g. a count of calls)."""
        await self._wait(condition, lambda: None, timeout, lambda: "condition never held")

    async def quiet(self, seconds: float = 0.4) -> None:
        """Wait until no request has arrived for ``seconds``."""
        while True:
            last = self.calls[-1].at if self.calls else 0
            await asyncio.sleep(seconds)
            if (self.calls[-1].at if self.calls else 0) == last:
                return

    async def _wait(self, condition, result, timeout, describe):
        async def ready():
            async with self._changed:
                await self._changed.wait_for(condition)
            return result()

        try:
            return await asyncio.wait_for(ready(), timeout)
        except TimeoutError:
            raise AssertionError(describe()) from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- webhook events ----------------------------------------------------------------------

    def event(self, name: str, **fields: Any) -> dict:
        """An event as Zalo posts it; ``timestamp`` is milliseconds, as a string."""
        return {
            "app_id": self.app_id,
            "oa_id": OA_ID,
            "user_id_by_app": "app" + str(next(self._event_ids)),
            "event_name": name,
            "timestamp": str(int(time.time() * 1000)),
            **fields,
        }

    def _from(self, user: str, name: str, message: dict) -> dict:
        return self.event(name, sender={"id": user}, recipient={"id": OA_ID}, message=message)

    def msg_id(self) -> str:
        return f"{secrets.token_hex(8)}{next(self._msg_ids)}"

    def text_event(self, user: str, text: str, msg_id: str | None = None) -> dict:
        return self._from(user, "user_send_text", {"msg_id": msg_id or self.msg_id(), "text": text})

    def tap_event(self, user: str, payload: str) -> dict:
        """What a tap on a list element with action oa.query.hide sends: its payload as text."""
        return self.text_event(user, payload)

    def add_file(self, name: str, content: bytes) -> str:
        """Make a file downloadable (as Zalo's CDN would); returns its URL."""
        self.files[name] = content
        return f"{self.base_url}/files/{name}"

    def image_event(self, user: str, content: bytes, caption: str = "") -> dict:
        name = f"img{len(self.files) + 1}.jpg"
        url = self.add_file(name, content)
        message = {
            "msg_id": self.msg_id(),
            "text": caption,
            "attachments": [{"type": "image", "payload": {"url": url, "thumbnail": url}}],
        }
        return self._from(user, "user_send_image", message)

    def file_event(self, user: str, content: bytes, name: str, size: int | None = None) -> dict:
        url = self.add_file(name, content)
        payload = {
            "url": url,
            "name": name,
            "size": str(len(content) if size is None else size),
            "type": name.rsplit(".", 1)[-1],
            "checksum": hashlib.md5(content).hexdigest(),  # noqa: S324 - Zalo's own field
        }
        message = {"msg_id": self.msg_id(), "attachments": [{"type": "file", "payload": payload}]}
        return self._from(user, "user_send_file", message)

    def sticker_event(self, user: str) -> dict:
        url = f"{self.base_url}/files/sticker.png"
        message = {
            "msg_id": self.msg_id(),
            "attachments": [{"type": "sticker", "payload": {"id": "st1", "url": url}}],
        }
        return self._from(user, "user_send_sticker", message)

    def follow_event(self, user: str) -> dict:
        return self.event("follow", follower={"id": user}, source="oa_profile")

    def unfollow_event(self, user: str) -> dict:
        return self.event("unfollow", follower={"id": user}, source="oa_profile")

    def seen_event(self, user: str, msg_ids: list[str] | None = None) -> dict:
        return self.event(
            "user_seen_message",
            sender={"id": user},
            recipient={"id": OA_ID},
            message={"msg_ids": msg_ids or ["m1"]},
        )

    def received_event(self, user: str, msg_id: str = "m1") -> dict:
        return self.event(
            "user_received_message",
            sender={"id": OA_ID},
            recipient={"id": user},
            message={"msg_id": msg_id},
        )

    def signature(self, raw: bytes, timestamp: str, secret: str | None = None) -> str:
        key = self.oa_secret if secret is None else secret
        digest = hashlib.sha256(self.app_id.encode() + raw + str(timestamp).encode() + key.encode())
        return "mac=" + digest.hexdigest()

    def signed(self, event: dict, secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers Zalo would post for ``event``."""
        raw = json.dumps(event, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.signature(raw, event.get("timestamp", ""), secret),
        }
        return raw, headers

    # -- the API -----------------------------------------------------------------------------

    def _fault(self, path: str, user: str | None = None) -> int | None:
        for index, (part, who, status) in enumerate(self._http_faults):
            if part in path and who in (None, user):
                del self._http_faults[index]
                return status
        for part, who, status in self._permanent:
            if part in path and who in (None, user):
                return status
        return None

    async def _record(self, path: str, user: str | None, outcome: str) -> None:
        self.calls.append(Call(path, user, outcome))
        await self._notify()

    async def _message(self, request: web.Request) -> web.Response:
        path = request.path
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        user = _user_of(body)
        status = self._fault(path, user)
        if status is not None:
            await self._record(path, user, f"http {status}")
            return web.json_response({"error": -1, "message": "server error"}, status=status)
        if request.headers.get("access_token") != self.access_token:
            await self._record(path, user, f"error {INVALID_TOKEN}")
            return _error(INVALID_TOKEN, "Access token is invalid")
        problem = self._check_message(body)
        if problem:
            await self._record(path, user, f"error {INVALID_PARAMS}: {problem}")
            return _error(INVALID_PARAMS, f"Parameters are invalid: {problem}")
        if user in self._user_errors:
            code, message = self._user_errors[user]
            await self._record(path, user, f"error {code}")
            return _error(code, message)
        sent = Sent(user, body["message"], f"zmsg{len(self.sent) + 1}")
        self.sent.append(sent)
        if self.on_sent is not None:
            self.on_sent(sent)
        await self._record(path, user, "ok")
        return web.json_response(
            {"error": 0, "message": "Success", "data": {"message_id": sent.message_id}}
        )

    def _check_message(self, body: Any) -> str | None:
        """What Zalo would refuse in a message body, or None."""
        if not isinstance(body, dict):
            return "body is not a JSON object"
        user = _user_of(body)
        if not user:
            return "recipient.user_id is missing"
        message = body.get("message")
        if not isinstance(message, dict):
            return "message is missing"
        if ("text" in message) == ("attachment" in message):
            return "message needs a text or an attachment (not both)"
        if "text" in message:
            text = message["text"]
            if not isinstance(text, str) or not text.strip():
                return "text is empty"
            if len(text) > MAX_TEXT:
                return f"text has {len(text)} characters (at most {MAX_TEXT})"
            return None
        attachment = message["attachment"]
        if not isinstance(attachment, dict) or not isinstance(attachment.get("payload"), dict):
            return "attachment.payload is missing"
        payload = attachment["payload"]
        if attachment.get("type") == "file":
            if payload.get("token") not in self.uploads:
                return "file token unknown (not uploaded)"
            return None
        if attachment.get("type") != "template" or payload.get("template_type") != "list":
            return f"unsupported attachment {attachment.get('type')}"
        elements = payload.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= LIST_MAX:
            return f"a list template has 1 to {LIST_MAX} elements"
        for element in elements:
            title = element.get("title") if isinstance(element, dict) else None
            if not isinstance(title, str) or not title.strip():
                return "element title is empty"
            if len(title) > LIST_TITLE:
                return f"element title over {LIST_TITLE} characters"
            action = element.get("default_action")
            if action is not None:
                if action.get("type") not in _ACTIONS:
                    return f"unknown action {action.get('type')}"
                if not isinstance(action.get("payload"), str) or not action["payload"]:
                    return "action payload is empty"
        return None

    async def _upload(self, request: web.Request) -> web.Response:
        path = request.path
        status = self._fault(path)
        if status is not None:
            await self._record(path, None, f"http {status}")
            return web.Response(status=status)
        if request.headers.get("access_token") != self.access_token:
            await self._record(path, None, f"error {INVALID_TOKEN}")
            return _error(INVALID_TOKEN, "Access token is invalid")
        form = await request.post()
        upload = form.get("file")
        if not isinstance(upload, web.FileField):
            await self._record(path, None, f"error {INVALID_PARAMS}")
            return _error(INVALID_PARAMS, "file is missing")
        token = "ftok-" + secrets.token_urlsafe(12)
        self.uploads[token] = (upload.filename, upload.content_type, upload.file.read())
        await self._record(path, None, "ok")
        return web.json_response({"error": 0, "message": "Success", "data": {"token": token}})

    async def _access_token(self, request: web.Request) -> web.Response:
        path = request.path
        status = self._fault(path)
        if status is not None:
            await self._record(path, None, f"http {status}")
            return web.Response(status=status)
        form = await request.post()
        presented = str(form.get("refresh_token") or "")
        if request.headers.get("secret_key") != self.app_secret:
            return await self._oauth_error(path, presented, -14002, "Invalid secret key")
        if form.get("app_id") != self.app_id:
            return await self._oauth_error(path, presented, -14001, "Invalid app id")
        if form.get("grant_type") != "refresh_token":
            return await self._oauth_error(path, presented, -14003, "Invalid grant type")
        if not presented or presented != self.refresh_token:
            return await self._oauth_error(
                path, presented, INVALID_REFRESH, "Invalid refresh token"
            )
        # Single use: this refresh token is spent, the answer carries the next one.
        self.access_token = "acc-" + secrets.token_urlsafe(16)
        self.refresh_token = "ref-" + secrets.token_urlsafe(16)
        self.issued.append((self.access_token, self.refresh_token))
        self.refreshes.append((presented, True))
        await self._record(path, None, "ok")
        return web.json_response(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_in": "90000",
            }
        )

    async def _oauth_error(
        self, path: str, presented: str, code: int, description: str
    ) -> web.Response:
        self.refreshes.append((presented, False))
        await self._record(path, None, f"error {code}")
        return web.json_response(
            {
                "error": code,
                "error_name": "Invalid parameter",
                "error_reason": description,
                "error_description": description,
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        status = self._fault(request.path)
        if status is not None:
            await self._record(request.path, None, f"http {status}")
            return web.Response(status=status)
        if name not in self.files:
            await self._record(request.path, None, "http 404")
            return web.Response(status=404)
        self.downloads.append(name)
        await self._record(request.path, None, "ok")
        return web.Response(body=self.files[name], content_type="application/octet-stream")


def _user_of(body: Any) -> str | None:
    recipient = body.get("recipient") if isinstance(body, dict) else None
    user = recipient.get("user_id") if isinstance(recipient, dict) else None
    return user if isinstance(user, str) and user else None


def _error(code: int, message: str) -> web.Response:
    """Zalo answers errors with HTTP 200 and a negative code."""
    return web.json_response({"error": code, "message": message})
