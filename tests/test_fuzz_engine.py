"""Fuzz: random conversations through the DialogueEngine (docs/FUZZ.md).

Each example is one new conversation of up to a dozen messages: real phrases, codes, digits,
commands, any unicode, empty and 5,000-character texts; presses of the buttons the bot has just
shown, and hostile payloads of up to 64 bytes; now and then files (small valid PNG and JPEG,
junk, empty, truncated, a "decompression bomb" header, a kind the bot cannot read). Every
message must get at least one reply with text, no handler may fail (the engine would answer
with its generic apology and log the exception), and buttons must be ones a channel can show.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.engine import DialogueEngine, Turn
from bot.core.messages import MAX_PAYLOAD_BYTES, Incoming
from bot.i18n import translator
from tests.conftest import make_engine
from tests.fuzz_settings import (
    FailureLog,
    attachments,
    examples,
    hostile_payloads,
    message_text,
    watch_errors,
)

CHANNELS = ("test", "console", "web", "telegram", "zalo")
_ids = itertools.count(1)

# --- one message ----------------------------------------------------------------------------------

_KINDS_WITH_BUTTONS = ["button"] * 4 + ["text"] * 3 + ["payload", "files", "number"]
_KINDS = ["text"] * 4 + ["payload", "files", "number"]
# Channels pass the platform's guess through; Telegram's is whatever the client sent.
locales = st.sampled_from([None, "vi", "en", "en-US", "fr", "", ["vi"], 7]) | st.text(max_size=12)


@pytest.fixture
def failures():
    with watch_errors() as log:
        yield log


@pytest.fixture
def fuzz_engine(db) -> DialogueEngine:
    """On SQLite and on PostgreSQL (which refuses NUL characters, for one)."""
    engine = make_engine(db, push_channels=("telegram", "zalo", "web"))
    engine.numbered_channels = frozenset({"console", "zalo"})  # as bot/app.py builds it
    engine.services.file_channels = frozenset({"telegram", "zalo", "web", "test"})
    engine.services.windowed_channels = frozenset({"zalo"})
    return engine


APOLOGIES = {
    translator(locale)(message)
    for locale in ("vi", "en")
    for message in (
        "Sorry, something went wrong on our side and your message could not be processed. "
        "Please try again in a few minutes.",
        "Sorry, something went wrong.",
    )
}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def check_turn(turn: Turn, incoming: Incoming, failures: FailureLog, echoed: bool) -> None:
    """The properties every answered message must have."""
    assert not failures.records, f"errors logged for {incoming!r}:\n{failures.report()}"
    replies = turn.replies
    assert replies, f"no reply to {incoming!r}"
    assert any(reply.text.strip() for reply in replies), f"no text in the replies to {incoming!r}"
    for reply in replies:
        assert reply.text.strip() or reply.documents, f"an empty reply to {incoming!r}"
        assert not any(apology in reply.text for apology in APOLOGIES), (
            f"the engine apologised for {incoming!r} (a handler failed)"
        )
        assert "Traceback" not in reply.text
        if not echoed:  # a placeholder left unfilled, unless the citizen typed braces
            assert not _PLACEHOLDER.search(reply.text), reply.text
        for button in reply.buttons:
            assert button.label.strip(), f"a button without a label: {button!r}"
            assert 1 <= len(button.payload.encode("utf-8")) <= MAX_PAYLOAD_BYTES


@examples(ci=50, long=3_000)
@given(st.data())
async def test_random_conversations_are_always_answered(fuzz_engine, failures, data) -> None:
    failures.records.clear()  # the fixture outlives one example
    channel = data.draw(st.sampled_from(CHANNELS), label="channel")
    conversation = f"fz{next(_ids)}"
    locale = data.draw(locales, label="locale")
    buttons: list[str] = []
    sent_ids: list[str] = []
    echoed = False
    for _ in range(data.draw(st.integers(min_value=1, max_value=12), label="messages")):
        kind = data.draw(st.sampled_from(_KINDS_WITH_BUTTONS if buttons else _KINDS))
        text, payload, files = "", None, ()
        if kind == "button":
            payload = data.draw(st.sampled_from(buttons), label="press")
        elif kind == "payload":
            payload = data.draw(hostile_payloads, label="payload")
        elif kind == "number":  # what a console or Zalo user types to pick a numbered choice
            text = data.draw(
                st.integers(min_value=0, max_value=len(buttons) + 2).map(str)
                | st.sampled_from(["²", "1²", "①", "٣", "03", " 2.", "+1", "1e3", "9" * 5000])
            )
        else:
            text = data.draw(message_text, label="text")
        if kind == "files" or data.draw(st.integers(0, 9)) == 0:
            files = tuple(data.draw(st.lists(attachments, min_size=1, max_size=6), label="files"))
        message_id = None
        if data.draw(st.integers(0, 4)) == 0:
            message_id = data.draw(st.sampled_from(sent_ids) if sent_ids else st.none())
            message_id = message_id or f"{conversation}-m{len(sent_ids) + 1}"
        incoming = Incoming(
            channel=channel,
            conversation_id=conversation,
            user_id=f"u-{conversation}",
            text=text,
            payload=payload,
            attachments=files,
            locale=locale,
            message_id=message_id,
        )
        typed = [text, payload or "", *(f"{a.filename} {a.mime_type}" for a in files)]
        echoed = echoed or any("{" in part for part in typed)
        turn = await fuzz_engine.handle_turn(incoming)
        if message_id in sent_ids:  # the platform delivered it again: nothing is done
            assert turn.duplicate and turn.replies == []
            continue
        if message_id:
            sent_ids.append(message_id)
        check_turn(turn, incoming, failures, echoed)
        buttons = [button.payload for reply in turn.replies for button in reply.buttons]
