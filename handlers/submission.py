"""The "Nộp trực tuyến" guide of one procedure: can it be done online, what is needed first, the
link on the national portal, the expected date of the result, then the portal steps one at a
time with Back/Next, ending with an offer to follow the dossier by its receipt code.

sub:start:<code> -> overview -> sub:step:<code>:<n> (stateless: the step is in the payload, so
a stale button still shows the right page) -> sub:follow (hands over to the dossier flow).
The checklist (submission_checklist) and photos -> PDF (submission_photos) start from here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core import Button, Context, Reply, Router
from handlers import dossiers
from handlers import submission_card as card
from handlers.channel_caps import files_possible
from handlers.start import menu_buttons

router = Router("submission")

START, STEP = "sub:start:", "sub:step:"


def now() -> datetime:
    """The current time (tests replace this to fix "today")."""
    return datetime.now(UTC)


def expected(ctx: Context, procedure, *, brief: bool = False) -> str:
    calendar = ctx.services.dossiers.calendar
    return card.expected_text(ctx.t, calendar, procedure, now(), brief=brief)


def _main_menu(ctx: Context) -> Button:
    return Button(ctx.t("🏠 Main menu"), "menu")


def photos_button(ctx: Context, procedure) -> list[Button]:
    """Photos -> PDF, for a procedure the record lists documents and online submission for,
    where the chat can carry files."""
    if not (procedure.documents and card.online_possible(procedure) and files_possible(ctx)):
        return []
    return [Button(ctx.t("📷 Photos → PDF"), f"sub:photos:{procedure.code}")]


def tool_buttons(ctx: Context, procedure) -> list[Button]:
    """The checklist, and photos -> PDF."""
    check = Button(ctx.t("☑️ Check my documents"), f"sub:chk:{procedure.code}")
    return [check, *photos_button(ctx, procedure)]


@router.payload(START, prefix=True)
async def overview(ctx: Context) -> Reply:
    """Say whether and how far the procedure is online, what is needed, and when it would end."""
    procedure = ctx.services.catalogue.get(ctx.args)
    if procedure is None:
        return unknown_procedure(ctx)
    t = ctx.t
    lines = [
        t("📝 Submitting online: {name} (code {code})", name=procedure.name, code=procedure.code),
        card.level_text(t, procedure),
    ]
    buttons = []
    if card.online_possible(procedure):
        lines.append(card.prerequisite_text(t))
        buttons.append(Button(t("▶️ Step by step"), f"{STEP}{procedure.code}:0"))
    lines += [card.link_text(t, procedure), expected(ctx, procedure)]
    buttons += tool_buttons(ctx, procedure)
    return Reply("\n\n".join(lines), [*buttons, _main_menu(ctx)])


@router.payload(STEP, prefix=True)
async def step(ctx: Context) -> Reply:
    """One step of the portal guide, with Back and Next."""
    code, _, number = ctx.args.rpartition(":")
    procedure = ctx.services.catalogue.get(code)
    if procedure is None:
        return unknown_procedure(ctx)
    t = ctx.t
    steps = card.guide_steps(t, procedure, ctx.services.unit)
    n = min(int(number), len(steps) - 1) if number.isdigit() and len(number) < 3 else 0
    text = t("Step {n} of {total}", n=n + 1, total=len(steps)) + "\n" + steps[n]
    back = f"{STEP}{code}:{n - 1}" if n > 0 else f"{START}{code}"
    buttons = [Button(t("◀ Back"), back)]
    if n + 1 < len(steps):
        buttons.append(Button(t("Next ▶"), f"{STEP}{code}:{n + 1}"))
        if n == card.ATTACH_STEP:
            buttons += photos_button(ctx, procedure)
        return Reply(text, [*buttons, _main_menu(ctx)])
    text += "\n\n" + expected(ctx, procedure, brief=True)
    buttons += [Button(t("🔔 Follow the dossier"), "sub:follow"), *tool_buttons(ctx, procedure)]
    return Reply(text, [*buttons, _main_menu(ctx)])


@router.payload("sub:follow")
async def follow(ctx: Context) -> Reply:
    """Ask for the receipt code; the dossier flow looks it up with its usual checks."""
    t = ctx.t
    ctx.state.clear_flow()
    ctx.state.step = dossiers.ASK_CODE
    return Reply(
        t(
            "Once you have submitted, type here the dossier code (mã hồ sơ) the portal gave "
            "you. I will look it up; then press “{button}” to get a message each time it "
            "changes.",
            button=t("🔔 Tell me when it changes"),
        ),
        [Button(t("↩️ Back to menu"), "cancel")],
    )


def unknown_procedure(ctx: Context) -> Reply:
    t = ctx.t
    return Reply(t("That procedure is not in the catalogue any more."), menu_buttons(t))
