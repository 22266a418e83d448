"""The web chat made for demonstrations, over real HTTP: photos and files from the page
(multipart), demo mode in a conversation of its own, the embeddable snippet and its token header,
and the framing policy."""

from __future__ import annotations

import base64
import io
import re

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import build_web_app
from bot.channels.web import (
    COOKIE,
    DEMO_SUFFIX,
    MAX_BODY_BYTES,
    TOKEN_HEADER,
    UI_STRINGS,
    WebChannel,
    conversation_id,
)
from bot.config import load_settings
from bot.core import Button, Context, Reply, Router
from bot.core.messages import Document
from bot.feedback.attachments import MAX_BYTES, MAX_FILES
from bot.i18n import translator
from bot.outbox import enqueue
from bot.storage.models import Conversation, Feedback, FeedbackAttachment
from tests.conftest import make_engine

pytestmark = pytest.mark.parametrize("databases", ["sqlite"], indirect=True)

DEMO_CODE = "DEMO-000000-0001"
ORIGIN = "https://xaminhhoa.gov.vn"


def jpeg(width: int = 64, height: int = 48) -> bytes:
    """A real (small) JPEG photo."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 30)).save(out, "JPEG", quality=80)
    return out.getvalue()


def form(*, text: str = "", payload: str = "", demo: bool = False, files=()) -> aiohttp.FormData:
    # As browsers send it: always multipart, file names in raw UTF-8.
    data = aiohttp.FormData(quote_fields=False, default_to_multipart=True)
    if text:
        data.add_field("text", text)
    if payload:
        data.add_field("payload", payload)
    if demo:
        data.add_field("demo", "1")
    for name, content, mime in files:
        data.add_field("file", content, filename=name, content_type=mime)
    return data


def web_app(engine):
    return build_web_app(engine.services.settings, engine)


def texts(data: dict) -> str:
    return "\n".join(reply["text"] for reply in data["replies"])


def payloads(data: dict) -> list[str]:
    return [b["payload"] for reply in data["replies"] for b in reply["buttons"]]


async def post(client, body=None, **kwargs) -> dict:
    response = await client.post("/api/messages", json=body, **kwargs)
    assert response.status == 200, await response.text()
    return await response.json()


# --- files from the page ---------------------------------------------------------------------


async def test_a_photo_posted_as_multipart_reaches_the_handler(aiohttp_client, db) -> None:
    seen = []
    probe = Router("probe")

    @probe.payload("probe")
    async def record(ctx: Context) -> Reply:
        seen.append(ctx.incoming)
        return Reply("ok")

    client = await aiohttp_client(web_app(make_engine(db, extra=[probe])))
    photo = jpeg()
    response = await client.post(
        "/api/messages",
        data=form(
            text="ảnh hiện trường",
            payload="probe",
            files=[
                ("C:\\Ảnh\\hiện trường.jpg", photo, "image/jpeg"),
                ("to-khai.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
            ],
        ),
    )
    assert response.status == 200
    assert COOKIE in response.cookies
    (incoming,) = seen
    assert incoming.channel == "web" and incoming.text == "ảnh hiện trường"
    first, second = incoming.attachments
    assert (first.kind, first.filename, first.mime_type) == (
        "photo",
        "hiện trường.jpg",
        "image/jpeg",
    )
    assert first.size == len(photo) and first.data == photo
    assert (second.kind, second.mime_type) == ("document", "application/pdf")

    # The type is what the bytes are, not what the browser claims.
    seen.clear()
    await client.post(
        "/api/messages",
        data=form(payload="probe", files=[("x.pdf", photo, "application/pdf")]),
    )
    assert (seen[0].attachments[0].kind, seen[0].attachments[0].mime_type) == (
        "photo",
        "image/jpeg",
    )


async def test_a_feedback_with_a_photo_from_the_page_gets_a_tracking_code(
    aiohttp_client, engine
) -> None:
    client = await aiohttp_client(web_app(engine))
    await post(client, {"payload": "feedback:new"})
    await post(client, {"payload": "fb:kind:report"})
    await post(client, {"payload": "fb:topic:other"})
    data = await post(client, {"text": "Đèn đường trước nhà văn hóa thôn 3 bị hỏng."})
    assert "fb:files:done" in payloads(data)

    response = await client.post(
        "/api/messages", data=form(files=[("den-duong.jpg", jpeg(), "image/jpeg")])
    )
    assert response.status == 200
    data = await response.json()
    assert "Đã thêm “den-duong.jpg” (1/5)" in texts(data), texts(data)

    await post(client, {"payload": "fb:files:done"})
    data = await post(client, {"payload": "fb:contact:anon"})
    send = next(p for p in payloads(data) if p.startswith("fb:send:"))
    data = await post(client, {"payload": send})
    code = re.search(r"PA-\d{4}-\d+", texts(data))
    assert code, texts(data)

    async with engine.db.session() as session:
        feedback = await session.scalar(
            select(Feedback).where(Feedback.tracking_code == code.group(0))
        )
        assert feedback.channel == "web"
        files = (
            await session.scalars(
                select(FeedbackAttachment).where(FeedbackAttachment.feedback_id == feedback.id)
            )
        ).all()
    assert [(f.filename, f.mime_type) for f in files] == [("den-duong.jpg", "image/jpeg")]


async def test_too_large_uploads_are_refused_politely(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    vietnamese = translator("vi")(
        "Sorry, those files are too large to send. You can send at most {max} files at once, "
        "of at most {mb} MB each.",
        max=MAX_FILES,
        mb=MAX_BYTES // (1024 * 1024),
    )
    assert vietnamese.startswith("Xin lỗi")  # the Vietnamese catalogue has it

    big = b"\xff\xd8\xff" + bytes(MAX_BYTES - 2)  # one byte over the limit
    response = await client.post("/api/messages", data=form(files=[("big.jpg", big, "image/jpeg")]))
    assert response.status == 413
    data = await response.json()
    assert data["error"] == "files_too_large"
    assert data["replies"][0]["text"] == vietnamese

    many = [(f"{n}.jpg", jpeg(), "image/jpeg") for n in range(MAX_FILES + 1)]
    response = await client.post("/api/messages", data=form(files=many))
    assert response.status == 413
    assert (await response.json())["replies"][0]["text"] == vietnamese

    # A text field is held to the limit of a message, files or not.
    response = await client.post("/api/messages", data=form(text="x" * 20_000))
    assert response.status == 413
    assert (await response.json())["error"] == "too_large"

    # The page's own language is used for a refusal (it is sent before the body is read).
    response = await client.post(
        "/api/messages",
        data=form(files=[("big.jpg", big, "image/jpeg")]),
        headers={"X-Motcua-Locale": "en"},
    )
    assert (await response.json())["replies"][0]["text"].startswith("Sorry, those files")

    # Exactly at the limit is fine; nothing was kept of the refused requests.
    ok = b"\xff\xd8\xff" + bytes(MAX_BYTES - 3)
    response = await client.post("/api/messages", data=form(files=[("ok.jpg", ok, "image/jpeg")]))
    assert response.status == 200


async def test_a_json_body_stays_limited_to_a_message(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.post(
        "/api/messages",
        data=b'{"text": "' + b"a" * MAX_BODY_BYTES + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 413
    response = await client.post(
        "/api/messages",
        data=b"--garbage",
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert response.status == 400


async def test_documents_in_a_reply_are_sent_to_the_page(aiohttp_client, db) -> None:
    probe = Router("probe")

    @probe.payload("probe")
    async def checklist(ctx: Context) -> Reply:
        return Reply(
            "Danh sách giấy tờ", documents=[Document("ds.pdf", "application/pdf", b"%PDF")]
        )

    client = await aiohttp_client(web_app(make_engine(db, extra=[probe])))
    data = await post(client, {"payload": "probe"})
    (doc,) = data["replies"][0]["documents"]
    assert doc["filename"] == "ds.pdf" and base64.b64decode(doc["data"]) == b"%PDF"
    data = await post(client, {"payload": "menu"})
    assert "documents" not in data["replies"][0]


async def test_photos_from_the_page_come_back_as_a_pdf_to_download(aiohttp_client, engine) -> None:
    """The portal guide's "photos -> PDF" works on the page: the PDF comes in the JSON."""
    client = await aiohttp_client(web_app(engine))
    data = await post(client, {"payload": "sub:photos:1.001193"})
    assert "sub:phskip:0" in payloads(data)
    response = await client.post(
        "/api/messages", data=form(files=[("trang-1.jpg", jpeg(640, 900), "image/jpeg")])
    )
    assert "sub:phdone:0" in payloads(await response.json())
    data = await post(client, {"payload": "sub:phdone:0"})
    documents = [doc for reply in data["replies"] for doc in reply.get("documents", [])]
    assert [doc["mime_type"] for doc in documents] == ["application/pdf"]
    assert base64.b64decode(documents[0]["data"]).startswith(b"%PDF")


# --- demo mode -------------------------------------------------------------------------------


async def test_demo_mode_has_its_own_conversation_and_dossiers(aiohttp_client, db) -> None:
    engine = make_engine(db, unit="xa-that")  # a real commune, whose dossiers are local
    client = await aiohttp_client(web_app(engine))

    data = await post(client, {"text": DEMO_CODE})
    assert texts(data).startswith(f"Không tìm thấy hồ sơ có mã {DEMO_CODE}")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value

    data = await post(client, {"text": DEMO_CODE, "demo": True})
    assert not texts(data).startswith("Không tìm thấy"), texts(data)
    assert DEMO_CODE in texts(data)
    # Multipart says demo=1 the same way.
    response = await client.post("/api/messages", data=form(text=DEMO_CODE, demo=True))
    assert DEMO_CODE in texts(await response.json())

    # A feedback begun in the demo stays there: the real chat, same cookie, knows nothing of it.
    await post(client, {"payload": "feedback:new", "demo": True})
    await post(client, {"payload": "fb:kind:report", "demo": True})
    real = await post(client, {"payload": "fb:topic:other"})
    assert "fb:kind:report" in payloads(real)  # asked for the kind again: no draft here
    demo = await post(client, {"payload": "fb:topic:other", "demo": True})
    assert "fb:kind:report" not in payloads(demo)
    async with engine.db.session() as session:
        rows = {
            row.conversation_id: row.step
            for row in await session.scalars(
                select(Conversation).where(Conversation.channel == "web")
            )
        }
    chat = conversation_id(token)
    assert set(rows) == {chat, chat + DEMO_SUFFIX}
    assert rows[chat + DEMO_SUFFIX] == "feedback.content" and rows[chat] != "feedback.content"


async def test_demo_updates_come_from_the_demo_conversation(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.post("/api/messages", json={"payload": "menu", "demo": True})
    chat = conversation_id(response.cookies[COOKIE].value)
    async with engine.db.write_transaction() as session:
        enqueue(session, "web", chat + DEMO_SUFFIX, [Reply("tin trình diễn")], "test")
        enqueue(session, "web", chat, [Reply("tin thật", [Button("Về menu", "menu")])], "test")
    demo = await (await client.get("/api/updates?demo=1")).json()
    assert [m["text"] for m in demo["messages"]] == ["tin trình diễn"]
    real = await (await client.get("/api/updates")).json()
    assert [m["text"] for m in real["messages"]] == ["tin thật"]


async def test_the_page_in_demo_mode_says_so(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    html = await (await client.get("/?demo=1")).text()
    banner = translator("vi")(UI_STRINGS["demo_banner"])
    assert banner.startswith("Bản trình diễn")
    assert 'id="demo-banner"' in html and banner in html
    assert '"demo": true' in html
    plain = await (await client.get("/")).text()
    assert 'id="demo-banner"' not in plain and '"demo": false' in plain


async def test_demo_mode_off_makes_demo_requests_ordinary(aiohttp_client, db) -> None:
    engine = make_engine(db, unit="xa-that", web_demo_unit="")
    client = await aiohttp_client(web_app(engine))
    html = await (await client.get("/?demo=1")).text()
    assert 'id="demo-banner"' not in html and '"demo": false' in html
    data = await post(client, {"text": DEMO_CODE, "demo": True})
    assert texts(data).startswith("Không tìm thấy hồ sơ")
    async with engine.db.session() as session:
        ids = (await session.scalars(select(Conversation.conversation_id))).all()
    assert ids and not any(i.endswith(DEMO_SUFFIX) for i in ids)


# --- the page's controls and headers ----------------------------------------------------------


async def test_the_page_has_labelled_controls_and_a_language_switch(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    html = await (await client.get("/")).text()
    file_input = re.search(r"<input id=\"files\"[^>]*>", html, re.S).group(0)
    assert 'accept="image/*,application/pdf"' in file_input and "capture" not in file_input
    assert 'aria-label="' in file_input
    assert 'role="log"' in html and 'aria-live="polite"' in html
    assert re.search(r'data-lang="vi"[^>]*aria-pressed="true"', html, re.S)
    assert re.search(r'data-lang="en"[^>]*aria-pressed="false"', html, re.S)
    assert '<label for="input"' in html
    # Nothing from another site: scripts and styles are our own.
    assert not re.search(r'(src|href)="(https?:)?//', html)


async def test_framing_is_allowed_only_to_the_configured_sites(aiohttp_client, db) -> None:
    client = await aiohttp_client(web_app(make_engine(db)))
    policy = (await client.get("/")).headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'self'" in policy and "https://" not in policy

    engine = make_engine(db, web_embed_origins=[ORIGIN, "https://phuong.example.vn"])
    client = await aiohttp_client(web_app(engine))
    response = await client.get("/?embed=1")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["frame-ancestors"] == f"'self' {ORIGIN} https://phuong.example.vn"
    assert directives["default-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "blob:" in directives["img-src"]  # the citizen's own photo, previewed
    assert '"embed": true' in await response.text()


async def test_the_embed_snippet_is_served_with_its_labels(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.get("/static/embed.js")
    assert response.status == 200
    assert response.content_type == "text/javascript"
    script = await response.text()
    assert "/*STRINGS*/{}" not in script
    assert translator("vi")(UI_STRINGS["embed_open"]) in script
    assert "Chat with the one-stop desk" in script
    assert "cdn" not in script.lower()


async def test_an_embedded_page_keeps_its_chat_by_header(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.post(
        "/api/messages", json={"payload": "menu"}, headers={TOKEN_HEADER: ""}
    )
    assert COOKIE not in response.cookies  # a framed page gets no cookie
    token = (await response.json())["token"]
    assert len(token) >= 16

    data = await post(client, {"payload": "lang:set:en"}, headers={TOKEN_HEADER: token})
    assert "token" not in data and data["locale"] == "en"
    data = await post(client, {"text": "menu"}, headers={TOKEN_HEADER: token})
    assert data["replies"][0]["text"].startswith("Hello!")  # same conversation

    async with engine.db.write_transaction() as session:
        enqueue(session, "web", conversation_id(token), [Reply("for the frame")], "test")
    updates = await client.get("/api/updates", headers={TOKEN_HEADER: token})
    assert [m["text"] for m in (await updates.json())["messages"]] == ["for the frame"]

    # A forged header is replaced like a forged cookie; a cookie chat never sees its token.
    data = await post(client, {"text": "menu"}, headers={TOKEN_HEADER: "<script>"})
    assert data["token"] != "<script>" and data["replies"][0]["text"].startswith("Xin chào")
    data = await post(client, {"text": "menu"})
    assert "token" not in data


async def test_the_constructor_reads_its_settings(db, engine) -> None:
    settings = load_settings(
        database_url=engine.services.settings.database_url,
        web_secure_cookies=True,
        web_demo_unit="demo",
        web_embed_origins=[ORIGIN],
    )
    channel = WebChannel(engine, settings=settings)
    assert channel.secure_cookies and channel.demo_unit == "demo"
    assert channel.embed_origins == [ORIGIN] and channel.accepts_files
    assert WebChannel(engine, settings=settings, secure_cookies=False).secure_cookies is False
    assert WebChannel(engine, secure_cookies=True).secure_cookies is True
    bare = WebChannel(engine)  # from the engine's own settings
    assert bare.demo_unit == engine.services.settings.web_demo_unit
