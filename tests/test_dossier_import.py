"""``motcua dossiers import``: the one-stop software's CSV export into the local dossier table,
and the staff's status changes. Importer tests run on SQLite and PostgreSQL (the ``db``
fixture); the command is run end to end in a subprocess, as a desk officer runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.dossiers.calendar import WorkingCalendar
from bot.dossiers.importer import (
    COLUMNS,
    DossierFileError,
    import_dossiers,
    parse_status,
    record_status_change,
)
from bot.dossiers.model import VN_TZ
from bot.dossiers.sources import LocalSource, load_dossier
from bot.storage.models import Base, DossierEvent, DossierRecord
from procedures_catalog.loader import load_bundled
from tests.conftest import bundled_commune

UNIT = "xa-thu"
CODE1 = "000.00.15.H26-260115-0001"
CODE2 = "000.00.15.H26-260115-0002"
CODE3 = "H26.22-260116-0003"
# Personal data an export carries; none of it may reach the database.
NAME = "Nguyễn Thị Hồng Nhung"
ADDRESS = "Số 12, thôn Phú Mỹ, xã An Bình"
ID_NUMBER = "079185001234"
PHONE = "0912 345 678"


def write(tmp_path: Path, text: str, name: str = "export.csv", *, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


async def run_import(db, path: Path, **kwargs):
    kwargs.setdefault("unit_default", UNIT)
    kwargs.setdefault("catalogue", bundled_commune()[0])
    return await import_dossiers(db, path, **kwargs)


async def dossier(db, code: str, unit: str = UNIT):
    async with db.session() as session:
        return await load_dossier(session, unit, code)


async def count(db, model) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(model))


def vn(*args: int) -> datetime:
    """A Vietnam wall-clock time as the aware UTC datetime the table holds (UTC+7)."""
    return datetime(*args, tzinfo=VN_TZ).astimezone(UTC)


VIETNAMESE_EXPORT = (
    "STT;Mã hồ sơ;Mã thủ tục;Họ tên;Địa chỉ;Số giấy tờ;Ngày tiếp nhận;Hình thức;Ngày hẹn trả;"
    "Trạng thái;Thời điểm cập nhật;Ghi chú;Số điện thoại\n"
    f"1;{CODE1};1.001193;{NAME};{ADDRESS};{ID_NUMBER};15/01/2026 08:30;Trực tuyến;;"
    f"Đã tiếp nhận;;;{PHONE}\n"
    f"2;{CODE2.lower()};1.001193;Trần Văn Bình;Thôn 2;001099002345;15/01/2026 09:05:30;"
    "Trực tiếp;20/01/2026;Đang giải quyết;16/01/2026 10:00;;\n"
    f"3;{CODE3};2.000908;Lê Văn Cường;Thôn 3;001099003456;2026-01-16T14:00:00+07:00;"
    "Dịch vụ bưu chính công ích;;Chờ bổ sung;16/01/2026 15:00;Bổ sung bản sao giấy tờ;\n"
)


async def test_vietnamese_export_with_bom_and_semicolons(db, tmp_path) -> None:
    path = write(tmp_path, VIETNAMESE_EXPORT, bom=True)
    report = await run_import(db, path)

    assert report.rejected == []
    assert (report.rows, report.created, report.status_changes) == (3, 3, 0)
    assert report.personal_columns == ["Họ tên", "Địa chỉ", "Số giấy tờ"]
    assert report.unknown_columns == ["STT"]
    assert report.columns["received_at"] == "Ngày tiếp nhận"

    first = await dossier(db, CODE1)
    assert first.received_at == vn(2026, 1, 15, 8, 30)
    assert first.channel == "online" and first.status == "received"
    assert first.procedure_code == "1.001193"
    assert first.phone_last4 == "5678"
    # "received" without a time: recorded at the receipt.
    assert [(c.status, c.at) for c in first.history] == [("received", vn(2026, 1, 15, 8, 30))]

    second = await dossier(db, CODE2)  # the code was typed in lower case: normalised
    assert second.status == "in_progress" and second.channel == "in_person"
    assert second.received_at == vn(2026, 1, 15, 9, 5, 30)
    assert second.due_at == vn(2026, 1, 20, 17, 0)  # a due date alone: end of office hours
    assert [(c.status, c.at) for c in second.history] == [("in_progress", vn(2026, 1, 16, 10))]

    third = await dossier(db, CODE3)
    assert third.channel == "postal" and third.status == "needs_documents"
    assert third.received_at == vn(2026, 1, 16, 14, 0)
    assert third.last_note == "Bổ sung bản sao giấy tờ"
    assert third.phone_last4 is None

    # The path the bot takes for a citizen's question.
    found = await LocalSource(db, UNIT).lookup(CODE3)
    assert found.dossier == third


async def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_kept(db, tmp_path) -> None:
    text = (
        "ma_ho_so,ma_thu_tuc,ngay_tiep_nhan,hinh_thuc,ngay_hen_tra,trang_thai,ghi_chu\n"  # 1
        f"{CODE1},1.001193,15/01/2026 08:30,Trực tuyến,,Đã tiếp nhận,\n"  # 2 good
        ",1.001193,15/01/2026 08:30,Trực tuyến,,Đã tiếp nhận,\n"  # 3 no code
        f"{CODE2},1.001193,31/02/2026,Trực tuyến,,Đã tiếp nhận,\n"  # 4 no such date
        f"{CODE3},1.001193,15/01/2026,Trực tuyến,,Đã nộp lệ phí,\n"  # 5 unknown status
        "\n"  # 6 blank: skipped, not counted
        f"{CODE3},1.001193,15/01/2026,Qua Zalo,,Đang xử lý,\n"  # 7 unknown channel
        "HS 15/01/2026 số 4,1.001193,15/01/2026,Trực tiếp,,Đang xử lý,\n"  # 8 not a code
        f"{CODE3},1.001193,16/01/2026,Trực tiếp,15/01/2026,Đang xử lý,\n"  # 9 due < receipt
        f'{CODE3},1.001193,16/01/2026,Trực tiếp,,Đang xử lý,"giấy tờ\n'  # 10-11: a note on
        'hai dòng"\n'  # two lines, good
        f"000.00.15.H26-260116-0005,1.001193,16/01/2026,Trực tiếp,,Đang xử lý,a,b\n"  # 12
        "000.00.15.H26-260116-0006,1.001193,16/01/2035,Trực tiếp,,Đang xử lý,\n"  # 13 future
        "000.00.15.H26-260116-0007,1.001193,16/01/2026 8h15,Trực tiếp,,dang xu ly,\n"  # 14
        "000.00.15.H26-260116-0008,1.001193,16/01/2026,Trực tiếp,Đang xử lý,\n"  # 15 short
    )
    report = await run_import(db, write(tmp_path, text))

    reasons = {r.line: r.describe() for r in report.rejected}
    assert reasons == {
        3: "“ma_ho_so” is empty",
        4: "“ngay_tiep_nhan”: “31/02/2026” is not a date (dd/mm/yyyy HH:MM or ISO 8601)",
        5: "unknown status “Đã nộp lệ phí”",
        7: "unknown receipt channel “Qua Zalo” (Trực tiếp, Trực tuyến or Bưu chính)",
        8: "“HS 15/01/2026 số 4” is not a receipt code of the expected form",
        9: "the due date is before the receipt",
        12: "the row has 8 cells but the header has 7",
        13: "“ngay_tiep_nhan” is in the future",
        15: "the row has 6 cells but the header has 7",
    }
    assert str(report.rejected[0]) == "line 3: “ma_ho_so” is empty"
    assert (report.rows, report.accepted, report.created) == (12, 3, 3)
    assert (await dossier(db, CODE3)).last_note == "giấy tờ\nhai dòng"
    late = await dossier(db, "000.00.15.H26-260116-0007")
    assert late.received_at == vn(2026, 1, 16, 8, 15) and late.status == "in_progress"
    assert await count(db, DossierRecord) == 3


async def test_reimport_appends_one_event_and_never_restarts_the_clock(db, tmp_path) -> None:
    header = "Mã hồ sơ,Mã thủ tục,Ngày tiếp nhận,Hình thức,Trạng thái,Thời điểm cập nhật\n"
    first = write(
        tmp_path,
        header + f"{CODE1},1.001193,15/01/2026 08:30,Trực tuyến,Đã tiếp nhận,\n",
        "day1.csv",
    )
    await run_import(db, first)
    before = await dossier(db, CODE1)
    due = before.due_at
    assert due == vn(2026, 1, 16, 17)

    # The other system re-synced: a new receipt time and channel, and the dossier moved on.
    resync = write(
        tmp_path,
        header + f"{CODE1},1.001193,19/01/2026 10:00,Trực tiếp,Có kết quả,19/01/2026 11:00\n",
        "day2.csv",
    )
    report = await run_import(db, resync)
    assert (report.created, report.status_changes, report.unchanged) == (0, 1, 0)
    assert (report.receipt_kept, report.channel_kept) == (1, 1)

    after = await dossier(db, CODE1)
    assert after.received_at == before.received_at == vn(2026, 1, 15, 8, 30)
    assert after.channel == "online" and after.due_at == due
    assert after.status == "result_ready"
    assert [c.status for c in after.history] == ["received", "result_ready"]
    assert after.history[0] == before.history[0]  # history rows are never rewritten

    # The same file again: nothing new. An older export: not applied over the newer status.
    again = await run_import(db, resync)
    assert (again.status_changes, again.unchanged) == (0, 1)
    older = write(
        tmp_path,
        header + f"{CODE1},1.001193,15/01/2026 08:30,Trực tuyến,Đang xử lý,16/01/2026 09:00\n",
        "old.csv",
    )
    stale = await run_import(db, older)
    assert (stale.status_changes, stale.stale) == (0, 1)
    assert await count(db, DossierEvent) == 2
    assert (await dossier(db, CODE1)).status == "result_ready"


async def test_a_code_twice_in_one_file_is_a_status_update(db, tmp_path) -> None:
    # A change log: one row per change, each with its time (the receipt's needs none).
    text = (
        "code,procedure_code,received_at,channel,status,status_at,note\n"
        f"{CODE1},1.001193,15/01/2026 08:30,online,received,,\n"
        f"{CODE2},1.001193,15/01/2026 08:40,online,received,,\n"
        f"{CODE1},1.001193,15/01/2026 08:30,online,Chờ bổ sung,15/01/2026 10:00,Thiếu tờ khai\n"
        f"{CODE1},1.001193,15/01/2026 08:30,online,Đang xử lý,16/01/2026 08:00,\n"
    )
    path = write(tmp_path, text)
    # Chunks of 2 rows: the update of CODE1 comes in a later chunk than its creation.
    dry = await run_import(db, path, chunk_rows=2, dry_run=True)
    assert await count(db, DossierRecord) == 0 and await count(db, DossierEvent) == 0
    report = await run_import(db, path, chunk_rows=2)
    for r in (dry, report):
        assert (r.created, r.status_changes, r.unchanged) == (2, 2, 0)
    history = (await dossier(db, CODE1)).history
    assert [(c.status, c.at, c.note) for c in history] == [
        ("received", vn(2026, 1, 15, 8, 30), ""),
        ("needs_documents", vn(2026, 1, 15, 10), "Thiếu tờ khai"),
        ("in_progress", vn(2026, 1, 16, 8), ""),
    ]
    # Importing the log again adds nothing: every change is already in the history.
    again = await run_import(db, path, chunk_rows=2)
    assert (again.created, again.status_changes) == (0, 0)
    assert await count(db, DossierEvent) == 4


async def test_personal_data_never_reaches_the_database(db, tmp_path) -> None:
    path = write(tmp_path, VIETNAMESE_EXPORT, bom=True)
    report = await run_import(db, path)
    assert report.created == 3
    everything = []
    async with db.session() as session:
        for table in Base.metadata.sorted_tables:
            everything += [repr(tuple(row)) for row in await session.execute(select(table))]
    dump = "\n".join(everything)
    assert CODE1 in dump  # the scan does see the imported rows
    for secret in (NAME, "Nhung", ADDRESS, "Phú Mỹ", ID_NUMBER, "Trần Văn Bình", "001099002345"):
        assert secret not in dump
    assert "0912" not in dump and "345678" not in dump and "5678" in dump
    if db.is_sqlite:  # and not in any page of the file either
        await db.dispose()
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("bot.sqlite3*"))
        assert CODE1.encode() in raw
        for secret in (NAME, ADDRESS, ID_NUMBER):
            assert secret.encode() not in raw


async def test_due_date_counted_from_the_catalogue_when_empty(db, tmp_path) -> None:
    # 1.001193 "Thủ tục đăng ký khai sinh" takes 1 working day on every channel (bundled
    # commune catalogue). Counting rule (bot/dossiers/calendar.py): the start day is the
    # receipt day if it is a working day and before 17:00, else the next working day; the
    # result is due at 17:00 of the n-th working day after it.
    # - Thu 15/01/2026 08:30: starts Thu 15, due Fri 16/01 17:00.
    # - Fri 16/01/2026 17:30: after the cut-off, starts Mon 19, due Tue 20/01 17:00.
    # - Fri 13/02/2026 09:00: starts Fri 13; Sat 14, Sun 15 and Tết (Mon 16 to Fri 20/02)
    #   are not working days, so due Mon 23/02 17:00.
    # - 9.999999 is not in the catalogue: no due date (None), rather than a made-up one.
    # - A due date in the file wins over the count.
    catalogue = load_bundled("commune")
    assert catalogue.procedures["1.001193"].name == "Thủ tục đăng ký khai sinh"
    text = (
        "ma_ho_so,ma_thu_tuc,ngay_tiep_nhan,hinh_thuc,ngay_hen_tra,trang_thai\n"
        "000.00.15.H26-260115-0001,1.001193,15/01/2026 08:30,Trực tiếp,,Đã tiếp nhận\n"
        "000.00.15.H26-260116-0002,1.001193,16/01/2026 17:30,Trực tuyến,,Đã tiếp nhận\n"
        "000.00.15.H26-260213-0003,1.001193,13/02/2026 09:00,Bưu chính,,Đã tiếp nhận\n"
        "000.00.15.H26-260115-0004,9.999999,15/01/2026 08:30,Trực tiếp,,Đã tiếp nhận\n"
        "000.00.15.H26-260115-0005,1.001193,15/01/2026 08:30,Trực tiếp,22/01/2026 11:00,"
        "Đã tiếp nhận\n"
    )
    report = await run_import(
        db, write(tmp_path, text), catalogue=catalogue, calendar=WorkingCalendar()
    )
    assert report.rejected == [] and report.due_computed == 3
    dues = {
        code[-4:]: (await dossier(db, code)).due_at
        for code in (
            "000.00.15.H26-260115-0001",
            "000.00.15.H26-260116-0002",
            "000.00.15.H26-260213-0003",
            "000.00.15.H26-260115-0004",
            "000.00.15.H26-260115-0005",
        )
    }
    assert dues == {
        "0001": vn(2026, 1, 16, 17),
        "0002": vn(2026, 1, 20, 17),
        "0003": vn(2026, 2, 23, 17),
        "0004": None,
        "0005": vn(2026, 1, 22, 11),
    }


async def test_staff_record_a_status_change(db, tmp_path) -> None:
    await run_import(db, write(tmp_path, VIETNAMESE_EXPORT))
    async with db.write_transaction() as session:
        assert await record_status_change(
            session,
            UNIT,
            CODE1,
            "needs_documents",
            note="Bổ sung tờ khai",
            at=datetime(2026, 1, 16, 9),
        )
        assert not await record_status_change(session, UNIT, "H26-260101-999", "in_progress")
        assert not await record_status_change(session, "another-unit", CODE1, "in_progress")
        with pytest.raises(ValueError, match="unknown dossier status"):
            await record_status_change(session, UNIT, CODE1, "lost")
    changed = await dossier(db, CODE1)
    assert changed.status == "needs_documents" and changed.last_note == "Bổ sung tờ khai"
    assert changed.history[-1].at == vn(2026, 1, 16, 9)
    assert len(changed.history) == 2


async def test_files_that_cannot_be_imported(sqlite_db, tmp_path) -> None:
    db = sqlite_db
    with pytest.raises(DossierFileError, match="cannot open"):
        await run_import(db, tmp_path / "missing.csv")
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes(b"M\xe3 h\xf4 s\xf5,Tr\xe1ng th\xe1i\n")  # Windows-1258, not UTF-8
    with pytest.raises(DossierFileError, match="not UTF-8"):
        await run_import(db, legacy)
    with pytest.raises(DossierFileError, match="required columns missing: ngay_tiep_nhan"):
        await run_import(db, write(tmp_path, "Mã hồ sơ;Trạng thái;Hình thức\n"))
    with pytest.raises(DossierFileError, match="no header row"):
        await run_import(db, write(tmp_path, "a,b,c\n1,2,3\n"))
    assert await count(db, DossierRecord) == 0


async def test_title_lines_tabs_and_decomposed_accents(sqlite_db, tmp_path) -> None:
    text = (
        "DANH SÁCH HỒ SƠ TIẾP NHẬN THÁNG 01/2026\n"
        "\n"
        # Decomposed (NFD) accents, as some Mac and web tools write them.
        + unicodedata.normalize(
            "NFD", "Số hồ sơ\tThủ tục\tNgày tiếp nhận\tHình thức tiếp nhận\tTrạng thái\tĐơn vị\n"
        )
        + f"{CODE1}\tđăng ký khai sinh\t15/01/2026\tTrực tuyến\tĐã trả kết quả trễ hạn\txa-khac\n"
    )
    report = await run_import(sqlite_db, write(tmp_path, text))
    assert report.rejected == []
    assert [unicodedata.normalize("NFC", name) for name in report.unknown_columns] == ["Thủ tục"]
    stored = await dossier(sqlite_db, CODE1, unit="xa-khac")
    assert stored.status == "returned_late" and stored.received_at == vn(2026, 1, 15)


def test_status_words_of_one_stop_software() -> None:
    assert parse_status("Đang giải quyết") == "in_progress"
    assert parse_status("ĐÃ TRẢ KẾT QUẢ ĐÚNG HẠN") == "returned_on_time"
    assert parse_status("Đã trả kết quả trễ hạn") == "returned_late"
    assert parse_status("Chờ trả kết quả") == "result_ready"
    assert parse_status("Trả lại") == "rejected"
    assert parse_status("Đã rút") == "withdrawn"
    assert parse_status("returned_early") == "returned_early"
    assert parse_status("quá hạn") is None  # late, but still open or already returned?


# -- the command, end to end -------------------------------------------------------------------


def motcua_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_DATABASE_URL"] = f"sqlite:///{tmp_path}/cli.sqlite3"
    env["MOTCUA_DEFAULT_LOCALE"] = "en"
    env["MOTCUA_UNIT"] = UNIT
    return env


def motcua(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("motcua")  # .venv/bin/motcua, as installed
    return subprocess.run(
        [str(script), "dossiers", *args],
        capture_output=True,
        text=True,
        env=motcua_env(tmp_path),
        timeout=120,
    )


def test_cli_import_set_status_show(tmp_path) -> None:
    help_ = motcua(tmp_path, "import", "--help")
    assert help_.returncode == 0
    for column in COLUMNS:
        assert " / ".join(column.names) in help_.stdout
    assert "never stored" in help_.stdout and "Exit status" in help_.stdout

    text = VIETNAMESE_EXPORT + f"4;{CODE1};1.001193;;;;15/01/2026 08:30;Trực tuyến;;Xong;;;\n"
    path = write(tmp_path, text, bom=True)
    result = motcua(tmp_path, "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "line 5: unknown status “Xong”" in result.stderr
    assert "4 rows" in result.stdout and "New dossiers: 3" in result.stdout
    assert "Personal data columns skipped, not stored: Họ tên, Địa chỉ, Số giấy tờ." in (
        result.stdout
    )
    assert NAME not in result.stdout + result.stderr

    dry = motcua(tmp_path, "import", str(path), "--dry-run")
    assert dry.returncode == 0 and "Dry run: nothing was written." in dry.stdout
    assert "unchanged: 3" in dry.stdout

    changed = motcua(tmp_path, "set-status", CODE1, "Chờ bổ sung", "--note", "Thiếu tờ khai")
    assert changed.returncode == 0, changed.stderr
    assert "Waiting for additional documents" in changed.stdout
    wrong = motcua(tmp_path, "set-status", CODE1, "xong")
    assert wrong.returncode == 2 and "needs_documents" in wrong.stderr
    missing = motcua(tmp_path, "set-status", "H26-260101-999", "received")
    assert missing.returncode == 1 and "No dossier" in missing.stderr

    shown = motcua(tmp_path, "show", CODE1.lower())
    assert shown.returncode == 0, shown.stderr
    assert "Procedure: 1.001193 Thủ tục đăng ký khai sinh" in shown.stdout
    assert "Received: 15/01/2026 08:30 (online)" in shown.stdout
    assert "Due: 16/01/2026 17:00" in shown.stdout
    assert "Waiting for additional documents — Thiếu tờ khai" in shown.stdout
    assert NAME not in shown.stdout and "5678" not in shown.stdout
    elsewhere = motcua(tmp_path, "show", CODE1, "--unit", "xa-khac")
    assert elsewhere.returncode == 1 and "No dossier" in elsewhere.stderr

    unreadable = motcua(tmp_path, "import", str(tmp_path / "nope.csv"))
    assert unreadable.returncode == 1 and "Cannot import" in unreadable.stderr
    all_bad = write(tmp_path, "Mã hồ sơ,Ngày tiếp nhận,Hình thức,Trạng thái\nx,y,z,w\n", "bad.csv")
    rejected = motcua(tmp_path, "import", str(all_bad))
    assert rejected.returncode == 3 and "line 2:" in rejected.stderr
    assert "Traceback" not in rejected.stderr
