"""Faults around the bot (issue 11): the database out of reach, and the disk of the
attachments full. Nothing a citizen was told is kept may be lost, and the citizen is told
plainly what to do. (SIGKILL of the bot and PostgreSQL restarts under load are in
tests/test_feedback_kill.py; the provincial dossier system down in
tests/test_dossier_http_source.py.)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from bot.core import Incoming
from bot.i18n import translator
from bot.storage.db import Database, is_unavailable
from bot.storage.models import Conversation, Feedback, FeedbackAttachment, InboundMessage
from handlers.fallback import UNAVAILABLE
from tests.conftest import Chat, DatabaseFactory, make_engine, skip_or_fail
from tests.test_feedback_chat import CODE, photo, send_files, walk_to_content

# -- what counts as "the database is unavailable" ----------------------------------------------


def _wrapped(orig: Exception, cls=sa_exc.OperationalError) -> Exception:
    return cls("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (_wrapped(sqlite3.OperationalError("database is locked")), True),
        (_wrapped(sqlite3.OperationalError("disk I/O error")), True),
        (_wrapped(sqlite3.OperationalError("no such table: conversations")), False),
        (
            _wrapped(sqlite3.IntegrityError("UNIQUE constraint failed"), sa_exc.IntegrityError),
            False,
        ),
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (ValueError("a bug"), False),
        (KeyError("payload"), False),
    ],
)
def test_what_counts_as_the_database_being_unavailable(error, unavailable) -> None:
    assert is_unavailable(error) is unavailable
    try:  # the same, raised while handling something else (a wrapper of ours)
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("while handling a message") from inner
    except RuntimeError as outer:
        assert is_unavailable(outer) is unavailable


async def test_asyncpg_errors_of_a_server_going_away_count() -> None:
    import asyncpg

    assert is_unavailable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert is_unavailable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert not is_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate key"))


# -- SQLite held by another process -------------------------------------------------------------


async def test_a_database_locked_too_long_gets_try_again_shortly_and_then_works(tmp_path) -> None:
    """Another process (a catalogue import, a backup gone wrong) holds SQLite's write lock
    longer than the bot waits: the citizen is told to send the message again in a few minutes,
    nothing of the turn is recorded, and once the lock is gone the same message works."""
    factory = DatabaseFactory("sqlite", tmp_path)
    await factory.open()  # migrated
    db = Database(factory.url, connect_args={"timeout": 0.3})
    engine = make_engine(db)
    other = sqlite3.connect(f"{tmp_path}/bot.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # the write lock, held
        locked = await engine.handle_turn(
            Incoming("telegram", "42", "42", text="/start", message_id="bot:1", locale="vi")
        )
        assert [r.text for r in locked.replies] == [translator("vi")(UNAVAILABLE)]
        assert not locked.replies[0].buttons
        other.execute("ROLLBACK")
        again = await engine.handle_turn(
            Incoming("telegram", "42", "42", text="/start", message_id="bot:1", locale="vi")
        )
        assert not again.duplicate and "Xin chào" in again.replies[0].text
        async with db.session() as session:
            ids = list(await session.scalars(select(InboundMessage.message_id)))
            count = (await session.get(Conversation, ("telegram", "42"))).message_count
        assert ids == ["bot:1"] and count == 1
    finally:
        other.close()
        await db.dispose()
        await factory.close()


# -- the attachments' disk full ----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 256 KiB file system (tmpfs) for the attachments; needs root to mount."""
    mount = tmp_path / "attachments"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        skip_or_fail(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def big_png(size: int) -> bytes:
    """A PNG that the type check accepts, padded to ``size`` bytes."""
    data = photo().data
    return data + os.urandom(size - len(data))


async def test_a_full_attachments_disk_loses_nothing_the_citizen_was_told(db, small_disk) -> None:
    engine = make_engine(db, attachments_dir=str(small_disk))
    # A feedback with a photo, stored while there was room.
    first = Chat(engine, conversation_id="before")
    await walk_to_content(first)
    await first.say("Đèn đường ngõ 5 bị hỏng.")
    kept = big_png(60_000)
    await send_files(first, photo("den.png", kept))
    await first.press("fb:files:done")
    await first.press("fb:contact:anon")
    await first.press(next(p for p in first.payloads if p.startswith("fb:send:")))
    first_code = CODE.search(first.text).group(0)

    # The disk fills up (another program's files, logs...).
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError:
            pass

    chat = Chat(engine, conversation_id="during")
    await walk_to_content(chat)
    text = "Cống thoát nước trước nhà văn hoá bị tắc."
    await chat.say(text)
    await send_files(chat, photo("cong.png", big_png(90_000)))
    assert "“cong.png” không lưu được: bộ nhớ của máy chủ đã đầy" in chat.text
    assert "fb:files:done" in chat.payloads  # the flow goes on
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    assert text in chat.text and "Tệp đính kèm: 0" in chat.text
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    code = CODE.search(chat.text).group(0)

    async with db.session() as session:
        rows = {row.tracking_code: row for row in await session.scalars(select(Feedback))}
        files = list(await session.scalars(select(FeedbackAttachment)))
    assert rows[code].content == text and rows[first_code].content == "Đèn đường ngõ 5 bị hỏng."
    assert [(f.feedback_id, f.size) for f in files] == [(rows[first_code].id, len(kept))]
    assert engine.services.attachments.open(files[0].sha256) == kept  # the old file is whole
    leftovers = [p.name for p in small_disk.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []  # no half-written file left behind

    # Room again: the next photo is stored.
    filler.unlink()
    later = Chat(engine, conversation_id=f"after-{uuid.uuid4().hex[:6]}")
    await walk_to_content(later)
    await later.say("Thêm ảnh sau khi có chỗ.")
    await send_files(later, photo("sau.png", big_png(50_000)))
    assert "Đã thêm “sau.png” (1/5)" in later.text
    assert Path(small_disk).is_dir()
