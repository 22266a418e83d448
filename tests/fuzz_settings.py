"""Hypothesis profiles, shared strategies and helpers of the fuzz tests (tests/test_fuzz_*.py);
docs/FUZZ.md says what is fuzzed and how to run the long mode.

- "ci" (the default): a few dozen to a few hundred examples per test, the same ones on every run
  (``derandomize``), no example database: the whole fuzz suite takes well under a minute.
- "long" (``MOTCUA_FUZZ=long``): thousands of examples per test, new ones on every run; failing
  examples are kept in var/hypothesis/examples/ (ignored by git) and tried first next time. The
  numbers are sized for about ten minutes in all on a 2-core machine; ``MOTCUA_FUZZ_SCALE``
  multiplies them (0.1 for a one-minute run, 3 for half an hour).

Each test says how many examples it is worth with ``@examples(ci, long)``: a normaliser call costs
microseconds, a dialogue turn milliseconds, an HTTP round trip more.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import struct
import unicodedata
import zlib
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase
from PIL import Image

from bot.core.messages import MAX_PAYLOAD_BYTES, Attachment
from handlers import all_routers

PROFILE = os.environ.get("MOTCUA_FUZZ", "ci").strip().lower() or "ci"
LONG = PROFILE == "long"
SCALE = float(os.environ.get("MOTCUA_FUZZ_SCALE", "1") or 1)
# Hypothesis keeps its files (the example database, a cache of constants) here, not in a
# .hypothesis/ of the working directory; var/ is ignored by git.
HOME = Path(__file__).resolve().parent.parent / "var" / "hypothesis"
set_hypothesis_home_dir(HOME)

# Fixtures (a database, a served app) are shared by the examples of one test on purpose: every
# example uses conversations of its own. Generated strings may be long (5,000-character texts).
_QUIET = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.filter_too_much,
]

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    database=DirectoryBasedExampleDatabase(HOME / "examples") if LONG else None,
    print_blob=True,
    suppress_health_check=_QUIET,
    phases=list(Phase),
)
settings.load_profile("long" if LONG else "ci")


def examples(ci: int, long: int) -> settings:
    """Settings for one test: ``ci`` examples in the brief profile, ``long`` in the long one."""
    return settings(max_examples=max(1, round(long * SCALE)) if LONG else ci)


# --- strategies shared by the fuzz tests ----------------------------------------------------------

_TONES = ("", "\u0301", "\u0300", "\u0309", "\u0303", "\u0323")
_VOWELS = "aăâeêioôơuưy"
_CONSONANTS = "bcdđghklmnpqrstvx"
VIETNAMESE_LETTERS = sorted(
    {unicodedata.normalize("NFC", v + tone) for v in _VOWELS for tone in _TONES} | set(_CONSONANTS)
)
VIETNAMESE_ALPHABET = "".join(VIETNAMESE_LETTERS + [c.upper() for c in VIETNAMESE_LETTERS])

# What citizens really send: searches with and without diacritics, Telex/VNI leftovers, glued
# words, commands, dossier and feedback codes, phone numbers, the old-commune question.
REAL_PHRASES = (
    "lam giay khai sinh",
    "làm giấy khai sinh cho con",
    "đăng ký kết hôn",
    "xin giấy xác nhận tình trạng hôn nhân",
    "sổ đỏ",
    "ddang kys khai sinh",
    "d9a7ng ky1 ke61t ho6n",
    "lamgiaykhaisinh",
    "chứng thực bản sao",
    "1.001193",
    "phản ánh",
    "kiến nghị",
    "góp ý",
    "tra cứu hồ sơ",
    "hồ sơ của tôi đến đâu rồi",
    "DEMO-000000-0001",
    "DEMO-000000-0004",
    "demo-000000-0002",
    "H12.34-250101-0001",
    "PA-2025-1",
    "theo dõi",
    "xã Tân Phú giờ thuộc xã nào",
    "phường 1 quận 3 sáp nhập vào đâu",
    "xin chào",
    "cảm ơn",
    "hủy",
    "english",
    "tiếng việt",
    "trợ giúp",
    "0912345678",
    "5678",
    "1",
    "2",
    "3",
    "9",
    "0",
    "/start",
    "/help",
    "/hoso",
    "/hoso DEMO-000000-0003",
    "/theodoi",
    "/phananh",
    "/thutuc",
    "/language",
    "/cancel",
    "/xamoi",
    "/nosuchcommand",
    "/",
)

# Characters that break naive code: controls, format characters, combining marks, emoji
# (with skin tones and joiners), right-to-left text, private use, look-alike Đ.
_HOSTILE_CHARS = st.one_of(
    st.characters(categories=["Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp", "Co"]),
    st.sampled_from(
        "\x00\x1b\r\n\t\u200b\u200d\u202e\ufeff\ufffd\u0301\u0300\u0309\u0303\u0323"
        "ÐðĐđ🙏😀👍🏽‍👨‍👩‍👧ØØ٣الإسلام中文한국어"
    ),
)
any_text = st.text(max_size=300)
hostile_text = st.text(alphabet=st.one_of(_HOSTILE_CHARS, st.characters()), max_size=200)
vietnamese_text = st.text(alphabet=VIETNAMESE_ALPHABET + " ,.?!-", max_size=80)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.from_regex(r"\d{1,12}", fullmatch=True),
)
# Long texts around the engine's 4,000-character limit and beyond, built by repetition (a
# drawn 5,000-character string would be slow to generate and to shrink).
long_text = st.builds(
    lambda piece, length: (piece * (length // len(piece) + 1))[:length],
    st.text(min_size=1, max_size=12),
    st.sampled_from([3999, 4000, 4001, 5000]) | st.integers(min_value=300, max_value=5000),
)


def _mixed(pieces: list[str]) -> str:
    return " ".join(pieces)


message_text = st.one_of(
    st.sampled_from(REAL_PHRASES),
    st.lists(st.sampled_from(REAL_PHRASES) | vietnamese_text | numbers, max_size=4).map(_mixed),
    st.just(""),
    numbers,
    any_text,
    hostile_text,
    vietnamese_text,
    long_text,
)


def utf8_at_most(limit: int) -> st.SearchStrategy[str]:
    """Strings of at most ``limit`` bytes in UTF-8 (button payloads: Telegram's 64)."""
    return st.text(max_size=limit).filter(lambda s: len(s.encode("utf-8")) <= limit)


# JSON of any shape, as a hostile client would send it.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    hostile_text,
)
any_json = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


# --- files ----------------------------------------------------------------------------------------


def _image(fmt: str, size: tuple[int, int] = (8, 6), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt, **save)
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing a huge image, with no pixels (Pillow's bomb check must say no)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


PNG = _image("PNG")
JPEG = _image("JPEG", quality=80)
_EXIF = Image.Exif()
_EXIF[0x0112] = 6  # orientation: rotated, as phones save portrait photos
JPEG_ROTATED = _image("JPEG", (12, 4), exif=_EXIF.tobytes())
FILE_BYTES = (
    PNG,
    JPEG,
    JPEG_ROTATED,
    JPEG[: len(JPEG) // 2],  # truncated
    b"\xff\xd8\xff" + b"\x00" * 40,  # a JPEG only by its magic number
    b"\x89PNG\r\n\x1a\n",
    _png_claiming(60_000, 60_000),
    _png_claiming(0, 0),
    b"%PDF-1.4\n%junk\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"\x00\x00\x00\x18ftypheic" + b"\x00" * 16,
    b"",
)
attachments = st.builds(
    Attachment,
    kind=st.sampled_from(["photo", "document", "unsupported"]) | st.text(max_size=10),
    filename=st.sampled_from(["photo.jpg", "to-khai.pdf", "", "../../etc/passwd", "a\x00b.png"])
    | st.text(max_size=300),
    mime_type=st.sampled_from(["image/jpeg", "image/png", "application/pdf", "", "x/y"])
    | st.text(max_size=40),
    size=st.integers(min_value=-10, max_value=2**40),
    data=st.none() | st.sampled_from(FILE_BYTES) | st.binary(max_size=256),
).map(
    # Channels report the real size of the bytes they fetched; only a file they did not fetch
    # keeps the size its platform claimed (which a client may have made up).
    lambda a: (
        a if a.data is None else Attachment(a.kind, a.filename, a.mime_type, len(a.data), a.data)
    )
)

# --- payloads -------------------------------------------------------------------------------------

ROUTES = all_routers()
EXACT_PAYLOADS = sorted({key for router in ROUTES for key in router.payloads})
PAYLOAD_PREFIXES = sorted({key for router in ROUTES for key in router.payload_prefixes})
_ARGS = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "99999999999999999999", "1.001193", "x", ":", "1:2"]),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.text(max_size=30),
)
hostile_payloads = st.one_of(
    st.sampled_from(EXACT_PAYLOADS),
    st.builds(lambda prefix, args: prefix + args, st.sampled_from(PAYLOAD_PREFIXES), _ARGS),
    utf8_at_most(MAX_PAYLOAD_BYTES),
).map(lambda p: p.encode("utf-8")[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="ignore"))


# --- errors logged while an example runs ----------------------------------------------------------


class FailureLog(logging.Handler):
    """Collects the errors logged during an example: a failed handler is logged with its
    traceback before the user gets the apology, a crashed request before aiohttp's 500."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def report(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


@contextlib.contextmanager
def watch_errors() -> Iterator[FailureLog]:
    """Collect the errors logged anywhere while the block runs."""
    handler = FailureLog()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
