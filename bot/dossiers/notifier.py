"""Pushes dossier changes to the conversations that subscribed to them.

Every ``interval`` seconds the notifier asks the unit's source about each followed dossier; for
every change a subscriber has not been told about it queues one message in the outbox and moves
the subscription's ``notified`` count forward in the same transaction (guarded by the old count,
so two processes cannot queue the same change twice). Subscriptions end when the dossier closes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import select, update

from bot.background import Periodic
from bot.core.messages import Reply
from bot.dossiers.model import Dossier
from bot.dossiers.service import DossierService
from bot.i18n import Translator, translator
from bot.outbox import enqueue
from bot.storage.models import DossierSubscription, utcnow

# (translator, service, dossier, index of the change in its history) -> the message to push.
Render = Callable[[Translator, DossierService, Dossier, int], Reply]

log = logging.getLogger("motcua.dossiers.notifier")


class DossierNotifier(Periodic):
    name = "dossier-notifier"

    def __init__(
        self,
        service: DossierService,
        *,
        interval: float,
        channels: frozenset[str],
        render: Render,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.service = service
        self.db = service.db
        self.interval = interval
        self.channels = channels
        self.on_queued = on_queued
        self.render = render

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    async def run_once(self) -> int:
        """Check every followed dossier once; return how many messages were queued."""
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(DossierSubscription).where(
                        DossierSubscription.ended_at.is_(None),
                        DossierSubscription.unit == self.service.unit,
                        DossierSubscription.channel.in_(list(self.channels)),
                    )
                )
            ).scalars()
            by_code = defaultdict(list)
            for sub in rows:
                by_code[sub.code].append(
                    (sub.id, sub.channel, sub.conversation_id, sub.locale, sub.notified)
                )
        queued = 0
        for code, subscribers in by_code.items():
            lookup = await self.service.source.lookup(code)
            if lookup.dossier is None or lookup.stale or lookup.unavailable:
                continue  # nothing new can be said; try again next round
            for subscriber in subscribers:
                queued += await self._notify(lookup.dossier, *subscriber)
        if queued:
            self.on_queued()
        return queued

    async def _notify(self, dossier, sub_id, channel, conversation_id, locale, notified) -> int:
        changes = len(dossier.history)
        if changes <= notified and not dossier.closed:
            return 0
        t = translator(locale)
        new = range(notified, changes)
        async with self.db.write_transaction() as session:
            result = await session.execute(
                update(DossierSubscription)
                .where(
                    DossierSubscription.id == sub_id,
                    DossierSubscription.notified == notified,
                    DossierSubscription.ended_at.is_(None),
                )
                .values(
                    notified=max(changes, notified),
                    ended_at=utcnow() if dossier.closed else None,
                )
            )
            if result.rowcount != 1:
                return 0  # another process got there first
            for index in new:
                enqueue(
                    session,
                    channel,
                    conversation_id,
                    [self.render(t, self.service, dossier, index)],
                    "dossier_update",
                )
        return len(new)
