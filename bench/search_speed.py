"""Speed and memory of our procedure search on three catalogue sizes.

Usage:
    python bench/search_speed.py [--rounds 5] [--eval PATH ...]
    python bench/search_speed.py --one NAME     # internal: one catalogue, prints one JSON line
    make bench-search            # installs the bench extras, then runs search_quality.py and this

Catalogues:
    commune        the bundled commune catalogue (319 procedures)
    national       the bundled national catalogue (2,642 procedures)
    synthetic-10k  10,000 procedures built deterministically from the national catalogue:
                   all national procedures as they are, sorted by code, then copies until there
                   are 10,000. Copy i (0-based) takes national procedure ``i % 2642`` and appends
                   to its name (trailing spaces and full stops removed) the qualifier number
                   ``(i % 2642 + i // 2642) % 9`` of: "(cấp tỉnh)", "(cấp huyện)", "tại Ban Quản
                   lý khu kinh tế", "đối với tổ chức", "đối với cá nhân", "trong trường hợp bị
                   mất", "có yếu tố nước ngoài", "thực hiện tại cấp xã", "(trực tuyến toàn
                   trình)", so that the copies of one procedure carry different qualifiers. The
                   copy's code is ``9.`` and i + 1 on six digits (9.000001 ...); other fields are
                   the source's. No randomness: every run indexes the same names.

Each catalogue is measured in its own Python process (``--one NAME``) so that the memory
figures are that catalogue's alone. In that process, after loading the catalogue:
    build s      wall time of ``SearchIndex(procedures)``, the first build in the process (what
                 start-up pays, including any data files the engine reads lazily)
    p50/p99/max  per-query latency (time.perf_counter) over ``--rounds`` passes, after one
                 warm-up pass. Queries: every evaluation query (the shared dev file, or
                 ``--eval`` files, plus bench/data/search_heldout.tsv when present), as written
                 (NFC) and in NFD, plus the hostile inputs below
    tracemalloc  peak of Python allocations traced during a second build plus one pass over the
                 queries (tracemalloc slows code down, so it is not on while timing)
    max RSS      the process's resident high-water mark (resource.getrusage ru_maxrss), which
                 includes the interpreter and the loaded catalogue

Hostile inputs: a 10,000-character sentence of real words, a 10,000-character single "word",
punctuation only, emoji, an SQL fragment, mixed scripts, control and zero-width characters, an
empty and a blank string. An exception from the engine is counted and reported, not fatal.

Targets printed beside the figures: p99 <= 5 ms at 2,642 procedures; p99 <= 20 ms and build
<= 2 s at 10,000. Exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc

from _search_common import eval_files, percentile, read_eval, table, with_nfd

CATALOGUES = ("commune", "national", "synthetic-10k")
SYNTHETIC_SIZE = 10_000
QUALIFIERS = (
    "(cấp tỉnh)",
    "(cấp huyện)",
    "tại Ban Quản lý khu kinh tế",
    "đối với tổ chức",
    "đối với cá nhân",
    "trong trường hợp bị mất",
    "có yếu tố nước ngoài",
    "thực hiện tại cấp xã",
    "(trực tuyến toàn trình)",
)
# name -> list of (metric, limit, label)
TARGETS = {
    "national": [("p99_ms", 5.0, "p99 <= 5 ms")],
    "synthetic-10k": [("p99_ms", 20.0, "p99 <= 20 ms"), ("build_s", 2.0, "build <= 2 s")],
}
HOSTILE = {
    "10k-char sentence": ("đăng ký khai sinh cho con tôi ở xã " * 300)[:10_000],
    "10k-char word": ("đăngkýkhaisinh" * 800)[:10_000],
    "punctuation only": "?!.,;:-_()[]{}\"'…/\\|@#$%^&*+=<>~` «» “” –",
    "emoji": "😀🙏🏻👨‍👩‍👧 🇻🇳 khai sinh 💯🔥",
    "SQL fragment": "'; DROP TABLE procedures; -- OR 1=1 /* */ UNION SELECT *",
    "mixed scripts": "đăng ký 出生登记 регистрация рождения التسجيل জন্ম khai sinh ของ",
    "control/zero-width": "khai\u200bsinh\u0000 kết\u202ehôn\ufeff\u00ad",
    "empty": "",
    "blank": " \t\n  ",
}


def synthetic_catalogue(national: list, size: int = SYNTHETIC_SIZE) -> list:
    """The national procedures plus qualified copies up to ``size`` (recipe in the docstring)."""
    base = sorted(national, key=lambda p: p.code)
    n = len(base)
    procedures = list(base)
    for i in range(size - n):
        source = base[i % n]
        qualifier = QUALIFIERS[(i % n + i // n) % len(QUALIFIERS)]
        name = f"{source.name.rstrip(' .')} {qualifier}"
        procedures.append(dataclasses.replace(source, code=f"9.{i + 1:06d}", name=name))
    return procedures


def load(name: str) -> list:
    from procedures_catalog.loader import load_bundled

    if name == "synthetic-10k":
        return synthetic_catalogue(list(load_bundled("national").procedures.values()))
    return list(load_bundled(name).procedures.values())


def measure(name: str, paths: list[str], rounds: int) -> dict:
    """Everything for one catalogue, in this process."""
    from procedures_catalog.search import SearchIndex

    procedures = load(name)
    labelled: list[tuple[str, str]] = []
    for path in eval_files(paths):
        if path.is_file():
            labelled += [(f"{q.form} {q.query[:40]!r}", q.query) for q in with_nfd(read_eval(path))]
    eval_count = len(labelled)
    labelled += [(f"hostile: {label}", text) for label, text in HOSTILE.items()]

    errors: dict[str, str] = {}

    def run(index, label: str, text: str) -> None:
        try:
            index.search(text, limit=5)
        except Exception as error:
            errors[label] = f"{type(error).__name__}: {error}"

    gc.collect()
    started = time.perf_counter()
    index = SearchIndex(procedures)
    build_s = time.perf_counter() - started

    for label, text in labelled:  # warm-up
        run(index, label, text)
    samples: list[tuple[float, str]] = []
    for _ in range(rounds):
        for label, text in labelled:
            started = time.perf_counter()
            run(index, label, text)
            samples.append(((time.perf_counter() - started) * 1000, label))
    latencies = [ms for ms, _ in samples]
    slowest_ms, slowest = max(samples)
    hostile_max = {
        label.removeprefix("hostile: "): max(ms for ms, lab in samples if lab == label)
        for label, _ in labelled[eval_count:]
    }

    del index
    gc.collect()
    tracemalloc.start()
    index = SearchIndex(procedures)
    for label, text in labelled:
        run(index, label, text)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "catalogue": name,
        "procedures": len(procedures),
        "queries": len(labelled),
        "eval_queries": eval_count,
        "samples": len(samples),
        "build_s": build_s,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "max_ms": slowest_ms,
        "slowest": slowest,
        "hostile_max_ms": hostile_max,
        "tracemalloc_peak_mb": peak / 2**20,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
        "errors": errors,
    }


def verdicts(result: dict) -> str:
    out = []
    for metric, limit, label in TARGETS.get(result["catalogue"], []):
        out.append(f"{label}: {'met' if result[metric] <= limit else 'MISSED'}")
    return "; ".join(out) or "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", choices=CATALOGUES, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the queries")
    parser.add_argument("--eval", action="append", metavar="PATH", help="evaluation TSV")
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args.eval or [], args.rounds)))
        return 0

    files = eval_files(args.eval)
    present = [p for p in files if p.is_file()]
    for path in files:
        print(f"eval {path}: {'used' if path.is_file() else 'not found, skipped'}")
    extra = [arg for path in (args.eval or []) for arg in ("--eval", path)]
    results = []
    for name in CATALOGUES:
        command = [sys.executable, __file__, "--one", name, "--rounds", str(args.rounds), *extra]
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["(no output)"]
            print(f"{name}: measurement failed (exit {done.returncode}): {lines[-1]}")
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if not results:
        return 0

    first = results[0]
    print(
        f"queries per pass: {first['eval_queries']} evaluation runs (NFC+NFD from "
        f"{len(present)} file(s)) + {first['queries'] - first['eval_queries']} hostile; "
        f"{args.rounds} timed passes after a warm-up"
    )
    headers = [
        "catalogue",
        "procedures",
        "build s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "tracemalloc peak MB",
        "max RSS MB",
        "targets",
    ]
    rows = [
        [
            r["catalogue"],
            f"{r['procedures']:,}",
            f"{r['build_s']:.3f}",
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['max_ms']:.2f}",
            f"{r['tracemalloc_peak_mb']:.1f}",
            f"{r['max_rss_mb']:.0f}",
            verdicts(r),
        ]
        for r in results
    ]
    table(headers, rows)
    print()
    for r in results:
        hostile = ", ".join(f"{label} {ms:.2f}" for label, ms in r["hostile_max_ms"].items())
        print(f"{r['catalogue']}: slowest {r['slowest']} {r['max_ms']:.2f} ms")
        print(f"  hostile inputs, max ms: {hostile}")
        for label, error in r["errors"].items():
            print(f"  ERROR on {label}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
