"""Where a running bot process spends its time: py-spy's samples, grouped into the parts of the
stack (aiohttp serving, the Bot API client, python-telegram-bot, SQLAlchemy, the database
driver, the search, logging, the event loop...), plus the functions that use the most.

    summary = await profile_process(pid, seconds=20, output=Path("bench/output/worker.txt"))
    print(summary.table())

py-spy (``pip install py-spy``, in the project's ``bench`` extra) samples another process from
outside, without changing it; it needs permission to read that process's memory (root, or
the same user with ptrace allowed).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# (part, substrings of a frame's file): a sample counts for the first part, from the innermost
# frame outwards, whose file matches. Order matters where files nest (aiohttp's client first).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("SQLite (sqlite3 calls, fsync)", ("bot/storage/sqlite_inloop.py",)),
    ("database driver (asyncpg)", ("asyncpg/",)),
    ("SQLAlchemy", ("sqlalchemy/",)),
    ("aiohttp client (Bot API calls)", ("aiohttp/client", "aiohttp/connector")),
    ("python-telegram-bot", ("telegram/",)),
    ("aiohttp server (webhook requests)", ("aiohttp/web", "aiohttp/http_", "aiohttp/_http")),
    ("search (procedures_catalog)", ("procedures_catalog/",)),
    ("logging", ("logging/",)),
    ("metrics (prometheus-client)", ("prometheus_client/",)),
    ("JSON", ("json/",)),
    ("dialogue engine and handlers", ("bot/core/", "handlers/")),
    ("channels (bot/channels)", ("bot/channels/",)),
    ("other bot code", ("/bot/",)),
    ("event loop and sockets", ("asyncio/", "selectors.py", "socket.py", "uvloop")),
]


@dataclass
class Profile:
    samples: int = 0
    parts: Counter = field(default_factory=Counter)
    functions: Counter = field(default_factory=Counter)  # innermost frame, "self" time
    path: Path | None = None

    def table(self, top: int = 12) -> str:
        lines = ["| part of the stack | share of samples |", "|---|---|"]
        for part, count in self.parts.most_common():
            lines.append(f"| {part} | {count / self.samples:.0%} |")
        lines += ["", "| busiest functions (self) | share |", "|---|---|"]
        for name, count in self.functions.most_common(top):
            lines.append(f"| `{name}` | {count / self.samples:.1%} |")
        return "\n".join(lines)


def read_collapsed(path: Path) -> Profile:
    """Group py-spy's ``--format raw`` output (collapsed stacks: frames;...;frames count)."""
    profile = Profile(path=path)
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        profile.samples += n
        profile.parts[_part(frames)] += n
        profile.functions[_short(frames[-1])] += n
    return profile


def _part(frames: list[str]) -> str:
    for frame in reversed(frames):
        for part, patterns in PARTS:
            if any(pattern in frame for pattern in patterns):
                return part
    return "other"


def _short(frame: str) -> str:
    """``name (path/to/site-packages/pkg/mod.py:12)`` -> ``name (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "python3.11/", "/work/", "/main/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})" if where else name


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


async def profile_process(pid: int, seconds: float, output: Path, rate: int = 100) -> Profile:
    """Sample ``pid`` for ``seconds`` with py-spy and group the samples."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        tool,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate),
        "--nonblocking",  # never pauses the process it samples
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    if proc.returncode != 0 or not output.exists():
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    return read_collapsed(output)
