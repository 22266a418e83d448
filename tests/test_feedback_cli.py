"""``motcua feedback``: officers list, read and answer citizens' feedback from a terminal, and
the unit isolation of the staff functions behind it (the dashboard will call the same ones)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.dossiers.calendar import WorkingCalendar
from bot.dossiers.model import VN_TZ
from bot.feedback.attachments import AttachmentStore
from bot.feedback.service import FeedbackError, FeedbackService
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Feedback, FeedbackEvent, OutboxMessage, as_utc, utcnow
from handlers.feedback_card import answer_notice
from tests.cli_helpers import run_in_process

UNIT = "xa-tan-lap"
PHONE = "0912345678"
MASKED = "•••••••678"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000
LONG = (
    "Đèn đường ở thôn 3 hỏng từ tuần trước,\n\ntối lắm, "
    "người đi xe máy buổi tối rất dễ ngã ở khúc cua gần trường học."
)


def service(store: AttachmentStore, unit: str = UNIT) -> FeedbackService:
    return FeedbackService(
        unit=unit,
        store=store,
        calendar=WorkingCalendar(),
        handling_days={"report": 10, "proposal": 15},
        render_answer=answer_notice,
    )


def draft(key: str, content: str = "Cổng dịch vụ công chậm", **extra) -> dict:
    return {"key": key, "kind": "report", "topic": "other", "content": content, "files": []} | extra


async def submit(db: Database, svc: FeedbackService, item: dict, chat: str = "42:42") -> str:
    async with db.write_transaction() as session:
        row, _ = await svc.submit(
            session, item, channel="telegram", conversation_id=chat, locale="vi"
        )
        return row.tracking_code


# -- the command, end to end -------------------------------------------------------------------


class Desk:
    """A SQLite file with some feedback in it, and the ``motcua feedback`` command run on it."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "cli.sqlite3"
        self.files = tmp_path / "files"
        self.codes: dict[str, str] = {}

    async def _seed(self) -> None:
        db = Database(f"sqlite:///{self.path}")
        await upgrade(db)
        store = AttachmentStore(self.files)
        svc = service(store)
        photo = store.put(PNG)
        consent = datetime(2026, 1, 15, 1, 30, tzinfo=UTC).isoformat()
        file = {"sha256": photo.sha256, "filename": "den\x1b[31m.png", "mime": photo.mime}
        file["size"] = photo.size
        with_phone = draft("k1", LONG, phone=PHONE, consent_at=consent, files=[file])
        self.codes["phone"] = await submit(db, svc, with_phone)
        self.codes["late"] = await submit(db, svc, draft("k2", "Quá hạn"), chat="43:43")
        self.codes["new"] = await submit(db, svc, draft("k3", "Mới", kind="proposal"), "44:44")
        self.codes["elsewhere"] = await submit(
            db, service(store, "xa-khac"), draft("k4", "Ở xã khác")
        )
        async with db.write_transaction() as session:
            late = await session.scalar(
                select(Feedback).where(Feedback.tracking_code == self.codes["late"])
            )
            late.due_at = utcnow() - timedelta(days=1)
        await db.dispose()

    def seed(self) -> Desk:
        asyncio.run(self._seed())
        return self

    def run(self, *args: str, unit: str = UNIT, stdin: str = "") -> subprocess.CompletedProcess:
        """Run ``motcua feedback ARGS`` in this process (``bot.cli.main``, as the console
        script does) with its own environment and standard streams: a subprocess per call
        cost 1.5 s of start-up each. ``test_help_lists_the_actions`` runs the real command."""
        env = {
            "MOTCUA_DATABASE_URL": f"sqlite:///{self.path}",
            "MOTCUA_ATTACHMENTS_DIR": str(self.files),
            "MOTCUA_DEFAULT_LOCALE": "en",
            "MOTCUA_UNIT": unit,
        }
        code, out, err = run_in_process(["feedback", *args], env, stdin)
        return subprocess.CompletedProcess(args, code, out, err)

    def run_process(self, *args: str) -> subprocess.CompletedProcess:
        """The real ``python -m bot feedback ARGS`` in a subprocess."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
        env |= {
            "MOTCUA_DATABASE_URL": f"sqlite:///{self.path}",
            "MOTCUA_ATTACHMENTS_DIR": str(self.files),
            "MOTCUA_DEFAULT_LOCALE": "en",
            "MOTCUA_UNIT": UNIT,
        }
        return subprocess.run(
            [sys.executable, "-m", "bot", "feedback", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    def rows(self, model, *where) -> list:
        async def read() -> list:
            db = Database(f"sqlite:///{self.path}")
            try:
                async with db.session() as session:
                    return list(await session.scalars(select(model).where(*where)))
            finally:
                await db.dispose()

        return asyncio.run(read())

    def feedback(self, name: str) -> Feedback:
        return self.rows(Feedback, Feedback.tracking_code == self.codes[name])[0]

    def events(self, name: str) -> list[FeedbackEvent]:
        row = self.feedback(name)
        return sorted(self.rows(FeedbackEvent, FeedbackEvent.feedback_id == row.id), key=_id)


def _id(row) -> int:
    return row.id


@pytest.fixture
def desk(tmp_path) -> Desk:
    return Desk(tmp_path).seed()


def test_help_lists_the_actions(desk: Desk) -> None:
    result = desk.run_process("--help")
    assert result.returncode == 0
    for action in ("list", "show", "answer", "assign", "close", "reopen"):
        assert f"    {action} " in result.stdout
    listing = desk.run("list", "--help")
    assert "in_progress  Being handled" in listing.stdout and "--overdue" in listing.stdout
    answer = desk.run("answer", "--help")
    assert "--staff NAME (--text TEXT | --file PATH)" in answer.stdout


def test_list_shows_the_units_feedback_with_masked_phones_and_counts(desk: Desk) -> None:
    result = desk.run("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    header, *lines = out.splitlines()
    assert header.split() == "Code Received on Kind Topic Status Due by Contact Content".split()
    codes = desk.codes
    assert [line.split()[0] for line in lines[:3]] == [codes["new"], codes["late"], codes["phone"]]
    assert codes["elsewhere"] not in out and "Ở xã khác" not in out
    with_phone = lines[2]
    assert MASKED in with_phone and PHONE not in out
    preview = " ".join(LONG.split())[:60]
    assert with_phone.endswith(preview + "…")
    row = desk.feedback("phone")
    received, due = (as_utc(at).astimezone(VN_TZ) for at in (row.created_at, row.due_at))
    assert with_phone.split()[1:6] == [
        received.strftime("%d/%m/%Y"),
        "report",
        "other",
        "received",
        due.strftime("%d/%m/%Y"),
    ]
    assert " ! " in lines[1] and " ! " not in lines[0] + with_phone
    assert "! = overdue" in out
    assert (
        "Unit xa-tan-lap: Received (received): 3, Being handled (in_progress): 0, "
        "Answered (answered): 0, Closed (closed): 0; total 3." in out
    )

    overdue = desk.run("list", "--overdue").stdout
    assert codes["late"] in overdue and codes["phone"] not in overdue
    newest = desk.run("list", "--limit", "1").stdout
    assert codes["new"] in newest and codes["late"] not in newest
    assert "Only the newest 1 are shown" in newest
    closed = desk.run("list", "--status", "closed")
    assert closed.returncode == 0 and "No feedback to show in unit xa-tan-lap." in closed.stdout
    assert desk.run("list", "--limit", "0").returncode == 2
    assert desk.run("list", "--status", "open").returncode == 2
    other = desk.run("list", "--unit", "xa-khac").stdout
    assert codes["elsewhere"] in other and codes["phone"] not in other


def test_show_prints_fields_files_and_history(desk: Desk) -> None:
    code = desk.codes["phone"]
    result = desk.run("show", code.lower())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Feedback {code} (unit xa-tan-lap)" in out
    assert "Kind: Report a problem (phản ánh) — report" in out
    assert "Status: Received — received" in out
    assert f"Contact: {MASKED} (consent given 15/01/2026 08:30)" in out and PHONE not in out
    assert "    Đèn đường ở thôn 3 hỏng từ tuần trước," in out  # content as written, indented
    row = desk.feedback("phone")
    photo = AttachmentStore(desk.files).put(PNG)
    assert "Files: 1" in out
    assert f"den [31m.png  image/png  2.0 KB  sha256 {photo.sha256[:12]}" in out  # no escape
    assert str(AttachmentStore(desk.files).path(photo.sha256)) in out
    assert "\x1b" not in out
    assert "citizen  sent by the citizen  Received — received" in out
    assert row.status == "received"

    shown = desk.run("show", code, "--show-phone")
    assert f"Contact: {PHONE} (consent" in shown.stdout and shown.stderr == ""
    anonymous = desk.run("show", desk.codes["late"]).stdout
    assert "Contact: anonymous" in anonymous and "Due: " in anonymous and "(overdue)" in anonymous


def test_answer_is_recorded_and_queued_for_the_citizens_chat(desk: Desk) -> None:
    code = desk.codes["phone"]
    result = desk.run("answer", code, "--text", "Đã thay bóng đèn hôm nay.", "--staff", "Lan")
    assert result.returncode == 0, result.stderr
    assert f"Answer to {code} recorded; status: Answered — answered." in result.stdout
    assert "delivered by the running bot" in result.stdout
    assert desk.feedback("phone").status == "answered"
    last = desk.events("phone")[-1]
    assert (last.actor, last.action, last.status) == ("staff:Lan", "answer", "answered")
    assert last.text == "Đã thay bóng đèn hôm nay."
    [queued] = desk.rows(OutboxMessage)
    assert (queued.channel, queued.conversation_id) == ("telegram", "42:42")
    assert "Đã thay bóng đèn hôm nay." in queued.replies[0]["text"]
    assert code in queued.replies[0]["text"]  # in the chat's language (vi)

    shown = desk.run("show", code).stdout
    assert "staff:Lan  answered  Answered — answered\n      Đã thay bóng đèn hôm nay." in shown

    answer = Path(desk.path.parent / "answer.txt")
    answer.write_text("\ufeffDòng một.\nDòng hai.\n", encoding="utf-8")
    from_file = desk.run("answer", desk.codes["late"], "--file", str(answer), "--staff", "Minh")
    assert from_file.returncode == 0, from_file.stderr
    assert desk.events("late")[-1].text == "Dòng một.\nDòng hai."
    piped = desk.run("answer", desk.codes["new"], "--file", "-", "--staff", "Minh", stdin="Ok\n")
    assert piped.returncode == 0 and desk.events("new")[-1].text == "Ok"
    assert len(desk.rows(OutboxMessage)) == 3


def test_another_units_code_looks_unknown(desk: Desk) -> None:
    code = desk.codes["phone"]
    elsewhere = desk.run("answer", code, "--text", "Xin chào", "--staff", "Lan", unit="other")
    assert elsewhere.returncode == 1
    assert elsewhere.stderr == f"No feedback {code} in unit other.\n"
    unknown = desk.run("answer", "PA-2026-999999", "--text", "Xin chào", "--staff", "Lan")
    assert unknown.stderr == "No feedback PA-2026-999999 in unit xa-tan-lap.\n"
    shown = desk.run("show", code, "--unit", "other")
    assert shown.returncode == 1 and shown.stderr == elsewhere.stderr and shown.stdout == ""
    for action in (["assign"], ["close"], ["reopen", "--reason", "x"]):
        result = desk.run(*action, code, "--staff", "Lan", "--unit", "other")
        assert result.returncode == 1 and result.stderr == elsewhere.stderr
    assert desk.rows(OutboxMessage) == [] and len(desk.events("phone")) == 1


def test_assign_close_reopen(desk: Desk) -> None:
    code = desk.codes["phone"]
    taken = desk.run("assign", code, "--staff", "Lan")
    assert taken.returncode == 0, taken.stderr
    assert f"Feedback {code} assigned to Lan; status: Being handled" in taken.stdout
    handed = desk.run("assign", code, "--staff", "Lan", "--to", "Minh")
    assert "assigned to Minh" in handed.stdout and desk.feedback("phone").assigned_to == "Minh"

    closed = desk.run("close", code, "--staff", "Lan", "--note", "Đã xử lý tại chỗ")
    assert closed.returncode == 0 and f"Feedback {code} closed." in closed.stdout
    assert desk.feedback("phone").status == "closed"
    for action in (["answer", "--text", "Muộn"], ["assign"], ["close"]):
        refused = desk.run(*action, code, "--staff", "Lan")
        assert refused.returncode == 1, action
        assert f"Feedback {code} is closed. Reopen it first" in refused.stderr

    reopened = desk.run("reopen", code, "--reason", "Đèn lại hỏng", "--staff", "Lan")
    assert reopened.returncode == 0, reopened.stderr
    assert "reopened; status: Being handled — in_progress" in reopened.stdout
    assert [(e.actor, e.action, e.status, e.text) for e in desk.events("phone")] == [
        ("citizen", "create", "received", ""),
        ("staff:Lan", "assign", "in_progress", "Lan"),
        ("staff:Lan", "assign", "in_progress", "Minh"),
        ("staff:Lan", "close", "closed", "Đã xử lý tại chỗ"),
        ("staff:Lan", "reopen", "in_progress", "Đèn lại hỏng"),
    ]
    assert desk.rows(OutboxMessage) == []
    counts = desk.run("list").stdout
    assert "Being handled (in_progress): 1" in counts and "Received (received): 2" in counts


def test_refusals_write_nothing(desk: Desk) -> None:
    code = desk.codes["phone"]
    empty = desk.run("answer", code, "--text", "  \n ", "--staff", "Lan")
    assert empty.returncode == 1 and "The answer is empty" in empty.stderr
    missing = desk.run("answer", code, "--file", str(desk.path.parent / "nope.txt"), "--staff", "L")
    assert missing.returncode == 1 and "Cannot read" in missing.stderr
    latin1 = desk.path.parent / "latin1.txt"
    latin1.write_bytes("Trả lời".encode("utf-16"))
    assert (
        "not UTF-8 text" in desk.run("answer", code, "--file", str(latin1), "--staff", "L").stderr
    )
    assert desk.run("answer", code, "--text", "Ok").returncode == 2  # --staff is required
    assert desk.run("answer", code, "--staff", "Lan").returncode == 2  # --text or --file
    assert desk.run("close", code, "--staff", "   ").returncode == 2
    assert desk.run("reopen", code, "--staff", "Lan").returncode == 2  # --reason is required
    assert desk.rows(OutboxMessage) == [] and len(desk.events("phone")) == 1
    assert all("Traceback" not in r.stderr for r in (empty, missing))


# -- the staff functions, in process, on SQLite and PostgreSQL ----------------------------------


async def test_staff_functions_keep_to_their_unit(db: Database, tmp_path) -> None:
    store = AttachmentStore(tmp_path / "files")
    here, there = service(store), service(store, "xa-khac")
    mine = await submit(db, here, draft("u1", phone=PHONE))
    theirs = await submit(db, there, draft("u2"), chat="99:99")

    async with db.session() as session:
        assert [v.row.tracking_code for v in await here.list(session)] == [mine]
        assert [v.row.tracking_code for v in await there.list(session)] == [theirs]
        assert await here.counts(session) == {"received": 1}
        assert await here.get(session, theirs) is None
        assert (await here.get(session, mine.lower())).row.phone == PHONE

    for act in (
        lambda s: here.answer(s, theirs, "Trả lời", "staff:Lan"),
        lambda s: here.assign(s, theirs, "Lan", "staff:Lan"),
        lambda s: here.close(s, theirs, "staff:Lan"),
        lambda s: here.reopen(s, theirs, "x", "staff:Lan"),
    ):
        with pytest.raises(FeedbackError):
            async with db.write_transaction() as session:
                await act(session)
    with pytest.raises(FeedbackError):
        async with db.write_transaction() as session:
            await here.answer(session, mine, "   ", "staff:Lan")

    async with db.write_transaction() as session:
        await here.answer(session, mine, "Đã xử lý", "staff:Lan")
    async with db.session() as session:
        view = await here.get(session, mine)
        queued = list(await session.scalars(select(OutboxMessage)))
        assert (await there.get(session, theirs)).row.status == "received"
        assert len((await there.get(session, theirs)).events) == 1
    assert view.row.status == "answered" and view.answer == "Đã xử lý" and not view.overdue
    assert [(m.channel, m.conversation_id) for m in queued] == [("telegram", "42:42")]
