"""Backups and restores (``motcua backup`` / ``motcua restore``, bot/backup.py) on SQLite and
PostgreSQL: data made through the real code (a chat, a feedback with a photo and a PDF, a staff
account) comes back identical, row for row and byte for byte, into an empty installation; a
damaged archive, a database holding data (without --yes), a database still open in the bot, a
backup from a newer version and one of the other kind of database are refused with nothing
changed; a backup taken while the bot writes is consistent; an older backup is migrated."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import struct
import subprocess
import sys
import tarfile
import threading
import zlib
from argparse import Namespace
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from bot import backup
from bot.app import open_database
from bot.config import load_settings
from bot.core.messages import Attachment, Incoming
from bot.i18n import translator
from bot.staff import auth
from bot.storage.db import Database
from bot.storage.migrate import alembic_config, upgrade
from bot.storage.models import Base
from tests.conftest import POSTGRES_URL, Chat, make_engine, skip_or_fail
from tests.pg_helpers import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
CODE = re.compile(r"\b(PA|KN)-\d{4}-\d{6}\b")
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
T = translator("en")


# -- installations ------------------------------------------------------------------------------


@dataclass
class Site:
    """One installation: a database and an attachment folder, and the settings naming them."""

    backend: str
    url: str
    files: Path

    @property
    def settings(self):
        return load_settings(database_url=self.url, attachments_dir=str(self.files))

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.split(":///", 1)[1])


class Sites:
    """Makes empty installations of one backend; drops the PostgreSQL databases at the end."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self.tmp_path = tmp_path
        self.databases: list[str] = []

    async def new(self, name: str) -> Site:
        files = self.tmp_path / name / "files"
        if self.backend == "sqlite":
            return Site("sqlite", f"sqlite+aiosqlite:///{self.tmp_path}/{name}/bot.sqlite3", files)
        url = await create_database(POSTGRES_URL, "motcua_backup")
        self.databases.append(url)
        return Site("postgresql", url, files)

    async def close(self) -> None:
        for url in self.databases:
            await drop_database(POSTGRES_URL, url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def sites(request, tmp_path) -> AsyncIterator[Sites]:
    if request.param == "postgresql" and not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    factory = Sites(request.param, tmp_path)
    yield factory
    await factory.close()


@pytest.fixture
async def sqlite_sites(tmp_path) -> Sites:
    return Sites("sqlite", tmp_path)


@pytest.fixture
async def postgres_sites(tmp_path) -> AsyncIterator[Sites]:
    if not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    factory = Sites("postgresql", tmp_path)
    yield factory
    await factory.close()


# -- data through the real code -----------------------------------------------------------------


def png(shade: int) -> bytes:
    """A real 1x1 PNG of one grey ``shade`` (so each call can give other bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes([0, shade])))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n% bien ban hien truong\n1 0 obj << >> endobj\n%%EOF\n"


async def send_feedback(engine, conversation: str, text_: str, *files: Attachment) -> str:
    """A citizen sends an anonymous report with files through the chat; returns its code."""
    chat = Chat(engine, conversation_id=conversation)
    await chat.press("feedback:new")
    await chat.press("fb:kind:report")
    await chat.press("fb:topic:other")
    await chat.say(text_)
    if files:
        await engine.handle(Incoming("test", conversation, "u", attachments=files))
    await chat.press("fb:files:done")
    await chat.press("fb:contact:anon")
    await chat.press(next(p for p in chat.payloads if p.startswith("fb:send:")))
    return CODE.search(chat.text).group(0)


async def fill(site: Site) -> str:
    """What a commune has after some use: the bundled catalogue, chats, a feedback with a photo
    and a PDF, a staff account. Returns the feedback's tracking code."""
    db = await open_database(site.settings)  # migrates and loads the bundled catalogue
    try:
        engine = make_engine(db, attachments_dir=str(site.files))
        chat = Chat(engine, conversation_id="hoi-dap")
        await chat.say("xin chào")
        await chat.say("lam giay khai sinh")
        code = await send_feedback(
            engine,
            "phan-anh",
            "Đường trước UBND xã bị ngập sau mưa, đề nghị xử lý.",
            Attachment("photo", "anh.png", "image/png", len(png(7)), png(7)),
            Attachment("document", "bien-ban.pdf", "application/pdf", len(PDF), PDF),
        )
        await auth.create_user(
            db,
            "lan.nguyen",
            "mot-mat-khau-du-dai-2026",
            role="unit_admin",
            unit="demo",
            display_name="Nguyễn Thị Lan",
        )
    finally:
        await db.dispose()
    return code


async def snapshot(site: Site) -> dict:
    """Every row of every table, and every attachment file with its bytes."""
    db = Database(site.url)
    try:
        tables = {}
        async with db.session() as session:
            for table in Base.metadata.sorted_tables:
                rows = await session.execute(select(table).order_by(*table.primary_key.columns))
                tables[table.name] = [tuple(row) for row in rows]
            tables["alembic_version"] = list(
                await session.scalars(text("SELECT version_num FROM alembic_version"))
            )
    finally:
        await db.dispose()
    files = {
        str(path.relative_to(site.files)): path.read_bytes()
        for path in sorted(site.files.rglob("*"))
        if path.is_file()
    }
    return {"tables": tables, "files": files}


# -- round trips --------------------------------------------------------------------------------


async def test_restore_into_an_empty_installation_gives_back_the_same_data(
    sites: Sites, tmp_path
) -> None:
    source = await sites.new("source")
    code = await fill(source)
    before = await snapshot(source)
    assert before["tables"]["feedback_attachments"] and len(before["files"]) == 2
    assert before["tables"]["staff_users"] and before["tables"]["conversations"]

    out = io.StringIO()
    made = await backup.create_backup(
        source.settings, tmp_path / "b.tar.gz", progress=backup.Progress(T, out)
    )
    assert made.path.stat().st_mode & 0o777 == 0o600  # personal data inside
    manifest = made.manifest
    assert manifest["schema_revision"] == HEAD and manifest["backend"] == sites.backend
    assert manifest["tables"]["feedback"] == 1 and manifest["attachments"]["files"] == 2
    assert manifest["tables"]["catalogue_procedures"] == len(
        before["tables"]["catalogue_procedures"]
    )
    assert "Adding 2 attachment files" in out.getvalue()

    target = await sites.new("target")  # a new machine: empty database, no files
    result = await backup.restore_backup(target.settings, made.path)
    assert result.revision == HEAD and result.files == 2 and result.kept is None
    assert await snapshot(target) == before

    # The restored installation goes on working: the next feedback gets the next number.
    db = Database(target.url)
    try:
        engine = make_engine(db, attachments_dir=str(target.files))
        new_code = await send_feedback(engine, "sau-khoi-phuc", "Đèn đường không sáng.")
    finally:
        await db.dispose()
    assert int(new_code[-6:]) == int(code[-6:]) + 1


async def test_a_database_holding_data_is_replaced_only_with_yes(sites: Sites, tmp_path) -> None:
    site = await sites.new("site")
    await fill(site)
    before = await snapshot(site)
    made = await backup.create_backup(site.settings, tmp_path / "b.tar.gz")

    # Later use: another chat, and (PostgreSQL) a table that was not in the backup.
    db = Database(site.url)
    try:
        await Chat(make_engine(db, attachments_dir=str(site.files)), conversation_id="moi").say(
            "xin chào"
        )
        if sites.backend == "postgresql":
            async with db.engine.begin() as conn:
                await conn.execute(text("CREATE TABLE stray (x integer)"))
    finally:
        await db.dispose()
    changed = await snapshot(site)
    assert changed != before

    with pytest.raises(backup.BackupError) as refused:
        await backup.restore_backup(site.settings, made.path)
    message = T(refused.value.message, **refused.value.params)
    assert "already holds data" in message and "conversations (3)" in message
    assert "--yes" in message
    assert await snapshot(site) == changed  # nothing changed

    result = await backup.restore_backup(site.settings, made.path, yes=True)
    assert await snapshot(site) == before
    if sites.backend == "sqlite":  # the replaced database is kept beside the new one
        assert result.kept is not None and result.kept.name.startswith(
            "bot.sqlite3.before-restore-"
        )
        kept = sqlite3.connect(result.kept)
        assert kept.execute("SELECT count(*) FROM conversations").fetchone() == (3,)
        kept.close()
    else:
        db = Database(site.url)
        try:
            async with db.engine.connect() as conn:
                assert not await conn.scalar(text("SELECT to_regclass('stray') IS NOT NULL"))
        finally:
            await db.dispose()


async def test_an_older_backup_is_brought_up_to_date(sites: Sites, tmp_path) -> None:
    old = await sites.new("old")
    db = Database(old.url)
    try:
        await upgrade(db, "0007")  # the schema of an earlier version
        async with db.write_transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO conversations (channel, conversation_id, user_id, data, choices, "
                    "message_count, created_at, updated_at) VALUES ('telegram', '42', 'u', '{}', "
                    "'[]', 3, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await db.dispose()
    made = await backup.create_backup(old.settings, tmp_path / "old.tar.gz")
    assert made.manifest["schema_revision"] == "0007"

    new = await sites.new("new")
    result = await backup.restore_backup(new.settings, made.path)
    assert result.revision == HEAD != "0007"
    restored = await snapshot(new)
    assert [row[:2] for row in restored["tables"]["conversations"]] == [("telegram", "42")]
    assert "channel_contacts" in restored["tables"]  # created by the newer migration


async def test_a_failed_postgres_restore_leaves_the_database_as_it_was(
    postgres_sites: Sites, tmp_path, monkeypatch
) -> None:
    """The bot's tables are dropped and the dump restored in one transaction: a failure after
    the drops (here forced at their end) rolls everything back."""
    site = await postgres_sites.new("site")
    await fill(site)
    made = await backup.create_backup(site.settings, tmp_path / "b.tar.gz")
    before = await snapshot(site)
    check = backup._check_postgres_target

    async def failing_prelude(*args, **kwargs) -> str:
        return await check(*args, **kwargs) + "SELECT 1 / 0;\n"

    monkeypatch.setattr(backup, "_check_postgres_target", failing_prelude)
    with pytest.raises(backup.BackupError, match="left as it was") as failed:
        await backup.restore_backup(site.settings, made.path, yes=True)
    assert "division by zero" in str(failed.value)
    assert await snapshot(site) == before


# -- refusals -----------------------------------------------------------------------------------


def repack(archive: Path, dest: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, data) -> data | None`` applied to each member
    (None leaves the member out)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            data = change(member.name, src.extractfile(member).read())
            if data is not None:
                member.size = len(data)
                out.addfile(member, io.BytesIO(data))
    return dest


def flip_bytes(archive: Path, dest: Path) -> Path:
    data = bytearray(archive.read_bytes())
    for offset in range(len(data) // 3, len(data) // 3 + 64):
        data[offset] ^= 0x5A
    dest.write_bytes(bytes(data))
    return dest


def fake_manifest(name: str, data: bytes) -> bytes:
    if name != "manifest.json":
        return data
    manifest = json.loads(data)
    manifest["format_version"] = 99
    return json.dumps(manifest).encode()


DAMAGES = {
    "flipped bytes": lambda a, d: flip_bytes(a, d),
    "truncated": lambda a, d: (d.write_bytes(a.read_bytes()[: a.stat().st_size // 2]), d)[1],
    "not gzip": lambda a, d: (d.write_bytes(b"PK\x03\x04 a zip file, not a backup"), d)[1],
    "gzip of garbage": lambda a, d: (d.write_bytes(gzip.compress(os.urandom(5000))), d)[1],
    "changed photo": lambda a, d: repack(
        a, d, lambda n, b: b[:-1] + b"\x00" if n.startswith("attachments/") else b
    ),
    "changed database": lambda a, d: repack(
        a, d, lambda n, b: b.replace(b"lan.nguyen", b"lan.nguyex") if n.startswith("data") else b
    ),
    "missing manifest": lambda a, d: repack(a, d, lambda n, b: None if n == "manifest.json" else b),
    "missing photo": lambda a, d: repack(
        a, d, lambda n, b: None if n.startswith("attachments/") else b
    ),
}


_TEMPLATE: dict[str, Path] = {}


@pytest.fixture
async def filled_sqlite(tmp_path, tmp_path_factory) -> tuple[Site, Path]:
    """A used SQLite installation and a good backup of it; filled once per session and copied
    for each test (filling costs a second)."""
    if "dir" not in _TEMPLATE:
        folder = tmp_path_factory.mktemp("backup-template")
        template = await Sites("sqlite", folder).new("site")
        await fill(template)
        await backup.create_backup(template.settings, folder / "good.tar.gz")
        _TEMPLATE["dir"] = folder
    shutil.copytree(_TEMPLATE["dir"], tmp_path, dirs_exist_ok=True)
    site = Site(
        "sqlite", f"sqlite+aiosqlite:///{tmp_path}/site/bot.sqlite3", tmp_path / "site/files"
    )
    return site, tmp_path / "good.tar.gz"


@pytest.mark.parametrize("damage", list(DAMAGES))
async def test_a_damaged_archive_is_refused_and_nothing_changes(
    filled_sqlite, tmp_path, damage: str
) -> None:
    site, good = filled_sqlite
    bad = DAMAGES[damage](good, tmp_path / "bad.tar.gz")
    before = await snapshot(site)
    database_bytes = site.sqlite_path.read_bytes()

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        status = await backup.run_backup_command(
            Namespace(command="restore", archive=str(bad), yes=True, check=False),
            site.settings,
            T,
        )
    assert status == 1
    assert "Nothing was changed." in err.getvalue()
    assert re.search(r"damaged|incomplete|not a backup", err.getvalue()), err.getvalue()
    assert await snapshot(site) == before
    assert site.sqlite_path.read_bytes() == database_bytes
    leftovers = [p.name for p in site.sqlite_path.parent.iterdir() if p.name.startswith(".motcua")]
    assert leftovers == []


async def test_a_member_the_manifest_does_not_list_is_refused(filled_sqlite, tmp_path) -> None:
    site, good = filled_sqlite
    with tarfile.open(good, "r:gz") as src:
        members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
    extra = tmp_path / "extra.tar.gz"
    sha = "ab" * 32
    with tarfile.open(extra, "w:gz") as out:
        for member, data in members:
            if member.name == "manifest.json":
                info = tarfile.TarInfo(f"attachments/ab/ab/{sha}")
                info.size = 3
                out.addfile(info, io.BytesIO(b"abc"))
            out.addfile(member, io.BytesIO(data))
    with pytest.raises(backup.DamagedArchive, match="does not list"):
        await backup.restore_backup(site.settings, extra, check_only=True)
    # And a path of the archive's choosing is never written.
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as out:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 2
        out.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(backup.DamagedArchive, match="unexpected member"):
        await backup.restore_backup(site.settings, evil, yes=True)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path.parent / "escaped.txt").exists()


async def test_check_only_verifies_without_changing_anything(filled_sqlite, tmp_path) -> None:
    site, good = filled_sqlite
    target = Site("sqlite", f"sqlite+aiosqlite:///{tmp_path}/t/bot.sqlite3", tmp_path / "t/files")
    result = await backup.restore_backup(target.settings, good, check_only=True)
    assert result.checked_only and result.files == 2
    assert not (tmp_path / "t").exists()


async def test_a_backup_from_a_newer_version_is_refused(sqlite_sites: Sites, tmp_path) -> None:
    site = await sqlite_sites.new("new")
    db = Database(site.url)
    try:
        await upgrade(db)
        async with db.write_transaction() as session:
            await session.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        await db.dispose()
    made = await backup.create_backup(site.settings, tmp_path / "future.tar.gz")
    target = await sqlite_sites.new("target")
    with pytest.raises(backup.BackupError, match="newer version of the bot") as refused:
        await backup.restore_backup(target.settings, made.path)
    assert "9999_future" in str(refused.value)
    assert not target.sqlite_path.exists()
    # So is an archive format this version does not know.
    later = repack(made.path, tmp_path / "format99.tar.gz", fake_manifest)
    with pytest.raises(backup.BackupError, match="archive format 99"):
        await backup.restore_backup(target.settings, later)


async def test_a_backup_of_the_other_kind_of_database_is_refused(filled_sqlite, tmp_path) -> None:
    _site, good = filled_sqlite
    # Refused before any connection: the server named here does not exist.
    settings = load_settings(
        database_url="postgresql://bot:pw@127.0.0.1:1/nowhere", attachments_dir=str(tmp_path / "f")
    )
    with pytest.raises(backup.BackupError, match="holds a SQLite database") as refused:
        await backup.restore_backup(settings, good, yes=True)
    assert "PostgreSQL" in str(refused.value)
    assert not (tmp_path / "f").exists()


async def test_restore_is_refused_while_the_bot_has_the_database_open(filled_sqlite) -> None:
    site, good = filled_sqlite
    before = await snapshot(site)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL')\n"
            "c.execute('SELECT count(*) FROM conversations').fetchone()\n"
            "print('open', flush=True); time.sleep(60)",
            str(site.sqlite_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        assert backup.sqlite_in_use(site.sqlite_path)
        with pytest.raises(backup.BackupError, match="open in another program"):
            await backup.restore_backup(site.settings, good, yes=True)
    finally:
        holder.kill()
        holder.wait()
    assert not backup.sqlite_in_use(site.sqlite_path)
    assert await snapshot(site) == before
    await backup.restore_backup(site.settings, good, yes=True)  # once it is closed
    assert await snapshot(site) == before


# -- a backup while the bot writes --------------------------------------------------------------


async def test_a_backup_taken_during_writes_is_consistent(sqlite_sites: Sites, tmp_path) -> None:
    """A writer commits pairs of rows (one in each of two tables) while the backup runs: the copy
    passes SQLite's integrity check, holds whole pairs only, and matches its manifest."""
    site = await sqlite_sites.new("busy")
    db = Database(site.url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    pad = "x" * 2000
    con = sqlite3.connect(site.sqlite_path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE pair_a (id INTEGER PRIMARY KEY, pad TEXT)")
    con.execute("CREATE TABLE pair_b (id INTEGER PRIMARY KEY, pad TEXT)")
    with con:
        for i in range(1, 4001):  # ~16 MB, so that the copy takes a while
            con.execute("INSERT INTO pair_a VALUES (?, ?)", (i, pad))
            con.execute("INSERT INTO pair_b VALUES (?, ?)", (i, pad))
    con.close()

    stop, committed = threading.Event(), [4000]

    def writer() -> None:
        con = sqlite3.connect(site.sqlite_path, timeout=30, isolation_level=None)
        try:
            while not stop.is_set():
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO pair_a (pad) VALUES (?)", (pad,))
                con.execute("INSERT INTO pair_b (id, pad) VALUES (last_insert_rowid(), ?)", (pad,))
                con.execute("UPDATE pair_a SET pad = ? WHERE id = 1", (str(committed[0]),))
                con.execute("COMMIT")
                committed[0] += 1
        finally:
            con.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while committed[0] < 4050:  # the writer is going
            await asyncio.sleep(0.005)
        at_start = committed[0]
        made = await backup.create_backup(site.settings, tmp_path / "busy.tar.gz")
        at_end = committed[0]
    finally:
        stop.set()
        thread.join()
    assert at_end > at_start  # writes went on during the backup

    with tarfile.open(made.path, "r:gz") as tar:
        tar.extract("database.sqlite3", tmp_path / "x", filter="data")
    copy = sqlite3.connect(tmp_path / "x" / "database.sqlite3")
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (a,) = copy.execute("SELECT count(*) FROM pair_a").fetchone()
        (b,) = copy.execute("SELECT count(*) FROM pair_b").fetchone()
        assert a == b and at_start <= a <= at_end
        assert copy.execute("SELECT max(id) FROM pair_b").fetchone() == (a,)
        assert made.manifest["tables"]["pair_a"] == a == made.manifest["tables"]["pair_b"]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        copy.close()


async def test_a_postgres_backup_during_writes_is_one_snapshot(
    postgres_sites: Sites, tmp_path
) -> None:
    """Rows are counted in the snapshot pg_dump uses: with a writer committing pairs of rows all
    along, the restored database holds whole pairs and exactly the counts of the manifest (the
    restore compares them)."""
    import asyncpg

    site = await postgres_sites.new("busy")
    db = Database(site.url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    dsn = site.url.replace("postgresql+asyncpg://", "postgresql://")
    writer = await asyncpg.connect(dsn)
    await writer.execute(
        "CREATE TABLE pair_a (id serial PRIMARY KEY, pad text);"
        "CREATE TABLE pair_b (id integer PRIMARY KEY, pad text);"
    )
    stop, committed = asyncio.Event(), [0]

    async def write() -> None:
        while not stop.is_set():
            async with writer.transaction():
                row = await writer.fetchval("INSERT INTO pair_a (pad) VALUES ('x') RETURNING id")
                await writer.execute("INSERT INTO pair_b VALUES ($1, 'x')", row)
            committed[0] += 1

    task = asyncio.create_task(write())
    try:
        while committed[0] < 20:
            await asyncio.sleep(0.01)
        at_start = committed[0]
        made = await backup.create_backup(site.settings, tmp_path / "busy.tar.gz")
        at_end = committed[0]
    finally:
        stop.set()
        await task
        await writer.close()
    assert at_end > at_start
    counted = made.manifest["tables"]["pair_a"]
    assert counted == made.manifest["tables"]["pair_b"] and at_start <= counted <= at_end

    target = await postgres_sites.new("target")
    await backup.restore_backup(target.settings, made.path)  # refuses counts that differ
    conn = await asyncpg.connect(target.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM pair_a") == counted
        assert await conn.fetchval("SELECT max(id) FROM pair_b") == counted
    finally:
        await conn.close()


# -- settings and secrets -----------------------------------------------------------------------


def test_pg_tools_get_the_password_in_their_environment_only() -> None:
    from bot.storage.db import async_url

    url = async_url("postgresql://motcua:p%40ss-word@db.tinh.gov.vn:6432/motcua?ssl=require")
    env = backup.libpq_env(url, base={"PATH": "/usr/bin", "PGSERVICE": "x", "LC_ALL": "vi_VN"})
    assert env == {
        "PATH": "/usr/bin",
        "LC_MESSAGES": "C",
        "PGHOST": "db.tinh.gov.vn",
        "PGPORT": "6432",
        "PGUSER": "motcua",
        "PGPASSWORD": "p@ss-word",
        "PGDATABASE": "motcua",
        "PGSSLMODE": "require",
    }
    settings = load_settings(database_url=str(url.render_as_string(hide_password=False)))
    assert "p@ss" not in backup.describe(settings) and "***" in backup.describe(settings)


async def test_a_missing_pg_dump_is_named_with_what_to_install(tmp_path, monkeypatch) -> None:
    settings = load_settings(
        database_url="postgresql://bot:pw@127.0.0.1:1/nowhere", attachments_dir=str(tmp_path / "f")
    )
    monkeypatch.setattr(backup.shutil, "which", lambda _name: None)
    with pytest.raises(backup.BackupError, match="pg_dump was not found") as refused:
        await backup.create_backup(settings, tmp_path / "b.tar.gz")
    assert "postgresql-client" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


async def test_postgres_errors_never_show_the_password(tmp_path) -> None:
    if not POSTGRES_URL:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    password = "s3cret-" + secrets.token_hex(4)
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("://postgres@", f"://postgres:{password}@")
    settings = load_settings(
        database_url=f"{base}/motcua_no_such_db", attachments_dir=str(tmp_path / "f")
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = await backup.run_backup_command(
            Namespace(command="backup", output=str(tmp_path / "b.tar.gz")), settings, T
        )
    assert status == 1 and "motcua_no_such_db" in err.getvalue()
    assert password not in out.getvalue() + err.getvalue()
    assert not (tmp_path / "b.tar.gz").exists()


# -- the command line ---------------------------------------------------------------------------


def run(args: list[str], env: dict[str, str], module: str = "bot.backup"):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def site_env(site: Site, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env.update(
        MOTCUA_DATABASE_URL=site.url,
        MOTCUA_ATTACHMENTS_DIR=str(site.files),
        MOTCUA_DEFAULT_LOCALE="en",
    )
    env.update(extra)
    return env


async def test_command_line_backup_and_restore(filled_sqlite, tmp_path) -> None:
    """``python -m bot.backup`` (the same code the lead wires in as ``motcua backup|restore``)."""
    site, _good = filled_sqlite
    before = await snapshot(site)
    folder = tmp_path / "backups"
    folder.mkdir()
    done = run(["backup", "--output", str(folder)], site_env(site))
    assert done.returncode == 0, done.stderr
    (archive,) = folder.glob("motcua-*Z.tar.gz")
    assert f"Backup written to {archive}" in done.stdout and "2 attachment files" in done.stdout

    target = Site("sqlite", f"sqlite:///{tmp_path}/new/bot.sqlite3", tmp_path / "new" / "files")
    done = run(["restore", str(archive)], site_env(target))
    assert done.returncode == 0, done.stderr
    assert f"at schema revision {HEAD}, 2 attachment files" in done.stdout
    assert await snapshot(target) == before

    again = run(["restore", str(archive)], site_env(target))
    assert again.returncode == 1 and "already holds data" in again.stderr
    assert "Traceback" not in again.stderr


def test_help_texts(capsys, monkeypatch) -> None:
    monkeypatch.setenv("MOTCUA_DEFAULT_LOCALE", "en")  # English texts; vi is checked by test_i18n
    for command in ("backup", "restore"):
        with pytest.raises(SystemExit) as exited:
            backup.main([command, "--help"])
        assert exited.value.code == 0
    helped = capsys.readouterr().out
    assert "--output" in helped and "--yes" in helped and "--check" in helped
    assert "personal data" in helped and "Stop the bot first" in helped


@pytest.mark.skipif(
    "backup" not in __import__("bot.cli", fromlist=["_COMMANDS"])._COMMANDS,
    reason="enabled once bot/cli.py registers the backup and restore commands",
)
async def test_motcua_backup_and_restore_commands(filled_sqlite, tmp_path) -> None:
    from tests.cli_helpers import run_in_process

    # bot.cli.main runs its own event loop: in a thread, beside this test's.
    site, _good = filled_sqlite
    before = await snapshot(site)
    archive = tmp_path / "motcua.tar.gz"
    status, out, err = await asyncio.to_thread(
        run_in_process, ["backup", "-o", str(archive)], site_env(site)
    )
    assert status == 0, err
    target = Site("sqlite", f"sqlite:///{tmp_path}/new/bot.sqlite3", tmp_path / "new" / "files")
    status, out, err = await asyncio.to_thread(
        run_in_process, ["restore", str(archive)], site_env(target)
    )
    assert status == 0, err
    assert await snapshot(target) == before
    status, out, err = await asyncio.to_thread(
        run_in_process, ["restore", str(archive)], site_env(target)
    )
    assert status == 1 and "--yes" in err
    status, out, err = await asyncio.to_thread(
        run_in_process, ["restore", str(archive), "--yes"], site_env(target)
    )
    assert status == 0, err
