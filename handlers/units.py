"""Which commune serves me now: the old commune, ward or township (xã, phường, thị trấn) before
1 July 2025 -> the new commune, with its one-stop desk's address and hours when the bot has its
profile.

Flow: ask for the old name (step units.old_name) -> answer. A name found in several provinces
-> province buttons (units:prov:<i>, the question kept in the state) or the province typed
(step units.province) -> answer.
"""

from __future__ import annotations

from bot.core import Button, Context, Reply, Router
from bot.units import OldUnitMatch, UnitAnswer, lookup
from bot.units.lookup import NewUnit, split_type
from bot.units.question import QUESTION, STRONG, place_in_question
from procedures_catalog.normalize import fold

router = Router("units")

ASK, PROVINCE = "units.old_name", "units.province"
MAX_SHOWN = 5
MAX_QUERY_CHARS = 120
EXAMPLE = "xã Tân Thành, huyện Hàm Thuận Nam, tỉnh Bình Thuận"


@router.payload("units:ask")
@router.command("xamoi", "phuongmoi", "sapnhap")
@router.phrase(
    "xã mới", "phường mới", "xã phường mới", "sáp nhập", "sáp nhập xã", "xã sau sáp nhập",
    "tra cứu xã mới", "đơn vị hành chính mới", "xã tôi giờ thuộc xã nào", "new commune",
)  # fmt: skip
async def ask(ctx: Context) -> Reply:
    """Ask for the old name, or answer at once if the command came with one."""
    if ctx.args:
        return _answer(ctx, ctx.args)
    ctx.state.clear_flow()
    ctx.state.step = ASK
    t = ctx.t
    return Reply(
        t(
            "Which commune, ward or township (xã/phường/thị trấn) were you in before 1 July "
            "2025? Type its old name, with the district and province if you know them, "
            "e.g. “{example}”.",
            example=EXAMPLE,
        ),
        [Button(t("✖️ Cancel"), "cancel")],
    )


@router.text(lambda folded: QUESTION.search(folded) is not None)
async def question(ctx: Context) -> Reply | None:
    """Answer "xã Tân Thành giờ thuộc xã nào" straight away; ask if no name was given."""
    place = place_in_question(ctx.incoming.text)
    if not place:
        return await ask(ctx)
    answer = lookup(place)
    if not answer.found and not STRONG.search(fold(ctx.incoming.text)):
        return None
    return _answer(ctx, place, answer)


@router.step(ASK)
async def name_typed(ctx: Context) -> Reply:
    """Answer for the old name typed."""
    return _answer(ctx, ctx.incoming.text)


@router.step(PROVINCE)
async def province_typed(ctx: Context) -> Reply:
    """The province typed instead of pressed; or, if it narrows nothing, a new old name."""
    asked = ctx.state.data.get("units", {})
    if asked.get("q"):
        answer = lookup(f"{asked['q']}, {ctx.incoming.text}")
        if answer.found and not answer.needs_province:
            return _reply(ctx, answer)
    return _answer(ctx, ctx.incoming.text)


@router.payload("units:prov:", prefix=True)
async def province_chosen(ctx: Context) -> Reply:
    """Answer for the province pressed, the question read back from the state."""
    asked = ctx.state.data.get("units", {})
    provinces = asked.get("p", [])
    if not ctx.args.isdigit() or int(ctx.args) >= len(provinces):
        return await ask(ctx)
    return _reply(ctx, lookup(asked["q"], province=provinces[int(ctx.args)]))


def _answer(ctx: Context, text: str, answer: UnitAnswer | None = None) -> Reply:
    """Look the old name up and answer it (or ask which province)."""
    query = " ".join(text.split())[:MAX_QUERY_CHARS]
    answer = answer or lookup(query)
    if answer.needs_province:
        return _ask_province(ctx, query, answer)
    return _reply(ctx, answer, query)


def _ask_province(ctx: Context, query: str, answer: UnitAnswer) -> Reply:
    t = ctx.t
    ctx.state.clear_flow()
    ctx.state.step = PROVINCE
    ctx.state.data["units"] = {"q": query, "p": answer.provinces}
    buttons = [Button(name, f"units:prov:{i}") for i, name in enumerate(answer.provinces)]
    names = {_title(match) for match in answer.matches}
    count = len(answer.provinces)
    if len(names) == 1 and answer.matches[0].score >= 99:
        text = t(
            "Communes named “{name}” existed in {count} provinces. Which province was yours? "
            "Choose it below or type it.",
            name=names.pop(),
            count=count,
        )
    else:
        text = t(
            "Communes with names close to “{name}” existed in {count} provinces. Which "
            "province was yours? Choose it below or type it.",
            name=query[:60],
            count=count,
        )
    return Reply(text, [*buttons, Button(t("✖️ Cancel"), "cancel")])


def _reply(ctx: Context, answer: UnitAnswer, query: str = "") -> Reply:
    t = ctx.t
    if not answer.found:
        ctx.state.clear_flow()
        ctx.state.step = ASK
        return Reply(
            t(
                "I could not find “{text}” among the communes, wards and townships before "
                "1 July 2025. Please check the name, or type it with its old district and "
                "province, e.g. “{example}”.",
                text=query[:60],
                example=EXAMPLE,
            ),
            [Button(t("✖️ Cancel"), "cancel")],
        )
    ctx.state.clear_flow()
    lines = []
    if answer.matches[0].score < 99:
        lines.append(t("No unit had exactly that name; the closest:"))
    for match in answer.matches[:MAX_SHOWN]:
        lines.append(_describe(ctx, match))
    hidden = len(answer.matches) - MAX_SHOWN
    if hidden > 0:
        ctx.state.step = ASK
        first = answer.matches[0]
        lines.append(
            t(
                "… and {count} more with that name. Type the name with its old district to "
                "find yours, e.g. “{example}”.",
                count=hidden,
                example=f"{_lower(first.old_name)}, {_lower(first.old_district)}",
            )
        )
    buttons = [
        Button(t("🔁 Look up another commune"), "units:ask"),
        Button(t("🏠 Main menu"), "menu"),
    ]
    return Reply("\n\n".join(lines), buttons)


def _describe(ctx: Context, match: OldUnitMatch) -> str:
    """One old unit, where it went, and the office of the new unit when the bot knows it."""
    t = ctx.t
    where = _lower(match.province)
    if fold(match.old_district) != fold(match.old_name):
        where = f"{_lower(match.old_district)}, {where}"
    provinces = {unit.province for unit in match.new_units}
    names = ", ".join(_lower(unit.name) for unit in match.new_units)
    new = (
        f"{names} ({_lower(provinces.pop())})"
        if len(provinces) == 1
        else "; ".join(f"{_lower(unit.name)} ({_lower(unit.province)})" for unit in match.new_units)
    )
    old = match.old_name
    values = {"old": old, "where": where, "new": new}
    if len(match.new_units) > 1:
        text = t(
            "{old} ({where}) was divided between {new}. Which of them serves you depends on "
            "where exactly you live.",
            **values,
        )
    elif match.partial:
        text = t("Part of {old} ({where}) went into {new}.", **{**values, "old": _lower(old)})
    elif fold(match.merge).startswith("giu nguyen"):
        text = t("{old} ({where}) was kept as it was: it is now {new}.", **values)
    else:
        text = t("{old} ({where}) is now part of {new}.", **values)
    return "\n".join([text, *filter(None, (_office(ctx, unit) for unit in match.new_units))])


def _office(ctx: Context, unit: NewUnit) -> str:
    """The new unit's one-stop desk, if the bot holds its profile."""
    t = ctx.t
    for profile in ctx.services.catalogue.units.values():
        if fold(profile.name) == fold(unit.name) and (
            split_type(profile.province)[1] == split_type(unit.province)[1]
        ):
            name = _lower(profile.name)
            lines = [t("🏢 One-stop desk of {name}: {address}", name=name, address=profile.address)]
            lines = lines if profile.address else []
            if profile.hours:
                lines.append(t("🕐 Opening hours: {hours}", hours=profile.hours))
            return "\n".join(lines)
    return ""


def _title(match: OldUnitMatch) -> str:
    """The name as the table writes it, without its type word: "Tân Thành"."""
    words = match.old_name.split()
    return " ".join(words[len(split_type(match.old_name)[0].split()) :]) or match.old_name


def _lower(name: str) -> str:
    """ "Huyện Gia Lộc" -> "huyện Gia Lộc": a type word is written in lower case mid-sentence."""
    kind = split_type(name)[0]
    if not kind:
        return name
    size = len(kind.split())
    words = name.split()
    return " ".join([*(w.lower() for w in words[:size]), *words[size:]])
