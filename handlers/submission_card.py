"""What a citizen reads in the "Nộp trực tuyến" guide: the overview, the steps on the National
Public Service Portal, the expected date of the result and the document checklist.

Pure functions of (Translator, Procedure, ...) -> text. Every fact about a procedure comes from
the catalogue; where the record is silent the text says so. The portal steps and the VNeID
prerequisite are what dichvucong.gov.vn asks of every citizen, kept generic on purpose.
"""

from __future__ import annotations

from datetime import date, datetime

from bot.dossiers.calendar import WorkingCalendar
from bot.dossiers.model import VN_TZ, utc
from bot.i18n import Translator
from handlers.procedure_card import fee_text, time_text
from procedures_catalog.normalize import fold
from procedures_catalog.schema import (
    Channel,
    ChannelOption,
    DocumentRequirement,
    Procedure,
    TimeUnit,
    Unit,
)

PORTAL = "https://dichvucong.gov.vn"
MAX_NAME_CHARS = 400  # a few records paste a whole paragraph into a document's name
MAX_LISTED = 10  # documents named in the "attach" step
ATTACH_STEP = 3  # index of the "attach the documents" step in guide_steps()


def short(text: str, limit: int = MAX_NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def online_possible(procedure: Procedure) -> bool:
    """Whether the record says the procedure can be submitted online at all."""
    return procedure.channel(Channel.ONLINE) is not None or bool(procedure.online_level)


def level_text(t: Translator, procedure: Procedure) -> str:
    """Fully or partly online, from the record's level when it has one; honest otherwise."""
    level = fold(procedure.online_level or "")
    if level == "toan trinh":
        return t(
            "✅ This procedure can be done fully online (toàn trình): you submit, pay any fee "
            "and receive the result without going to the desk."
        )
    if level == "mot phan":
        return t(
            "ℹ️ This procedure is partly online (một phần): you submit online, but part of it "
            "still needs a visit to the desk (for example to show originals or to collect the "
            "result)."
        )
    if online_possible(procedure):
        return t(
            "The record lists online submission but does not say whether the whole procedure "
            "can be done online (toàn trình) or only part of it (một phần). The procedure's "
            "page on the portal says so; if unsure, ask the one-stop desk."
        )
    return t(
        "⚠️ The published record lists no online submission for this procedure, so it may "
        "not be offered online. You can check its page on the portal, or submit it at the desk."
    )


def prerequisite_text(t: Translator) -> str:
    return t(
        "🔐 Before you start: to log in to the National Public Service Portal you need a "
        "level-2 electronic identity account (tài khoản định danh điện tử mức độ 2, VNeID). "
        "If you do not have one yet, the police of your commune or ward register it."
    )


def link_text(t: Translator, procedure: Procedure) -> str:
    if procedure.portal_url:
        return t("🔗 This procedure on the portal: {url}", url=procedure.portal_url)
    return t("🔗 The portal: {url} (search for the code {code}).", url=PORTAL, code=procedure.code)


def paid_fees(procedure: Procedure) -> list[str] | None:
    """The online channel's fee facts when the record names a fee to pay, else None.

    "Free" alone or "no information" is not a fee; a fee set by the province is one (the
    record cannot give its amount, so the citizen is told what the record says)."""
    option = procedure.channel(Channel.ONLINE)
    fees = option.fees if option else []
    if any((not f.free and not f.unknown) or f.set_by_province for f in fees):
        return [f for f in fees if not f.unknown]
    return None


def guide_steps(t: Translator, procedure: Procedure, unit: Unit | None) -> list[str]:
    """The steps on the portal, one message each; the fee step only when there is a fee."""
    if unit is not None and unit.applies(procedure.code):
        place = t("When asked where to submit, choose {unit}.", unit=unit.name)
    else:
        place = t("When asked where to submit, choose the agency that handles your case.")
    steps = [
        t(
            "Log in. Open {url} and choose “Đăng nhập” (log in), then log in with your VNeID "
            "electronic identity account (level 2), following the instructions on the screen.",
            url=PORTAL,
        ),
        t(
            "Find the procedure. Type its name or its code {code} in the search box, open "
            "“{name}” and choose to submit online (“Nộp trực tuyến”). {place}",
            code=procedure.code,
            name=short(procedure.name, 200),
            place=place,
        ),
        t(
            "Fill in the form. Fill in the electronic form (tờ khai điện tử) on the screen. "
            "Some of your details may already be filled in from your identity account: check "
            "them before going on."
        ),
        _attach_step(t, procedure),
    ]
    fees = paid_fees(procedure)
    if fees is not None:
        steps.append(
            t(
                "Pay the fee online. The record says: {fees}. Pay through the online payment "
                "the portal offers when it asks you to; keep the receipt it shows.",
                fees="; ".join(fee_text(t, fee) for fee in fees),
            )
        )
    steps += [
        t(
            "Choose how to receive the result: online (in your portal account), at the "
            "one-stop desk, or by public postal service (bưu chính công ích) to your address, "
            "which may charge postage. The form offers only the ways this procedure allows."
        ),
        t(
            "Submit and note the receipt code. Check everything, then submit (“Nộp hồ sơ”). "
            "The portal shows your dossier code (mã hồ sơ): write it down or take a "
            "screenshot. You need it to follow your dossier."
        ),
    ]
    return steps


def _attach_step(t: Translator, procedure: Procedure) -> str:
    head = t(
        "Attach the documents. Attach each document the form asks for, one file per document "
        "(a clear photo or scan)."
    )
    if not procedure.documents:
        return (
            head
            + "\n"
            + t(
                "The published record lists no documents for this procedure; attach what the form "
                "asks for and ask the desk if unsure."
            )
        )
    lines = [head, t("According to the record, the dossier includes:")]
    lines += [f"• {short(doc.name, 160)}" for doc in procedure.documents[:MAX_LISTED]]
    if len(procedure.documents) > MAX_LISTED:
        lines.append(t("… and {n} more.", n=len(procedure.documents) - MAX_LISTED))
    if any(doc.condition for doc in procedure.documents):
        lines.append(t("Some of them are needed only in the cases the record names."))
    return "\n".join(lines)


def _timed_option(procedure: Procedure) -> tuple[ChannelOption | None, bool]:
    """The option whose time counts: online when known, else in person; and whether it is
    the in-person one."""
    online = procedure.channel(Channel.ONLINE)
    if online is not None and online.time.known:
        return online, False
    for option in procedure.channels:
        if option.channel == Channel.IN_PERSON and option.time.known:
            return option, True
    return None, False


def expected_text(
    t: Translator,
    calendar: WorkingCalendar,
    procedure: Procedure,
    now: datetime,
    *,
    brief: bool = False,
) -> str:
    """'If you submit today, the result is expected on dd/mm/yyyy', from the record's
    processing time counted on the working-day calendar; honest when the time is unknown.
    ``brief`` leaves out the record's note and the explanations (said in the overview)."""
    option, in_person = _timed_option(procedure)
    if option is None:
        return t(
            "📅 The published record gives no processing time for this procedure, so I cannot "
            "estimate when the result will be ready."
        )
    due = calendar.due_at(now, option.time)
    today = utc(now).astimezone(VN_TZ).date()
    lines = [
        t(
            "📅 If you submit today ({today}), the result is expected on {date} (processing "
            "time: {time}).",
            today=_dmy(today),
            date=_dmy(due.astimezone(VN_TZ).date()),
            time=time_text(t, option.time),
        )
    ]
    if option.time.unit_inferred:
        lines.append(t("* The record gives only the number; it is counted in working days."))
    if in_person:
        lines.append(
            t("The record gives no time for online submission; this uses the in-person time.")
        )
    if calendar.start_day(now) != today:
        lines.append(
            t(
                "Today is a day off or past {hour}:00, so the count starts on the next working "
                "day.",
                hour=calendar.cutoff_hour,
            )
        )
    if brief:
        return "\n".join(lines)
    if option.time.unit in (TimeUnit.WORKING_DAYS, TimeUnit.HOURS):
        lines.append(t("Saturdays, Sundays and public holidays (Tết included) are not counted."))
    if option.description:
        lines.append(t("Note: {note}", note=short(option.description, 300)))
    lines.append(
        t(
            "This is an estimate: the official date is the one the desk gives when it "
            "receives your dossier."
        )
    )
    return "\n".join(lines)


def _dmy(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def checklist_documents(procedure: Procedure) -> list[DocumentRequirement]:
    """Thành phần hồ sơ, then the papers to show at the desk: everything to have at hand."""
    return [*procedure.documents, *procedure.documents_to_show]


def where_to_get(t: Translator, doc: DocumentRequirement) -> str:
    """Only what the record says; otherwise send the citizen to the desk (never a guess)."""
    if doc.form:
        return t(
            "Form: {form}. The template is attached to this procedure on the National Public "
            "Service Portal; the one-stop desk also has it.",
            form=doc.form,
        )
    return t("Where to get it: the record does not say; please ask the one-stop desk.")


def checklist_summary(t: Translator, procedure: Procedure, answers: list[str]) -> str:
    """What the citizen has, what is missing and where each missing paper comes from."""
    docs = checklist_documents(procedure)
    needed = [(doc, a) for doc, a in zip(docs, answers, strict=False) if a != "x"]
    missing = [doc for doc, a in needed if a == "n"]
    lines = [
        t("☑️ Your documents for: {name}", name=short(procedure.name, 200)),
        t(
            "You have {have} of the {needed} documents that apply to you.",
            have=len(needed) - len(missing),
            needed=len(needed),
        ),
    ]
    if missing:
        lines.append(t("Still missing:"))
        for doc in missing:
            lines.append(f"✗ {short(doc.name)}")
            lines.append("   " + where_to_get(t, doc))
            if doc.details:
                lines.append("   " + t("Note: {note}", note=short(doc.details, 300)))
    else:
        lines.append(t("✅ You have every document on the list."))
    skipped = len(docs) - len(needed)
    if skipped:
        lines.append(t("Not needed in your case: {n}.", n=skipped))
    return "\n".join(lines)


def checklist_rows(
    t: Translator, procedure: Procedure, answers: list[str]
) -> list[tuple[str, str, list[str]]]:
    """(mark, document name, notes) per document, for the printable checklist."""
    rows = []
    for doc, answer in zip(checklist_documents(procedure), answers, strict=False):
        mark = {"y": "✓", "n": "✗"}.get(answer, "–")
        notes = []
        if answer == "n":
            notes.append(where_to_get(t, doc))
        elif answer == "x":
            notes.append(t("Not needed in your case."))
        if doc.condition and answer != "y":
            notes.append(t("Only when: {condition}", condition=short(doc.condition, 200)))
        rows.append((mark, short(doc.name), notes))
    return rows
