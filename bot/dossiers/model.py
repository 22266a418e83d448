"""The dossier domain: a Dossier, its history of status changes, and the status vocabulary.

Statuses are data (FixMyStreet's pattern): each has a code stored in the database, a kind that
says what it means for the citizen, and the words the citizen reads (gettext msgids, translated
in locales/). History is a list of changes that is only ever appended to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

from bot.i18n import N_

# Vietnam has had no daylight saving time since 1975: a fixed offset is exact.
VN_TZ = timezone(timedelta(hours=7), "ICT")


class StatusKind(StrEnum):
    OPEN = "open"  # the desk is working on it
    NEEDS_CITIZEN = "needs_citizen"  # the citizen has something to do (bring papers, collect)
    CLOSED = "closed"  # finished one way or another; subscriptions end


class ReceiptChannel(StrEnum):
    """How the dossier was received (hình thức tiếp nhận); the quarterly report counts each."""

    ONLINE = "online"  # trực tuyến
    IN_PERSON = "in_person"  # trực tiếp
    POSTAL = "postal"  # dịch vụ bưu chính công ích


@dataclass(frozen=True)
class Status:
    """One entry of the status vocabulary."""

    code: str
    kind: StatusKind
    label: str  # msgid: the short name the citizen reads
    explanation: str  # msgid: what it means for them and what to do


STATUSES: dict[str, Status] = {
    s.code: s
    for s in (
        Status(
            "received",
            StatusKind.OPEN,
            N_("Received"),
            N_("The desk has received your dossier and will pass it on for processing."),
        ),
        Status(
            "in_progress",
            StatusKind.OPEN,
            N_("Being processed"),
            N_("Your dossier is being processed. You do not need to do anything for now."),
        ),
        Status(
            "needs_documents",
            StatusKind.NEEDS_CITIZEN,
            N_("Waiting for additional documents"),
            N_(
                "The desk needs more documents or corrections from you before it can continue. "
                "A new due date is set once you hand them in."
            ),
        ),
        Status(
            "paused",
            StatusKind.NEEDS_CITIZEN,
            N_("Paused"),
            N_(
                "Processing is paused, usually until a fee or tax is paid or another agency "
                "answers. Please read the note below or contact the desk."
            ),
        ),
        Status(
            "result_ready",
            StatusKind.NEEDS_CITIZEN,
            N_("Result ready"),
            N_(
                "The result is ready. Please collect it at the desk with your receipt slip and "
                "your ID card, or wait for it by post if you chose that."
            ),
        ),
        Status(
            "returned_early",
            StatusKind.CLOSED,
            N_("Result returned early"),
            N_("The result was returned before the due date."),
        ),
        Status(
            "returned_on_time",
            StatusKind.CLOSED,
            N_("Result returned on time"),
            N_("The result was returned on the due date."),
        ),
        Status(
            "returned_late",
            StatusKind.CLOSED,
            N_("Result returned late"),
            N_(
                "The result was returned after the due date. If the delay caused you trouble, "
                "you can send feedback to the commune."
            ),
        ),
        Status(
            "rejected",
            StatusKind.CLOSED,
            N_("Returned: conditions not met"),
            N_(
                "The dossier was returned because it does not meet the conditions. The note "
                "below gives the reason; you may submit again once it is resolved."
            ),
        ),
        Status(
            "withdrawn",
            StatusKind.CLOSED,
            N_("Withdrawn"),
            N_("The dossier was withdrawn at the applicant's request."),
        ),
    )
}


def status(code: str) -> Status:
    """The vocabulary entry for a status code; KeyError names the unknown code."""
    try:
        return STATUSES[code]
    except KeyError:
        raise KeyError(f"unknown dossier status {code!r}; known: {', '.join(STATUSES)}") from None


@dataclass(frozen=True)
class StatusChange:
    """One step of a dossier's history (quá trình xử lý): never edited once recorded."""

    status: str
    at: datetime  # timezone-aware
    note: str = ""


@dataclass(frozen=True)
class Dossier:
    """A citizen's dossier (hồ sơ) as the bot may show it.

    Deliberately without the applicant's name, address or ID number: the bot never shows them,
    so it never holds them. ``phone_last4`` is kept only for the optional second factor.
    """

    code: str
    unit: str
    received_at: datetime  # timezone-aware; the deadline is counted from here, never reset
    channel: ReceiptChannel
    status: str
    procedure_code: str | None = None
    procedure_name: str | None = None  # when the source names it and the catalogue does not
    due_at: datetime | None = None  # hẹn trả kết quả
    history: tuple[StatusChange, ...] = field(default=())
    phone_last4: str | None = None

    @property
    def kind(self) -> StatusKind:
        return status(self.status).kind

    @property
    def closed(self) -> bool:
        return self.kind is StatusKind.CLOSED

    @property
    def last_note(self) -> str:
        """The note of the latest change, e.g. the documents the desk asks for."""
        return self.history[-1].note if self.history else ""


@dataclass(frozen=True)
class Lookup:
    """What a source answered about one code."""

    dossier: Dossier | None  # None: the source does not know this code
    as_of: datetime  # when the information was true (now, or when it was cached)
    stale: bool = False  # the upstream could not be reached: this is the last known answer
    unavailable: bool = False  # the upstream could not be reached and nothing was cached

    @property
    def fresh(self) -> bool:
        return not (self.stale or self.unavailable)


# Receipt codes as one-stop software prints them on the slip (phiếu tiếp nhận và hẹn trả kết
# quả): the agency's code, the receipt date as yymmdd and a sequence number, e.g.
# "000.00.15.H26-260115-0001" or "H26.22-251002-0012". Letters, digits and dots, then two
# dash-separated groups of digits.
DEFAULT_CODE_PATTERN = r"[A-Z0-9]{1,6}(?:\.[A-Z0-9]{1,6}){0,5}-\d{6}-\d{3,6}"
_DASHES = re.compile(r"\s*[-‐‑‒–—―_/]\s*")


def normalize_code(text: str) -> str:
    """The canonical form of a code a citizen typed: upper case, no spaces, plain dashes."""
    return _DASHES.sub("-", text.strip().strip(".,;:!?\"'()[]")).replace(" ", "").upper()


def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken as Vietnam time (what CSV exports hold)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=VN_TZ)
    return moment.astimezone(UTC)


def dossier_to_dict(dossier: Dossier) -> dict:
    """JSON-ready form (for caches and exports); ``dossier_from_dict`` reads it back."""
    return {
        "code": dossier.code,
        "unit": dossier.unit,
        "received_at": dossier.received_at.isoformat(),
        "channel": dossier.channel.value,
        "status": dossier.status,
        "procedure_code": dossier.procedure_code,
        "procedure_name": dossier.procedure_name,
        "due_at": dossier.due_at.isoformat() if dossier.due_at else None,
        "history": [
            {"status": c.status, "at": c.at.isoformat(), "note": c.note} for c in dossier.history
        ],
        "phone_last4": dossier.phone_last4,
    }


def dossier_from_dict(data: dict) -> Dossier:
    """Inverse of ``dossier_to_dict``; raises KeyError/ValueError on a malformed dict."""
    return Dossier(
        code=data["code"],
        unit=data["unit"],
        received_at=utc(datetime.fromisoformat(data["received_at"])),
        channel=ReceiptChannel(data["channel"]),
        status=status(data["status"]).code,
        procedure_code=data.get("procedure_code"),
        procedure_name=data.get("procedure_name"),
        due_at=utc(datetime.fromisoformat(data["due_at"])) if data.get("due_at") else None,
        history=tuple(
            StatusChange(status(c["status"]).code, utc(datetime.fromisoformat(c["at"])), c["note"])
            for c in data.get("history", [])
        ),
        phone_last4=data.get("phone_last4"),
    )
