"""Deadlines of dossiers in working days (ngày làm việc), as the one-stop desk counts them.

Working days are Monday to Friday (public servants do not work on Saturdays), minus the public
holidays of ``holidays.Vietnam`` (which computes Tết from the lunar calendar and knows some
official swaps), adjusted by the table of official swaps in ``data/working_day_swaps.csv``.

Counting rule, the one printed on receipt slips (the receipt day is not a full day of work):

* The *start day* is the Vietnam-time date of receipt if that is a working day and the receipt
  came before ``cutoff_hour``; otherwise the next working day (a dossier handed in on Saturday,
  or on Friday at 17:30 with the default cut-off of 17, starts on Monday).
* ``n`` working days: due at ``closing_hour`` of the n-th working day *after* the start day.
  Received Monday 09:00 with 3 working days: due Thursday 17:00. A fractional value is rounded
  up (0.5 day counts as 1): the desk is never held to a deadline shorter than the catalogue's.
  0 working days means the start day itself.
* ``n`` days (calendar days): start day + n, moved on to the next working day if it is not one.
* ``n`` hours: ceil(n / 8) working days (an 8-hour working day); office hours vary by commune,
  so counting hours within the day would be false precision.
* ``n`` months: same day n months after the start day (clamped to the month's end, rounded up
  to whole months), moved on to the next working day if needed.

Lateness is always measured from the ORIGINAL receipt time: callers pass ``Dossier.received_at``
as first recorded, never the time of a re-sync or an edit, so the clock cannot be restarted.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from typing import Literal

import holidays
from dateutil.relativedelta import relativedelta

from bot.dossiers.model import VN_TZ, utc
from procedures_catalog.schema import ProcessingTime, TimeUnit

_HEADER = ["day_off", "working_day", "source"]
_HOURS_PER_DAY = 8


@dataclass(frozen=True)
class Swap:
    """An official swap: ``day_off`` (a weekday) is a holiday, ``working_day`` is worked."""

    day_off: date
    working_day: date
    source: str  # the official document, so a desk can check the row


def load_swaps(text: str | None = None, *, origin: str = "working_day_swaps.csv") -> list[Swap]:
    """Parse the swaps CSV (the bundled one when ``text`` is None).

    Raises ValueError naming ``origin`` and the line number of the first bad row, so that a
    commune editing the table sees at once which row to fix.
    """
    if text is None:
        resource = files("bot.dossiers").joinpath("data/working_day_swaps.csv")
        text = resource.read_text(encoding="utf-8")
    swaps: list[Swap] = []
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        row = [cell.strip() for cell in next(csv.reader([line]))]
        where = f"{origin} line {lineno}"
        if not header_seen:
            if row != _HEADER:
                raise ValueError(f"{where}: expected header {','.join(_HEADER)}, got {line!r}")
            header_seen = True
            continue
        if len(row) != 3:
            raise ValueError(f"{where}: expected 3 columns {_HEADER}, got {len(row)}")
        try:
            day_off, working_day = date.fromisoformat(row[0]), date.fromisoformat(row[1])
        except ValueError as exc:
            raise ValueError(f"{where}: bad date ({exc})") from None
        if day_off.weekday() >= 5 or working_day.weekday() < 5:
            raise ValueError(f"{where}: day_off must be Mon-Fri and working_day Sat/Sun")
        if not row[2]:
            raise ValueError(f"{where}: source is empty; cite the official document")
        swaps.append(Swap(day_off, working_day, row[2]))
    return swaps


class WorkingCalendar:
    """Working days of Vietnamese public offices and the dossier deadlines counted on them."""

    def __init__(
        self, *, cutoff_hour: int = 17, closing_hour: int = 17, swaps: Sequence[Swap] | None = None
    ) -> None:
        for name, hour in (("cutoff_hour", cutoff_hour), ("closing_hour", closing_hour)):
            if not 0 <= hour <= 23:
                raise ValueError(f"{name} must be 0..23, got {hour}")
        self.cutoff_hour = cutoff_hour
        self.closing_hour = closing_hour
        swaps = load_swaps() if swaps is None else swaps
        self._days_off = {s.day_off for s in swaps}
        self._days_worked = {s.working_day for s in swaps}
        self._years: dict[int, holidays.HolidayBase] = {}

    def _holidays(self, year: int) -> holidays.HolidayBase:
        # One small object per year, built on first use: deadlines touch at most a few years.
        if year not in self._years:
            self._years[year] = holidays.Vietnam(years=year)
        return self._years[year]

    def is_working_day(self, d: date) -> bool:
        """Mon-Fri, not a public holiday; the swaps table and the package's swaps override."""
        if d in self._days_off:
            return False
        if d in self._days_worked:
            return True
        if d in self._holidays(d.year):
            return False
        # A swap's worked Saturday may precede its day off by a year (27/12/2014 for 2/1/2015).
        if any(d in self._holidays(y).weekend_workdays for y in (d.year, d.year + 1)):
            return True
        return d.weekday() < 5

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after ``d``."""
        d += timedelta(days=1)
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself when n is 0)."""
        for _ in range(n):
            d = self.next_working_day(d)
        return d

    def start_day(self, received_at: datetime) -> date:
        """The Vietnam date the count starts from (naive datetimes are taken as Vietnam time).

        A receipt on a non-working day, or at/after ``cutoff_hour``, starts on the next
        working day.
        """
        local = utc(received_at).astimezone(VN_TZ)
        d = local.date()
        if self.is_working_day(d) and local.hour < self.cutoff_hour:
            return d
        return self.next_working_day(d)

    def due_at(self, received_at: datetime, time: ProcessingTime) -> datetime | None:
        """When the result is due (UTC, at ``closing_hour`` Vietnam time); None if unknown.

        ``received_at`` must be the original receipt time (see the module docstring).
        """
        if not time.known:
            return None
        if time.value < 0:
            raise ValueError(f"negative processing time {time.value}")
        start = self.start_day(received_at)
        n = math.ceil(time.value)
        if time.unit == TimeUnit.WORKING_DAYS:
            due = self.add_working_days(start, n)
        elif time.unit == TimeUnit.HOURS:
            due = self.add_working_days(start, math.ceil(time.value / _HOURS_PER_DAY))
        else:
            step = relativedelta(months=n) if time.unit == TimeUnit.MONTHS else timedelta(n)
            due = start + step
            if not self.is_working_day(due):
                due = self.next_working_day(due)
        return utc(datetime(due.year, due.month, due.day, self.closing_hour, tzinfo=VN_TZ))

    def working_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after ``start``'s start day up to and including ``end``'s Vietnam date.

        A dossier received Monday morning and looked at on Thursday has used 3 working days.
        """
        d, last = self.start_day(start), utc(end).astimezone(VN_TZ).date()
        count = 0
        while d < last:
            d += timedelta(days=1)
            count += self.is_working_day(d)
        return count

    @staticmethod
    def is_late(received_at: datetime, due_at: datetime | None, returned_at: datetime) -> bool:
        """Whether a result returned at ``returned_at`` missed ``due_at``.

        ``due_at`` must have been counted from the original ``received_at``; no deadline known
        (None) means the dossier cannot be called late. A return before the receipt is a
        clock or data error and raises ValueError.
        """
        if utc(returned_at) < utc(received_at):
            raise ValueError(f"returned_at {returned_at} is before received_at {received_at}")
        return due_at is not None and utc(returned_at) > utc(due_at)

    def lateness(
        self, received_at: datetime, time: ProcessingTime, returned_at: datetime
    ) -> Literal["early", "on_time", "late"] | None:
        """early: returned before the due date; on_time: on the due date by ``closing_hour``;
        late: after the due time. None when the processing time is unknown.

        Always counted from the ORIGINAL ``received_at``: a re-sync must not restart the clock.
        """
        due = self.due_at(received_at, time)
        if due is None:
            return None
        if self.is_late(received_at, due, returned_at):
            return "late"
        returned_day = utc(returned_at).astimezone(VN_TZ).date()
        return "early" if returned_day < due.astimezone(VN_TZ).date() else "on_time"
