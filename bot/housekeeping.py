"""Deletes rows that have served their purpose, once at start and then every hour.

- ``inbound_messages`` after 7 days: platforms stop re-delivering an update long before;
- ``dossier_lookups`` after 2 days: the rate-limit windows are minutes long;
- sent ``outbox`` messages after 30 days (kept a while to answer "did the citizen get it?");
  messages a web page never came back to fetch are marked failed after 30 days (they stay in
  the feedback's or dossier's own history);
- attachment files no feedback refers to, after 30 days (files of drafts never sent; a draft
  left that long is abandoned);
- photos sent for conversion to PDF and never converted, after
  ``MOTCUA_SUBMISSION_PHOTO_RETENTION_MINUTES`` (converted ones are deleted at delivery).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, select, update

from bot.background import Periodic
from bot.feedback.attachments import AttachmentStore
from bot.storage.db import Database
from bot.storage.models import (
    DossierLookupEntry,
    FeedbackAttachment,
    InboundMessage,
    OutboxMessage,
    utcnow,
)

log = logging.getLogger("motcua.housekeeping")

KEEP = {
    "inbound_messages": timedelta(days=7),
    "dossier_lookups": timedelta(days=2),
    "outbox": timedelta(days=30),
    "unfetched": timedelta(days=30),
    "attachments": timedelta(days=30),
}


async def prune(
    db: Database,
    store: AttachmentStore | None = None,
    photo_retention: timedelta = timedelta(hours=1),
) -> dict[str, int]:
    """Delete old rows; return how many per table."""
    now = utcnow()
    statements = {
        "inbound_messages": delete(InboundMessage).where(
            InboundMessage.received_at < now - KEEP["inbound_messages"]
        ),
        "dossier_lookups": delete(DossierLookupEntry).where(
            DossierLookupEntry.at < now - KEEP["dossier_lookups"]
        ),
        "outbox": delete(OutboxMessage).where(
            OutboxMessage.sent_at.is_not(None), OutboxMessage.sent_at < now - KEEP["outbox"]
        ),
    }
    statements["unfetched"] = (
        update(OutboxMessage)
        .where(
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None),
            OutboxMessage.created_at < now - KEEP["unfetched"],
        )
        .values(failed_at=now, last_error="not fetched")
    )
    counts = {}
    for table, statement in statements.items():
        async with db.write_transaction() as session:  # short transactions: chats go on
            counts[table] = (await session.execute(statement)).rowcount
    if store is not None:
        async with db.session() as session:
            referenced = set(await session.scalars(select(FeedbackAttachment.sha256)))
        counts["attachments"] = await asyncio.to_thread(
            store.delete_unreferenced, referenced, KEEP["attachments"]
        )
        # Photos of an online-submission conversion the citizen never finished.
        photos = AttachmentStore(store.root / "submission")
        counts["submission_photos"] = await asyncio.to_thread(
            photos.delete_unreferenced, set(), photo_retention
        )
    return counts


class Housekeeping(Periodic):
    name = "housekeeping"

    def __init__(
        self,
        db: Database,
        store: AttachmentStore | None = None,
        interval: float = 3600.0,
        photo_retention: timedelta = timedelta(hours=1),
    ) -> None:
        self.db = db
        self.store = store
        self.interval = interval
        self.photo_retention = photo_retention

    async def run_once(self) -> dict[str, int]:
        counts = await prune(self.db, self.store, self.photo_retention)
        if any(counts.values()):
            log.info("pruned %s", counts)
        return counts
