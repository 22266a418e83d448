"""``motcua backup`` and ``motcua restore``: the database and the attachment files in one archive.

An archive is a ``.tar.gz`` holding:

    database.sqlite3 | database.pgdump   the database: for SQLite a copy made with SQLite's online
                                         backup API; for PostgreSQL ``pg_dump --format=custom``
    attachments/ab/cd/<sha256>           feedback photos and PDFs (the content-addressed files of
                                         bot/feedback/attachments.py; the short-lived photos of
                                         the submission guide are left out)
    manifest.json                        written last: format version, creation time, schema
                                         revision, row count of every table, and the size and
                                         SHA-256 of every other member

A backup is taken while the bot runs. The database copy is one snapshot: SQLite copies all pages
in a single read transaction (WAL lets writers go on meanwhile); PostgreSQL counts the rows and
runs pg_dump inside one exported snapshot. The files are copied *after* the snapshot: a feedback
is committed only once its files are on disk, so every file the snapshot refers to is there
(files added later are harmless extras, removed by housekeeping once nothing refers to them).

A restore changes nothing until the whole archive has been read and every checksum matched, and
refuses to replace a database that holds data unless told to (``--yes``). It writes the files
first and the database last (a failure in between leaves only unreferenced files), then runs the
migrations, so a backup made by an older version comes up to date. SQLite: the file is swapped in
with one rename and the replaced database is kept beside it. PostgreSQL: the bot's tables are
dropped and the dump restored in one transaction (pg_restore | psql --single-transaction), so a
failure leaves the database as it was.

Passwords never reach a command line or a message: pg_dump and psql get the password in the
PGPASSWORD variable of their environment, and URLs are shown with it masked.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bot import __version__
from bot.feedback.attachments import fsync_dir
from bot.i18n import N_, operator_locale, translator

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

# Kept light at import (no SQLAlchemy engine, no database driver): bot/cli.py imports this
# module to build its parser, also for `motcua --help`.

FORMAT = "motcua-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
PG_MEMBER = "database.pgdump"
ATTACHMENTS = "attachments"
_DB_MEMBERS = {"sqlite": SQLITE_MEMBER, "postgresql": PG_MEMBER}
_ATTACHMENT_MEMBER = re.compile(r"attachments/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
_SHA256 = re.compile(r"[0-9a-f]{64}")
# Filled from the bundled data when the bot starts: a database with rows only in these still
# counts as empty, so a restore onto a fresh installation needs no --yes.
SEEDED_TABLES = frozenset({"alembic_version", "catalogue_procedures", "units"})
_CHUNK = 1024 * 1024
_PROGRESS_SECONDS = 2.0
EXIT_OK, EXIT_FAILED = 0, 1


class BackupError(Exception):
    """A refusal or failure, as a message id and its parameters for the operator's language."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message = message
        self.params = params


class DamagedArchive(BackupError):
    """The archive cannot be trusted; nothing was changed."""


class Progress:
    """Step lines and, for long steps, a progress line at most every few seconds."""

    def __init__(self, t, stream: IO[str] | None = None, interval: float = _PROGRESS_SECONDS):
        self.t = t
        self.stream = stream
        self.interval = interval
        self._last = 0.0

    def say(self, message: str, **params: object) -> None:
        if self.stream is not None:
            print(self.t(message, **params), file=self.stream, flush=True)
        self._last = time.monotonic()

    def tick(self, message: str, **params: object) -> None:
        """Say it only if the last line is a few seconds old."""
        if time.monotonic() - self._last >= self.interval:
            self.say(message, **params)


SILENT = Progress(lambda message, **params: message)  # prints nothing


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    revision: str | None = None
    kept: Path | None = None  # the replaced SQLite database, kept beside the new one
    files: int = 0
    checked_only: bool = False


# -- command line -------------------------------------------------------------------------------


def add_backup_commands(commands, t) -> None:
    """Add ``backup`` and ``restore`` to the ``motcua`` subcommands."""
    backup = commands.add_parser(
        "backup",
        help=t("back up the database and the attachment files into one archive (while running)"),
        description=t(
            "Write the database and the feedback attachments into one .tar.gz archive with a "
            "manifest of checksums. Safe while the bot runs. SQLite is copied with its online "
            "backup API; PostgreSQL with pg_dump (install the client tools of the server's "
            "version)."
        ),
        epilog=t(
            "The archive holds personal data (phone numbers, feedback): it is created readable "
            "by its owner only. Keep copies on another machine and try a restore now and then."
        ),
    )
    backup.add_argument(
        "--output",
        "-o",
        metavar="PATH",
        help=t(
            "archive file or existing folder to write into (default: a 'backups' folder beside "
            "the SQLite database, else var/backups)"
        ),
    )
    restore = commands.add_parser(
        "restore",
        help=t("restore the database and attachments from a backup archive, then migrate"),
        description=t(
            "Restore a backup made by 'motcua backup' into the configured database and "
            "attachment folder, then bring the schema up to date. Stop the bot first. Every "
            "checksum is verified before anything is changed. PostgreSQL: the tables of the "
            "bot's schema are replaced in one transaction (give the bot a database of its own)."
        ),
    )
    restore.add_argument("archive", metavar="ARCHIVE", help=t("the backup archive (.tar.gz)"))
    restore.add_argument(
        "--yes",
        action="store_true",
        help=t(
            "replace a database that already holds data (the bundled catalogue alone does not "
            "count); a replaced SQLite file is kept beside the new one"
        ),
    )
    restore.add_argument(
        "--check",
        action="store_true",
        help=t("only verify the archive (checksums, format, version); change nothing"),
    )


async def run_backup_command(args: argparse.Namespace, settings, t) -> int:
    """Run ``motcua backup`` or ``motcua restore``; return the exit status."""
    from sqlalchemy.exc import DBAPIError

    progress = Progress(t, sys.stdout)
    try:
        if args.command == "backup":
            output = Path(args.output) if args.output else None
            if output is not None and args.output.endswith(("/", os.sep)):
                output.mkdir(parents=True, exist_ok=True, mode=0o700)  # a folder, as written
            result = await create_backup(settings, output, progress=progress)
            manifest = result.manifest
            print(
                t(
                    "Backup written to {path} ({size}): {rows} rows in {tables} tables, "
                    "{files} attachment files, schema revision {revision}.",
                    path=result.path,
                    size=_size(result.path.stat().st_size),
                    rows=sum(manifest["tables"].values()),
                    tables=len(manifest["tables"]),
                    files=manifest["attachments"]["files"],
                    revision=manifest["schema_revision"] or "-",
                )
            )
            return EXIT_OK
        result = await restore_backup(
            settings, Path(args.archive), yes=args.yes, check_only=args.check, progress=progress
        )
    except BackupError as exc:
        print(t(exc.message, **exc.params), file=sys.stderr)
        if isinstance(exc, DamagedArchive):
            print(t("Nothing was changed."), file=sys.stderr)
        return EXIT_FAILED
    except (DBAPIError, ConnectionError) as exc:
        print(
            t("Cannot use the database {url}: {reason}", url=describe(settings), reason=exc),
            file=sys.stderr,
        )
        return EXIT_FAILED
    except OSError as exc:  # a full disk, a folder that cannot be written...
        print(t("The command failed: {reason}", reason=exc), file=sys.stderr)
        return EXIT_FAILED
    if result.checked_only:
        print(t("The archive is complete and every checksum matches. Nothing was changed."))
        return EXIT_OK
    print(
        t(
            "Restored: database {url} at schema revision {revision}, {files} attachment files.",
            url=describe(settings),
            revision=result.revision or "-",
            files=result.files,
        )
    )
    if result.kept is not None:
        print(t("The database it replaced is kept as {path}.", path=result.kept))
    print(t("Start the bot again (e.g. sudo systemctl start motcua)."))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m bot.backup backup|restore ...``: the two commands without the rest of
    ``motcua`` (the same arguments and behaviour as ``motcua backup`` / ``motcua restore``)."""
    import logging

    from bot.config import SettingsError, load_settings

    t = translator(operator_locale())
    parser = argparse.ArgumentParser(prog="python -m bot.backup")
    add_backup_commands(parser.add_subparsers(dest="command", metavar="COMMAND", required=True), t)
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(t("Invalid settings:"), file=sys.stderr)
        for variable, reason in exc.problems:
            print(f"  {variable}: {reason}", file=sys.stderr)
        return 2
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    try:
        return asyncio.run(run_backup_command(args, settings, translator(settings.default_locale)))
    except KeyboardInterrupt:
        return 130


# -- settings -----------------------------------------------------------------------------------


def _url(database_url: str) -> URL:
    """The URL with its async driver (imported here: see the imports above)."""
    from bot.storage.db import async_url

    return async_url(database_url)


def attachments_root(settings) -> Path:
    """The attachment folder the bot uses (the same rule as FeedbackService.from_settings)."""
    from bot.feedback.attachments import default_root

    if settings.attachments_dir:
        return Path(settings.attachments_dir)
    return default_root(settings.database_url)


def describe(settings) -> str:
    """The database URL with its password masked."""
    return _url(settings.database_url).render_as_string(hide_password=True)


def _backend(url: URL) -> str:
    return url.get_backend_name()


def default_backup_dir(settings) -> Path:
    """``backups`` beside the SQLite database file, else ``var/backups``."""
    url = _url(settings.database_url)
    if _backend(url) == "sqlite":
        return Path(url.database).parent / "backups"
    return Path("var") / "backups"


def libpq_env(url: URL, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for pg_dump / pg_restore / psql to reach the database of ``url``.

    The password goes in PGPASSWORD, never on a command line (which other users can read in the
    process list). asyncpg's ``ssl=`` query option becomes libpq's PGSSLMODE. Messages are asked
    for in English so that their progress lines can be read.
    """
    env = dict(os.environ if base is None else base)
    for name in ("PGSERVICE", "PGOPTIONS", "LC_ALL"):
        env.pop(name, None)
    env["LC_MESSAGES"] = "C"
    pairs = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    query = dict(url.query)
    ssl = query.get("sslmode") or query.get("ssl")
    if isinstance(ssl, str) and ssl:
        pairs["PGSSLMODE"] = {"true": "require", "false": "disable"}.get(ssl.lower(), ssl)
    if isinstance(query.get("host"), str):
        pairs["PGHOST"] = query["host"]
    # What the URL leaves out (no password: ~/.pgpass) is left to libpq's own defaults.
    env.update({name: str(value) for name, value in pairs.items() if value})
    return env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            N_(
                "{tool} was not found. Install the PostgreSQL client tools of the server's "
                "version (Debian: apt install postgresql-client)."
            ),
            tool=name,
        )
    return path


# -- backup -------------------------------------------------------------------------------------


async def create_backup(
    settings, output: Path | None = None, *, progress: Progress = SILENT
) -> BackupResult:
    """Write a backup archive of the configured database and attachments; return its path and
    manifest. ``output``: a file, or an existing folder to write a dated file into."""
    url = _url(settings.database_url)
    root = attachments_root(settings)
    stamp = datetime.now(UTC)
    target = _output_path(output, settings, stamp)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".motcua-backup-") as tmp:
        staged = Path(tmp) / _DB_MEMBERS[_backend(url)]
        if _backend(url) == "sqlite":
            info = await asyncio.to_thread(_sqlite_snapshot, Path(url.database), staged, progress)
        else:
            info = await _postgres_snapshot(url, staged, progress)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": stamp.isoformat(timespec="seconds"),
            "bot_version": __version__,
            "backend": _backend(url),
            "database": staged.name,
            **info,
        }
        try:
            await asyncio.to_thread(_write_archive, partial, staged, root, manifest, progress)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    fsync_dir(target.parent)
    return BackupResult(target, manifest)


def _output_path(output: Path | None, settings, stamp: datetime) -> Path:
    name = f"motcua-{stamp:%Y%m%d-%H%M%S}Z.tar.gz"
    if output is None:
        target = default_backup_dir(settings) / name
    elif output.is_dir():
        target = output / name
    else:
        target = output
    if target.exists():
        raise BackupError(N_("{path} already exists; choose another file name."), path=target)
    return target


def _sqlite_snapshot(source: Path, dest: Path, progress: Progress) -> dict[str, Any]:
    """Copy the live database with SQLite's backup API, check the copy, count its rows."""
    if not source.is_file():
        raise BackupError(N_("There is no database file {path}."), path=source)
    progress.say(
        N_("Copying the SQLite database {path} ({size})…"),
        path=source,
        size=_size(source.stat().st_size),
    )
    src = sqlite3.connect(source, timeout=60)
    try:
        dst = sqlite3.connect(dest)
        try:
            # All pages in one step: one read transaction, so one consistent snapshot. (Stepping
            # a few pages at a time would restart from scratch whenever the bot writes.)
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            progress.say(N_("Checking the copy…"))
            problems = [row[0] for row in dst.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(
                    N_("The copy of the database is damaged: {reason}"),
                    reason="; ".join(problems[:5]),
                )
            info = {"tables": _sqlite_counts(dst), "schema_revision": _sqlite_revision(dst)}
        finally:
            dst.close()
    finally:
        src.close()
    return info


def _sqlite_tables(con: sqlite3.Connection) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]


def _sqlite_counts(con: sqlite3.Connection) -> dict[str, int]:
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in _sqlite_tables(con)}
    return {
        name: con.execute(f"SELECT count(*) FROM {quoted[name]}").fetchone()[0] for name in quoted
    }


def _sqlite_revision(con: sqlite3.Connection) -> str | None:
    if "alembic_version" not in _sqlite_tables(con):
        return None
    row = con.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


async def _postgres_snapshot(url: URL, dest: Path, progress: Progress) -> dict[str, Any]:
    """pg_dump inside a snapshot exported by a transaction that also counts the rows."""
    from sqlalchemy import text

    from bot.storage.db import Database

    pg_dump = _tool("pg_dump")
    tool_version = await _tool_version(pg_dump)
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                snapshot = await conn.scalar(text("SELECT pg_export_snapshot()"))
                server_version = await conn.scalar(text("SHOW server_version"))
                counts = await _pg_counts(conn)
                revision = None
                if "alembic_version" in counts:
                    revision = await conn.scalar(text("SELECT version_num FROM alembic_version"))
                progress.say(
                    N_("Dumping the PostgreSQL database {url} with pg_dump ({tables} tables)…"),
                    url=url.render_as_string(hide_password=True),
                    tables=len(counts),
                )
                await _pg_dump(pg_dump, url, snapshot, dest, len(counts), progress)
    finally:
        await db.dispose()
    return {
        "tables": counts,
        "schema_revision": revision,
        "postgresql": {"server_version": server_version, "pg_dump_version": tool_version},
    }


async def _pg_relations(conn, kinds: str = "rp") -> list[tuple[str, str, str]]:
    """(schema, name, relkind) of the relations in the bot's schema (the first of its path)."""
    from sqlalchemy import text

    rows = await conn.execute(
        text(
            "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind::text = ANY(:kinds) "
            "ORDER BY c.relname"
        ),
        {"kinds": list(kinds)},
    )
    return [tuple(row) for row in rows]


async def _pg_counts(conn) -> dict[str, int]:
    from sqlalchemy import text

    quote = conn.dialect.identifier_preparer.quote
    counts = {}
    for schema, name, _kind in await _pg_relations(conn):
        counts[name] = await conn.scalar(
            text(f"SELECT count(*) FROM {quote(schema)}.{quote(name)}")
        )
    return counts


async def _sqlite_counts_async(conn) -> dict[str, int]:
    from sqlalchemy import text

    names = await conn.scalars(
        text(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    )
    quote = conn.dialect.identifier_preparer.quote
    return {name: await conn.scalar(text(f"SELECT count(*) FROM {quote(name)}")) for name in names}


async def _tool_version(path: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        path, "--version", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    return out.decode(errors="replace").strip()


_DUMPING = re.compile(r'dumping contents of table "([^"]+)"')


async def _pg_dump(
    pg_dump: str, url: URL, snapshot: str, dest: Path, tables: int, progress: Progress
) -> None:
    proc = await asyncio.create_subprocess_exec(
        pg_dump,
        "--format=custom",
        "--compress=0",  # the archive is compressed once, as a whole
        f"--snapshot={snapshot}",
        "--verbose",
        f"--file={dest}",
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=libpq_env(url),
    )
    problems: list[str] = []
    done = 0
    assert proc.stderr is not None
    async for raw in proc.stderr:
        line = _redact(raw.decode(errors="replace").rstrip(), url.password)
        if _DUMPING.search(line):
            done += 1
            progress.tick(N_("Dumping tables: {done}/{total}"), done=done, total=tables)
        elif any(word in line for word in ("error", "warning", "DETAIL", "HINT", "FATAL")):
            problems.append(line)
    if await proc.wait() != 0:
        raise BackupError(
            N_("pg_dump failed: {reason}"), reason=" ".join(problems[-5:]) or proc.returncode
        )


def _write_archive(
    path: Path, database: Path, root: Path, manifest: dict[str, Any], progress: Progress
) -> None:
    """The archive: the database, then the attachments, then the manifest with their checksums."""
    files: dict[str, dict[str, Any]] = {}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # personal data inside
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
            with database.open("rb") as file:
                files[database.name] = _add(tar, database.name, file)
            attachments = _list_attachments(root)
            progress.say(
                N_("Adding {count} attachment files from {path}…"),
                count=len(attachments),
                path=root,
            )
            total = 0
            for number, (sha256, file_path) in enumerate(attachments, 1):
                name = f"{ATTACHMENTS}/{sha256[:2]}/{sha256[2:4]}/{sha256}"
                try:
                    with file_path.open("rb") as file:
                        files[name] = entry = _add(tar, name, file)
                except FileNotFoundError:
                    continue  # deleted meanwhile: only files nothing refers to are deleted
                total += entry["size"]
                if entry["sha256"] != sha256:
                    progress.say(
                        N_(
                            "Warning: the attachment file {path} is damaged on disk (its "
                            "content does not match its name); it is saved as it is."
                        ),
                        path=file_path,
                    )
                progress.tick(
                    N_("Attachments: {done}/{total} files"), done=number, total=len(attachments)
                )
            manifest["attachments"] = {"files": len(files) - 1, "bytes": total}
            manifest["files"] = files
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(body))
        raw.flush()
        os.fsync(raw.fileno())


def _list_attachments(root: Path) -> list[tuple[str, Path]]:
    found = []
    for path in root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
        name = path.name
        if _SHA256.fullmatch(name) and path.parent.name == name[2:4]:
            if path.parent.parent.name == name[:2] and path.is_file():
                found.append((name, path))
    return sorted(found)


class _Reader:
    """A file wrapper that hashes what tarfile reads through it."""

    def __init__(self, file) -> None:
        self.file = file
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data


def _add(tar: tarfile.TarFile, name: str, file) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    stat = os.fstat(file.fileno())
    info.size, info.mode, info.mtime = stat.st_size, 0o600, int(stat.st_mtime)
    reader = _Reader(file)
    tar.addfile(info, reader)
    return {"sha256": reader.hash.hexdigest(), "size": reader.size}


# -- restore ------------------------------------------------------------------------------------


async def restore_backup(
    settings,
    archive: Path,
    *,
    yes: bool = False,
    check_only: bool = False,
    progress: Progress = SILENT,
) -> RestoreResult:
    """Restore ``archive`` into the configured database and attachment folder, then migrate.

    Raises DamagedArchive (nothing changed) or BackupError (a refusal: nothing changed; or a
    failure, with the message saying what state things are in)."""
    url = _url(settings.database_url)
    backend = _backend(url)
    root = attachments_root(settings)
    if not archive.is_file():
        raise BackupError(N_("There is no file {path}."), path=archive)
    # Unpacked beside its destination, so that putting it in place is a rename.
    staging_parent = None
    if not check_only:
        staging_parent = Path(url.database).parent if backend == "sqlite" else root.parent
        staging_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=staging_parent, prefix=".motcua-restore-") as tmp:
        staging = Path(tmp)
        progress.say(
            N_("Reading and checking {path} ({size})…"),
            path=archive,
            size=_size(archive.stat().st_size),
        )
        manifest = await asyncio.to_thread(_unpack, archive, staging, progress)
        _check_fits(manifest, backend)
        result = RestoreResult(manifest, files=manifest["attachments"]["files"])
        if check_only:
            result.checked_only = True
            return result
        database = staging / manifest["database"]
        if backend == "sqlite":
            target = Path(url.database)
            await asyncio.to_thread(_check_sqlite_target, target, yes)
            await asyncio.to_thread(_place_attachments, staging, root, progress)
            progress.say(N_("Restoring the database…"))
            result.kept = await asyncio.to_thread(_swap_sqlite, database, target)
        else:
            prelude = await _check_postgres_target(url, yes, progress)
            await asyncio.to_thread(_place_attachments, staging, root, progress)
            progress.say(N_("Restoring the database with pg_restore…"))
            await asyncio.to_thread(_pg_restore, url, database, prelude)
    await _verify_and_migrate(url, manifest, result, progress)
    return result


def _unpack(archive: Path, staging: Path, progress: Progress) -> dict[str, Any]:
    """Extract every member into ``staging`` while hashing it; return the manifest once every
    member matches it. Only the expected names are accepted (no paths of the archive's choice)."""
    seen: dict[str, dict[str, Any]] = {}
    manifest_body = None
    read = 0
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                name = member.name
                if name in seen or (name == MANIFEST and manifest_body is not None):
                    raise DamagedArchive(N_("The archive holds {name} twice."), name=name)
                if not member.isfile():
                    raise _not_a_backup(archive, f"{name}: not a file")
                source = tar.extractfile(member)
                assert source is not None
                if name == MANIFEST:
                    manifest_body = source.read(64 * 1024 * 1024)
                    continue
                if name not in _DB_MEMBERS.values() and not _ATTACHMENT_MEMBER.fullmatch(name):
                    raise _not_a_backup(archive, f"unexpected member {name}")
                dest = staging / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                digest, size = hashlib.sha256(), 0
                with dest.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                        read += len(chunk)
                        progress.tick(N_("Checked {size} so far…"), size=_size(read))
                seen[name] = {"sha256": digest.hexdigest(), "size": size}
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DamagedArchive(
            N_("The archive {path} is damaged or is not a backup ({reason})."),
            path=archive,
            reason=str(exc) or type(exc).__name__,
        ) from None
    if manifest_body is None:
        raise DamagedArchive(
            N_("The archive {path} has no manifest.json: it is incomplete or not a backup."),
            path=archive,
        )
    try:
        manifest = json.loads(manifest_body)
        declared = manifest["files"]
        for key in ("format_version", "database", "backend", "tables"):
            manifest[key]  # noqa: B018 - each must be there
        int(manifest["attachments"]["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _not_a_backup(archive, f"manifest.json: {exc}") from None
    if manifest.get("format") != FORMAT or not isinstance(declared, dict):
        raise _not_a_backup(archive, "manifest.json: not a motcua backup")
    if (
        not isinstance(manifest["format_version"], int)
        or manifest["format_version"] > FORMAT_VERSION
    ):
        raise BackupError(
            N_(
                "This backup was made by a newer version of the bot (archive format {version}). "
                "Install that version or a later one to restore it."
            ),
            version=manifest["format_version"],
        )
    for name, expected in sorted(declared.items()):
        if name not in seen:
            raise DamagedArchive(N_("The archive is incomplete: {name} is missing."), name=name)
        if seen[name] != expected:
            raise DamagedArchive(
                N_("The archive is damaged: {name} does not match its checksum."), name=name
            )
    extra = sorted(set(seen) - set(declared))
    if extra:
        raise DamagedArchive(
            N_("The archive holds {name}, which its manifest does not list."), name=extra[0]
        )
    if manifest["database"] not in seen:
        raise _not_a_backup(archive, "no database in the archive")
    return manifest


def _not_a_backup(archive: Path, reason: str) -> DamagedArchive:
    return DamagedArchive(
        N_("The archive {path} is damaged or is not a backup ({reason})."),
        path=archive,
        reason=reason,
    )


def _check_fits(manifest: dict[str, Any], backend: str) -> None:
    """The backup is of this kind of database and of a schema this version knows."""
    if manifest["backend"] != backend or manifest["database"] != _DB_MEMBERS[backend]:
        raise BackupError(
            N_(
                "This backup holds a {backup} database, but the configured database "
                "(MOTCUA_DATABASE_URL) is {target}. Restore it into a {backup} database."
            ),
            backup=_backend_name(manifest["backend"]),
            target=_backend_name(backend),
        )
    revision = manifest.get("schema_revision")
    if revision and not _known_revision(revision):
        raise BackupError(
            N_(
                "This backup comes from a newer version of the bot (schema revision "
                "{revision}). Install that version or a later one, then restore."
            ),
            revision=revision,
        )


def _backend_name(backend: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from bot.storage.migrate import alembic_config

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def _not_empty(url_text: str, filled: dict[str, int]) -> BackupError:
    tables = ", ".join(f"{name} ({count})" for name, count in sorted(filled.items()))
    return BackupError(
        N_(
            "The database {url} already holds data: {tables}. Restoring replaces all of it. "
            "If that is what you want, back it up first (motcua backup), then run the restore "
            "again with --yes."
        ),
        url=url_text,
        tables=tables,
    )


def _filled(counts: dict[str, int]) -> dict[str, int]:
    return {name: n for name, n in counts.items() if n and name not in SEEDED_TABLES}


# SQLite


def sqlite_in_use(path: Path) -> bool:
    """Whether another process has the (WAL-mode) database open.

    Every connection to a WAL database keeps a read lock on byte 128 of the ``-shm`` file (the
    "dead man switch" of SQLite's unix VFS) for as long as it is open; if a write lock on that
    byte is refused, someone holds it. POSIX locks belong to a process, so this only sees other
    processes, which is what matters: the restore itself has no connection open.
    """
    if os.name != "posix":
        return False
    import fcntl

    try:
        fd = os.open(f"{path}-shm", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
        except OSError:
            return True
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, 128)
        return False
    finally:
        os.close(fd)


def _check_sqlite_target(target: Path, yes: bool) -> None:
    if sqlite_in_use(target):
        raise BackupError(
            N_(
                "The database {path} is open in another program (is the bot running?). Stop "
                "it first, e.g. sudo systemctl stop motcua, then restore."
            ),
            path=target,
        )
    if not target.exists():
        return
    try:
        con = sqlite3.connect(target, timeout=5)
        try:
            counts = _sqlite_counts(con)
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            N_("{path} is not a usable SQLite database ({reason}); move it away first."),
            path=target,
            reason=exc,
        ) from None
    filled = _filled(counts)
    if filled and not yes:
        raise _not_empty(str(target), filled)


def _swap_sqlite(staged: Path, target: Path) -> Path | None:
    """Put the restored file in place with one rename; keep a database that held data."""
    kept = None
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        con = sqlite3.connect(target, timeout=5)
        try:
            # Move everything of the WAL into the file: the kept copy is then complete, and
            # a leftover -wal can never be replayed onto the restored file.
            busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            filled = _filled(_sqlite_counts(con))
        finally:
            con.close()
        if busy or sqlite_in_use(target):
            raise BackupError(
                N_(
                    "The database {path} is open in another program (is the bot running?). "
                    "Stop it first, e.g. sudo systemctl stop motcua, then restore."
                ),
                path=target,
            )
        if filled:
            kept = target.with_name(
                f"{target.name}.before-restore-{datetime.now(UTC):%Y%m%d-%H%M%S}"
            )
            try:
                os.link(target, kept)
            except OSError:
                shutil.copy2(target, kept)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    with staged.open("rb+") as file:
        os.fsync(file.fileno())
    os.replace(staged, target)
    fsync_dir(target.parent)
    return kept


# PostgreSQL


async def _check_postgres_target(url: URL, yes: bool, progress: Progress) -> str:
    """Refuse a database holding data unless ``yes``; return the SQL that empties the bot's
    schema, run in the restore's transaction."""
    from sqlalchemy import text

    from bot.storage.db import Database

    _tool("pg_restore")
    _tool("psql")
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            filled = _filled(await _pg_counts(conn))
            others = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            )
            relations = await _pg_relations(conn, "rpvmS")
            quote = conn.dialect.identifier_preparer.quote
    finally:
        await db.dispose()
    if filled and not yes:
        raise _not_empty(url.render_as_string(hide_password=True), filled)
    if others:
        progress.say(
            N_(
                "Warning: {count} other connections to the database are open. Stop the bot "
                "before restoring (e.g. sudo systemctl stop motcua)."
            ),
            count=others,
        )
    kinds = {
        "r": "TABLE",
        "p": "TABLE",
        "v": "VIEW",
        "m": "MATERIALIZED VIEW",
        "S": "SEQUENCE",
    }
    # Tables first (CASCADE also takes the sequences they own), then whatever is left.
    ordered = sorted(relations, key=lambda rel: rel[2] == "S")
    return "".join(
        f"DROP {kinds[kind]} IF EXISTS {quote(schema)}.{quote(name)} CASCADE;\n"
        for schema, name, kind in ordered
    )


def _pg_restore(url: URL, dump: Path, prelude: str) -> None:
    """pg_restore's script piped into psql: the prelude and the dump in one transaction."""
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    env = libpq_env(url)
    env["PGOPTIONS"] = "-c client_min_messages=warning"  # no "does not exist, skipping" notices
    with tempfile.TemporaryDirectory(prefix=".motcua-psql-", dir=dump.parent) as tmp:
        prelude_file = Path(tmp) / "prelude.sql"
        prelude_file.write_text(prelude, encoding="utf-8")
        # Their messages go to files: a full stderr pipe nobody reads would stall them.
        with (
            open(Path(tmp) / "pg_restore.err", "w+b") as restore_err,
            open(Path(tmp) / "psql.err", "w+b") as psql_err,
        ):
            producer = subprocess.Popen(
                [pg_restore, "--clean", "--if-exists", "--no-owner", "--no-privileges"]
                + ["--file=-", str(dump)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=restore_err,
                env=env,
            )
            consumer = subprocess.Popen(
                [psql, "--no-psqlrc", "--quiet", "--single-transaction"]
                + ["--set=ON_ERROR_STOP=1", f"--file={prelude_file}", "--file=-"],
                stdin=producer.stdout,
                stdout=subprocess.DEVNULL,
                stderr=psql_err,
                env=env,
            )
            assert producer.stdout is not None
            producer.stdout.close()  # psql holds the pipe now; pg_restore sees it close
            consumer_status = consumer.wait()
            producer_status = producer.wait()
            if consumer_status != 0 or producer_status != 0:
                failed = psql_err if consumer_status != 0 else restore_err
                failed.seek(0)
                reason = _redact(failed.read().decode(errors="replace").strip(), url.password)
                raise BackupError(
                    N_(
                        "Restoring the database failed; it was left as it was (one "
                        "transaction). The attachment files were restored. Reason: {reason}"
                    ),
                    reason=reason[-800:] or f"exit status {consumer_status or producer_status}",
                )


# attachments and the end


def _place_attachments(staging: Path, root: Path, progress: Progress) -> int:
    """Move the restored files into the attachment folder (a file of that name has the same
    content: the names are hashes)."""
    files = (
        sorted((staging / ATTACHMENTS).glob("*/*/*")) if (staging / ATTACHMENTS).is_dir() else []
    )
    if files:
        progress.say(
            N_("Restoring {count} attachment files into {path}…"), count=len(files), path=root
        )
    directories = set()
    for number, source in enumerate(files, 1):
        target = root / source.relative_to(staging / ATTACHMENTS)
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            directories.update((target.parent, target.parent.parent, root))
        with source.open("rb+") as file:
            os.fsync(file.fileno())
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy_durably(source, target)
        directories.add(target.parent)
        progress.tick(N_("Attachments: {done}/{total} files"), done=number, total=len(files))
    for directory in directories:
        fsync_dir(directory)
    return len(files)


def _copy_durably(source: Path, target: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as file:
            shutil.copyfileobj(file, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def _verify_and_migrate(
    url: URL, manifest: dict[str, Any], result: RestoreResult, progress: Progress
) -> None:
    """Compare the restored row counts with the manifest, then run the migrations."""
    from bot.storage.db import Database
    from bot.storage.migrate import current_revision, upgrade

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            counts = await (_sqlite_counts_async(conn) if db.is_sqlite else _pg_counts(conn))
        expected = manifest["tables"]
        if counts != expected:
            differ = sorted(
                name
                for name in set(counts) | set(expected)
                if counts.get(name) != expected.get(name)
            )
            raise BackupError(
                N_(
                    "The restored database does not match the backup's manifest (tables: "
                    "{tables}). Restore again, or use another backup."
                ),
                tables=", ".join(differ),
            )
        progress.say(N_("Bringing the database schema up to date…"))
        await upgrade(db)
        result.revision = await current_revision(db)
    finally:
        await db.dispose()


# -- small helpers ------------------------------------------------------------------------------


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "[secret]") if secret else text


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
