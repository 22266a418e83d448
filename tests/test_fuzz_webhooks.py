"""Fuzz: what the internet can POST to the bot (docs/FUZZ.md).

One aiohttp application with the three doors on it, served in process: the Telegram webhook (its
Bot API is the fake of tests/fakes/telegram_api.py), the Zalo webhook (its OA API is the fake of
tests/fakes/zalo_api.py) and the web chat's /api/messages and /api/updates. Hypothesis sends
random and hostile bodies: JSON of any shape, valid updates and events with fields replaced by
wrong types, huge numbers, null bytes or deep nesting, bytes that are not UTF-8, multipart forms
with odd files. The properties: no 5xx ever, no exception logged, the refusals are the
documented ones (403 without the secret or signature, 400 for what cannot be read), and a real
message sent afterwards still gets its reply.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import os
import socket
import traceback

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver
from hypothesis import given
from hypothesis import strategies as st

from bot.app import build_web_app
from bot.channels.telegram import SECRET_HEADER, TelegramChannel
from bot.channels.web import LOCALE_HEADER, TOKEN_HEADER, WebChannel
from bot.channels.zalo import ZaloChannel
from tests.conftest import make_engine
from tests.fakes.telegram_api import FakeBotAPI
from tests.fakes.zalo_api import SIGNATURE_HEADER, FakeZaloAPI
from tests.fuzz_settings import (
    FILE_BYTES,
    FailureLog,
    any_json,
    examples,
    hostile_payloads,
    hostile_text,
    message_text,
    utf8_at_most,
    watch_errors,
)
from tests.telegram_helpers import SECRET, TOKEN, webhook_settings

TELEGRAM_PATH = "/telegram/webhook"
ZALO_PATH = "/zalo/webhook"
_chats = itertools.count(10_000)
# What a client can put in an HTTP header (printable ASCII).
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)


class LocalOnly(AbstractResolver):
    """Resolves only this machine: a URL in a fuzzed Zalo event never reaches the internet."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        if host not in ("localhost", "127.0.0.1"):
            raise OSError(f"no network in the fuzz tests: {host}")
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        pass


class Doors:
    """The served application and the fakes behind it."""

    def __init__(self, client, telegram: FakeBotAPI, zalo: FakeZaloAPI) -> None:
        self.client = client
        self.telegram = telegram
        self.zalo = zalo

    async def post_telegram(self, body: bytes, secret: str | None = SECRET) -> int:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        async with self.client.post(TELEGRAM_PATH, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def post_zalo(self, body: bytes, headers: dict[str, str]) -> int:
        async with self.client.post(ZALO_PATH, data=body, headers=headers) as response:
            await response.read()
            return response.status

    async def telegram_still_answers(self) -> None:
        chat = next(_chats)
        update = json.dumps(self.telegram.text_update(chat, "/start")).encode()
        assert await self.post_telegram(update) == 200
        await self.telegram.wait_for("sendMessage", chat_id=chat, timeout=10)

    async def zalo_still_answers(self) -> None:
        user = f"zu{next(_chats)}"
        raw, headers = self.zalo.signed(self.zalo.text_event(user, "xin chào"))
        assert await self.post_zalo(raw, headers) == 200
        await self.zalo.wait_for(user, 1, timeout=10)

    async def web_still_answers(self) -> None:
        async with self.client.post("/api/messages", json={"text": "/start"}) as response:
            assert response.status == 200
            data = await response.json()
        assert data["replies"] and data["replies"][0]["text"].strip()


@pytest.fixture
def failures():
    with watch_errors() as log:
        yield log


def _crash(record: logging.LogRecord) -> bool:
    """An error logged with a traceback is a crash, even if a polite answer went out; errors
    without one (a reply the fake refused to deliver to a made-up chat) are not. Nor are the
    fakes' own failures on what the bot passed on (a chat id that is not a number: the real Bot
    API answers 400 there, the fake 500), or PTB reporting such a non-JSON answer, which the
    channel then retries."""
    if not record.exc_info or record.name.startswith("telegram.request"):
        return False
    frames = traceback.extract_tb(record.exc_info[2])
    return not any(f"{os.sep}tests{os.sep}fakes{os.sep}" in frame.filename for frame in frames)


def assert_no_exception_logged(failures: FailureLog, what: object) -> None:
    crashes = [record for record in failures.records if _crash(record)]
    failures.records.clear()
    assert not crashes, f"exception logged for {what!r}:\n" + "\n".join(
        failures.format(record) for record in crashes
    )


@pytest.fixture
async def doors(aiohttp_client, db):
    """The doors on SQLite and on PostgreSQL (which refuses NUL characters, for one)."""
    telegram, zalo = FakeBotAPI(TOKEN), FakeZaloAPI()
    await telegram.start()
    await zalo.start()
    settings = webhook_settings(telegram, db, **zalo.settings())
    engine = make_engine(db, push_channels=("telegram", "zalo", "web"))
    engine.numbered_channels = frozenset({"console", "zalo"})  # as bot/app.py builds it
    channels = [
        WebChannel(engine),
        TelegramChannel(engine, settings),
        ZaloChannel(engine, settings),
    ]
    _web, tg, za = channels
    tg.retry_delay = 0.01
    za.api.retry_delay = 0.01
    await tg.start()
    await za.start()
    # The same client, with a resolver that knows only this machine.
    await za.api.session.close()
    za.api._session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=5, connect=2),
        connector=aiohttp.TCPConnector(resolver=LocalOnly()),
    )
    client = await aiohttp_client(build_web_app(settings, engine, channels))
    yield Doors(client, telegram, zalo)
    await tg.stop()
    await za.stop()
    await telegram.stop()
    await zalo.stop()


# --- hostile JSON ---------------------------------------------------------------------------------


def deep(depth: int, kind: str) -> bytes:
    """JSON nested ``depth`` levels deep: deeper than any parser's recursion limit."""
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


hostile_values = st.one_of(
    any_json,
    st.sampled_from(
        [
            None,
            True,
            False,
            0,
            -1,
            2**31,
            2**63,
            -(2**63) - 1,
            10**40,
            1e308,
            float("inf"),  # json.dumps writes Infinity and NaN, and json.loads reads them
            float("nan"),
            -0.0,
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "0" * 300,
            [],
            {},
            [[[[[[]]]]]],
        ]
    ),
    hostile_text,
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value that a mutation can touch."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def mutated(data: st.DataObject, valid: dict, keep: tuple[str, ...] = ()) -> dict:
    """``valid`` with a few of its fields deleted, replaced by hostile values or added to; the
    top-level fields in ``keep`` stay as they are."""
    value = copy.deepcopy(valid)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="mutations")):
        places = [p for p in paths(value) if p[0] not in keep]
        if not places:
            break
        path = data.draw(st.sampled_from(places), label="at")
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            key = data.draw(st.text(max_size=12), label="new key")
            parent[path[-1]][key] = copy.deepcopy(data.draw(hostile_values, label="new value"))
        else:
            # A copy: sampled_from hands out the same [] and {} each time, and they get mutated.
            parent[path[-1]] = copy.deepcopy(data.draw(hostile_values, label="value"))
    return value


def encoded(data: st.DataObject, value: object) -> bytes:
    """JSON text of ``value``, sometimes with non-UTF-8 bytes or lone surrogates in it."""
    raw = json.dumps(value, ensure_ascii=data.draw(st.booleans(), label="ascii")).encode(
        "utf-8", errors="surrogatepass"
    )
    tweak = data.draw(st.sampled_from(["none", "none", "none", "latin1", "bom", "garbage"]))
    if tweak == "latin1":
        raw = raw.replace(b'"', b'"\xe9\xff', 1)
    elif tweak == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif tweak == "garbage":
        raw += data.draw(st.binary(min_size=1, max_size=20), label="trailing bytes")
    return raw


raw_bodies = st.one_of(
    st.binary(max_size=400),
    any_json.map(lambda v: json.dumps(v).encode()),
    st.builds(deep, st.sampled_from([50, 5_000, 40_000]), st.sampled_from(["list", "dict"])),
    st.sampled_from(
        [
            b"",
            b"{",
            b"null",
            b"[]",
            b'{"update_id": 1}',
            b"\xff\xfe{\x00}\x00",
            b'{"timestamp": "\\ud800"}',
            b'{"update_id": 1e999, "timestamp": 1e999}',
        ]
    ),
)

# --- Telegram -------------------------------------------------------------------------------------


@examples(ci=15, long=1_000)
@given(raw_bodies, st.none() | header_values | st.just(SECRET[:-1]) | st.just(SECRET + "x"))
async def test_telegram_without_the_secret_is_always_403(doors, failures, body, secret) -> None:
    failures.records.clear()  # the fixture outlives one example
    assert await doors.post_telegram(body, secret) == 403
    assert_no_exception_logged(failures, body)


def _telegram_valid(data: st.DataObject, api: FakeBotAPI) -> dict:
    chat = next(_chats)
    kind = data.draw(st.sampled_from(["text", "callback", "photo", "document", "group", "sticker"]))
    if kind == "text":
        return api.text_update(chat, data.draw(message_text, label="text"))
    if kind == "callback":
        return api.callback_update(chat, data.draw(hostile_payloads, label="data"))
    if kind == "photo":
        return api.photo_update(chat, data.draw(st.sampled_from(FILE_BYTES), label="bytes"))
    if kind == "document":
        return api.document_update(
            chat,
            data.draw(st.sampled_from(FILE_BYTES), label="bytes"),
            data.draw(st.text(min_size=1, max_size=40), label="name"),
            data.draw(st.sampled_from(["application/pdf", "image/png", "", "x/y"])),
        )
    if kind == "group":
        return api.text_update(-chat, "/start@MotCuaTestBot", chat_type="group")
    return api.message_update(chat, sticker={"file_id": "s", "file_unique_id": "s"})


@examples(ci=50, long=1_200)
@given(st.data())
async def test_telegram_updates_of_any_shape_never_get_a_5xx(doors, failures, data) -> None:
    failures.records.clear()  # the fixture outlives one example
    shape = data.draw(st.sampled_from(["mutated", "mutated", "mutated", "random", "raw"]))
    if shape == "mutated":
        update = mutated(data, _telegram_valid(data, doors.telegram))
        body = encoded(data, update)
    elif shape == "random":
        body = encoded(data, data.draw(any_json, label="json"))
    else:
        body = data.draw(raw_bodies, label="body")
    status = await doors.post_telegram(body)
    assert status in (200, 400), (status, body[:300])
    assert_no_exception_logged(failures, body[:300])
    await doors.telegram_still_answers()


# --- Zalo -----------------------------------------------------------------------------------------


@examples(ci=15, long=1_000)
@given(raw_bodies, st.none() | header_values.map("mac=".__add__))
async def test_zalo_unsigned_events_are_refused(doors, failures, body, signature) -> None:
    failures.records.clear()  # the fixture outlives one example
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    status = await doors.post_zalo(body, headers)
    try:
        is_object = isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        is_object = False
    assert status == (403 if is_object else 400), (status, body[:300])
    assert_no_exception_logged(failures, body[:300])


def _zalo_valid(data: st.DataObject, api: FakeZaloAPI) -> dict:
    user = f"zu{next(_chats)}"
    kind = data.draw(st.sampled_from(["text", "image", "file", "sticker", "follow", "other"]))
    if kind == "text":
        return api.text_event(user, data.draw(message_text | hostile_payloads.map("#mc:".__add__)))
    if kind == "image":
        return api.image_event(user, data.draw(st.sampled_from(FILE_BYTES), label="bytes"))
    if kind == "file":
        content = data.draw(st.sampled_from(FILE_BYTES), label="bytes")
        name = data.draw(st.text(min_size=1, max_size=40).map(lambda s: s.replace("/", "")))
        event = api.file_event(user, content, name or "x")
        payload = event["message"]["attachments"][0]["payload"]
        payload["url"] = data.draw(
            st.sampled_from(
                [
                    payload["url"],
                    api.base_url + "/files/missing.pdf",
                    "http://127.0.0.1:1/refused",
                    "http://no-such-host.invalid/x",
                    "not a url",
                    "",
                    "file:///etc/passwd",
                    "http://[::1",
                ]
            ),
            label="url",
        )
        return event
    if kind == "sticker":
        return api.sticker_event(user)
    if kind == "follow":
        return data.draw(st.sampled_from([api.follow_event(user), api.unfollow_event(user)]))
    return api.seen_event(user)


@examples(ci=50, long=1_200)
@given(st.data())
async def test_signed_zalo_events_of_any_shape_never_get_a_5xx(doors, failures, data) -> None:
    failures.records.clear()  # the fixture outlives one example
    api = doors.zalo
    if data.draw(st.booleans(), label="random json"):
        event = data.draw(st.dictionaries(st.text(max_size=12), any_json, max_size=6))
        event["timestamp"] = data.draw(
            st.sampled_from(["0", "1700000000000", 17, "x" * 30, "-5", "١٢", 10**30])
        )
    else:
        event = mutated(data, _zalo_valid(data, api), keep=("timestamp",))
    raw = encoded(data, event)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: api.signature(raw, event["timestamp"]),
    }
    status = await doors.post_zalo(raw, headers)
    timestamp = str(event["timestamp"])
    # Zalo's timestamps are milliseconds: anything else cannot be a signed event.
    expected = (200, 400) if timestamp.isascii() and timestamp.isdigit() else (400, 403)
    assert status in expected, (status, raw[:300])
    assert_no_exception_logged(failures, raw[:300])
    await doors.zalo_still_answers()


# --- web chat -------------------------------------------------------------------------------------

web_headers = st.fixed_dictionaries(
    {},
    optional={
        TOKEN_HEADER: header_values | st.just("A" * 32),
        LOCALE_HEADER: header_values | st.sampled_from(["vi", "en", "xx"]),
        "Accept-Language": header_values | st.sampled_from(["en-US,en;q=0.9", "*", ";;,"]),
        "Cookie": header_values.map(lambda v: "motcua_chat=" + v),
    },
)
web_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "text": message_text | hostile_values,
            "payload": hostile_payloads | hostile_values,
            "demo": hostile_values | st.sampled_from([True, 1, "1", "true"]),
        },
    ),
    hostile_values,
)


def assert_answered(status: int, data: dict) -> None:
    assert status in (200, 400, 413), status
    assert data["replies"], data
    assert all(isinstance(r["text"], str) for r in data["replies"])
    assert any(r["text"].strip() for r in data["replies"]), data


@examples(ci=50, long=1_000)
@given(st.data(), web_headers)
async def test_web_chat_json_of_any_shape_is_answered(doors, failures, data, headers) -> None:
    failures.records.clear()  # the fixture outlives one example
    if data.draw(st.integers(0, 4), label="raw") == 0:
        body = data.draw(raw_bodies, label="body")
    else:
        body = encoded(data, data.draw(web_bodies, label="json"))
    async with doors.client.post(
        "/api/messages", data=body, headers={"Content-Type": "application/json", **headers}
    ) as response:
        status, answer = response.status, await response.json()
    assert_answered(status, answer)
    assert_no_exception_logged(failures, body[:300])
    await doors.web_still_answers()


def multipart_form(fields: dict[str, str], files: list) -> aiohttp.MultipartWriter:
    """A form as a browser sends it, but byte for byte: a field with a lone surrogate (which
    aiohttp's FormData cannot encode) goes out as invalid UTF-8."""
    form = aiohttp.MultipartWriter("form-data")
    for name, value in fields.items():
        part = form.append(value.encode("utf-8", errors="surrogatepass"))
        part.set_content_disposition("form-data", name=name)
    for name, filename, content_type, content in files:
        part = form.append(content, {"Content-Type": content_type})
        # A part without a file name is a plain field, whatever its name.
        names = {"name": name, "filename": filename} if filename else {"name": name}
        part.set_content_disposition("form-data", **names)
    return form


file_parts = st.tuples(
    st.sampled_from(["file", "file", "file", "other", ""]),
    st.sampled_from(["photo.jpg", "to khai.pdf", "", "../../x", "a\\b.png"])
    | st.text(alphabet=st.characters(exclude_categories=["Cc", "Cs"]), max_size=60),
    st.sampled_from(["image/jpeg", "application/pdf", "text/plain", "x/y;q=1"]),
    st.sampled_from(FILE_BYTES) | st.binary(max_size=300),
)


@examples(ci=30, long=700)
@given(
    st.dictionaries(
        st.sampled_from(["text", "payload", "demo", "junk"]),
        message_text | utf8_at_most(64),
        max_size=4,
    ),
    st.lists(file_parts, max_size=7),
    web_headers,
)
async def test_web_chat_forms_with_any_files_are_answered(
    doors, failures, fields, files, headers
) -> None:
    failures.records.clear()  # the fixture outlives one example
    form = multipart_form(fields, files)
    async with doors.client.post("/api/messages", data=form, headers=headers) as response:
        status, answer = response.status, await response.json()
    assert_answered(status, answer)
    assert_no_exception_logged(failures, (fields, files))
    await doors.web_still_answers()


@examples(ci=10, long=500)
@given(st.binary(max_size=600), st.sampled_from(["XyZ", "", '"quoted"', "a" * 80]))
async def test_web_chat_broken_multipart_bodies_are_refused(
    doors, failures, body, boundary
) -> None:
    failures.records.clear()  # the fixture outlives one example
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with doors.client.post("/api/messages", data=body, headers=headers) as response:
        status, answer = response.status, await response.json()
    assert_answered(status, answer)
    assert_no_exception_logged(failures, body[:300])
    await doors.web_still_answers()


@examples(ci=10, long=1_000)
@given(web_headers, st.dictionaries(st.sampled_from(["demo", "x"]), header_values, max_size=2))
async def test_web_chat_polls_are_always_answered(doors, failures, headers, query) -> None:
    failures.records.clear()  # the fixture outlives one example
    async with doors.client.get("/api/updates", params=query, headers=headers) as response:
        assert response.status == 200
        assert isinstance((await response.json())["messages"], list)
    assert_no_exception_logged(failures, (headers, query))


async def test_many_doors_at_once_after_the_junk(doors, failures) -> None:
    """The three doors answer together once the fuzzing is over."""
    await asyncio.gather(
        doors.telegram_still_answers(), doors.zalo_still_answers(), doors.web_still_answers()
    )
    assert_no_exception_logged(failures, "the final messages")
