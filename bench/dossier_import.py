"""Time to import a large dossier export, and dossier lookup latency at that size.

Usage:
    python bench/dossier_import.py [--rows 100000] [--lookups 2000] [--postgres-url URL]

Writes a realistic one-stop software export (seeded random: Vietnamese headers, codes in the
default receipt-code form, the bundled commune catalogue's procedures weighted towards the
common ones, mixed channels and statuses, half the due dates left empty so that they are
counted from the catalogue, one dossier in ten listed twice (receipt, then its current status),
and the personal columns an export carries, which the import must skip). Then, on a fresh
SQLite database (and on PostgreSQL, in a throwaway schema, with --postgres-url):

- imports the file as `motcua dossiers import` does, and again (every row unchanged);
- looks up random codes through ``LocalSource.lookup``, the path the bot uses for a citizen's
  question, and reports p50/p95/p99 in milliseconds.

Targets (issue 6): import of 100,000 rows under 30 s, lookup p99 under 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.dossiers.calendar import WorkingCalendar  # noqa: E402
from bot.dossiers.importer import import_dossiers  # noqa: E402
from bot.dossiers.sources import LocalSource  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402
from procedures_catalog.loader import load_bundled  # noqa: E402

UNIT = "bench"
HEADER = [
    "STT",
    "Mã hồ sơ",
    "Mã thủ tục",
    "Tên thủ tục",
    "Họ tên người nộp",
    "Địa chỉ",
    "Số CCCD",
    "Số điện thoại",
    "Ngày tiếp nhận",
    "Hình thức",
    "Ngày hẹn trả",
    "Trạng thái",
    "Thời điểm cập nhật",
    "Ghi chú",
]
AGENCIES = ["000.00.15.H26", "000.00.16.H26", "H26.22"]
CHANNELS = [("Trực tuyến", 60), ("Trực tiếp", 35), ("Dịch vụ bưu chính công ích", 5)]
OPEN = [("Đang xử lý", 50), ("Chờ bổ sung", 10), ("Tạm dừng", 3), ("Có kết quả", 15)]
CLOSED = [
    ("Đã trả kết quả trước hạn", 40),
    ("Đã trả kết quả đúng hạn", 40),
    ("Đã trả kết quả quá hạn", 5),
    ("Không đủ điều kiện", 3),
    ("Rút hồ sơ", 2),
]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
GIVEN = ["Văn An", "Thị Bình", "Minh Châu", "Quốc Dũng", "Thu Hà", "Đức Huy", "Ngọc Lan"]
NOTES = ["", "", "", "", "Bổ sung bản sao giấy chứng sinh", "Chờ ý kiến cơ quan liên quan"]


def pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([w for w, _ in weighted], [n for _, n in weighted])[0]


def write_export(path: Path, rows: int, seed: int) -> list[str]:
    """Write the CSV; return the distinct codes."""
    rng = random.Random(seed)
    catalogue = load_bundled("commune")
    procedures = sorted(catalogue.procedures.values(), key=lambda p: p.code)
    weights = [1 / (rank + 1) for rank in range(len(procedures))]  # a few are most of the work
    start = date(2025, 1, 2)
    codes: list[str] = []
    sequence: dict[tuple[str, date], int] = {}
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        line = 0
        while line < rows:
            day = start + timedelta(days=rng.randrange(360))
            if day.weekday() >= 5:
                continue
            agency = rng.choice(AGENCIES)
            seq = sequence[(agency, day)] = sequence.get((agency, day), 0) + 1
            code = f"{agency}-{day:%y%m%d}-{seq:04d}"
            codes.append(code)
            procedure = rng.choices(procedures, weights)[0]
            received = datetime(day.year, day.month, day.day, rng.randint(7, 16), rng.randrange(60))
            age = (date(2026, 1, 1) - day).days
            status = pick(rng, CLOSED if age > 20 or rng.random() < 0.5 else OPEN)
            due = ""
            if rng.random() < 0.5:
                due = (day + timedelta(days=rng.randint(1, 15))).strftime("%d/%m/%Y")
            updated = received + timedelta(days=rng.randint(0, 15), hours=rng.randint(0, 5))
            person = [
                f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}",
                f"Số {rng.randint(1, 200)}, thôn {rng.randint(1, 12)}, xã An Bình",
                f"0{rng.randint(10**10, 10**11 - 1)}",
                f"09{rng.randint(10**7, 10**8 - 1)}",
            ]
            fixed = [code, procedure.code, procedure.name, *person]
            receipt = [received.strftime("%d/%m/%Y %H:%M"), pick(rng, CHANNELS), due]
            if rng.random() < 0.1 and line + 1 < rows:  # a change log: receipt first
                line += 1
                out.writerow([line, *fixed, *receipt, "Đã tiếp nhận", "", ""])
            line += 1
            when = updated.strftime("%d/%m/%Y %H:%M:%S") if rng.random() < 0.7 else ""
            out.writerow([line, *fixed, *receipt, status, when, rng.choice(NOTES)])
    return codes


async def run(url: str, csv_path: Path, codes: list[str], lookups: int, seed: int) -> None:
    schema = None
    connect_args: dict = {}
    if url.startswith("postgres"):
        schema = f"bench_{secrets.token_hex(4)}"
        admin = Database(url)
        async with admin.engine.begin() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        connect_args = {"server_settings": {"search_path": schema}}
    db = Database(url, connect_args=connect_args)
    try:
        await upgrade(db)
        catalogue = load_bundled("commune")
        calendar = WorkingCalendar()
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            report = await import_dossiers(
                db, csv_path, unit_default=UNIT, catalogue=catalogue, calendar=calendar
            )
            timings.append((time.perf_counter() - started, report))
        source = LocalSource(db, UNIT)
        rng = random.Random(seed + 1)
        sample = [rng.choice(codes) for _ in range(lookups)]
        for code in sample[:100]:  # warm the pool and the page cache
            await source.lookup(code)
        latencies = []
        for code in sample:
            started = time.perf_counter()
            found = await source.lookup(code)
            latencies.append((time.perf_counter() - started) * 1000)
            assert found.dossier is not None, code
    finally:
        if schema:
            async with admin.engine.begin() as conn:
                await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.dispose()
        await db.dispose()
    first, again = timings
    r = first[1]
    print(f"database: {url.split(':', 1)[0]}")
    print(
        f"import: {r.rows:,} rows in {first[0]:.1f} s ({r.rows / first[0]:,.0f} rows/s): "
        f"{r.created:,} dossiers, {r.status_changes:,} status changes, "
        f"{r.due_computed:,} due dates counted, {len(r.rejected)} rejected"
    )
    print(
        f"re-import of the same file: {again[0]:.1f} s "
        f"({again[1].unchanged:,} unchanged, {again[1].status_changes} changes)"
    )
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    print(
        f"lookup ({lookups:,} random codes): p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms, "
        f"p99 {cuts[98]:.2f} ms, max {max(latencies):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--postgres-url", help="also run on this PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "export.csv"
        started = time.perf_counter()
        codes = write_export(csv_path, args.rows, args.seed)
        size = csv_path.stat().st_size / 1e6
        print(
            f"export: {args.rows:,} rows, {len(codes):,} dossiers, {size:.1f} MB "
            f"(written in {time.perf_counter() - started:.1f} s)"
        )
        urls = [f"sqlite:///{tmp}/bench.sqlite3"]
        if args.postgres_url:
            urls.append(args.postgres_url)
        for url in urls:
            asyncio.run(run(url, csv_path, codes, args.lookups, args.seed))


if __name__ == "__main__":
    main()
