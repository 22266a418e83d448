"""The web chat page and its JSON endpoint, over real HTTP."""

from __future__ import annotations

from bot.app import build_web_app
from bot.channels.web import COOKIE


def web_app(engine):
    return build_web_app(engine.services.settings, engine)


async def test_page_is_served_in_vietnamese_by_default(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<html lang="vi">' in html
    assert "<title>Trợ lý Một cửa</title>" in html
    assert 'placeholder="Nhập câu hỏi của bạn…"' in html
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    # The page's script and style are served too.
    for asset in ("/static/chat.js", "/static/chat.css"):
        assert (await client.get(asset)).status == 200


async def test_page_follows_accept_language(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    html = await response.text()
    assert '<html lang="en">' in html
    assert "<title>One-stop desk assistant</title>" in html


async def test_chat_over_http_keeps_the_conversation_by_cookie(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.post("/api/messages", json={"text": "xin chào"})
    assert response.status == 200
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    data = await response.json()
    assert data["locale"] == "vi"
    assert data["replies"][0]["text"].startswith("Xin chào! Tôi là trợ lý ảo")
    assert [b["payload"] for b in data["replies"][0]["buttons"]][-1] == "lang:choose"

    data = await (await client.post("/api/messages", json={"payload": "lang:set:en"})).json()
    assert data["locale"] == "en"
    # Same cookie, same conversation: English is remembered.
    data = await (await client.post("/api/messages", json={"text": "menu"})).json()
    assert data["replies"][0]["text"].startswith("Hello!")


async def test_new_visitor_gets_a_new_conversation(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    await client.post("/api/messages", json={"text": "english"})
    client.session.cookie_jar.clear()
    data = await (await client.post("/api/messages", json={"text": "menu"})).json()
    assert data["locale"] == "vi"


async def test_forged_cookie_is_replaced(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.post(
        "/api/messages", json={"text": "menu"}, cookies={COOKIE: "<script>alert(1)</script>"}
    )
    assert response.status == 200
    assert COOKIE in response.cookies
    assert "<script>" not in response.cookies[COOKIE].value


async def test_health_endpoint(aiohttp_client, engine) -> None:
    client = await aiohttp_client(web_app(engine))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
