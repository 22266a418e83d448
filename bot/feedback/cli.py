"""``motcua feedback list | show | answer | assign | close | reopen``: citizens' feedback (phản
ánh, kiến nghị) for officers who work without the dashboard.

An officer sees only their own unit's feedback (MOTCUA_UNIT or --unit): a code of another unit
is answered exactly like a code that does not exist. Phone numbers are masked unless asked for.

Only light modules are imported at the top: ``bot/cli.py`` reads the helpers below while
building its parser, before any command runs.
"""

from __future__ import annotations

import argparse
import sys
import unicodedata
from argparse import Namespace
from datetime import datetime
from pathlib import Path

from bot.dossiers.model import VN_TZ
from bot.feedback.model import KINDS, STATUSES, TOPICS, StatusKind, mask_phone
from bot.i18n import N_

# Exit statuses of `motcua feedback ...`.
EXIT_OK = 0
EXIT_REFUSED = 1  # no such feedback, a closed one, an empty or unreadable answer, no database
EXIT_USAGE = 2  # wrong command line (argparse's own status)

STATUS_CHOICES = tuple(STATUSES)
DEFAULT_LIMIT = 50
PREVIEW_CHARS = 60  # of the content, in the list
SHA_SHOWN = 12  # first hex digits of a file's sha256
MAX_STAFF_NAME = 58  # "staff:" + name fits the 64 characters of the history's actor
OVERDUE_MARK = "!"
_PAGE = 200  # rows read at a time while looking for overdue feedback

ACTIONS = {
    "create": N_("sent by the citizen"),
    "assign": N_("assigned"),
    "answer": N_("answered"),
    "close": N_("closed"),
    "reopen": N_("reopened"),
    "confirm": N_("confirmed solved"),
}
# Citizens type the content and name the files: keep their text from steering the terminal.
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# -- parser helpers (used by bot/cli.py) ------------------------------------------------------


def list_epilog(t) -> str:
    """The codes of the list's columns, for ``motcua feedback list --help``."""
    lines = [t("Statuses:")]
    lines += [f"  {code:<12} {t(status.label)}" for code, status in STATUSES.items()]
    lines.append(t("Kinds (the tracking code starts with the prefix):"))
    lines += [f"  {code:<12} {kind.prefix}  {t(kind.label)}" for code, kind in KINDS.items()]
    lines.append(t("Topics:"))
    lines += [f"  {code:<12} {t(label)}" for code, label in TOPICS.items()]
    lines.append(
        t(
            "{mark} = overdue: past its due date and not answered yet.",
            mark=OVERDUE_MARK,
        )
    )
    return "\n".join(lines)


def positive_int(t):
    """An argparse type: a whole number of at least 1."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            raise argparse.ArgumentTypeError(
                t("not a whole number of at least 1: {value}", value=value)
            )
        return number

    return parse


def staff_name(t):
    """An argparse type: the officer's name as recorded in the history (``staff:<name>``)."""

    def parse(value: str) -> str:
        name = " ".join(value.split())
        if not name or any(_unsafe(ch) for ch in name):
            raise argparse.ArgumentTypeError(t("give your name, e.g. --staff Lan"))
        if len(name) > MAX_STAFF_NAME:
            raise argparse.ArgumentTypeError(
                t("a name of at most {n} characters", n=MAX_STAFF_NAME)
            )
        return name

    return parse


# -- the command -------------------------------------------------------------------------------


def feedback_service(settings, unit: str):
    """The feedback service of one unit (without loading the catalogue, which no staff action
    needs)."""
    from bot.feedback.service import FeedbackService
    from handlers.feedback_card import answer_notice

    return FeedbackService.from_settings(settings, unit, render_answer=answer_notice)


async def run_feedback_command(args: Namespace, settings, t) -> int:
    """Run ``motcua feedback ACTION``; return the exit status."""
    from bot.app import open_database

    text = None
    if args.feedback_command == "answer":
        text = _answer_text(args, t)
        if text is None:
            return EXIT_REFUSED
    db = await open_database(settings)
    try:
        unit = args.unit or settings.unit
        service = feedback_service(settings, unit)
        if args.feedback_command == "list":
            return await _list(args, db, service, t)
        if args.feedback_command == "show":
            return await _show(args, db, service, t)
        return await _act(args, db, service, t, text)
    finally:
        await db.dispose()


def _answer_text(args: Namespace, t) -> str | None:
    """The answer from --text or --file ("-": standard input); None after saying why not."""
    if args.text is not None:
        text = args.text
    else:
        try:
            if args.file == "-":
                text = sys.stdin.read()
            else:
                text = Path(args.file).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            reason = t("not UTF-8 text")
            print(t("Cannot read {path}: {reason}", path=args.file, reason=reason), file=sys.stderr)
            return None
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(t("Cannot read {path}: {reason}", path=args.file, reason=reason), file=sys.stderr)
            return None
    text = text.strip()
    if not text:
        print(t("The answer is empty: nothing was recorded."), file=sys.stderr)
        return None
    return text


async def _list(args: Namespace, db, service, t) -> int:
    async with db.session() as session:
        views = await _matching(service, session, args.status, args.overdue, args.limit)
        counts = await service.counts(session)
    if views:
        rows = [_list_row(view) for view in views]
        headers = [
            t("Code"),
            t("Received on"),
            t("Kind"),
            t("Topic"),
            t("Status"),
            t("Due by"),
            t("Contact"),
            t("Content"),
        ]
        print(_table(headers, rows))
        if any(view.overdue for view in views):
            print(t("{mark} = overdue: past its due date and not answered yet.", mark=OVERDUE_MARK))
    else:
        print(t("No feedback to show in unit {unit}.", unit=service.unit))
    total = sum(counts.values())
    expected = counts.get(args.status, 0) if args.status else total
    if len(views) == args.limit and (args.overdue or expected > args.limit):
        print(t("Only the newest {n} are shown; use --limit to see more.", n=args.limit))
    parts = [
        f"{t(status.label)} ({code}): {counts.get(code, 0)}" for code, status in STATUSES.items()
    ]
    print(
        t(
            "Unit {unit}: {counts}; total {total}.",
            unit=service.unit,
            counts=", ".join(parts),
            total=total,
        )
    )
    return EXIT_OK


async def _matching(service, session, status: str | None, overdue: bool, limit: int) -> list:
    """The newest ``limit`` feedback of the unit with this status (and overdue, if asked)."""
    if not overdue:
        return await service.list(session, status=status, limit=limit)
    found: list = []
    offset = 0
    while len(found) < limit:
        page = await service.list(session, status=status, limit=_PAGE, offset=offset)
        found += [view for view in page if view.overdue]
        if len(page) < _PAGE:
            break
        offset += _PAGE
    return found[:limit]


def _list_row(view) -> list[str]:
    row = view.row
    content = _clean(" ".join(row.content.split()))
    if len(content) > PREVIEW_CHARS:
        content = content[:PREVIEW_CHARS] + "…"
    return [
        row.tracking_code or "",
        _date(row.created_at),
        row.kind,
        row.topic,
        row.status,
        (_date(row.due_at) if row.due_at else "—") + (f" {OVERDUE_MARK}" if view.overdue else ""),
        mask_phone(row.phone) or "—",
        content,
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell; the last one (the content) is not padded."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for cells in (headers, *rows):
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return "\n".join(lines)


async def _show(args: Namespace, db, service, t) -> int:
    async with db.session() as session:
        view = await service.get(session, args.code.strip())
    if view is None:
        print(_not_found(t, args.code, service.unit), file=sys.stderr)
        return EXIT_REFUSED
    row = view.row
    if row.phone:
        phone = row.phone if args.show_phone else mask_phone(row.phone)
        consent = _time(row.consent_at) if row.consent_at else "—"
        contact = t("{phone} (consent given {at})", phone=phone, at=consent)
    else:
        contact = t("anonymous")
    due = _time(row.due_at) if row.due_at else "—"
    if view.overdue:
        due += " " + t("(overdue)")
    lines = [
        t("Feedback {code} (unit {unit})", code=row.tracking_code, unit=row.unit),
        "  " + t("Kind: {kind}", kind=_label(t, KINDS.get(row.kind), row.kind)),
        "  " + t("Topic: {topic}", topic=_topic(t, row.topic)),
        "  " + t("Procedure: {code}", code=row.procedure_code or "—"),
        "  " + t("Status: {status}", status=_status(t, row.status)),
        "  " + t("Assigned to: {name}", name=_clean(row.assigned_to or "") or "—"),
        "  " + t("Received: {at} via {channel}", at=_time(row.created_at), channel=row.channel),
        "  " + t("Due: {at}", at=due),
        "  " + t("Last change: {at}", at=_time(row.updated_at)),
        "  " + t("Contact: {contact}", contact=contact),
        "  " + t("Language of the chat: {locale}", locale=row.locale),
        "  " + t("Content:"),
        *_indented(row.content, "    "),
        "  " + t("Files: {n}", n=len(view.attachments)),
    ]
    for file in view.attachments:
        lines.append(
            "    "
            + "  ".join(
                (
                    _clean(file.filename),
                    file.mime_type,
                    _size(file.size),
                    f"sha256 {file.sha256[:SHA_SHOWN]}",
                )
            )
        )
        lines.append("      " + _stored_path(service.store, file.sha256, t))
    lines.append("  " + t("History:"))
    for event in view.events:
        action = t(ACTIONS[event.action]) if event.action in ACTIONS else event.action
        lines.append(
            f"    {_time(event.at)}  {_clean(event.actor)}  {action}  {_status(t, event.status)}"
        )
        lines += _indented(event.text or "", "      ")
    print("\n".join(lines))
    return EXIT_OK


class _Refused(Exception):
    """A staff action refused, with the message for the officer; nothing is written."""


async def _act(args: Namespace, db, service, t, text: str | None) -> int:
    """answer, assign, close or reopen in one write transaction; an answer is queued for the
    citizen's chat in that same transaction (by the service)."""
    from bot.feedback.service import FeedbackError

    try:
        async with db.write_transaction() as session:
            row = await _apply(session, service, args, t, text)
            done = _done(t, args.feedback_command, row)
    except _Refused as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except FeedbackError as exc:  # the service's own checks, should the ones above miss any
        print(t("Not done: {reason}", reason=exc), file=sys.stderr)
        return EXIT_REFUSED
    print(done)  # only once committed
    return EXIT_OK


async def _apply(session, service, args: Namespace, t, text: str | None):
    action, code = args.feedback_command, args.code.strip().upper()
    actor = f"staff:{args.staff}"
    view = await service.get(session, code)
    if view is None:
        raise _Refused(_not_found(t, args.code, service.unit))
    if action != "reopen" and STATUSES[view.row.status].kind is StatusKind.CLOSED:
        raise _Refused(
            t(
                "Feedback {code} is closed. Reopen it first: motcua feedback reopen {code} "
                "--reason TEXT --staff NAME",
                code=code,
            )
        )
    if action == "answer":
        return await service.answer(session, code, text, actor)
    if action == "assign":
        return await service.assign(session, code, args.to or args.staff, actor)
    if action == "close":
        return await service.close(session, code, actor, args.note.strip())
    return await service.reopen(session, code, args.reason.strip(), actor)


def _done(t, action: str, row) -> str:
    code, status = row.tracking_code, _status(t, row.status)
    if action == "answer":
        return "\n".join(
            (
                t("Answer to {code} recorded; status: {status}.", code=code, status=status),
                t(
                    "It is queued for the citizen's chat ({channel}) and will be delivered by "
                    "the running bot (motcua run).",
                    channel=row.channel,
                ),
            )
        )
    if action == "assign":
        return t(
            "Feedback {code} assigned to {name}; status: {status}.",
            code=code,
            name=row.assigned_to,
            status=status,
        )
    if action == "close":
        return t("Feedback {code} closed.", code=code)
    return t("Feedback {code} reopened; status: {status}.", code=code, status=status)


# -- formatting --------------------------------------------------------------------------------


def _not_found(t, code: str, unit: str) -> str:
    # The same words whether the code exists in another unit or nowhere.
    return t("No feedback {code} in unit {unit}.", code=_clean(code.strip().upper()), unit=unit)


def _label(t, entry, code: str) -> str:
    return f"{t(entry.label)} — {code}" if entry else code


def _status(t, code: str) -> str:
    return _label(t, STATUSES.get(code), code)


def _topic(t, code: str) -> str:
    return f"{t(TOPICS[code])} — {code}" if code in TOPICS else code


def _stored_path(store, sha256: str, t) -> str:
    try:
        path = store.path(sha256)
    except ValueError:
        return t("(not a valid file reference)")
    return str(path) if path.is_file() else f"{path} " + t("(missing from the store)")


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _moment(moment: datetime) -> datetime:
    from bot.storage.models import as_utc

    return as_utc(moment).astimezone(VN_TZ)


def _date(moment: datetime) -> str:
    return _moment(moment).strftime("%d/%m/%Y")


def _time(moment: datetime) -> str:
    return _moment(moment).strftime("%d/%m/%Y %H:%M")


def _unsafe(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS


def _clean(text: str) -> str:
    """One line of someone else's text, safe to print: control characters become spaces."""
    return "".join(" " if _unsafe(ch) else ch for ch in text)


def _indented(text: str, indent: str) -> list[str]:
    return [indent + _clean(line) for line in text.strip().splitlines()]
