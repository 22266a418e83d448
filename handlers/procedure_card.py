"""The procedure card: what a citizen reads about one procedure, split into short messages.

Pure functions of (Procedure, Unit, Translator) -> text, so the chat handler and
``motcua catalogue show`` say exactly the same thing.
"""

from __future__ import annotations

from bot.core import Button
from bot.i18n import N_, Translator, format_number
from procedures_catalog.schema import (
    Channel,
    DocumentRequirement,
    Fee,
    Procedure,
    ProcessingTime,
    TimeUnit,
    Unit,
)

MAX_LEGAL_ROWS = 8
MAX_NOTE_CHARS = 400


def channel_name(t: Translator, channel: Channel) -> str:
    return {
        Channel.IN_PERSON: t("In person"),
        Channel.ONLINE: t("Online"),
        Channel.POSTAL: t("By post"),
    }[channel]


def time_text(t: Translator, time: ProcessingTime) -> str:
    if not time.known:
        return t("no information")
    value = format_number(time.value, t.locale)
    text = {
        TimeUnit.WORKING_DAYS: t("{n} working days", n=value),
        TimeUnit.DAYS: t("{n} days", n=value),
        TimeUnit.HOURS: t("{n} hours", n=value),
        TimeUnit.MONTHS: t("{n} months", n=value),
    }[time.unit]
    return text + ("*" if time.unit_inferred else "")


def fee_text(t: Translator, fee: Fee) -> str:
    if fee.unknown:
        text = t("no information")
    elif fee.free:
        text = t("free of charge")
    elif fee.amount is not None:
        currency = t("đồng") if fee.currency == "VND" else fee.currency
        text = f"{format_number(fee.amount, t.locale)} {currency}"
        if fee.per:
            text += f"/{fee.per}"
    else:
        text = fee.text
    if fee.set_by_province and fee.free:
        # The portal's cell says "Miễn phí" while its note says the council sets the amount.
        return t("set by the provincial People's Council (the portal lists it as free of charge)")
    if fee.set_by_province:
        text += " " + t("(the amount is set by the provincial People's Council)")
    return text


def fees_summary(t: Translator, procedure: Procedure) -> str:
    texts = []
    for option in procedure.channels:
        for fee in option.fees:
            text = fee_text(t, fee)
            if text not in texts:
                texts.append(text)
    return "; ".join(texts) if texts else t("no information")


def times_summary(t: Translator, procedure: Procedure) -> str:
    texts = []
    for option in procedure.channels:
        text = time_text(t, option.time)
        if text not in texts:
            texts.append(text)
    return "; ".join(texts) if texts else t("no information")


def summary(t: Translator, procedure: Procedure, unit: Unit | None) -> str:
    """The first message: what it is, result, time, fees, and whether this desk handles it."""
    lines = [
        f"📋 {procedure.name}",
        t("Code: {code} · Field: {field}", code=procedure.code, field=procedure.field or "—"),
    ]
    if procedure.results:
        lines.append(t("Result: {result}", result="; ".join(procedure.results)))
    lines.append(t("Processing time: {time}", time=times_summary(t, procedure)))
    lines.append(t("Fees: {fees}", fees=fees_summary(t, procedure)))
    if unit is not None:
        if unit.applies(procedure.code):
            lines.append(t("Submit at: the one-stop desk of {unit}", unit=unit.name))
        else:
            where = procedure.agency or t("the agency named on the National Public Service Portal")
            lines.append(
                t(
                    "⚠️ {unit} does not handle this procedure. Where to go: {where}.",
                    unit=unit.name,
                    where=where,
                )
            )
    if procedure.outdated:
        lines.append(t("⚠️ This record may be out of date; please check with the desk staff."))
    if t.locale != "vi":
        lines.append(t("(Names of procedures and documents are the official Vietnamese ones.)"))
    return "\n".join(lines)


def _counts(t: Translator, doc: DocumentRequirement) -> str:
    parts = []
    for n, one, many in (
        (doc.originals, N_("1 original"), N_("{n} originals")),
        (doc.copies, N_("1 copy"), N_("{n} copies")),
        (doc.photocopies, N_("1 photocopy"), N_("{n} photocopies")),
    ):
        if n:
            parts.append(t(one) if n == 1 else t(many, n=n))
    return ", ".join(parts)


def _document_lines(t: Translator, docs: list[DocumentRequirement]) -> list[str]:
    lines = []
    for doc in docs:
        line = f"☐ {doc.name}"
        counts = _counts(t, doc)
        if counts:
            line += f" — {counts}"
        lines.append(line)
        if doc.form:
            lines.append("   " + t("Form: {form}", form=doc.form))
    return lines


def documents(t: Translator, procedure: Procedure) -> str:
    """Thành phần hồ sơ as a checklist, then what to show at the desk."""
    if not procedure.documents and not procedure.documents_to_show:
        return t(
            "The published record lists no documents for this procedure. Please ask the "
            "desk staff what to bring."
        )
    lines = []
    if procedure.documents:
        lines.append(t("Documents to submit:"))
        lines += _document_lines(t, procedure.documents)
    if procedure.documents_to_show:
        lines.append(t("Documents to show at the desk:"))
        lines += _document_lines(t, procedure.documents_to_show)
    if procedure.notes:
        lines.append(
            t("The official record has {n} more notes on special cases.", n=len(procedure.notes))
        )
    return "\n".join(lines)


def fees_and_times(t: Translator, procedure: Procedure, unit: Unit | None) -> str:
    if not procedure.channels:
        return t("The published record gives no processing time or fees for this procedure.")
    lines = [t("Processing time and fees, by way of submitting:")]
    notes: list[str] = []
    for option in procedure.channels:
        fees = "; ".join(fee_text(t, fee) for fee in option.fees) or t("no information")
        lines.append(f"• {channel_name(t, option.channel)}: {time_text(t, option.time)} — {fees}")
        if option.description and option.description not in notes:
            notes.append(option.description)
    if any(o.time.unit_inferred for o in procedure.channels):
        lines.append(t("* The record gives only the number; it is counted in working days."))
    for note in notes:
        short = (
            note if len(note) <= MAX_NOTE_CHARS else note[:MAX_NOTE_CHARS].rsplit(" ", 1)[0] + "…"
        )
        lines.append(t("Note: {note}", note=short))
    override = unit.overrides.get(procedure.code, {}) if unit else {}
    if override.get("fee"):
        lines.append(
            t(
                "At {unit}: {fee} (source: {source})",
                unit=unit.name,
                fee=override["fee"],
                source=override.get("source", "—"),
            )
        )
    return "\n".join(lines)


def online(t: Translator, procedure: Procedure) -> str:
    if procedure.channel(Channel.ONLINE) is None:
        return t(
            "The published record lists no online submission for this procedure. "
            "Please submit it at the desk."
        )
    url = procedure.portal_url or "https://dichvucong.gov.vn"
    return t(
        "You can submit this procedure online on the National Public Service Portal:\n{url}",
        url=url,
    )


def where(t: Translator, unit: Unit | None) -> str:
    if unit is None:
        return t("Please contact the one-stop desk of your commune or ward.")
    lines = [t("One-stop desk of {unit}, {province}", unit=unit.name, province=unit.province)]
    if unit.address:
        lines.append(t("Address: {address}", address=unit.address))
    if unit.hours:
        lines.append(t("Opening hours: {hours}", hours=unit.hours))
    if unit.hotline:
        lines.append(t("Hotline: {phone}", phone=unit.hotline))
    if unit.portal_url:
        lines.append(t("Online: {url}", url=unit.portal_url))
    if unit.demo:
        lines.append(t("(This is a demonstration unit: its address and hours are examples.)"))
    return "\n".join(lines)


def legal(t: Translator, procedure: Procedure) -> str:
    lines = []
    if procedure.legal_basis:
        lines.append(t("Legal basis:"))
        for basis in procedure.legal_basis[:MAX_LEGAL_ROWS]:
            lines.append(
                f"• {basis.number} — {basis.title}" if basis.number else f"• {basis.title}"
            )
        if len(procedure.legal_basis) > MAX_LEGAL_ROWS:
            lines.append(t("… and {n} more.", n=len(procedure.legal_basis) - MAX_LEGAL_ROWS))
    if procedure.decision:
        lines.append(t("Announced by decision: {decision}", decision=procedure.decision))
    if procedure.source:
        lines.append(
            t(
                "Source: {source}, retrieved {date}.",
                source=procedure.source.name,
                date=procedure.source.retrieved or "—",
            )
        )
        if procedure.source.url:
            lines.append(procedure.source.url)
    return "\n".join(lines) or t("The published record gives no legal basis.")


def card_buttons(t: Translator, procedure: Procedure) -> list[Button]:
    code = procedure.code
    buttons = [
        Button(t("📄 Documents"), f"proc:docs:{code}"),
        Button(t("💰 Fees & time"), f"proc:fees:{code}"),
        Button(t("🌐 Submit online"), f"proc:online:{code}"),
        Button(t("📍 Where & when"), f"proc:where:{code}"),
        Button(t("📚 Legal basis"), f"proc:law:{code}"),
        Button(t("🔗 Related procedures"), f"proc:rel:{code}"),
        Button(t("📝 How to submit online"), f"sub:start:{code}"),
    ]
    return [*buttons, Button(t("🏠 Main menu"), "menu")]


def full_card(t: Translator, procedure: Procedure, unit: Unit | None) -> list[str]:
    """Every section, in order (what `motcua catalogue show` prints)."""
    return [
        summary(t, procedure, unit),
        documents(t, procedure),
        fees_and_times(t, procedure, unit),
        online(t, procedure),
        where(t, unit),
        legal(t, procedure),
    ]
