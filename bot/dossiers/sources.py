"""Where dossier statuses come from: one protocol, several sources (FixMyStreet's pluggable
fetchers). The source of each unit is chosen in settings (see ``source_kind``).

- ``LocalSource``: the ``dossiers`` table, filled by ``motcua dossiers import`` and by staff;
- ``HttpDossierSource`` (http_source.py): a provincial one-stop system over HTTP;
- ``DemoSource``: clearly fake dossiers (codes ``DEMO-000000-000N``) for demonstrations.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from bot.dossiers.model import (
    Dossier,
    Lookup,
    ReceiptChannel,
    StatusChange,
    dossier_from_dict,
    dossier_to_dict,
)
from bot.storage.db import Database
from bot.storage.models import DossierCacheEntry, DossierEvent, DossierRecord, as_utc, utcnow

SOURCE_KINDS = ("local", "http", "demo")


class DossierSource(Protocol):
    """Answers "where is dossier CODE?" for one unit."""

    name: str
    remote: bool  # lookups cross the network: run them outside database transactions

    async def lookup(self, code: str) -> Lookup: ...

    async def close(self) -> None: ...


class LocalSource:
    """Dossiers in our own database."""

    name = "local"
    remote = False

    def __init__(self, db: Database, unit: str) -> None:
        self.db = db
        self.unit = unit

    async def lookup(self, code: str) -> Lookup:
        # A plain connection, not an ORM session: one round trip for a read-only query.
        async with self.db.engine.connect() as connection:
            dossier = await load_dossier(connection, self.unit, code)
        return Lookup(dossier, utcnow())

    async def close(self) -> None:
        return None


def _load_statement():
    """One round trip: the dossier joined to its history, oldest change first."""
    d, e = DossierRecord.__table__, DossierEvent.__table__
    return (
        select(
            d.c.procedure_code,
            d.c.procedure_name,
            d.c.received_at,
            d.c.channel,
            d.c.due_at,
            d.c.status,
            d.c.phone_last4,
            e.c.status.label("event_status"),
            e.c.at.label("event_at"),
            e.c.note.label("event_note"),
        )
        .select_from(d.outerjoin(e, (e.c.unit == d.c.unit) & (e.c.code == d.c.code)))
        .where(d.c.unit == bindparam("unit"), d.c.code == bindparam("code"))
        .order_by(e.c.id)
    )


_LOAD = _load_statement()


async def load_dossier(session, unit: str, code: str) -> Dossier | None:
    """Read one local dossier and its history (one indexed query)."""
    rows = (await session.execute(_LOAD, {"unit": unit, "code": code})).all()
    if not rows:
        return None
    first = rows[0]
    return Dossier(
        code=code,
        unit=unit,
        received_at=as_utc(first.received_at),
        channel=ReceiptChannel(first.channel),
        status=first.status,
        procedure_code=first.procedure_code,
        procedure_name=first.procedure_name,
        due_at=as_utc(first.due_at),
        history=tuple(
            StatusChange(row.event_status, as_utc(row.event_at), row.event_note or "")
            for row in rows
            if row.event_status is not None
        ),
        phone_last4=first.phone_last4,
    )


class DatabaseCache:
    """The last answer of an upstream system per code, kept in the database so that it
    survives restarts and is shared by every process (the ``DossierCache`` protocol)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, unit: str, code: str) -> tuple[Dossier, datetime] | None:
        async with self.db.session() as session:
            entry = await session.get(DossierCacheEntry, (unit, code))
        if entry is None:
            return None
        return dossier_from_dict(entry.document), as_utc(entry.fetched_at)

    async def put(self, unit: str, code: str, dossier: Dossier, fetched_at: datetime) -> None:
        table = DossierCacheEntry.__table__
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        values = {"document": dossier_to_dict(dossier), "fetched_at": fetched_at}
        statement = (
            insert(table)
            .values(unit=unit, code=code, **values)
            .on_conflict_do_update(index_elements=[table.c.unit, table.c.code], set_=values)
        )
        async with self.db.write_transaction() as session:
            await session.execute(statement)


# Demo dossiers: one per kind of situation a citizen may meet, dated relative to now so that a
# demonstration always looks current. Codes cannot collide with real ones ("DEMO", date 000000).
_DEMO = (
    # code suffix, procedure, channel, received working-days ago, [(status, days after, note)]
    ("0001", "1.001193", ReceiptChannel.ONLINE, 0, [("received", 0, "")]),
    (
        "0002",
        "1.000894",
        ReceiptChannel.IN_PERSON,
        2,
        [("received", 0, ""), ("in_progress", 1, "")],
    ),
    (
        "0003",
        "1.000656",
        ReceiptChannel.ONLINE,
        3,
        [
            ("received", 0, ""),
            ("in_progress", 1, ""),
            (
                "needs_documents",
                2,
                "(Dữ liệu minh họa) Bổ sung bản sao giấy báo tử. / (Demo data) Add a copy of the "
                "death notice.",
            ),
        ],
    ),
    ("0004", "2.000908", ReceiptChannel.POSTAL, 4, [("received", 0, ""), ("result_ready", 1, "")]),
    (
        "0005",
        "1.001193",
        ReceiptChannel.IN_PERSON,
        10,
        [("received", 0, ""), ("in_progress", 1, ""), ("returned_on_time", 2, "")],
    ),
    ("0006", "1.000894", ReceiptChannel.ONLINE, 9, [("received", 0, ""), ("in_progress", 1, "")]),
)
DEMO_PREFIX = "DEMO-000000-"


class DemoSource:
    """Clearly fake dossiers for demonstrations (``DEMO-000000-0001`` … ``-0006``)."""

    name = "demo"
    remote = False

    def __init__(self, unit: str, calendar=None) -> None:
        self.unit = unit
        self.calendar = calendar

    def codes(self) -> list[str]:
        return [DEMO_PREFIX + suffix for suffix, *_ in _DEMO]

    async def lookup(self, code: str) -> Lookup:
        now = utcnow()
        for suffix, procedure, channel, ago, changes in _DEMO:
            if code != DEMO_PREFIX + suffix:
                continue
            received = now.replace(microsecond=0) - timedelta(days=ago, hours=1)
            history = tuple(
                StatusChange(status, min(now, received + timedelta(days=after, hours=2)), note)
                for status, after, note in changes
            )
            return Lookup(
                Dossier(
                    code=code,
                    unit=self.unit,
                    received_at=received,
                    channel=channel,
                    status=history[-1].status,
                    procedure_code=procedure,
                    history=history,
                    phone_last4="0000",
                ),
                now,
            )
        return Lookup(None, now)

    async def close(self) -> None:
        return None
