"""Hostile or odd input through the real web endpoint: always a polite reply, never a 500."""

from __future__ import annotations

import os

import pytest

from bot.app import build_web_app


@pytest.fixture
async def client(aiohttp_client, engine):
    return await aiohttp_client(build_web_app(engine.services.settings, engine))


def assert_polite(data: dict) -> str:
    text = "\n".join(reply["text"] for reply in data["replies"])
    assert text.strip(), "a reply with no text"
    assert "Traceback" not in text and "Exception" not in text
    return text


async def post_json(client, body) -> tuple[int, dict]:
    response = await client.post("/api/messages", json=body)
    return response.status, await response.json()


async def test_empty_text(client) -> None:
    for body in ({"text": ""}, {"text": "   \n\t "}, {}):
        status, data = await post_json(client, body)
        assert status == 200
        assert assert_polite(data).startswith("Bạn chưa nhập nội dung.")
        assert data["replies"][0]["buttons"], "the menu is offered"


async def test_100_kb_text_is_refused_politely_with_numbers(client) -> None:
    status, data = await post_json(client, {"text": "a" * 100_000})
    assert status == 200
    text = assert_polite(data)
    assert "100.000 ký tự" in text and "4.000 ký tự" in text


async def test_binary_junk_in_the_text(client) -> None:
    junk = os.urandom(2048).decode("latin-1")
    status, data = await post_json(client, {"text": junk})
    assert status == 200
    assert_polite(data)


async def test_binary_junk_as_the_body(client) -> None:
    response = await client.post(
        "/api/messages", data=os.urandom(4096), headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert assert_polite(await response.json()).startswith("Xin lỗi, hệ thống không đọc được")


async def test_body_over_the_limit(client) -> None:
    response = await client.post("/api/messages", data=b'{"text": "' + b"a" * 400_000 + b'"}')
    assert response.status == 413
    assert assert_polite(await response.json()).startswith("Xin lỗi, tin nhắn quá lớn")


async def test_wrong_json_shapes(client) -> None:
    for body in ([1, 2], "xin chào", 42, None, {"text": 12, "payload": ["x"]}):
        response = await client.post("/api/messages", json=body)
        assert response.status in (200, 400), body
        assert_polite(await response.json())


async def test_emoji_only(client) -> None:
    status, data = await post_json(client, {"text": "🙏🙏😀👍🏽"})
    assert status == 200
    assert assert_polite(data).startswith("Xin lỗi, tôi chưa hiểu ý bạn.")
    assert data["replies"][0]["buttons"]


async def test_control_characters_and_lone_surrogates(client) -> None:
    status, data = await post_json(client, {"text": "\x00\x07\x1b[31mxin\x00 chào\x7f\ud800"})
    assert status == 200
    # Once cleaned this is a greeting.
    assert assert_polite(data).startswith("Xin chào!")
    status, data = await post_json(client, {"text": "\x00\x01\x02"})
    assert assert_polite(data).startswith("Bạn chưa nhập nội dung.")


async def test_unknown_or_oversized_payload(client) -> None:
    for payload in ("no:such:button", "x" * 5000, "lang:set:" + "\x00" * 10):
        status, data = await post_json(client, {"payload": payload})
        assert status == 200, payload
        assert_polite(data)


async def test_wrong_method_and_path_are_not_500(client) -> None:
    assert (await client.get("/api/messages")).status == 405
    assert (await client.get("/nope")).status == 404
