"""Load catalogue files (bundled or exported) into memory."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

from procedures_catalog.bundle import COMMUNE_FILE, NATIONAL_FILE, UNITS_DIR
from procedures_catalog.schema import Procedure, Unit

BUNDLED = {"commune": COMMUNE_FILE, "national": NATIONAL_FILE}


@dataclass
class Catalogue:
    """Procedures by national code, plus the units (communes) that apply some of them."""

    name: str
    procedures: dict[str, Procedure] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)

    def get(self, code: str) -> Procedure | None:
        return self.procedures.get(code.strip())

    def __len__(self) -> int:
        return len(self.procedures)


def read_catalogue_document(path: Path) -> list[Procedure]:
    """Read a {"procedures": [...]} file (optionally gzipped) into Procedures."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        document = json.load(fh)
    return [Procedure.from_dict(item) for item in document["procedures"]]


def load_bundled(name: str = "commune") -> Catalogue:
    """The catalogue shipped with the project ("commune" or "national") and the bundled units."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled catalogue {name!r}; choose from {sorted(BUNDLED)}")
    catalogue = Catalogue(name)
    for procedure in read_catalogue_document(BUNDLED[name]):
        catalogue.procedures[procedure.code] = procedure
    for unit in load_bundled_units():
        catalogue.units[unit.id] = unit
    return catalogue


def load_bundled_units() -> list[Unit]:
    if not UNITS_DIR.is_dir():
        return []
    return [
        Unit.from_dict(json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(UNITS_DIR.glob("*.json"))
    ]
