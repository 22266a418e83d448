"""Helpers shared by bench/search_quality.py and bench/search_speed.py.

Finding and reading the evaluation files, the NFC/NFD variants of each query, percentiles,
a plain-text table printer, and the diacritic folding used by the rapidfuzz peer. Nothing here
imports the engine's internals: the benchmarks only use ``SearchIndex(...).search(q, limit)``.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The project's shared directory sits beside the checkout (as in CI); MOTCUA_TEST_SHARED_DIR
# overrides it, as for the tests.
SHARED = Path(os.environ.get("MOTCUA_TEST_SHARED_DIR") or ROOT.parent / "shared")
DEV_EVAL = SHARED / "eval" / "search_dev.tsv"
HELDOUT_EVAL = ROOT / "bench" / "data" / "search_heldout.tsv"
NONE = "NONE"


@dataclass(frozen=True)
class EvalQuery:
    """One line of an evaluation file, in one Unicode form ("NFC" as written, or "NFD")."""

    query: str
    expected: frozenset[str]  # empty: nothing should be returned (NONE)
    tag: str
    form: str = "NFC"
    line: int = 0

    @property
    def negative(self) -> bool:
        return not self.expected


def eval_files(explicit: Sequence[str] | None = None) -> list[Path]:
    """The files to evaluate: --eval paths (or the shared dev file), then the held-out file."""
    paths: list[Path] = []
    for path in [Path(p) for p in explicit] if explicit else [DEV_EVAL]:
        if path.resolve() not in {p.resolve() for p in paths}:
            paths.append(path)
    if HELDOUT_EVAL.is_file() and HELDOUT_EVAL.resolve() not in {p.resolve() for p in paths}:
        paths.append(HELDOUT_EVAL)
    return paths


def read_eval(path: Path) -> list[EvalQuery]:
    """Read a TSV of query, expected codes (comma-separated, or NONE), tag; # starts a comment."""
    queries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        columns = raw.split("\t")
        if len(columns) < 2:
            print(f"warning: {path.name}:{number}: fewer than 2 columns, line skipped")
            continue
        query = unicodedata.normalize("NFC", columns[0].strip())
        codes = columns[1].strip()
        tag = columns[2].strip() if len(columns) > 2 and columns[2].strip() else "untagged"
        expected = (
            frozenset()
            if codes.upper() == NONE
            else frozenset(c.strip() for c in codes.split(",") if c.strip())
        )
        queries.append(EvalQuery(query, expected, tag, "NFC", number))
    return queries


def with_nfd(queries: Iterable[EvalQuery]) -> list[EvalQuery]:
    """Each query as written (NFC) followed by its NFD form."""
    out = []
    for q in queries:
        out.append(q)
        out.append(
            EvalQuery(unicodedata.normalize("NFD", q.query), q.expected, q.tag, "NFD", q.line)
        )
    return out


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100), at least 1
    return ordered[int(rank) - 1]


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], rules: Iterable[int] = ()):
    """Print a plain-text table; text columns left-aligned, numbers right-aligned.

    ``rules`` lists row indexes before which a separator line is drawn.
    """
    body = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            parts.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return "  ".join(parts).rstrip()

    separator = "  ".join("-" * w for w in widths)
    rule_set = set(rules)
    print(line(headers))
    print(separator)
    for index, row in enumerate(body):
        if index in rule_set:
            print(separator)
        print(line(row))


_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})


def fold_vi(text: str) -> str:
    """Lower case, Vietnamese đ -> d, tone and vowel marks stripped, spaces collapsed.

    The preprocessing a competent integrator would hand to rapidfuzz for Vietnamese; written
    here, not taken from procedures_catalog, so that the peer does not move with our engine.
    """
    text = unicodedata.normalize("NFD", text.translate(_D_MAP).lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.split())
