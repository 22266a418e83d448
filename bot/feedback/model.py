"""The feedback vocabulary as data: kinds, topics and statuses (FixMyStreet's pattern), and the
checks of what a citizen types (phone numbers, tracking codes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.i18n import N_


@dataclass(frozen=True)
class Kind:
    code: str
    prefix: str  # of the tracking code
    label: str  # msgid


KINDS: dict[str, Kind] = {
    k.code: k
    for k in (
        Kind("report", "PA", N_("Report a problem (phản ánh)")),
        Kind("proposal", "KN", N_("Propose a change (kiến nghị)")),
    )
}

TOPICS: dict[str, str] = {
    "procedure": N_("An administrative procedure"),
    "conduct": N_("The conduct of an officer or the desk"),
    "portal": N_("The online public service portal"),
    "other": N_("Something else"),
}


class StatusKind(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class Status:
    code: str
    kind: StatusKind
    label: str  # msgid


STATUSES: dict[str, Status] = {
    s.code: s
    for s in (
        Status("received", StatusKind.OPEN, N_("Received")),
        Status("in_progress", StatusKind.OPEN, N_("Being handled")),
        Status("answered", StatusKind.OPEN, N_("Answered")),
        Status("closed", StatusKind.CLOSED, N_("Closed")),
    )
}

# PA-2026-000123: the kind's prefix, the year, then the feedback's number.
TRACKING_CODE = re.compile(r"\b(PA|KN)-(\d{4})-(\d{6})\b", re.IGNORECASE)

_PHONE_NOISE = re.compile(r"[\s.\-()]")
# Mobile numbers since the 2018 renumbering: 03x, 05x, 07x, 08x, 09x + 8 digits; landlines:
# 02 + area code + number, 11 digits in all.
_MOBILE = re.compile(r"0[35789]\d{8}")
_LANDLINE = re.compile(r"02\d{9}")


def normalize_phone(text: str) -> str | None:
    """A Vietnamese phone number in the form 0xxxxxxxxx, or None if it is not one."""
    digits = _PHONE_NOISE.sub("", text.strip())
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    if _MOBILE.fullmatch(digits) or _LANDLINE.fullmatch(digits):
        return digits
    return None


def tracking_code(kind: str, year: int, number: int) -> str:
    return f"{KINDS[kind].prefix}-{year}-{number:06d}"


def mask_phone(phone: str | None) -> str:
    """Shown back to the citizen and in logs: only the last 3 digits."""
    return "•" * (len(phone) - 3) + phone[-3:] if phone else ""
