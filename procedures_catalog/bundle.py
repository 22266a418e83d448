"""Build the catalogue files bundled with the project from the portal's records.

    python -m procedures_catalog.bundle ../shared/data/tthc/portal_procedures.jsonl

writes procedures_catalog/data/commune.json (what a commune's one-stop desk handles) and
procedures_catalog/data/national.json.gz (every record). Rerun it when the source data changes;
the output is sorted by code so that diffs show real changes only.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from procedures_catalog.importer import read_catalogue_file
from procedures_catalog.schema import Procedure

DATA_DIR = Path(__file__).parent / "data"
COMMUNE_FILE = DATA_DIR / "commune.json"
NATIONAL_FILE = DATA_DIR / "national.json.gz"
UNITS_DIR = DATA_DIR / "units"
COMMUNE_LEVEL = "Cấp xã"
# Labelled "Cấp xã" on the portal but not handled at a commune's one-stop desk (see data README).
NOT_AT_COMMUNE_DESK = frozenset(
    {"Hải quan", "Thuế", "Hàng hải và đường thủy nội địa", "Kho bạc Nhà nước"}
)
SOURCE_NOTE = (
    "National Public Service Portal records crawled in mid-2026 by the public repository "
    "chatbot-tthc/chatbot_tthc (commit 53229487610b07e0d7127f529b87c333f19aeb1e)"
)


def is_commune_procedure(procedure: Procedure) -> bool:
    return COMMUNE_LEVEL in procedure.levels and procedure.field not in NOT_AT_COMMUNE_DESK


def catalogue_document(name: str, procedures: list[Procedure]) -> dict:
    return {
        "catalogue": name,
        "source": SOURCE_NOTE,
        "count": len(procedures),
        "procedures": [p.to_dict() for p in sorted(procedures, key=lambda p: p.code)],
    }


def write_json(path: Path, document: dict) -> None:
    text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    if path.suffix == ".gz":
        # mtime=0 keeps the file byte-identical when the content is, so reruns leave no diff.
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh,
        ):
            fh.write(text.encode("utf-8"))
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="portal_procedures.jsonl")
    args = parser.parse_args(argv)
    report = read_catalogue_file(args.source, retrieved="mid-2026")
    if not report.ok:
        for problem in report.problems():
            print(problem, file=sys.stderr)
        return 1
    commune = [p for p in report.procedures if is_commune_procedure(p)]
    DATA_DIR.mkdir(exist_ok=True)
    write_json(COMMUNE_FILE, catalogue_document("commune", commune))
    write_json(NATIONAL_FILE, catalogue_document("national", report.procedures))
    print(f"commune: {len(commune)} procedures -> {COMMUNE_FILE}")
    print(f"national: {len(report.procedures)} procedures -> {NATIONAL_FILE}")
    print(f"partially parsed: {len(report.partial)} (see 'issues' in each record)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
