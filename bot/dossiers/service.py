"""What the dossier handlers use: code parsing, lookups through the unit's source, deadlines,
rate limits and subscriptions. Built once per process (``DossierService.build``)."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.config import Settings, parse_limit
from bot.dossiers.calendar import WorkingCalendar
from bot.dossiers.model import Dossier, Lookup, normalize_code
from bot.dossiers.sources import DatabaseCache, DemoSource, DossierSource, LocalSource
from bot.storage.db import Database
from bot.storage.models import DossierLookupEntry, DossierSubscription, as_utc, utcnow
from procedures_catalog.loader import Catalogue
from procedures_catalog.schema import Channel, ProcessingTime

log = logging.getLogger("motcua.dossiers")

# A remote answer is reused for this long, so that the lookup made before the conversation's
# transaction (see ``prefetch``) serves the handler inside it without a second network call,
# also on the next turn (the citizen typing the last digits of their phone).
_MEMO_SECONDS = 60.0


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the oldest lookup in the window expires


class DossierService:
    """Dossier lookups for the unit the bot speaks for."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        catalogue: Catalogue,
        source: DossierSource,
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.catalogue = catalogue
        self.source = source
        self.unit = settings.unit
        self.calendar = calendar or WorkingCalendar(cutoff_hour=settings.dossier_cutoff_hour)
        self.pattern = re.compile(settings.dossier_code_pattern)
        # Finding a code inside a sentence ("ho so 000.00.15.H26-260115-0001 den dau roi").
        self._search = re.compile(
            r"(?<![\w.-])(" + settings.dossier_code_pattern + r")(?![\w-])", re.IGNORECASE
        )
        self.phone_check = settings.unit in settings.dossier_phone_check_units
        self.per_chat = parse_limit(settings.dossier_lookup_limit)
        self.overall = parse_limit(settings.dossier_global_lookup_limit)
        self._memo: dict[str, tuple[float, Lookup]] = {}

    @classmethod
    def build(cls, settings: Settings, db: Database, catalogue: Catalogue) -> DossierService:
        kind = settings.dossier_source_for(settings.unit)
        if kind == "http":
            from bot.dossiers.http_source import FieldMapping, HttpDossierSource

            mapping = FieldMapping.from_settings(
                settings.dossier_http_fields,
                settings.dossier_http_statuses,
                settings.dossier_http_channels,
            )
            token = settings.dossier_http_token
            source: DossierSource = HttpDossierSource(
                settings.unit,
                settings.dossier_http_url,
                mapping,
                cache=DatabaseCache(db),
                token=token.get_secret_value() if token else None,
                deadline=settings.dossier_http_timeout,
            )
        elif kind == "demo":
            source = DemoSource(settings.unit)
        else:
            source = LocalSource(db, settings.unit)
        return cls(settings, db, catalogue, source)

    # -- codes -------------------------------------------------------------------------------

    def parse_code(self, text: str) -> str | None:
        """The receipt code if the whole text is one (after tidying what people paste)."""
        code = normalize_code(text)
        return code if self.pattern.fullmatch(code) else None

    def find_code(self, text: str) -> str | None:
        """A receipt code anywhere in a message, or None."""
        tidied = re.sub(r"\s*[-‐‑‒–—―]\s*", "-", text)
        found = self._search.search(tidied)
        return normalize_code(found.group(1)) if found else None

    # -- lookups -----------------------------------------------------------------------------

    async def lookup(self, code: str) -> Lookup:
        """Ask the unit's source; a remote answer is reused for a few seconds."""
        if not self.source.remote:
            return await self.source.lookup(code)
        now = time.monotonic()
        memo = self._memo.get(code)
        # A degraded answer is kept only long enough to serve the turn it was fetched for.
        if memo and now - memo[0] < (_MEMO_SECONDS if memo[1].fresh else 5.0):
            return memo[1]
        result = await self.source.lookup(code)
        if len(self._memo) > 10_000:
            self._memo.clear()
        self._memo[code] = (now, result)
        return result

    async def prefetch(self, text: str, who: str) -> None:
        """Warm the memo for a code in a message, outside any transaction (a slow upstream must
        not hold the conversation's database lock). Skipped when the chat is over its limit,
        so that a flood of codes does not reach the upstream either."""
        if not self.source.remote:
            return
        code = self.find_code(text) or self.parse_code(text)
        if not code:
            return
        async with self.db.session() as session:
            if not (await self._within_limits(session, who, record=False)).allowed:
                return
        await self.lookup(code)

    def due_at(self, dossier: Dossier) -> datetime | None:
        """The due date: the one the source gives, else counted from the catalogue's processing
        time for the way the dossier was received, in working days from the original receipt."""
        if dossier.due_at:
            return dossier.due_at
        procedure = self.catalogue.procedures.get(dossier.procedure_code or "")
        if procedure is None:
            return None
        option = procedure.channel(Channel(dossier.channel.value))
        if option is None and procedure.channels:
            option = procedure.channels[0]
        time_ = option.time if option else ProcessingTime()
        return self.calendar.due_at(dossier.received_at, time_)

    def procedure_name(self, dossier: Dossier) -> str | None:
        procedure = self.catalogue.procedures.get(dossier.procedure_code or "")
        return procedure.name if procedure else dossier.procedure_name

    # -- rate limits -------------------------------------------------------------------------

    async def check_rate(self, session, who: str) -> RateDecision:
        """Whether this conversation may look up a code now; records the attempt if so.

        Counted in the database, so every process shares the limits."""
        return await self._within_limits(session, who, record=True)

    async def _within_limits(self, session, who: str, *, record: bool) -> RateDecision:
        now = utcnow()
        tag = _who(who)
        for key, (limit, window) in ((tag, self.per_chat), (None, self.overall)):
            since = now - timedelta(seconds=window)
            query = select(func.count(), func.min(DossierLookupEntry.at)).where(
                DossierLookupEntry.at > since
            )
            if key is not None:
                query = query.where(DossierLookupEntry.who == key)
            count, oldest = (await session.execute(query)).one()
            if count >= limit:
                wait = window - (now - as_utc(oldest)).total_seconds() if oldest else window
                return RateDecision(False, max(1.0, wait))
        if record:
            session.add(DossierLookupEntry(who=tag, at=now, outcome="lookup"))
        return RateDecision(True)

    # -- subscriptions -----------------------------------------------------------------------

    async def subscribe(
        self, session, channel: str, conversation_id: str, dossier: Dossier, locale: str
    ) -> bool:
        """Subscribe a conversation to a dossier; False if it already was. The changes so far
        count as told (the citizen has just seen the card)."""
        table = DossierSubscription.__table__
        insert = sqlite.insert if self.db.is_sqlite else postgresql.insert
        values = dict(
            channel=channel,
            conversation_id=conversation_id,
            unit=dossier.unit,
            code=dossier.code,
            locale=locale,
            notified=len(dossier.history),
            created_at=utcnow(),
            ended_at=None,
        )
        statement = insert(table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.channel, table.c.conversation_id, table.c.unit, table.c.code],
            set_={"locale": locale, "notified": len(dossier.history), "ended_at": None},
            where=table.c.ended_at.is_not(None),
        )
        result = await session.execute(statement)
        return result.rowcount == 1

    async def unsubscribe(self, session, channel: str, conversation_id: str, code: str) -> bool:
        result = await session.execute(
            update(DossierSubscription)
            .where(
                DossierSubscription.channel == channel,
                DossierSubscription.conversation_id == conversation_id,
                DossierSubscription.unit == self.unit,
                DossierSubscription.code == code,
                DossierSubscription.ended_at.is_(None),
            )
            .values(ended_at=utcnow())
        )
        return result.rowcount == 1

    async def subscriptions(self, session, channel: str, conversation_id: str) -> list[str]:
        """Codes this conversation follows."""
        rows = await session.scalars(
            select(DossierSubscription.code)
            .where(
                DossierSubscription.channel == channel,
                DossierSubscription.conversation_id == conversation_id,
                DossierSubscription.ended_at.is_(None),
            )
            .order_by(DossierSubscription.id)
        )
        return list(rows)

    async def close(self) -> None:
        await self.source.close()


def _who(conversation_key: str) -> str:
    """A short one-way tag of a conversation for the lookup log."""
    return hashlib.sha256(conversation_key.encode()).hexdigest()[:16]
