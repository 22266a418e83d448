"""Photos and PDFs attached to a feedback: checking them and storing them on disk.

Files live outside the database rows, content-addressed (``root/ab/cd/<sha256>``): the rows only
hold the hash, the same photo sent twice is stored once, and a file never changes once written.
The feedback row that references a file is committed *after* ``put()`` returns, and ``put()``
returns only once the file is durable, so a crash leaves at worst an unreferenced file (removed
later by ``delete_unreferenced``), never a feedback pointing at a missing file.

The type is read from the bytes: the file name and MIME type a client claims are never trusted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.core.messages import Attachment

log = logging.getLogger("motcua.attachments")

MAX_FILES = 5  # per feedback
# Per file. Telegram lets bots download up to 20 MB, but the web chat could post anything.
MAX_BYTES = 10 * 1024 * 1024

_HEIC_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"heif": "image/heif",
}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"


def sniff(data: bytes) -> str | None:
    """The MIME type the bytes really are (by their magic numbers), or None if not allowed."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIC_BRANDS:  # what iPhones and many Androids send
        return _HEIC_BRANDS[data[8:12]]
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


@dataclass(frozen=True)
class Problem:
    """Why an attachment is refused; the handler turns ``reason`` into a polite message.

    reason: "too_large" (size, limit), "unsupported_type" (claimed, actual=None), "empty",
    "missing_data" (the channel could not fetch the bytes).
    """

    reason: str
    filename: str = ""
    size: int | None = None
    limit: int | None = None
    claimed: str | None = None
    actual: str | None = None


def check(attachment: Attachment) -> Problem | None:
    """None if the attachment may be stored (as ``sniff(data)``, whatever it claims)."""
    name, data = attachment.filename, attachment.data
    if data is None:
        # A channel may skip downloading a file it already knows is too big: say so, not "missing".
        if attachment.size > MAX_BYTES:
            return Problem("too_large", name, size=attachment.size, limit=MAX_BYTES)
        return Problem("missing_data", name)
    if not data:
        return Problem("empty", name, size=0)
    if len(data) > MAX_BYTES:  # the real length, not the claimed size
        return Problem("too_large", name, size=len(data), limit=MAX_BYTES)
    if sniff(data) is None:
        return Problem("unsupported_type", name, claimed=attachment.mime_type or None)
    return None


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    mime: str  # sniffed, never the claimed type


def default_root(database_url: str) -> Path:
    """Where attachments go when not configured: ``<dir of the db>/attachments`` beside a SQLite
    database file (so a backup of that directory holds both), else ``var/attachments`` relative to
    the working directory (PostgreSQL, or in-memory SQLite)."""
    url = make_url(database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database and database != ":memory:":
        if not database.startswith("file:"):
            return Path(database).parent / "attachments"
    return Path("var") / "attachments"


def fsync_dir(directory: Path) -> None:
    """Make a new or renamed directory entry durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AttachmentStore:
    """Content-addressed files under ``root``: ``root/ab/cd/<sha256>``, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """The file's path; refuses anything but 64 lowercase hex digits (no path traversal)."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> bytes:
        """The file's bytes; FileNotFoundError if it is not stored."""
        return self.path(sha256).read_bytes()

    def put(self, data: bytes) -> StoredFile:
        """Store ``data`` (an allowed type: ``check()`` first) and return once it is durable."""
        mime = sniff(data)
        if mime is None:
            raise ValueError("not an allowed file type; check() the attachment first")
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        try:
            if target.stat().st_size == len(data):
                # Already there. Touch it so a garbage collection running now treats it as young
                # until the feedback that references it is committed.
                os.utime(target)
                return StoredFile(digest, len(data), mime)
        except FileNotFoundError:
            pass
        self._make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, target)  # atomic: readers see no file or the whole file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)  # the rename itself must survive a power cut
        return StoredFile(digest, len(data), mime)

    def _make_dirs(self, directory: Path) -> None:
        """Create the shard directories, making each new entry durable in its parent."""
        missing = []
        for parent in (directory, *directory.parents):
            if parent.is_dir():
                break
            missing.append(parent)
        for new in reversed(missing):
            new.mkdir(exist_ok=True)
            fsync_dir(new.parent)

    async def aput(self, data: bytes) -> StoredFile:
        return await asyncio.to_thread(self.put, data)

    async def store(self, data: bytes) -> StoredFile | OSError:
        """``aput``, but a file system failure (a full disk above all) is logged for the
        operator and handed back instead of raised: the citizen is told that this one file
        was not saved and goes on; nothing else of the conversation is lost."""
        try:
            return await self.aput(data)
        except OSError as exc:
            log.error(
                "attachments: could not store a file in %s (%s)",
                self.root,
                exc.strerror or type(exc).__name__,
            )
            return exc

    async def aread(self, sha256: str) -> bytes:
        return await asyncio.to_thread(self.open, sha256)

    def delete_unreferenced(self, referenced: set[str], older_than: timedelta) -> int:
        """Delete files no feedback references (drafts never submitted, leftovers of a crash)
        and last written more than ``older_than`` ago; younger ones may belong to a draft still
        in progress. Returns how many files were deleted."""
        cutoff = time.time() - older_than.total_seconds()
        deleted = 0
        for file in self.root.glob("[0-9a-f][0-9a-f]/[0-9a-f][0-9a-f]/*"):
            name = file.name
            if name in referenced or not (_SHA256.fullmatch(name) or name.startswith(_TMP_PREFIX)):
                continue
            try:
                if file.stat().st_mtime < cutoff:
                    file.unlink()
                    deleted += 1
            except FileNotFoundError:  # deleted meanwhile by another process
                continue
        return deleted
