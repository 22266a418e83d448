"""The procedure catalogue in the database: filled from the bundled files or an import, read
into memory (procedures_catalog.loader.Catalogue) when the bot starts."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.models import CatalogueProcedure, UnitProfile, utcnow
from procedures_catalog.importer import ImportReport
from procedures_catalog.loader import Catalogue, load_bundled, load_bundled_units
from procedures_catalog.schema import Procedure, Unit

log = logging.getLogger("motcua.catalogue")

# Fields a province's list file may set; the rest of a full record is kept as it is.
LIST_FIELDS = ("name", "field", "agency", "levels", "online_level")


@dataclass
class ApplyResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def content_hash(document: dict) -> str:
    return hashlib.sha256(
        json.dumps(document, ensure_ascii=False, sort_keys=True).encode()
    ).hexdigest()


class CatalogueStore:
    """Reads and writes one named catalogue and the unit profiles."""

    def __init__(self, db: Database, name: str) -> None:
        self.db = db
        self.name = name

    async def count(self) -> int:
        async with self.db.session() as session:
            return await session.scalar(
                select(func.count()).where(CatalogueProcedure.catalogue == self.name)
            )

    async def ensure_bundled(self) -> int:
        """Load the bundled catalogue and units if the database has none yet; return how many."""
        loaded = 0
        if await self.count() == 0:
            bundled = load_bundled(self.name)
            report = ImportReport(path=f"bundled:{self.name}", format="portal")
            report.procedures = list(bundled.procedures.values())
            loaded = (await self.apply(report)).added
            log.info("loaded the bundled %s catalogue: %d procedures", self.name, loaded)
        async with self.db.write_transaction() as session:
            have = set(await session.scalars(select(UnitProfile.id)))
            for unit in load_bundled_units():
                if unit.id not in have:
                    session.add(UnitProfile(id=unit.id, document=unit.to_dict()))
        return loaded

    async def apply(self, report: ImportReport) -> ApplyResult:
        """Write the report's procedures in one transaction: all of them or, on error, none."""
        if not report.ok:
            raise ValueError("refusing to apply an import report with problems")
        result = ApplyResult()
        async with self.db.write_transaction() as session:
            rows = {
                row.code: row
                for row in await session.scalars(
                    select(CatalogueProcedure).where(CatalogueProcedure.catalogue == self.name)
                )
            }
            for procedure in report.procedures:
                row = rows.get(procedure.code)
                if report.format == "list" and row is not None:
                    procedure = _merge_list_fields(Procedure.from_dict(row.document), procedure)
                document = procedure.to_dict()
                digest = content_hash(document)
                if row is None:
                    session.add(
                        CatalogueProcedure(
                            catalogue=self.name,
                            code=procedure.code,
                            name=procedure.name,
                            field=procedure.field,
                            document=document,
                            content_hash=digest,
                        )
                    )
                    result.added += 1
                elif row.content_hash == digest:
                    result.unchanged += 1
                else:
                    row.name, row.field, row.document = procedure.name, procedure.field, document
                    row.content_hash, row.updated_at = digest, utcnow()
                    result.updated += 1
        return result

    async def load(self) -> Catalogue:
        """Read the whole catalogue and the units into memory."""
        catalogue = Catalogue(self.name)
        async with self.db.session() as session:
            # Streamed in batches so that the decoded JSON of every row is not held at once.
            documents = await session.stream_scalars(
                select(CatalogueProcedure.document)
                .where(CatalogueProcedure.catalogue == self.name)
                .execution_options(yield_per=200)
            )
            async for document in documents:
                procedure = Procedure.from_dict(document)
                catalogue.procedures[procedure.code] = procedure
            for document in await session.scalars(select(UnitProfile.document)):
                unit = Unit.from_dict(document)
                catalogue.units[unit.id] = unit
        return catalogue

    async def export(self) -> dict:
        catalogue = await self.load()
        return {
            "catalogue": self.name,
            "count": len(catalogue),
            "procedures": [
                catalogue.procedures[code].to_dict() for code in sorted(catalogue.procedures)
            ],
        }


def _merge_list_fields(existing: Procedure, listed: Procedure) -> Procedure:
    """A list row updates names and labels but never wipes the documents, fees or times."""
    for name in LIST_FIELDS:
        value = getattr(listed, name)
        if value:
            setattr(existing, name, value)
    return existing
