"""Old rows are pruned; recent ones and unsent messages are kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.housekeeping import prune
from bot.storage.models import DossierLookupEntry, InboundMessage, OutboxMessage, utcnow


async def test_prune_removes_only_what_has_served_its_purpose(db) -> None:
    now = utcnow()
    old = now - timedelta(days=40)
    async with db.write_transaction() as session:
        session.add_all(
            [
                InboundMessage(channel="telegram", message_id="old", received_at=old),
                InboundMessage(channel="telegram", message_id="new", received_at=now),
                DossierLookupEntry(who="a", at=old, outcome="lookup"),
                DossierLookupEntry(who="a", at=now, outcome="lookup"),
            ]
        )
        for sent_at in (old, now, None):
            session.add(
                OutboxMessage(
                    channel="telegram",
                    conversation_id="1",
                    replies=[],
                    reason="t",
                    created_at=old,
                    next_attempt_at=old,
                    attempts=0,
                    sent_at=sent_at,
                )
            )
    assert await prune(db) == {
        "inbound_messages": 1,
        "dossier_lookups": 1,
        "outbox": 1,
        "unfetched": 1,
    }
    async with db.session() as session:
        for model in (InboundMessage, DossierLookupEntry):
            assert await session.scalar(select(func.count()).select_from(model)) == 1
        # The unsent old message stays, marked failed: nobody came to fetch it in 30 days.
        left = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert [m.failed_at is not None for m in left] == [False, True]


async def test_prune_removes_old_files_no_feedback_refers_to(db, tmp_path) -> None:
    import os

    from bot.feedback.attachments import AttachmentStore
    from bot.storage.models import FeedbackAttachment

    store = AttachmentStore(tmp_path / "files")
    kept = store.put(b"%PDF-1.4 kept")
    dropped = store.put(b"%PDF-1.4 dropped")
    young = store.put(b"%PDF-1.4 young")
    old = (utcnow() - timedelta(days=40)).timestamp()
    for stored in (kept, dropped):
        os.utime(store.path(stored.sha256), (old, old))
    async with db.write_transaction() as session:
        session.add(
            FeedbackAttachment(
                feedback_id=1,
                sha256=kept.sha256,
                filename="a.pdf",
                mime_type="application/pdf",
                size=kept.size,
            )
        )
    counts = await prune(db, store)
    assert counts["attachments"] == 1
    assert store.exists(kept.sha256) and store.exists(young.sha256)
    assert not store.exists(dropped.sha256)
