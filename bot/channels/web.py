"""Web chat: a page at ``/`` with a chat box and buttons, and the JSON endpoint it uses.

POST /api/messages  {"text": "..."} or {"payload": "...", "label": "..."}
  -> 200 {"replies": [{"text": "...", "buttons": [{"label": "...", "payload": "..."}]}],
          "locale": "vi"}
GET /api/updates
  -> 200 {"messages": [{"text": "...", "buttons": [...]}]}  (pushed messages, each given once)
The conversation is identified by an HttpOnly cookie holding a random token; only its hash is
stored, so a database reader cannot take over a chat.

Messages pushed outside a turn (a dossier change, a staff answer) wait in the outbox: a page cannot
be called, so it polls /api/updates, which hands over its chat's due rows and marks them sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

import jinja2
from aiohttp import web

from bot.core.engine import DialogueEngine
from bot.core.messages import Incoming, Reply
from bot.i18n import N_, SUPPORTED_LOCALES, normalize_locale, translator
from bot.outbox import take_pending

log = logging.getLogger("motcua.web")

ASSETS = Path(__file__).parent / "web_assets"
COOKIE = "motcua_chat"
COOKIE_MAX_AGE = 180 * 24 * 3600
# A message is at most a few KB; 256 KB leaves room for a 100 KB paste, which the engine refuses
# politely, while anything bigger is cut off here.
MAX_BODY_BYTES = 256 * 1024

# Text of the page itself, sent for every locale so the page can switch without reloading.
UI_STRINGS = {
    "title": N_("One-stop desk assistant"),
    "subtitle": N_("Administrative procedures, dossier status, feedback"),
    "placeholder": N_("Type your question…"),
    "send": N_("Send"),
    "typing": N_("Replying…"),
    "network_error": N_(
        "The message could not be sent. Please check your connection and try again."
    ),
    "log_label": N_("Conversation"),
}

_jinja = jinja2.Environment(
    loader=jinja2.FileSystemLoader(ASSETS), autoescape=jinja2.select_autoescape(("html",))
)


class WebChannel:
    """Serves the chat page and its JSON endpoint on the shared aiohttp application."""

    name = "web"
    # Handlers may offer "tell me when it changes" here, but nothing is sent to the page: it
    # takes its messages from the outbox when it polls (see ``updates``).
    can_push = True
    pull = True

    def __init__(self, engine: DialogueEngine, *, secure_cookies: bool = False) -> None:
        self.engine = engine
        self.secure_cookies = secure_cookies

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_post("/api/messages", self.post_message)
        app.router.add_get("/api/updates", self.updates)
        app.router.add_static("/static/", ASSETS, append_version=True, name="static")

    async def start(self) -> None:
        """Nothing to start: requests arrive through the aiohttp application."""

    async def stop(self) -> None:
        """Nothing to stop: the aiohttp application drains requests on shutdown."""

    async def send(self, conversation_id: str, replies: Sequence[Reply]) -> bool:
        """Report that nothing was delivered: a page cannot be called.

        The dispatcher skips pull channels and never calls this; a message for a web chat stays
        in the outbox until its page polls /api/updates. Were it called anyway, False keeps the
        row from being marked sent, so the page could still take it.
        """
        return False

    async def page(self, request: web.Request) -> web.Response:
        """Render the chat page in the visitor's language."""
        locale = _accept_language(request) or self.engine.default_locale
        ui = {code: _ui_strings(code) for code in SUPPORTED_LOCALES}
        static = request.app.router["static"]
        html = _jinja.get_template("chat.html").render(
            locale=locale,
            ui=ui[locale],
            all_ui=ui,
            static=lambda name: static.url_for(filename=name),
        )
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def post_message(self, request: web.Request) -> web.Response:
        """Take one message from the page and answer with the bot's replies."""
        token = request.cookies.get(COOKIE, "")
        new_token = not _valid_token(token)
        if new_token:
            token = secrets.token_urlsafe(24)
        guess = _accept_language(request)
        body, problem = await _read_body(request)
        if problem:
            t = translator(guess or self.engine.default_locale)
            return web.json_response(
                {"error": problem, "replies": [{"text": t(_PROBLEMS[problem]), "buttons": []}]},
                status=413 if problem == "too_large" else 400,
            )
        incoming = Incoming(
            channel=self.name,
            conversation_id=conversation_id(token),
            user_id="web",
            text=body.get("text") or "",
            payload=body.get("payload") or None,
            locale=guess,
        )
        turn = await self.engine.handle_turn(incoming)
        response = web.json_response(
            {"replies": [_reply_json(reply) for reply in turn.replies], "locale": turn.locale}
        )
        if new_token:
            response.set_cookie(
                COOKIE,
                token,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="Strict",
                secure=self.secure_cookies,
                path="/",
            )
        return response

    async def updates(self, request: web.Request) -> web.Response:
        """Hand the page the messages pushed into its chat since its last poll."""
        token = request.cookies.get(COOKIE, "")
        messages: list[dict] = []
        # No cookie, no chat: a poll never creates a conversation or sets a cookie.
        if _valid_token(token):
            taken = await take_pending(self.engine.db, self.name, conversation_id(token))
            messages = [_reply_json(reply) for _row_id, replies in taken for reply in replies]
        response = web.json_response({"messages": messages})
        response.headers["Cache-Control"] = "no-store"
        return response


def conversation_id(token: str) -> str:
    """The stored id of the web chat whose cookie holds ``token`` (only its hash is kept)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


_PROBLEMS = {
    "not_json": N_("Sorry, that request could not be read. Please send your message again."),
    "too_large": N_("Sorry, that message is too large to send. Please send a shorter message."),
}


async def _read_body(request: web.Request) -> tuple[dict, str | None]:
    """Return the JSON body as {"text", "payload"} strings, or the name of what is wrong."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return {}, "too_large"
    try:
        raw = await request.content.read(MAX_BODY_BYTES + 1)
    except Exception:  # client went away mid-body
        return {}, "not_json"
    if len(raw) > MAX_BODY_BYTES:
        return {}, "too_large"
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return {}, "not_json"
    if not isinstance(data, dict):
        return {}, "not_json"
    body = {}
    for field in ("text", "payload"):
        value = data.get(field)
        body[field] = value if isinstance(value, str) else ""
    return body, None


def _reply_json(reply: Reply) -> dict:
    return {
        "text": reply.text,
        "buttons": [{"label": b.label, "payload": b.payload} for b in reply.buttons],
    }


def _ui_strings(locale: str) -> dict[str, str]:
    t = translator(locale)
    return {key: t(message) for key, message in UI_STRINGS.items()}


def _accept_language(request: web.Request) -> str | None:
    """The first supported language in the Accept-Language header."""
    for part in request.headers.get("Accept-Language", "").split(","):
        found = normalize_locale(part.split(";")[0])
        if found:
            return found
    return None


def _valid_token(token: str) -> bool:
    return 16 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token)
