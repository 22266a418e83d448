"""The figures page: the numbers of the commune's report on administrative procedures for a
period (the current quarter in Vietnam time by default, another quarter, or any run of days),
as tables grouped like the report, bar charts, and CSV and .docx downloads.

The figures are counted by ``bot.staff.report`` for the officer's unit only; this module reads
the period from the query string and lays them out. Every officer of the unit sees them. A
download writes one audit row ("figures_export"); nothing else here changes anything.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from urllib.parse import urlencode

from aiohttp import web
from babel.numbers import format_decimal
from markupsafe import Markup

from bot.i18n import N_
from bot.staff import report as figures
from bot.staff.web import StaffRoutes, render, staff_of

routes = StaffRoutes(actions={"figures_export": N_("exported the figures")})

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
YEARS = (2000, 2100)  # a year outside this is a typing slip
MAX_DAYS = 3 * 366 + 1  # a custom period of up to three years
ERRORS = {
    "dates": N_("Enter both dates of the period, the first one not after the last."),
    "long": N_("Choose a period of at most three years."),
    "quarter": N_("Choose a year and a quarter."),
}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime
    year: int | None = None  # a calendar quarter, or a custom run of days (None)
    quarter: int | None = None

    @property
    def days(self) -> tuple[date, date]:
        return figures.first_and_last_day(self.start, self.end)

    @property
    def query(self) -> str:
        """The query string that asks for this period again (for the download links)."""
        if self.quarter:
            return urlencode({"year": self.year, "quarter": self.quarter})
        first, last = self.days
        return urlencode({"from": first.isoformat(), "to": last.isoformat()})

    @property
    def target(self) -> str:
        """How the audit log names the period."""
        if self.quarter:
            return f"{self.year}-Q{self.quarter}"
        first, last = self.days
        return f"{first.isoformat()}..{last.isoformat()}"

    def shifted(self, quarters: int) -> Period | None:
        """The quarter ``quarters`` before or after this one (None for a custom period)."""
        if not self.quarter:
            return None
        index = self.year * 4 + self.quarter - 1 + quarters
        year, quarter = divmod(index, 4)
        if not YEARS[0] <= year <= YEARS[1]:
            return None
        return of_quarter(year, quarter + 1)


def of_quarter(year: int, quarter: int) -> Period:
    return Period(*figures.quarter(year, quarter), year=year, quarter=quarter)


def current_quarter() -> Period:
    return of_quarter(*figures.quarter_of(datetime.now(UTC)))


def parse_period(query) -> tuple[Period, str | None]:
    """The period a query string asks for, and an error (msgid) if it asked for a bad one; a
    bad or missing period gives the current quarter."""
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    if first or last:
        try:
            first_day, last_day = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError:
            return current_quarter(), ERRORS["dates"]
        if last_day < first_day or not YEARS[0] <= first_day.year <= last_day.year <= YEARS[1]:
            return current_quarter(), ERRORS["dates"]
        if (last_day - first_day).days >= MAX_DAYS:
            return current_quarter(), ERRORS["long"]
        return Period(*figures.days(first_day, last_day)), None
    if "year" in query or "quarter" in query:
        try:
            year, quarter = int(query.get("year", "")), int(query.get("quarter", ""))
        except ValueError:
            return current_quarter(), ERRORS["quarter"]
        if quarter not in (1, 2, 3, 4) or not YEARS[0] <= year <= YEARS[1]:
            return current_quarter(), ERRORS["quarter"]
        return of_quarter(year, quarter), None
    return current_quarter(), None


async def _report(request: web.Request, period: Period) -> figures.Report:
    staff = staff_of(request)
    async with staff.db.session() as session:
        return await figures.compute(
            session, staff.unit, period.start, period.end, catalogue=staff.services.catalogue
        )


@routes.get("/figures", nav=N_("Figures"))
async def figures_page(request: web.Request) -> web.Response:
    """The unit's figures for the period asked for, as tables and charts."""
    staff = staff_of(request)
    t = staff.t
    period, error = parse_period(request.query)
    report = await _report(request, period)
    first, last = period.days

    def number(value: int) -> str:
        return format_decimal(value, locale=staff.locale)

    def lines(section) -> list[dict]:
        return [
            {"label": t(label), "value": number(value), "level": level}
            for label, value, level in section.lines()
        ]

    charts = []
    for name, chart in figures.chart_data(report).items():
        msgid = chart["title"]
        title = t(msgid)
        bars = [
            (t(label) if chart["translate"] else label, value) for label, value in chart["bars"]
        ]
        # bar_chart_svg escapes every label and the title: its SVG is the only markup let in.
        svg = Markup(figures.bar_chart_svg(bars, title)) if bars else None
        charts.append({"name": name, "title": title, "svg": svg})
    year, quarter = (
        (period.year, period.quarter) if period.quarter else figures.quarter_of(period.start)
    )
    previous, following = period.shifted(-1), period.shifted(1)
    this_year = figures.quarter_of(datetime.now(UTC))[0]
    return render(
        request,
        "figures.html",
        title=t("Figures"),
        error=t(error) if error else "",
        period=period,
        heading=(
            t("Quarter {quarter}/{year}", quarter=period.quarter, year=period.year)
            if period.quarter
            else t("Custom period")
        ),
        first=first.strftime("%d/%m/%Y"),
        last=last.strftime("%d/%m/%Y"),
        first_iso=first.isoformat(),
        last_iso=last.isoformat(),
        year=year,
        quarter=quarter,
        years=range(max(YEARS[0], min(year, this_year) - 5), max(year, this_year) + 2),
        previous=previous.query if previous else None,
        following=following.query if following else None,
        dossiers=lines(report.dossiers),
        feedback=lines(report.feedback),
        searches=lines(report.searches),
        top_procedures=[(p.label, number(p.count)) for p in report.searches.top_procedures],
        top_missed=[(m.query, number(m.count)) for m in report.searches.top_missed],
        charts=charts,
        sections={
            "dossiers": t(figures.DOSSIERS),
            "feedback": t(figures.FEEDBACK),
            "searches": t(figures.SEARCHES),
            "top": t(figures.TOP_SEARCHED),
            "missed": t(figures.MISSED),
        },
    )


@routes.get("/figures.csv")
async def figures_csv(request: web.Request) -> web.Response:
    """The figures as a CSV file (UTF-8 with a BOM, for Excel)."""
    staff = staff_of(request)
    period, _ = parse_period(request.query)
    report = await _report(request, period)
    body = figures.to_csv(report, staff.t).encode("utf-8")
    await _audit_export(request, period, "csv")
    return _download(body, "text/csv", _file_name(staff.unit, period, "csv"), charset="utf-8")


@routes.get("/figures.docx")
async def figures_docx(request: web.Request) -> web.Response:
    """The figures as a .docx section to paste into the report."""
    staff = staff_of(request)
    period, _ = parse_period(request.query)
    report = await _report(request, period)
    unit = staff.services.catalogue.units.get(staff.unit)
    name = unit.name if unit else staff.unit
    body = await asyncio.to_thread(figures.to_docx, report, staff.t, name)
    await _audit_export(request, period, "docx")
    return _download(body, DOCX, _file_name(staff.unit, period, "docx"))


async def _audit_export(request: web.Request, period: Period, kind: str) -> None:
    staff = staff_of(request)
    async with staff.db.write_transaction() as session:
        staff.audit(session, "figures_export", period.target, kind)


def _file_name(unit: str, period: Period, extension: str) -> str:
    first, last = period.days
    unit = re.sub(r"[^A-Za-z0-9_-]", "_", unit)[:64] or "unit"
    return f"figures-{unit}-{first:%Y%m%d}-{last:%Y%m%d}.{extension}"


def _download(body: bytes, mime: str, name: str, charset: str | None = None) -> web.Response:
    response = web.Response(body=body, content_type=mime, charset=charset)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
