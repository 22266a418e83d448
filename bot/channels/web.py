"""Web chat: a page at ``/`` with a chat box and buttons, and the JSON endpoint it uses.

POST /api/messages  {"text": "..."} or {"payload": "..."}, optionally "demo": true or
  "unit": "<id>", or multipart/form-data with the fields text, payload, demo, unit and up to 5
  ``file`` parts
  -> 200 {"replies": [{"text": "...", "buttons": [{"label": "...", "payload": "..."}],
                       "documents": [{"filename", "mime_type", "data" (base64)}]}],
          "locale": "vi"}   ("documents" only when a reply has files)
GET /api/updates[?demo=1 | ?unit=<id>]
  -> 200 {"messages": [{"text": "...", "buttons": [...]}]}  (pushed messages, each given once)
GET /static/embed.js  the snippet a commune's site includes to open the chat in a panel

The conversation is identified by a random token; only its hash is stored, so a database reader
cannot take over a chat. The page keeps the token in an HttpOnly, SameSite=Strict cookie. Framed
by another site (``?embed=1``) the browser withholds that cookie, so the page keeps the token in
localStorage and sends it in the X-Motcua-Chat header instead; the server hands a new one back in
the JSON. A custom header cannot be sent across sites without a CORS preflight, which this server
never grants, so the header is no easier to forge than the cookie.

Demo mode (``/?demo=1``, when MOTCUA_WEB_DEMO_UNIT is set): the page says it is a demonstration
and its messages speak for the demo unit (its demo dossiers, its own feedback inbox) in a
conversation of their own (``<id>:demo``), so a demonstration never mixes with a real chat.

Unit pages (``/?unit=<id>``, for a deployment serving several units, MOTCUA_UNITS): the link a
commune puts on its own site. The page names the unit and its messages speak for it (its
feedback inbox, its dossiers), in a conversation of its own (``<id>:u:<unit>``). An id the
deployment does not serve is ignored (the default unit's page).

Messages pushed outside a turn (a dossier change, a staff answer) wait in the outbox: a page cannot
be called, so it polls /api/updates, which hands over its chat's due rows and marks them sent.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import BodyPartReader, hdrs, web

from bot.core.engine import DialogueEngine
from bot.core.messages import Attachment, Incoming, Reply
from bot.feedback.attachments import MAX_BYTES as MAX_FILE_BYTES
from bot.feedback.attachments import MAX_FILES, sniff
from bot.i18n import N_, SUPPORTED_LOCALES, normalize_locale, translator
from bot.outbox import take_pending

log = logging.getLogger("motcua.web")

ASSETS = Path(__file__).parent / "web_assets"
COOKIE = "motcua_chat"
COOKIE_MAX_AGE = 180 * 24 * 3600
# The chat token of an embedded page, which cannot use the cookie (see the module docstring).
TOKEN_HEADER = "X-Motcua-Chat"
# The page's current language, so that a request refused before it is read is answered in it.
LOCALE_HEADER = "X-Motcua-Locale"
DEMO_SUFFIX = ":demo"
UNIT_SUFFIX = ":u:"  # + the unit of a page opened with /?unit=<id>
# A message is at most a few KB; 256 KB leaves room for a 100 KB paste, which the engine refuses
# politely, while anything bigger is cut off here. It is also the aiohttp application's
# client_max_size, which bounds request.read()/post() and each part's read() in
# request.multipart(), but not BodyPartReader.read_chunk(): files are read in chunks against
# the limits below.
MAX_BODY_BYTES = 256 * 1024
MAX_FIELD_BYTES = 16 * 1024  # text (4,000 characters) or payload in a multipart body
MAX_UPLOAD_BYTES = MAX_FILES * MAX_FILE_BYTES + MAX_BODY_BYTES  # a whole multipart body
MAX_PARTS = MAX_FILES + 8
_CHUNK = 64 * 1024
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}  # each named in itself

# Text of the page itself, sent for every locale so the page can switch without reloading.
# "{name}", "{mb}" and "{max}" are filled in by the page.
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
    "language": N_("Language"),
    "attach": N_("Attach a photo or a PDF file"),
    "chosen": N_("Files to send"),
    "remove_file": N_("Remove {name}"),
    "file_too_large": N_("“{name}” is larger than {mb} MB and cannot be sent."),
    "file_type": N_("“{name}” is not a photo or a PDF file."),
    "too_many_files": N_("You can send at most {max} files at once."),
    "demo_banner": N_("Demonstration: sample data, nothing is sent to a real office."),
    "embed_open": N_("Chat with the one-stop desk"),
    "embed_close": N_("Close the chat"),
}
# What /static/embed.js shows on the commune's site before the chat page is loaded.
_EMBED_STRINGS = {"title": "title", "open": "embed_open", "close": "embed_close"}

_jinja = jinja2.Environment(
    loader=jinja2.FileSystemLoader(ASSETS), autoescape=jinja2.select_autoescape(("html",))
)


class WebChannel:
    """Serves the chat page and its JSON endpoint on the shared aiohttp application.

    ``settings`` gives the secure-cookie flag, the demo unit and the sites that may embed the
    page; without it they are read from the engine's services (tests build the channel bare).
    ``secure_cookies``, when given, overrides the setting.
    """

    name = "web"
    # Handlers may offer "tell me when it changes" here, but nothing is sent to the page: it
    # takes its messages from the outbox when it polls (see ``updates``).
    can_push = True
    pull = True
    # The page has a photo/file button (POST /api/messages as multipart/form-data).
    accepts_files = True

    def __init__(
        self,
        engine: DialogueEngine,
        *,
        settings: Any = None,
        secure_cookies: bool | None = None,
    ) -> None:
        self.engine = engine
        if settings is None:
            settings = getattr(getattr(engine, "services", None), "settings", None)
        self.secure_cookies = (
            secure_cookies
            if secure_cookies is not None
            else bool(getattr(settings, "web_secure_cookies", False))
        )
        self.demo_unit: str = getattr(settings, "web_demo_unit", "") or ""
        # Units a page may be opened for with /?unit=<id> (deployments serving several).
        self.units: list[str] = list(getattr(settings, "served_units", []) or [])
        services = getattr(engine, "services", None)
        self.unit_names: dict[str, str] = {
            unit: services.unit_name(unit) if hasattr(services, "unit_name") else unit
            for unit in self.units
        }
        self.embed_origins: list[str] = list(getattr(settings, "web_embed_origins", []) or [])

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.page)
        app.router.add_post("/api/messages", self.post_message)
        app.router.add_get("/api/updates", self.updates)
        # Before the static route, which would otherwise serve the template without its text.
        app.router.add_get("/static/embed.js", self.embed_script)
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
        """Render the chat page in the visitor's language (demo banner, embedded layout)."""
        locale = _accept_language(request) or self.engine.default_locale
        ui = {code: _ui_strings(code) for code in SUPPORTED_LOCALES}
        static = request.app.router["static"]
        demo = self._demo(request.query.get("demo"))
        unit = None if demo else self._unit(request.query.get("unit"))
        embed = request.query.get("embed") == "1"
        config = {
            "demo": demo,
            "unit": unit,
            "embed": embed,
            "maxFiles": MAX_FILES,
            "maxFileBytes": MAX_FILE_BYTES,
            "tokenHeader": TOKEN_HEADER,
            "localeHeader": LOCALE_HEADER,
        }
        html = _jinja.get_template("chat.html").render(
            locale=locale,
            ui=ui[locale],
            all_ui=ui,
            config=config,
            demo=demo,
            unit_name=self.unit_names.get(unit) if unit else None,
            embed=embed,
            languages=[(code, LANGUAGE_NAMES.get(code, code)) for code in SUPPORTED_LOCALES],
            static=lambda name: static.url_for(filename=name),
        )
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Security-Policy"] = self.content_security_policy()
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def content_security_policy(self) -> str:
        """The page's policy: nothing from elsewhere; framed only by itself and the sites of
        MOTCUA_WEB_EMBED_ORIGINS. ``blob:`` images are the citizen's own photos, previewed."""
        ancestors = " ".join(["'self'", *self.embed_origins])
        return (
            "default-src 'self'; style-src 'self'; script-src 'self'; "
            "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
            f"form-action 'self'; frame-ancestors {ancestors}"
        )

    async def embed_script(self, request: web.Request) -> web.Response:
        """The snippet for a commune's site, with its button labels in every language."""
        response = web.Response(text=_embed_script(), content_type="text/javascript")
        response.headers["Cache-Control"] = "public, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def post_message(self, request: web.Request) -> web.Response:
        """Take one message (with files, if multipart) and answer with the bot's replies."""
        token, by_header = _chat_token(request)
        new_token = not _valid_token(token)
        if new_token:
            token = secrets.token_urlsafe(24)
        guess = _accept_language(request)
        body, problem = await _read_body(request)
        if problem:
            page_locale = normalize_locale(request.headers.get(LOCALE_HEADER))
            t = translator(page_locale or guess or self.engine.default_locale)
            text = t(_PROBLEMS[problem], max=MAX_FILES, mb=MAX_FILE_BYTES // (1024 * 1024))
            return web.json_response(
                {"error": problem, "replies": [{"text": text, "buttons": []}]},
                status=400 if problem == "not_json" else 413,
            )
        demo = self._demo(body.demo)
        unit = None if demo else self._unit(body.unit)
        incoming = Incoming(
            channel=self.name,
            conversation_id=self._chat_id(token, demo, unit),
            user_id="web",
            text=body.text,
            payload=body.payload or None,
            attachments=tuple(body.attachments),
            locale=guess,
            unit=self.demo_unit if demo else unit,
        )
        turn = await self.engine.handle_turn(incoming)
        data: dict[str, Any] = {
            "replies": [_reply_json(reply) for reply in turn.replies],
            "locale": turn.locale,
        }
        if new_token and by_header:
            data["token"] = token  # an embedded page keeps it (it has no cookie)
        response = web.json_response(data)
        response.headers["Cache-Control"] = "no-store"
        if new_token and not by_header:
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
        token, _by_header = _chat_token(request)
        messages: list[dict] = []
        # No token, no chat: a poll never creates a conversation or sets a cookie.
        if _valid_token(token):
            demo = self._demo(request.query.get("demo"))
            unit = None if demo else self._unit(request.query.get("unit"))
            chat = self._chat_id(token, demo, unit)
            taken = await take_pending(self.engine.db, self.name, chat)
            messages = [_reply_json(reply) for _row_id, replies in taken for reply in replies]
        response = web.json_response({"messages": messages})
        response.headers["Cache-Control"] = "no-store"
        return response

    def _demo(self, asked: object) -> bool:
        """Whether a request asking for demo mode gets it: only when a demo unit is set."""
        return bool(self.demo_unit) and asked in (True, 1, "1", "true")

    def _unit(self, asked: object) -> str | None:
        """The unit a page opened with /?unit=<id> speaks for: one this deployment serves
        besides its default (the default needs no parameter), else None."""
        if isinstance(asked, str) and asked in self.units[1:]:
            return asked
        return None

    def _chat_id(self, token: str, demo: bool, unit: str | None = None) -> str:
        """A page of each unit (and the demo) is a conversation of its own for one cookie."""
        if demo:
            return conversation_id(token) + DEMO_SUFFIX
        return conversation_id(token) + (f"{UNIT_SUFFIX}{unit}" if unit else "")


def conversation_id(token: str) -> str:
    """The stored id of the web chat whose cookie holds ``token`` (only its hash is kept)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


_PROBLEMS = {
    "not_json": N_("Sorry, that request could not be read. Please send your message again."),
    "too_large": N_("Sorry, that message is too large to send. Please send a shorter message."),
    "files_too_large": N_(
        "Sorry, those files are too large to send. You can send at most {max} files at once, "
        "of at most {mb} MB each."
    ),
}


@dataclass
class _Body:
    text: str = ""
    payload: str = ""
    demo: object = None
    unit: object = None
    attachments: list[Attachment] = field(default_factory=list)


async def _read_body(request: web.Request) -> tuple[_Body, str | None]:
    """The message in a JSON or multipart/form-data body, or the name of what is wrong."""
    if request.content_type == "multipart/form-data":
        return await _read_multipart(request)
    return await _read_json(request)


async def _read_json(request: web.Request) -> tuple[_Body, str | None]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return _Body(), "too_large"
    try:
        raw = await request.content.read(MAX_BODY_BYTES + 1)
    except Exception:  # client went away mid-body
        return _Body(), "not_json"
    if len(raw) > MAX_BODY_BYTES:
        return _Body(), "too_large"
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the parser goes
        return _Body(), "not_json"
    if not isinstance(data, dict):
        return _Body(), "not_json"
    text, payload = (data.get(key) for key in ("text", "payload"))
    return _Body(
        text=text if isinstance(text, str) else "",
        payload=payload if isinstance(payload, str) else "",
        demo=data.get("demo"),
        unit=data.get("unit"),
    ), None


async def _read_multipart(request: web.Request) -> tuple[_Body, str | None]:
    """Read the form's fields and files in chunks, counting every byte against our limits
    (not aiohttp's client_max_size, which is far below a photo)."""
    if request.content_length is not None and request.content_length > MAX_UPLOAD_BYTES:
        return _Body(), "files_too_large"
    body, fields, total = _Body(), {}, 0
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS + 1):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or _encoded(part):
                return _Body(), "not_json"
            is_file = part.filename is not None
            limit = MAX_FILE_BYTES if is_file else MAX_FIELD_BYTES
            data = bytearray()
            while chunk := await part.read_chunk(_CHUNK):
                data += chunk
                total += len(chunk)
                if len(data) > limit or total > MAX_UPLOAD_BYTES:
                    return _Body(), "files_too_large" if is_file else "too_large"
            if is_file:
                if part.name != "file" or (not data and not part.filename):
                    continue  # another field, or a file input left empty
                if len(body.attachments) >= MAX_FILES:
                    return _Body(), "files_too_large"
                claimed = part.headers.get(hdrs.CONTENT_TYPE, "")
                body.attachments.append(_attachment(part.filename or "", claimed, bytes(data)))
            elif part.name in ("text", "payload", "demo", "unit"):
                fields[part.name] = data.decode("utf-8", errors="replace")
        else:
            return _Body(), "files_too_large"  # more parts than a form of ours ever has
    except Exception:  # malformed body, or the client went away mid-body
        log.info("unreadable multipart body", exc_info=True)
        return _Body(), "not_json"
    body.text = fields.get("text", "")
    body.payload = fields.get("payload", "")
    body.demo = fields.get("demo")
    body.unit = fields.get("unit")
    return body, None


def _encoded(part: BodyPartReader) -> bool:
    """Whether a part is transfer- or content-encoded (browsers send form data raw)."""
    transfer = part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING, "binary").lower()
    return transfer not in ("binary", "7bit", "8bit") or hdrs.CONTENT_ENCODING in part.headers


def _attachment(filename: str, claimed: str, data: bytes) -> Attachment:
    """A file from the page; its type is what the bytes are, whatever the browser claims."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:120] or "tep"
    mime = sniff(data) or claimed.split(";")[0].strip().lower() or "application/octet-stream"
    kind = "photo" if mime.startswith("image/") else "document"
    return Attachment(kind=kind, filename=name, mime_type=mime, size=len(data), data=data)


def _reply_json(reply: Reply) -> dict:
    data: dict[str, Any] = {
        "text": reply.text,
        "buttons": [{"label": b.label, "payload": b.payload} for b in reply.buttons],
    }
    if reply.documents:
        data["documents"] = [
            {
                "filename": doc.filename,
                "mime_type": doc.mime_type,
                "data": base64.b64encode(doc.data).decode("ascii"),
            }
            for doc in reply.documents
        ]
    return data


def _ui_strings(locale: str) -> dict[str, str]:
    t = translator(locale)
    return {key: t(message) for key, message in UI_STRINGS.items()}


@functools.cache
def _embed_script() -> str:
    strings = {
        code: {key: _ui_strings(code)[ui_key] for key, ui_key in _EMBED_STRINGS.items()}
        for code in SUPPORTED_LOCALES
    }
    source = (ASSETS / "embed.js").read_text(encoding="utf-8")
    return source.replace("/*STRINGS*/{}", json.dumps(strings, ensure_ascii=False), 1)


def _chat_token(request: web.Request) -> tuple[str, bool]:
    """The chat token and whether it came in the header (an embedded page) or the cookie."""
    if TOKEN_HEADER in request.headers:
        return request.headers[TOKEN_HEADER].strip(), True
    return request.cookies.get(COOKIE, ""), False


def _accept_language(request: web.Request) -> str | None:
    """The first supported language in the Accept-Language header."""
    for part in request.headers.get("Accept-Language", "").split(","):
        found = normalize_locale(part.split(";")[0])
        if found:
            return found
    return None


def _valid_token(token: str) -> bool:
    return 16 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token)
