"""Dossier status: "hồ sơ của tôi đến đâu rồi?" from the receipt code, and updates on change.

Flow: ask for the code (step dossier.code) -> check its format -> rate limit -> (optional
last 4 phone digits, step dossier.phone) -> status card with a subscribe button.
"""

from __future__ import annotations

import math
import re

from bot.core import Button, Context, Reply, Router
from bot.dossiers.model import normalize_code
from handlers.channel_caps import late_delivery_note
from handlers.dossier_card import SUBSCRIBE, UNSUBSCRIBE, status_card

router = Router("dossiers")

ASK_CODE, ASK_PHONE = "dossier.code", "dossier.phone"
# "Where is my dossier?" once folded (no accents, lower case). Narrow on purpose: "tình trạng"
# alone is also "tình trạng hôn nhân" (marital status), a procedure people search for.
_STATUS_QUESTION = re.compile(
    r"\btra cuu (tinh trang |trang thai |tien do )?ho ?so\b"
    r"|\b(tinh trang|trang thai|tien do) (giai quyet |xu ly )?(cua )?ho ?so\b"
    r"|\bho ?so\b.*\b(den dau|toi dau|xong chua|co ket qua chua|the nao roi|sao roi)\b"
)
# A code survives folding as "<agency parts> yymmdd number": a cheap filter before the real
# pattern runs on the raw text.
_FOLDED_CODE = re.compile(r"\b\d{6} \d{3,6}\b")
MAX_SHOWN = 5


def _wants_status(folded: str) -> bool:
    return _STATUS_QUESTION.search(folded) is not None


def _service(ctx: Context):
    return ctx.services.dossiers


def _who(ctx: Context) -> str:
    return f"{ctx.incoming.channel}:{ctx.incoming.conversation_id}"


def _cancel_button(ctx: Context) -> list[Button]:
    return [Button(ctx.t("↩️ Back to menu"), "cancel")]


@router.payload("dossier:check")
@router.command("hoso", "dossier")
@router.phrase("tra cứu hồ sơ", "kiểm tra hồ sơ", "hồ sơ của tôi", "check dossier")
async def ask_code(ctx: Context) -> Reply:
    """Ask for the receipt code, or look it up at once if the command came with one."""
    code = _service(ctx).find_code(ctx.args) if ctx.args else None
    if code:
        return await _lookup(ctx, code)
    ctx.state.clear_flow()
    ctx.state.step = ASK_CODE
    return Reply(
        _ask_text(ctx),
        [Button(ctx.t("🔎 Find a procedure instead"), "proc:search"), *_cancel_button(ctx)],
    )


def _ask_text(ctx: Context) -> str:
    t = ctx.t
    return t(
        "Please type the dossier code (mã hồ sơ) printed on your receipt slip (Phiếu tiếp nhận "
        "và hẹn trả kết quả), for example {example}.",
        example=ctx.services.settings.dossier_code_example,
    )


@router.text(lambda folded: _wants_status(folded))
async def status_question(ctx: Context) -> Reply | None:
    """Answer "ho so cua toi den dau roi" with the code in it, or ask for the code."""
    code = _service(ctx).find_code(ctx.incoming.text)
    if code:
        return await _lookup(ctx, code)
    return await ask_code(ctx)


@router.text(lambda folded: _FOLDED_CODE.search(folded) is not None)
async def bare_code(ctx: Context) -> Reply | None:
    """A message that is (or contains) a receipt code, without being asked."""
    code = _service(ctx).find_code(ctx.incoming.text)
    return await _lookup(ctx, code) if code else None


@router.step(ASK_CODE)
async def code_given(ctx: Context) -> Reply:
    """Check the code's format, then look it up."""
    service = _service(ctx)
    code = service.find_code(ctx.incoming.text) or service.parse_code(ctx.incoming.text)
    if code:
        return await _lookup(ctx, code)
    t = ctx.t
    return Reply(
        t(
            "“{text}” does not look like a dossier code. The code is printed on your receipt "
            "slip next to “Mã hồ sơ”, for example {example}: the agency code, the date received "
            "(yymmdd) and a number, separated by dashes. Please type it again.",
            text=ctx.incoming.text[:40],
            example=ctx.services.settings.dossier_code_example,
        ),
        _cancel_button(ctx),
    )


async def _lookup(ctx: Context, code: str, *, then_subscribe: bool = False) -> Reply:
    t, service = ctx.t, _service(ctx)
    decision = await service.check_rate(ctx.session, _who(ctx))
    if not decision.allowed:
        minutes = max(1, math.ceil(decision.retry_after / 60))
        return Reply(
            t(
                "You have looked up several dossiers in a short time. To protect dossier "
                "information, please try again in about {minutes} minute(s).",
                minutes=minutes,
            ),
            _cancel_button(ctx),
        )
    lookup = await service.lookup(code)
    if lookup.unavailable:
        ctx.state.clear_flow()
        return Reply(
            t(
                "The dossier system is interrupted and I cannot check dossier {code} right now. "
                "Please try again in a few minutes, or contact the one-stop desk.",
                code=code,
            ),
            _cancel_button(ctx),
        )
    if lookup.dossier is None:
        ctx.state.step = ASK_CODE
        return Reply(
            t(
                "I found no dossier with the code {code}. Please check the code on your receipt "
                "slip (next to “Mã hồ sơ”) and type it again. A dossier received today may only "
                "appear by the end of the working day.",
                code=code,
            ),
            _cancel_button(ctx),
        )
    if service.phone_check and code not in _shown(ctx):
        ctx.state.clear_flow()
        ctx.state.step = ASK_PHONE
        ctx.state.data.update(code=code, subscribe=then_subscribe)
        return Reply(
            t(
                "To protect your information, please type the last 4 digits of the phone "
                "number written on the dossier."
            ),
            _cancel_button(ctx),
        )
    return await _show(ctx, lookup, then_subscribe)


@router.step(ASK_PHONE)
async def phone_given(ctx: Context) -> Reply:
    """Compare the last 4 digits of the phone with the dossier's, then show it."""
    t, service = ctx.t, _service(ctx)
    code = ctx.state.data.get("code", "")
    digits = "".join(ch for ch in ctx.incoming.text if ch.isdigit())
    lookup = await service.lookup(code)
    dossier = lookup.dossier
    if dossier is None or len(digits) < 4 or digits[-4:] != (dossier.phone_last4 or ""):
        ctx.state.clear_flow()
        # Counted like a lookup, so guessing the digits is as limited as guessing codes.
        await service.check_rate(ctx.session, _who(ctx))
        return Reply(
            t(
                "The digits do not match the phone number on the dossier, so I cannot show it. "
                "Please check and look it up again, or ask the one-stop desk."
            ),
            [Button(t("📄 Check a dossier"), "dossier:check"), Button(t("🏠 Main menu"), "menu")],
        )
    subscribe = bool(ctx.state.data.get("subscribe"))
    ctx.state.clear_flow()
    return await _show(ctx, lookup, subscribe)


async def _show(ctx: Context, lookup, subscribe: bool) -> Reply:
    service, dossier = _service(ctx), lookup.dossier
    ctx.state.clear_flow()
    shown = [c for c in _shown(ctx) if c != dossier.code][-(MAX_SHOWN - 1) :]
    ctx.state.data["dossiers_shown"] = [*shown, dossier.code]
    can_push = ctx.incoming.channel in ctx.services.push_channels
    subscribed = dossier.code in await service.subscriptions(
        ctx.session, ctx.incoming.channel, ctx.incoming.conversation_id
    )
    reply = status_card(ctx.t, service, lookup, subscribed=subscribed, can_subscribe=can_push)
    if subscribe and can_push and not subscribed and not dossier.closed:
        return [reply, await _subscribe(ctx, lookup)]
    return reply


def _shown(ctx: Context) -> list[str]:
    return list(ctx.state.data.get("dossiers_shown", []))


async def _subscribe(ctx: Context, lookup) -> Reply:
    t, dossier = ctx.t, lookup.dossier
    await _service(ctx).subscribe(
        ctx.session, ctx.incoming.channel, ctx.incoming.conversation_id, dossier, ctx.locale
    )
    return Reply(
        t(
            "🔔 Done. I will send you a message here each time dossier {code} changes, until "
            "it is closed.",
            code=dossier.code,
        )
        + late_delivery_note(ctx),
        [
            Button(t("🔕 Stop updates"), UNSUBSCRIBE + dossier.code),
            Button(t("🏠 Main menu"), "menu"),
        ],
    )


@router.payload(SUBSCRIBE, prefix=True)
async def subscribe(ctx: Context) -> Reply:
    """Subscribe to a dossier this chat has just seen; otherwise look it up first (so that
    the button cannot be used to probe codes without the checks)."""
    code = normalize_code(ctx.args)
    if ctx.incoming.channel not in ctx.services.push_channels:
        return Reply(
            ctx.t(
                "Sorry, this chat cannot receive updates. Please look the dossier up again later."
            ),
            [Button(ctx.t("🏠 Main menu"), "menu")],
        )
    if code not in _shown(ctx):
        return await _lookup(ctx, code, then_subscribe=True)
    lookup = await _service(ctx).lookup(code)
    if lookup.dossier is None or lookup.unavailable:
        return await _lookup(ctx, code, then_subscribe=True)
    if lookup.dossier.closed:
        return Reply(
            ctx.t("Dossier {code} is already closed; there will be no more updates.", code=code),
            [Button(ctx.t("🏠 Main menu"), "menu")],
        )
    return await _subscribe(ctx, lookup)


@router.payload(UNSUBSCRIBE, prefix=True)
async def unsubscribe(ctx: Context) -> Reply:
    """Stop updates about one dossier."""
    code = normalize_code(ctx.args)
    await _service(ctx).unsubscribe(
        ctx.session, ctx.incoming.channel, ctx.incoming.conversation_id, code
    )
    return Reply(
        ctx.t("🔕 You will no longer receive updates about dossier {code}.", code=code),
        [
            Button(ctx.t("📄 Check a dossier"), "dossier:check"),
            Button(ctx.t("🏠 Main menu"), "menu"),
        ],
    )


@router.phrase(
    "báo cho tôi khi có thay đổi",
    "theo dõi hồ sơ",
    "nhận thông báo",
    "tell me when it changes",
    "follow",
)
async def subscribe_typed(ctx: Context) -> Reply:
    """The subscribe button's words typed: follow the dossier shown last."""
    shown = _shown(ctx)
    if not shown:
        return await ask_code(ctx)
    ctx.args = shown[-1]
    return await subscribe(ctx)


@router.command("theodoi", "following")
@router.phrase(
    "hủy theo dõi", "dừng thông báo", "bỏ theo dõi", "hồ sơ đang theo dõi", "stop updates"
)
async def following(ctx: Context) -> Reply:
    """List the dossiers this chat follows, each with a button to stop."""
    t = ctx.t
    codes = await _service(ctx).subscriptions(
        ctx.session, ctx.incoming.channel, ctx.incoming.conversation_id
    )
    if not codes:
        return Reply(
            t("You are not following any dossier."),
            [Button(t("📄 Check a dossier"), "dossier:check"), Button(t("🏠 Main menu"), "menu")],
        )
    buttons = [Button(f"🔕 {code}", UNSUBSCRIBE + code) for code in codes[:8]]
    return Reply(
        t("You receive updates about these dossiers. Press one to stop:"),
        [*buttons, Button(t("🏠 Main menu"), "menu")],
    )
