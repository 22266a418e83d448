"""The dossier status card and the change notice: what a citizen reads about their dossier.

Pure functions of (Dossier, DossierService, Translator) -> Reply, used by the chat handler and
by the notifier that pushes changes. Never shows the applicant's name, address or ID number
(the Dossier type does not even carry them).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from bot.core import Button, Reply
from bot.dossiers.model import VN_TZ, Dossier, Lookup, ReceiptChannel, StatusKind, status
from bot.i18n import Translator
from bot.storage.models import utcnow

MAX_HISTORY_ROWS = 6
SUBSCRIBE, UNSUBSCRIBE = "ds:s:", "ds:u:"


def local_time(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y")


def local_date(moment: datetime) -> str:
    return moment.astimezone(VN_TZ).strftime("%d/%m/%Y")


def channel_text(t: Translator, channel: ReceiptChannel) -> str:
    return {
        ReceiptChannel.ONLINE: t("online"),
        ReceiptChannel.IN_PERSON: t("in person at the desk"),
        ReceiptChannel.POSTAL: t("by post"),
    }[channel]


def stale_notice(t: Translator, lookup: Lookup) -> str:
    """The warning above an answer the upstream could not confirm just now."""
    return t(
        "⚠️ The dossier system is interrupted; this is the information as of {time}.",
        time=local_time(lookup.as_of),
    )


def _working_days(service, after: date, upto: date) -> int:
    """Working days d with after < d <= upto."""
    count, d = 0, after
    while d < upto:
        d += timedelta(days=1)
        count += service.calendar.is_working_day(d)
    return count


def deadline_line(t: Translator, service, dossier: Dossier, now: datetime) -> str | None:
    """How the dossier stands against its due date, in working days."""
    due = service.due_at(dossier)
    if due is None:
        return t("Due date: not known for this procedure; please ask the desk.")
    line = t("Due date (hẹn trả): {date}", date=local_date(due))
    if dossier.kind is StatusKind.CLOSED or dossier.status == "result_ready":
        return line
    if dossier.kind is StatusKind.NEEDS_CITIZEN:
        # The clock stops while the desk waits for the citizen; a new date is set afterwards.
        return line + "\n" + t("The count is paused until the desk receives what it asked for.")
    today, due_day = now.astimezone(VN_TZ).date(), due.astimezone(VN_TZ).date()
    if now > due:
        late = max(1, _working_days(service, due_day, today))
        return line + "\n" + t("⏰ Overdue by {n} working day(s).", n=late)
    left = _working_days(service, today, due_day)
    if left == 0:
        return line + "\n" + t("Due today.")
    return line + "\n" + t("{n} working day(s) left.", n=left)


def status_card(
    t: Translator,
    service,
    lookup: Lookup,
    *,
    subscribed: bool = False,
    can_subscribe: bool = False,
) -> Reply:
    """The answer to "where is my dossier?"."""
    dossier = lookup.dossier
    assert dossier is not None
    entry = status(dossier.status)
    lines = []
    if lookup.stale:
        lines += [stale_notice(t, lookup), ""]
    lines.append(t("📄 Dossier {code}", code=dossier.code))
    name = service.procedure_name(dossier)
    if name:
        code = f" ({dossier.procedure_code})" if dossier.procedure_code else ""
        lines.append(t("Procedure: {name}", name=name + code))
    lines.append(
        t(
            "Received: {time}, {channel}",
            time=local_time(dossier.received_at),
            channel=channel_text(t, dossier.channel),
        )
    )
    deadline = deadline_line(t, service, dossier, utcnow())
    if deadline:
        lines.append(deadline)
    lines += ["", t("Status: {label}", label=t(entry.label)), t(entry.explanation)]
    if dossier.last_note:
        lines.append(t("Note from the desk: {note}", note=dossier.last_note))
    if len(dossier.history) > 1:
        lines += ["", t("Progress:")]
        for change in dossier.history[-MAX_HISTORY_ROWS:]:
            lines.append(f"• {local_time(change.at)} — {t(status(change.status).label)}")
    return Reply("\n".join(lines), card_buttons(t, dossier, subscribed, can_subscribe))


def card_buttons(
    t: Translator, dossier: Dossier, subscribed: bool, can_subscribe: bool
) -> list[Button]:
    buttons = []
    if subscribed and _fits(UNSUBSCRIBE + dossier.code):
        buttons.append(Button(t("🔕 Stop updates"), UNSUBSCRIBE + dossier.code))
    elif can_subscribe and not dossier.closed and _fits(SUBSCRIBE + dossier.code):
        buttons.append(Button(t("🔔 Tell me when it changes"), SUBSCRIBE + dossier.code))
    buttons += [
        Button(t("📄 Check another dossier"), "dossier:check"),
        Button(t("🏠 Main menu"), "menu"),
    ]
    return buttons


def change_notice(t: Translator, service, dossier: Dossier, index: int) -> Reply:
    """The message pushed to a subscriber for the ``index``-th change of the history."""
    change = dossier.history[index]
    entry = status(change.status)
    lines = [
        t("🔔 Update on dossier {code}", code=dossier.code),
        f"{local_time(change.at)}: {t(entry.label)}",
        t(entry.explanation),
    ]
    if change.note:
        lines.append(t("Note from the desk: {note}", note=change.note))
    last = index == len(dossier.history) - 1
    if last and dossier.closed:
        lines.append(t("The dossier is closed, so updates about it stop here."))
    buttons = []
    if not (last and dossier.closed) and _fits(UNSUBSCRIBE + dossier.code):
        buttons.append(Button(t("🔕 Stop updates"), UNSUBSCRIBE + dossier.code))
    buttons.append(Button(t("🏠 Main menu"), "menu"))
    return Reply("\n".join(lines), buttons)


def _fits(payload: str) -> bool:
    return len(payload.encode("utf-8")) <= 64
