"""The feedback inbox's filters: read from the page's query string, applied in SQL, always
within one unit."""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from sqlalchemy import and_, func, or_, select

from bot.dossiers.model import VN_TZ
from bot.feedback.model import KINDS, STATUSES, TOPICS, StatusKind
from bot.storage.models import Feedback, utcnow

PAGE_SIZE = 25
MAX_QUERY = 100
MAX_WORDS = 8
# Open and not answered yet: what "overdue" means (as FeedbackView.overdue).
WAITING = [
    code
    for code, status in STATUSES.items()
    if status.kind is StatusKind.OPEN and code != "answered"
]


@dataclass(frozen=True)
class InboxFilter:
    status: str = ""
    kind: str = ""
    topic: str = ""
    overdue: bool = False
    date_from: date | None = None  # received on or after this day (Vietnam time)
    date_to: date | None = None  # received on or before this day
    q: str = ""  # words of the content (all of them), or (part of) a tracking code
    page: int = 1

    @classmethod
    def from_query(cls, query) -> InboxFilter:
        """The filters of a query string; a value that means nothing is left out."""

        def pick(name: str, allowed) -> str:
            value = query.get(name, "")
            return value if value in allowed else ""

        text = unicodedata.normalize("NFC", " ".join(query.get("q", "").split()))[:MAX_QUERY]
        try:
            page = max(1, min(int(query.get("page", "1")), 10_000))
        except ValueError:
            page = 1
        return cls(
            status=pick("status", STATUSES),
            kind=pick("kind", KINDS),
            topic=pick("topic", TOPICS),
            overdue=query.get("overdue") == "1",
            date_from=_day(query.get("from")),
            date_to=_day(query.get("to")),
            q=text,
            page=page,
        )

    @property
    def active(self) -> bool:
        return replace(self, page=1) != InboxFilter()

    def conditions(self, unit: str) -> list:
        now = utcnow()
        where = [Feedback.unit == unit]
        if self.status:
            where.append(Feedback.status == self.status)
        if self.kind:
            where.append(Feedback.kind == self.kind)
        if self.topic:
            where.append(Feedback.topic == self.topic)
        if self.overdue:
            where += [
                Feedback.due_at.is_not(None),
                Feedback.due_at < now,
                Feedback.status.in_(WAITING),
            ]
        if self.date_from:
            where.append(Feedback.created_at >= _start(self.date_from))
        if self.date_to:
            where.append(Feedback.created_at < _start(self.date_to + timedelta(days=1)))
        if self.q:
            # Every word somewhere in the content (in any order), or part of the code.
            words = [
                or_(
                    *(
                        Feedback.content.ilike(_pattern(variant), escape="\\")
                        for variant in _cases(word)
                    )
                )
                for word in self.q.split()[:MAX_WORDS]
            ]
            where.append(
                or_(Feedback.tracking_code.ilike(_pattern(self.q), escape="\\"), and_(*words))
            )
        return where

    async def run(self, session, unit: str) -> tuple[list[Feedback], int]:
        """One page of the unit's matching feedback, newest first, and how many match."""
        where = self.conditions(unit)
        total = await session.scalar(select(func.count()).select_from(Feedback).where(*where))
        rows = await session.scalars(
            select(Feedback)
            .where(*where)
            .order_by(Feedback.created_at.desc(), Feedback.id.desc())
            .limit(PAGE_SIZE)
            .offset((self.page - 1) * PAGE_SIZE)
        )
        return list(rows), total

    def query_string(self, **changes) -> str:
        """This filter as a query string (e.g. for the next page's link)."""
        values = asdict(replace(self, **changes))
        params = {
            "status": values["status"],
            "kind": values["kind"],
            "topic": values["topic"],
            "overdue": "1" if values["overdue"] else "",
            "from": values["date_from"].isoformat() if values["date_from"] else "",
            "to": values["date_to"].isoformat() if values["date_to"] else "",
            "q": values["q"],
            "page": str(values["page"]) if values["page"] > 1 else "",
        }
        return urlencode({key: value for key, value in params.items() if value})


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _start(day: date) -> datetime:
    """Midnight of a Vietnamese day, in UTC (as every time is stored)."""
    return datetime.combine(day, time(0), VN_TZ).astimezone(UTC)


def _pattern(text: str) -> str:
    """``text`` anywhere, with LIKE's own % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _cases(text: str) -> list[str]:
    """The ways a word is usually capitalised. SQLite's LIKE ignores case for ASCII letters
    only, so "đèn" would not find "Đèn"; PostgreSQL's ILIKE needs just the first."""
    lower = text.lower()
    return list(dict.fromkeys((text, lower, lower.capitalize(), text.upper())))
