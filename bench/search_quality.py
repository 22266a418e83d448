"""Quality of procedure search: our engine beside four peers, same catalogue, same run.

Usage:
    python bench/search_quality.py [--eval PATH ...] [--misses] [--limit 5] [--rounds 3]
                                   [--database-url postgresql://postgres@127.0.0.1:5432/test]
    make bench-search            # installs the bench extras, then runs this and search_speed.py

Catalogue: the bundled "commune" catalogue (319 procedures); every engine indexes the same
procedure names.

Evaluation files: ``../shared/eval/search_dev.tsv`` beside the checkout (the shared directory
can be given by MOTCUA_TEST_SHARED_DIR, as for the tests), or the files given by ``--eval``
(repeatable), then ``bench/data/search_heldout.tsv`` when it exists. A file is TSV: query,
expected national codes (comma-separated; any one counts as a hit; ``NONE``: nothing should be
returned), tag; lines starting with ``#`` are comments. Every query is run twice, as written
(NFC) and decomposed (NFD): the totals count both, and a second block gives NFD alone.

Metrics, per engine:
    top-1, top-3   share of positive queries with an expected code first / in the first three
    MRR            mean reciprocal rank of the first expected code among the ``--limit`` (5)
                   results, 0 when absent, over positive queries
    off-topic rej. share of NONE queries for which the engine returns nothing
    p50/p99 ms     per-query latency (time.perf_counter), after one warm-up pass over all
                   queries, over ``--rounds`` timed passes (nearest-rank percentiles)
For our engine a per-tag table follows; ``--misses`` lists its failed queries and what it
returned (a miss: a positive query whose first result is not expected, or a NONE query that
returned something).

The peers are set up as a competent integrator would for Vietnamese text. Each receives the
query normalised to NFC first (the application's job at its boundary; without it tantivy's and
FTS5's tokenizers split NFD words at each combining mark), so their NFD rows equal their NFC
rows unless something else differs. Each sits behind the same ``search(query, limit)`` ->
codes.

  sqlite-fts5   in-memory FTS5 table (code UNINDEXED, name) with
                ``tokenize="unicode61 remove_diacritics 2"``. Query: the query's words (\\w+),
                each double-quoted so no FTS syntax can be injected; first all words (implicit
                AND), and when no row matches, the words joined by OR; ranked by bm25().
                Nothing is returned only when no row matches at all. unicode61 drops tone and
                vowel marks but keeps đ as a letter of its own (it is not a base letter plus a
                mark), so "dang ky" does not match "Đăng ký".
  pg-trgm       PostgreSQL with unaccent and pg_trgm, in a throwaway schema ``bench_search``
                (dropped at the end; the extensions are created in it when the database does
                not have them yet). ``f_unaccent(text)``: an IMMUTABLE SQL wrapper around
                unaccent with its dictionary named explicitly (the usual recipe, since unaccent
                itself is only STABLE and cannot be used in an index). A GIN index with
                gin_trgm_ops on ``f_unaccent(lower(name))``; the query is
                ``f_unaccent(lower($1)) <% f_unaccent(lower(name))`` ordered by
                word_similarity, descending, then by whole-string similarity (so that among
                names containing the query the shortest comes first), with pg_trgm's default
                word_similarity_threshold (0.6) deciding "nothing". unaccent's rules map
                đ -> d. Latency is the round trip through asyncpg on one connection. Skipped
                with a message when the server cannot be reached or lacks the extensions.
  tantivy       in-RAM index; the name field uses a registered analyzer: simple tokenizer +
                lowercase + ascii_fold (ascii_fold maps đ -> d). The query is lower-cased (so
                AND/OR/NOT are words, not operators), its query-syntax characters are
                backslash-escaped, and it is parsed by the index's query parser on the name
                field with the default conjunction (OR); BM25 ranking. Nothing is returned only
                when no document shares a word with the query.
  rapidfuzz     ``process.extract(query, names, scorer=fuzz.WRatio, limit=N, score_cutoff=80)``
                on text folded by lower case, đ -> d, marks stripped, then rapidfuzz's
                default_process (punctuation to spaces). The names are folded once when the
                index is built (the same result as passing the folding as ``processor=``, which
                would redo it for all names at every query). Below the cutoff: nothing.

Exit code 0 whatever the figures; a peer that cannot be set up is reported and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from _search_common import (
    EvalQuery,
    eval_files,
    fold_vi,
    percentile,
    read_eval,
    table,
    with_nfd,
)

from procedures_catalog.loader import load_bundled
from procedures_catalog.schema import Procedure

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA = "bench_search"
WORD = re.compile(r"\w+")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------------- engines


class Engine:
    """A search engine under test: search(query, limit) -> list of procedure codes."""

    name = "?"

    def search(self, query: str, limit: int) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Ours(Engine):
    name = "ours"

    def __init__(self, procedures: Sequence[Procedure]) -> None:
        from procedures_catalog.search import SearchIndex

        self.index = SearchIndex(procedures)
        self.hits: dict[str, list] = {}  # last hits per query, for --misses

    def search(self, query: str, limit: int) -> list[str]:
        hits = self.index.search(query, limit=limit)
        self.hits[query] = hits
        return [hit.code for hit in hits]


class SqliteFts5(Engine):
    name = "sqlite-fts5"

    def __init__(self, procedures: Sequence[Procedure]) -> None:
        # check_same_thread=False: built and queried on the main thread only, but harmless.
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute(
            "CREATE VIRTUAL TABLE procedures USING fts5("
            "code UNINDEXED, name, tokenize = 'unicode61 remove_diacritics 2')"
        )
        self.db.executemany(
            "INSERT INTO procedures (code, name) VALUES (?, ?)",
            [(p.code, p.name) for p in procedures],
        )
        self.db.commit()

    def _match(self, expression: str, limit: int) -> list[str]:
        rows = self.db.execute(
            "SELECT code FROM procedures WHERE procedures MATCH ? "
            "ORDER BY bm25(procedures), code LIMIT ?",
            (expression, limit),
        ).fetchall()
        return [code for (code,) in rows]

    def search(self, query: str, limit: int) -> list[str]:
        words = WORD.findall(nfc(query))
        if not words:
            return []
        quoted = ['"' + w.replace('"', '""') + '"' for w in words]
        return self._match(" ".join(quoted), limit) or self._match(" OR ".join(quoted), limit)

    def close(self) -> None:
        self.db.close()


class PgTrgm(Engine):
    """unaccent + pg_trgm word similarity, through asyncpg on a private event loop."""

    name = "pg-trgm"

    def __init__(self, procedures: Sequence[Procedure], url: str) -> None:
        import asyncpg

        self._asyncpg = asyncpg
        self.loop = asyncio.new_event_loop()
        self.conn = None
        self.created_schema = False
        try:
            self.conn = self.loop.run_until_complete(asyncpg.connect(url, timeout=5))
            self.loop.run_until_complete(self._setup(procedures))
        except BaseException:
            self.close()
            raise

    async def _extension_schema(self, name: str) -> str:
        """Where the extension lives; created in our throwaway schema when missing."""
        query = (
            "SELECT n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = $1"
        )
        schema = await self.conn.fetchval(query, name)
        if schema is None:
            try:
                await self.conn.execute(f"CREATE EXTENSION IF NOT EXISTS {name} SCHEMA {PG_SCHEMA}")
            except self._asyncpg.exceptions.UniqueViolationError:
                pass  # created at the same moment by someone else
            schema = await self.conn.fetchval(query, name)
        return schema

    async def _setup(self, procedures: Sequence[Procedure]) -> None:
        conn = self.conn
        await conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")  # a crashed run's
        await conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")
        self.created_schema = True
        unaccent_schema = await self._extension_schema("unaccent")
        trgm_schema = await self._extension_schema("pg_trgm")
        # Operators (<%) and functions resolve through the search path.
        await conn.execute(
            f"SET search_path = {PG_SCHEMA}, {trgm_schema}, {unaccent_schema}, public"
        )
        await conn.execute(
            f"""
            CREATE FUNCTION {PG_SCHEMA}.f_unaccent(text) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
            AS $$ SELECT {unaccent_schema}.unaccent(
                '{unaccent_schema}.unaccent'::regdictionary, $1) $$
            """
        )
        await conn.execute(
            f"CREATE TABLE {PG_SCHEMA}.procedures (code text PRIMARY KEY, name text NOT NULL)"
        )
        await conn.copy_records_to_table(
            "procedures",
            schema_name=PG_SCHEMA,
            records=[(p.code, p.name) for p in procedures],
            columns=["code", "name"],
        )
        await conn.execute(
            f"CREATE INDEX procedures_name_trgm ON {PG_SCHEMA}.procedures "
            f"USING gin (f_unaccent(lower(name)) {trgm_schema}.gin_trgm_ops)"
        )
        await conn.execute(f"ANALYZE {PG_SCHEMA}.procedures")
        self.statement = await conn.prepare(
            f"""
            SELECT code FROM {PG_SCHEMA}.procedures
            WHERE f_unaccent(lower($1::text)) <% f_unaccent(lower(name))
            ORDER BY word_similarity(f_unaccent(lower($1::text)), f_unaccent(lower(name))) DESC,
                     similarity(f_unaccent(lower($1::text)), f_unaccent(lower(name))) DESC,
                     code
            LIMIT $2
            """
        )
        self.threshold = await conn.fetchval("SHOW pg_trgm.word_similarity_threshold")

    def search(self, query: str, limit: int) -> list[str]:
        rows = self.loop.run_until_complete(self.statement.fetch(nfc(query), limit))
        return [row["code"] for row in rows]

    def close(self) -> None:
        if self.conn is not None:
            try:
                if self.created_schema:
                    self.loop.run_until_complete(
                        self.conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
                    )
                self.loop.run_until_complete(self.conn.close())
            except Exception as error:  # report, never crash the benchmark
                print(f"warning: PostgreSQL clean-up failed: {error}")
            self.conn = None
        if not self.loop.is_closed():
            self.loop.close()


class Tantivy(Engine):
    name = "tantivy"
    ANALYZER = "vi_fold"
    # Characters with a meaning in tantivy's query language; backslash-escaped.
    SPECIAL = frozenset("+-&|!(){}[]^\"~*?:\\/<>='`$")

    def __init__(self, procedures: Sequence[Procedure]) -> None:
        import tantivy

        self._tantivy = tantivy
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("code", stored=True, tokenizer_name="raw")
        builder.add_text_field("name", stored=False, tokenizer_name=self.ANALYZER)
        self.index = tantivy.Index(builder.build())  # no path: in RAM
        analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .build()
        )
        self.index.register_tokenizer(self.ANALYZER, analyzer)
        writer = self.index.writer(heap_size=15_000_000, num_threads=1)
        for p in procedures:
            doc = tantivy.Document()
            doc.add_text("code", p.code)
            doc.add_text("name", p.name)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, query: str, limit: int) -> list[str]:
        text = "".join("\\" + ch if ch in self.SPECIAL else ch for ch in nfc(query).lower())
        if not text.strip():
            return []
        try:
            parsed = self.index.parse_query(text, ["name"])  # conjunction_by_default=False
        except ValueError:
            return []
        result = self.searcher.search(parsed, limit)
        return [self.searcher.doc(address)["code"][0] for _score, address in result.hits]


class RapidFuzz(Engine):
    name = "rapidfuzz"
    CUTOFF = 80

    def __init__(self, procedures: Sequence[Procedure]) -> None:
        from rapidfuzz import fuzz, process, utils

        self._extract = process.extract
        self._scorer = fuzz.WRatio
        self._prepare: Callable[[str], str] = lambda s: utils.default_process(fold_vi(s))
        self.codes = [p.code for p in procedures]
        self.names = [self._prepare(p.name) for p in procedures]

    def search(self, query: str, limit: int) -> list[str]:
        folded = self._prepare(nfc(query))
        if not folded:
            return []
        matches = self._extract(
            folded,
            self.names,
            scorer=self._scorer,
            processor=None,  # names were folded at build time, the query just now
            limit=limit,
            score_cutoff=self.CUTOFF,
        )
        return [self.codes[index] for _name, _score, index in matches]


# ------------------------------------------------------------------------------ evaluation


@dataclass
class Outcome:
    query: EvalQuery
    codes: list[str]
    error: str | None = None

    @property
    def rank(self) -> int | None:
        for position, code in enumerate(self.codes, start=1):
            if code in self.query.expected:
                return position
        return None

    @property
    def failed(self) -> bool:
        if self.query.negative:
            return bool(self.codes)
        return self.rank != 1


@dataclass
class Run:
    engine: str
    outcomes: list[Outcome]
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def run_engine(engine: Engine, queries: Sequence[EvalQuery], limit: int, rounds: int) -> Run:
    def call(query: str) -> tuple[list[str], str | None]:
        try:
            return engine.search(query, limit), None
        except Exception as error:  # an engine error counts as "nothing", and is reported
            return [], f"{type(error).__name__}: {error}"

    for q in queries:  # warm-up
        call(q.query)
    run = Run(engine.name, [])
    for round_number in range(rounds):
        for q in queries:
            started = time.perf_counter()
            codes, error = call(q.query)
            run.latencies_ms.append((time.perf_counter() - started) * 1000)
            if round_number == 0:
                run.outcomes.append(Outcome(q, codes, error))
                run.errors += error is not None
    return run


def metrics(outcomes: Sequence[Outcome]) -> dict[str, float | int]:
    positives = [o for o in outcomes if not o.query.negative]
    negatives = [o for o in outcomes if o.query.negative]
    ranks = [o.rank for o in positives]
    n = len(positives)
    return {
        "n_pos": n,
        "n_neg": len(negatives),
        "top1": sum(r == 1 for r in ranks) / n if n else 0.0,
        "top3": sum(r is not None and r <= 3 for r in ranks) / n if n else 0.0,
        "mrr": sum(1 / r for r in ranks if r) / n if n else 0.0,
        "rejected": sum(not o.codes for o in negatives),
    }


def pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def rejection(m: dict) -> str:
    if not m["n_neg"]:
        return "-"
    return f"{pct(m['rejected'] / m['n_neg'])} ({m['rejected']}/{m['n_neg']})"


def engine_row(label: str, outcomes: Sequence[Outcome], latencies: Sequence[float]) -> list:
    m = metrics(outcomes)
    return [
        label,
        pct(m["top1"]),
        pct(m["top3"]),
        f"{m['mrr']:.3f}",
        rejection(m),
        f"{percentile(latencies, 50):.2f}",
        f"{percentile(latencies, 99):.2f}",
    ]


def report_file(runs: Sequence[Run], limit: int) -> None:
    headers = ["engine", "top-1", "top-3", f"MRR@{limit}", "off-topic rejection"]
    headers += ["p50 ms", "p99 ms"]
    rows = [engine_row(run.engine, run.outcomes, run.latencies_ms) for run in runs]
    for run in runs:
        # The latencies follow the outcomes' order, round after round.
        per_round = len(run.outcomes)
        nfd_latencies = [
            ms
            for i, ms in enumerate(run.latencies_ms)
            if run.outcomes[i % per_round].query.form == "NFD"
        ]
        nfd = [o for o in run.outcomes if o.query.form == "NFD"]
        rows.append(engine_row(f"{run.engine} (NFD only)", nfd, nfd_latencies))
    table(headers, rows, rules=[len(runs)])
    errors = [f"{run.engine}: {run.errors}" for run in runs if run.errors]
    if errors:
        print("engine errors (counted as 'nothing returned'): " + ", ".join(errors))


def report_tags(run: Run) -> None:
    by_tag: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in run.outcomes:
        by_tag[outcome.query.tag].append(outcome)
    rows = []
    for tag in sorted(by_tag, key=lambda t: (-len(by_tag[t]), t)):
        outcomes = by_tag[tag]
        m = metrics(outcomes)
        if m["n_pos"]:
            row = [tag, len(outcomes), pct(m["top1"]), pct(m["top3"]), f"{m['mrr']:.3f}"]
            if m["n_neg"]:
                row[-1] += f" / rej. {rejection(m)}"
        else:
            row = [tag, len(outcomes), "-", "-", f"rej. {rejection(m)}"]
        rows.append(row)
    table(["tag", "n", "top-1", "top-3", "MRR / rejection"], rows)


def report_misses(run: Run, engine: Ours, names: dict[str, str]) -> None:
    print(f"\nmisses of {run.engine} (positive: first result not expected; NONE: any result)")
    by_line: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in run.outcomes:
        by_line[outcome.query.line].append(outcome)
    count = 0
    for line in sorted(by_line):
        failed = [o for o in by_line[line] if o.failed]
        if not failed:
            continue
        # One entry when NFC and NFD failed alike.
        if len(failed) == 2 and failed[0].codes == failed[1].codes:
            failed = failed[:1]
            forms = "NFC+NFD"
        else:
            forms = None
        for outcome in failed:
            count += 1
            q = outcome.query
            expected = ",".join(sorted(q.expected)) or "NONE"
            rank = outcome.rank
            where = f"rank {rank}" if rank else "absent"
            if q.negative:
                where = "returned something"
            print(f"- [{q.tag}] {q.query!r} ({forms or q.form}, line {q.line})")
            print(f"    expected {expected}: {where}")
            if outcome.error:
                print(f"    error: {outcome.error}")
            hits = engine.hits.get(q.query, [])
            if not hits:
                print("    got: nothing")
            for hit in hits:
                mark = "*" if hit.code in q.expected else " "
                print(f"   {mark}{hit.code}  {hit.score:>7}  {hit.name[:90]}")
    if not count:
        print("(none)")
    missing = {c for o in run.outcomes for c in o.query.expected} - set(names)
    if missing:
        print(f"expected codes absent from the catalogue: {', '.join(sorted(missing))}")


# ------------------------------------------------------------------------------------ main


def build_engines(procedures: Sequence[Procedure], database_url: str) -> list[Engine]:
    engines: list[Engine] = []
    builders: list[tuple[str, Callable[[], Engine]]] = [
        ("ours", lambda: Ours(procedures)),
        ("sqlite-fts5", lambda: SqliteFts5(procedures)),
        ("pg-trgm", lambda: PgTrgm(procedures, database_url)),
        ("tantivy", lambda: Tantivy(procedures)),
        ("rapidfuzz", lambda: RapidFuzz(procedures)),
    ]
    timings = []
    for name, build in builders:
        started = time.perf_counter()
        try:
            engine = build()
        except ImportError as error:
            print(f"{name}: not installed ({error}); peer skipped")
            continue
        except Exception as error:
            if name == "pg-trgm":
                print(f"PostgreSQL unreachable or unusable ({type(error).__name__}: {error});")
                print("  the pg-trgm peer is skipped")
            else:
                print(f"{name}: index build failed ({type(error).__name__}: {error}); skipped")
            continue
        timings.append(f"{name} {time.perf_counter() - started:.3f} s")
        engines.append(engine)
        if isinstance(engine, PgTrgm):
            print(f"pg-trgm: word_similarity_threshold {engine.threshold}")
    print("index build: " + ", ".join(timings))
    return engines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--eval",
        action="append",
        metavar="PATH",
        help="evaluation TSV (repeatable); default: the shared search_dev.tsv",
    )
    parser.add_argument("--misses", action="store_true", help="list our engine's failures")
    parser.add_argument("--limit", type=int, default=5, help="results asked of each engine")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the queries")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MOTCUA_BENCH_POSTGRES_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL for the pg-trgm peer (env MOTCUA_BENCH_POSTGRES_URL)",
    )
    args = parser.parse_args()
    database_url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")

    catalogue = load_bundled("commune")
    procedures = list(catalogue.procedures.values())
    names = {p.code: p.name for p in procedures}
    files = eval_files(args.eval)
    evaluations = []
    for path in files:
        if not path.is_file():
            print(f"evaluation file not found: {path} (skipped)")
            continue
        queries = read_eval(path)
        evaluations.append((path, queries))
    print(f"catalogue: commune, {len(procedures)} procedures")
    for path, queries in evaluations:
        negatives = sum(q.negative for q in queries)
        print(
            f"eval {path}: {len(queries)} queries ({len(queries) - negatives} positive, "
            f"{negatives} NONE), each as written (NFC) and in NFD: {2 * len(queries)} runs"
        )
    if not evaluations:
        print("no evaluation file: nothing to measure")
        return 0

    engines = build_engines(procedures, database_url)
    try:
        for path, queries in evaluations:
            expanded = with_nfd(queries)
            runs = [run_engine(engine, expanded, args.limit, args.rounds) for engine in engines]
            print(f"\n== {path.name}: {len(expanded)} runs, latencies over {args.rounds} rounds")
            report_file(runs, args.limit)
            ours = next((e for e in engines if isinstance(e, Ours)), None)
            if ours is None:
                continue
            ours_run = runs[engines.index(ours)]
            print(f"\n{path.name}: our engine by tag (NFC and NFD)")
            report_tags(ours_run)
            if args.misses:
                report_misses(ours_run, ours, names)
    finally:
        for engine in engines:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
