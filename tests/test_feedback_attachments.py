"""Attachments of a feedback: type sniffing, refusals, and the content-addressed file store."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import time
import zlib
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.messages import Attachment
from bot.feedback.attachments import (
    MAX_BYTES,
    AttachmentStore,
    Problem,
    check,
    default_root,
    sniff,
)

ROOT = Path(__file__).resolve().parent.parent


def png_1x1() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg_minimal() -> bytes:
    app0 = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def pdf_minimal() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def heic_ftyp(brand: bytes = b"heic") -> bytes:
    compatible = b"mif1heic"
    return struct.pack(">I", 16 + len(compatible)) + b"ftyp" + brand + b"\0\0\0\0" + compatible


def webp_minimal() -> bytes:
    body = b"WEBP" + b"VP8L" + struct.pack("<I", 5) + b"\x2f\x00\x00\x00\x00" + b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def attachment(data: bytes | None, *, mime: str = "image/jpeg", name: str = "photo.jpg", size=None):
    return Attachment(
        kind="photo",
        filename=name,
        mime_type=mime,
        size=len(data) if size is None and data is not None else (size or 0),
        data=data,
    )


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (png_1x1(), "image/png"),
        (jpeg_minimal(), "image/jpeg"),
        (pdf_minimal(), "application/pdf"),
        (heic_ftyp(b"heic"), "image/heic"),
        (heic_ftyp(b"mif1"), "image/heif"),
        (webp_minimal(), "image/webp"),
        (b"hello, this is not a photo", None),
        (b"", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),  # RIFF but not WEBP
        (struct.pack(">I", 24) + b"ftypisom" + bytes(12), None),  # an MP4 video
        (b"GIF89a\x01\x00", None),
    ],
)
def test_sniff_reads_the_real_type(data: bytes, mime: str | None) -> None:
    assert sniff(data) == mime


def test_allowed_files_pass_the_check() -> None:
    for data in (png_1x1(), jpeg_minimal(), pdf_minimal(), heic_ftyp(), webp_minimal()):
        assert check(attachment(data)) is None


def test_text_pretending_to_be_a_jpeg_is_refused() -> None:
    fake = attachment("Xin chào, đây không phải ảnh".encode())
    assert check(fake) == Problem(
        "unsupported_type", "photo.jpg", claimed="image/jpeg", actual=None
    )


def test_a_30_mb_file_is_refused_as_too_large() -> None:
    big = attachment(bytes(30 * 1024 * 1024), name="scan.pdf", mime="application/pdf")
    problem = check(big)
    del big
    assert problem == Problem("too_large", "scan.pdf", size=30 * 1024 * 1024, limit=MAX_BYTES)


def test_a_file_the_channel_did_not_fetch() -> None:
    # Too big to download: the citizen hears "too large", not a vague failure.
    assert check(attachment(None, size=30 * 1024 * 1024)).reason == "too_large"
    assert check(attachment(None, size=1000)).reason == "missing_data"


def test_empty_file_is_refused() -> None:
    assert check(attachment(b"")).reason == "empty"


def test_just_under_and_over_the_limit() -> None:
    at_limit = b"%PDF-" + bytes(MAX_BYTES - 5)
    assert check(attachment(at_limit, mime="application/pdf")) is None
    assert check(attachment(at_limit + b"\0", mime="application/pdf")).reason == "too_large"


def test_png_claiming_jpeg_is_stored_as_png(tmp_path: Path) -> None:
    claimed = attachment(png_1x1(), mime="image/jpeg", name="photo.jpg")
    assert check(claimed) is None
    stored = AttachmentStore(tmp_path).put(claimed.data)
    assert stored.mime == "image/png"


def test_put_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    data = png_1x1()
    first, second = store.put(data), store.put(data)
    assert first == second
    assert first.sha256 == hashlib.sha256(data).hexdigest() and first.size == len(data)
    path = store.path(first.sha256)
    assert path == tmp_path / first.sha256[:2] / first.sha256[2:4] / first.sha256
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]  # no temp files left
    assert store.exists(first.sha256) and store.open(first.sha256) == data
    other = store.put(jpeg_minimal())
    assert other.sha256 != first.sha256 and other.mime == "image/jpeg"


def test_put_repairs_a_truncated_file(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    data = pdf_minimal()
    path = store.path(hashlib.sha256(data).hexdigest())
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:10])
    store.put(data)
    assert path.read_bytes() == data


def test_put_refuses_unchecked_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AttachmentStore(tmp_path).put(b"not a photo")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "bad",
    ["../../etc/passwd", "a" * 63, "g" * 64, "A" * 64, "../" + "a" * 61, "a" * 64 + "/", ""],
)
def test_path_traversal_is_refused(tmp_path: Path, bad: str) -> None:
    store = AttachmentStore(tmp_path)
    with pytest.raises(ValueError):
        store.path(bad)
    with pytest.raises(ValueError):
        store.open(bad)
    with pytest.raises(ValueError):
        store.exists(bad)


def test_open_missing_file(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    assert not store.exists("0" * 64)
    with pytest.raises(FileNotFoundError):
        store.open("0" * 64)


async def test_async_wrappers(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    stored = await store.aput(heic_ftyp())
    assert stored.mime == "image/heic"
    assert await store.aread(stored.sha256) == heic_ftyp()


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_file_survives_sigkill_right_after_put(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from bot.feedback.attachments import AttachmentStore\n"
        "stored = AttachmentStore(Path(sys.argv[1])).put(sys.stdin.buffer.read())\n"
        "print(stored.sha256, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    data = png_1x1() + bytes(100_000)  # still a PNG by its signature
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        input=data,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == -9, done.stderr.decode()
    sha = done.stdout.decode().strip()
    assert sha == hashlib.sha256(data).hexdigest()
    assert AttachmentStore(tmp_path).open(sha) == data


def test_delete_unreferenced_keeps_referenced_and_young_files(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    referenced = store.put(png_1x1())
    abandoned = store.put(jpeg_minimal())
    young = store.put(pdf_minimal())
    crash_leftover = store.path(referenced.sha256).parent / ".tmp-abc123"
    crash_leftover.write_bytes(b"half a file")
    unrelated = tmp_path / "README"
    unrelated.write_text("not ours")
    two_days_ago = time.time() - 2 * 86400
    for path in (store.path(referenced.sha256), store.path(abandoned.sha256), crash_leftover):
        os.utime(path, (two_days_ago, two_days_ago))

    deleted = store.delete_unreferenced({referenced.sha256}, older_than=timedelta(days=1))

    assert deleted == 2
    assert store.exists(referenced.sha256) and store.exists(young.sha256)
    assert not store.exists(abandoned.sha256) and not crash_leftover.exists()
    assert unrelated.exists()


def test_putting_an_old_file_again_makes_it_young(tmp_path: Path) -> None:
    # A draft re-sends a photo whose unreferenced copy is old: the collector must not take it.
    store = AttachmentStore(tmp_path)
    stored = store.put(png_1x1())
    old = time.time() - 2 * 86400
    os.utime(store.path(stored.sha256), (old, old))
    store.put(png_1x1())
    assert store.delete_unreferenced(set(), older_than=timedelta(days=1)) == 0
    assert store.exists(stored.sha256)


def test_delete_unreferenced_on_a_missing_root(tmp_path: Path) -> None:
    assert AttachmentStore(tmp_path / "none").delete_unreferenced(set(), timedelta(0)) == 0


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("sqlite+aiosqlite:///var/motcua.sqlite3", Path("var/attachments")),
        ("sqlite+aiosqlite:////srv/motcua/db.sqlite3", Path("/srv/motcua/attachments")),
        ("sqlite:///motcua.sqlite3", Path("attachments")),
        ("sqlite+aiosqlite:///:memory:", Path("var/attachments")),
        ("sqlite+aiosqlite://", Path("var/attachments")),
        ("postgresql+asyncpg://bot:secret@db/motcua", Path("var/attachments")),
    ],
)
def test_default_root(url: str, root: Path) -> None:
    assert default_root(url) == root
