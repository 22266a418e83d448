"""Command line for the procedure catalogue: search it, or list its fields.

    python -m procedures_catalog search đăng ký khai sinh
    printf 'lam so do\\nxin giấy độc thân\\n' | python -m procedures_catalog search --batch
    python -m procedures_catalog fields

``search --batch`` reads one query per line on standard input and writes one line per query: a
JSON array (best first, at most ``--limit``) of objects with ``code``, ``name``, ``score`` and
``field``; ``[]`` when no procedure fits with confidence. The output is flushed after each line,
so it can be driven line by line through a pipe.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from procedures_catalog.loader import BUNDLED, Catalogue, load_bundled, read_catalogue_document
from procedures_catalog.search import SearchIndex

DEFAULT_CATALOGUE = "commune"


class CatalogueArgumentError(Exception):
    pass


def load_catalogue(spec: str) -> Catalogue:
    """A bundled catalogue by name ("commune", "national") or a catalogue file by path."""
    if spec in BUNDLED:
        return load_bundled(spec)
    path = Path(spec)
    if not path.is_file():
        raise CatalogueArgumentError(
            f"catalogue {spec!r}: no such file (or use one of: {', '.join(sorted(BUNDLED))})"
        )
    catalogue = Catalogue(path.name)
    if path.name.endswith((".json", ".json.gz")):
        try:
            procedures = read_catalogue_document(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogueArgumentError(f"{path}: not a catalogue file ({exc})") from exc
    else:
        from procedures_catalog.importer import CatalogueFileError, read_catalogue_file

        try:
            report = read_catalogue_file(path)
        except CatalogueFileError as exc:
            raise CatalogueArgumentError(str(exc)) from exc
        if report.fatal:
            raise CatalogueArgumentError(f"{path}: {report.fatal}")
        procedures = report.procedures
    for procedure in procedures:
        catalogue.procedures[procedure.code] = procedure
    return catalogue


def _hit_objects(index: SearchIndex, catalogue: Catalogue, query: str, limit: int) -> list[dict]:
    return [
        {
            "code": hit.code,
            "name": hit.name,
            "score": hit.score,
            "field": catalogue.procedures[hit.code].field,
        }
        for hit in index.search(query, limit=limit)
    ]


def _search(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(args.catalogue)
    index = SearchIndex(catalogue.procedures.values())
    out = sys.stdout
    if args.batch:
        for line in sys.stdin:
            query = line.rstrip("\r\n")
            out.write(
                json.dumps(_hit_objects(index, catalogue, query, args.limit), ensure_ascii=False)
            )
            out.write("\n")
            out.flush()
        return 0
    query = " ".join(args.query)
    if not query.strip():
        print("Nothing to search: give some words, or use --batch to read queries from stdin.")
        return 2
    if args.json:
        print(json.dumps(_hit_objects(index, catalogue, query, args.limit), ensure_ascii=False))
        return 0
    result = index.lookup(query, limit=args.limit)
    if result.corrections:
        print("Read as: " + ", ".join(f"{typed} → {read}" for typed, read in result.corrections))
    if not result.hits:
        print(f"No procedure fits “{query}” with confidence.")
        for hit in result.suggestions:
            print(f"  did you mean {hit.code}  {hit.name}")
        return 1
    for rank, hit in enumerate(result.hits, start=1):
        print(f"{rank}. {hit.code}  {hit.score:.3f}  {hit.name}")
    return 0


def _fields(args: argparse.Namespace) -> int:
    catalogue = load_catalogue(args.catalogue)
    index = SearchIndex(catalogue.procedures.values())
    if args.field:
        hits = index.in_field(args.field)
        if not hits:
            print(f"No field named “{args.field}”. Run without a name to list the fields.")
            return 1
        for hit in hits:
            print(f"{hit.code}  {hit.name}")
        return 0
    for name, count in index.fields():
        print(f"{count:4d}  {name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m procedures_catalog",
        description="Search the administrative procedure catalogue the way citizens type.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    search = commands.add_parser(
        "search",
        help="find procedures for a query",
        description="Find procedures for a query (Vietnamese, with or without diacritics).",
    )
    search.add_argument("query", nargs="*", help="the words to search for")
    search.add_argument(
        "--batch",
        action="store_true",
        help="read one query per line on stdin; write one JSON array per line on stdout",
    )
    search.add_argument(
        "--limit", type=_positive, default=5, help="at most this many results (default 5)"
    )
    search.add_argument(
        "--catalogue",
        default=DEFAULT_CATALOGUE,
        help="'commune' (default, 319 procedures), 'national' (2,642), or a catalogue file: "
        ".json/.json.gz export, portal .jsonl, .csv or .xlsx list",
    )
    search.add_argument("--json", action="store_true", help="print the JSON array for one query")
    search.set_defaults(handler=_search)
    fields = commands.add_parser(
        "fields", help="list the fields (lĩnh vực), or one field's procedures"
    )
    fields.add_argument("field", nargs="?", help="a field name, exactly as listed")
    fields.add_argument("--catalogue", default=DEFAULT_CATALOGUE, help="as for search")
    fields.set_defaults(handler=_fields)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: list[str] | None = None) -> int:
    # Queries and names are Vietnamese: read and write UTF-8 whatever the terminal's locale.
    for stream in (sys.stdin, sys.stdout):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CatalogueArgumentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
