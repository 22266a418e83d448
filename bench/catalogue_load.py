"""Time and memory to load a catalogue at start, as `motcua run` does.

Usage:
    python bench/catalogue_load.py [--catalogue national] [--database-url URL] [--runs 5]

Fills a fresh SQLite database (or the given one, in a throwaway PostgreSQL schema) with the
bundled catalogue, then, in a fresh Python process per run, measures what start-up does with it:
read every procedure from the database, build the Procedure objects and the search index.
Reports wall time and the growth of the process's resident memory (RSS) during the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import asyncio, json, sys, time, gc
sys.path.insert(0, {root!r})

def rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

from bot.catalogue import CatalogueStore
from bot.storage.db import Database
from procedures_catalog.search import SearchIndex

async def main():
    connect_args = {connect_args!r}
    db = Database({url!r}, connect_args=connect_args)
    async with db.engine.connect() as conn:  # open the pool before measuring
        pass
    gc.collect()
    before = rss_kb()
    started = time.perf_counter()
    catalogue = await CatalogueStore(db, {name!r}).load()
    index = SearchIndex(catalogue.procedures.values())
    elapsed = time.perf_counter() - started
    gc.collect()
    after = rss_kb()
    await db.dispose()
    grown = (after - before) / 1024
    print(json.dumps({{"count": len(catalogue), "seconds": elapsed, "rss_mb": grown}}))

asyncio.run(main())
"""


async def prepare(url: str, name: str, connect_args: dict) -> int:
    from bot.catalogue import CatalogueStore
    from bot.storage.db import Database
    from bot.storage.migrate import upgrade

    db = Database(url, connect_args=connect_args)
    await upgrade(db)
    count = await CatalogueStore(db, name).ensure_bundled()
    await db.dispose()
    return count


async def admin(url: str, sql: str) -> None:
    from bot.storage.db import Database

    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(sql)
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalogue", default="national", choices=("national", "commune"))
    parser.add_argument("--database-url")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        connect_args: dict = {}
        schema = None
        if url.startswith("postgres"):
            schema = f"bench_{secrets.token_hex(4)}"
            asyncio.run(admin(url, f'CREATE SCHEMA "{schema}"'))
            connect_args = {"server_settings": {"search_path": schema}}
        try:
            loaded = asyncio.run(prepare(url, args.catalogue, connect_args))
            code = CHILD.format(
                root=str(ROOT), url=url, name=args.catalogue, connect_args=connect_args
            )
            results = []
            for _ in range(args.runs):
                out = subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                )
                results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        finally:
            if schema:
                asyncio.run(admin(url, f'DROP SCHEMA "{schema}" CASCADE'))
    seconds = [r["seconds"] for r in results]
    memory = [r["rss_mb"] for r in results]
    print(f"catalogue: {args.catalogue} ({results[0]['count']} procedures; {loaded} loaded)")
    print(f"database: {url.split(':', 1)[0]}")
    print(
        f"load + index, {args.runs} fresh processes: median {statistics.median(seconds):.2f} s, "
        f"max {max(seconds):.2f} s"
    )
    print(
        f"resident memory growth: median {statistics.median(memory):.0f} MB, "
        f"max {max(memory):.0f} MB"
    )


if __name__ == "__main__":
    main()
