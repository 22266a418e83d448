"""Catalogue files in, catalogue out: real data, malformed files, idempotence, export, show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.catalogue import CatalogueStore
from procedures_catalog.bundle import COMMUNE_FILE, is_commune_procedure
from procedures_catalog.importer import MAX_RECORD_BYTES, read_catalogue_file
from procedures_catalog.loader import load_bundled, read_catalogue_document
from tests.conftest import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
# The project's shared data sits beside the checkout (as in CI); MOTCUA_TEST_SHARED_DIR overrides.
SHARED = Path(os.environ.get("MOTCUA_TEST_SHARED_DIR", ROOT.parent / "shared"))
SHARED_JSONL = SHARED / "data" / "tthc" / "portal_procedures.jsonl"
SHARED_LISTS = SHARED / "data" / "tthc" / "portal_lists"


def shared_jsonl() -> Path:
    if not SHARED_JSONL.exists():
        skip_or_fail(f"shared data not found at {SHARED_JSONL}")
    return SHARED_JSONL


def record(code: str = "1.999001", name: str = "Thủ tục thử nghiệm", **extra) -> dict:
    base = {
        "ma_thu_tuc": code,
        "ten_thu_tuc": name,
        "cap_thuc_hien": "Cấp xã",
        "linh_vuc": "Hộ tịch",
        "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tiếp3 Ngày làm việc"
        "Miễn phí",
        "thanh_phan_ho_so": "--Tên giấy tờMẫu đơn, tờ khaiSố lượng- Tờ khai theo mẫu1 bản chính",
    }
    base.update(extra)
    return base


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


# ------------------------------------------------------------------ the real shared file
def test_the_shared_portal_file_imports_with_no_rejections() -> None:
    report = read_catalogue_file(shared_jsonl())
    assert report.ok
    assert len(report.procedures) == 2642
    # Partial parses are reported with field and reason, never silently dropped.
    assert 0 < len(report.partial) < 300
    for procedure in report.partial:
        assert all(issue.field and issue.reason for issue in procedure.issues)


def test_bundled_commune_catalogue_has_every_qualifying_code() -> None:
    report = read_catalogue_file(shared_jsonl())
    qualifying = {p.code for p in report.procedures if is_commune_procedure(p)}
    bundled = {p.code for p in read_catalogue_document(COMMUNE_FILE)}
    assert bundled == qualifying
    assert 300 <= len(bundled) <= 340
    fields = {p.field for p in read_catalogue_document(COMMUNE_FILE)}
    assert not fields & {"Hải quan", "Thuế", "Kho bạc Nhà nước"}


def test_outdated_lien_thong_records_are_flagged() -> None:
    catalogue = load_bundled("commune")
    for code in ("2.000986", "2.001023"):
        assert "sổ hộ khẩu" in catalogue.get(code).outdated


def test_portal_lists_in_xlsx_are_read() -> None:
    path = SHARED_LISTS / "danh-sach-tthc-BoTuPhap.xlsx"
    if not path.exists():
        skip_or_fail(f"shared data not found at {path}")
    report = read_catalogue_file(path)
    assert report.ok and report.format == "list"
    assert len(report.procedures) > 200
    assert all(p.code and p.name for p in report.procedures)


# ------------------------------------------------------------------ malformed files
def test_truncated_json_names_the_line(tmp_path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [record("1.999001"), record("1.999002")])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record("1.999003"))[:80])
    report = read_catalogue_file(path)
    assert not report.ok
    assert report.fatal.line == 3
    assert "truncated" in report.fatal.reason


def test_empty_name_and_bad_code_are_rejected_with_line_and_field(tmp_path) -> None:
    path = write_jsonl(
        tmp_path / "t.jsonl", [record(), record("1.999002", name="  "), record("ABC")]
    )
    report = read_catalogue_file(path)
    problems = {(p.line, p.field) for p in report.rejected}
    assert problems == {(2, "ten_thu_tuc"), (3, "ma_thu_tuc")}


def test_duplicate_codes_are_rejected(tmp_path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [record(), record(name="Khác")])
    report = read_catalogue_file(path)
    assert [(p.line, p.field, p.code) for p in report.rejected] == [(2, "code", "1.999001")]
    assert "duplicate" in report.rejected[0].reason


def test_a_50_mb_line_is_refused_without_reading_it_whole(tmp_path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        fh.write((json.dumps(record()) + "\n").encode())
        fh.write(b'{"ma_thu_tuc": "1.999002", "ten_thu_tuc": "' + b"x" * (50 * 1024 * 1024))
        fh.write(b'"}\n')
    report = read_catalogue_file(path)
    assert report.fatal.line == 2
    assert "50.0 MB" in report.fatal.reason
    assert MAX_RECORD_BYTES < 50 * 1024 * 1024


def test_csv_with_wrong_columns(tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("Số,Tiêu đề\n1.001193,Khai sinh\n", encoding="utf-8")
    report = read_catalogue_file(path)
    assert report.fatal.field == "columns"
    assert "Mã số" in report.fatal.reason


def test_csv_list_rows_are_checked(tmp_path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(
        "Mã số,Tên,Lĩnh vực,Mức độ\n1.001193,Thủ tục đăng ký khai sinh,Hộ tịch,Toàn trình\n"
        "1.000894,,Hộ tịch,\nxyz,Tên,Hộ tịch,\n",
        encoding="utf-8",
    )
    report = read_catalogue_file(path)
    assert [p.code for p in report.procedures] == ["1.001193"]
    assert report.procedures[0].online_level == "Toàn trình"
    assert {(p.line, p.field) for p in report.rejected} == {(3, "name"), (4, "code")}


# ------------------------------------------------------------------ applying to the database
async def test_import_is_idempotent_and_a_bad_file_changes_nothing(db, tmp_path) -> None:
    store = CatalogueStore(db, "test")
    good = write_jsonl(tmp_path / "good.jsonl", [record("1.999001"), record("1.999002")])
    first = await store.apply(read_catalogue_file(good))
    assert (first.added, first.updated, first.unchanged) == (2, 0, 0)
    again = await store.apply(read_catalogue_file(good))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)

    bad = write_jsonl(tmp_path / "bad.jsonl", [record("1.999001", name="Đổi tên"), record("x")])
    report = read_catalogue_file(bad)
    assert not report.ok
    with pytest.raises(ValueError):
        await store.apply(report)
    assert (await store.load()).get("1.999001").name == "Thủ tục thử nghiệm"


async def test_a_list_file_updates_labels_but_keeps_documents(db, tmp_path) -> None:
    store = CatalogueStore(db, "test")
    await store.apply(read_catalogue_file(write_jsonl(tmp_path / "a.jsonl", [record()])))
    path = tmp_path / "list.csv"
    path.write_text("Mã số,Tên,Mức độ\n1.999001,Tên mới,Một phần\n", encoding="utf-8")
    result = await store.apply(read_catalogue_file(path))
    assert result.updated == 1
    procedure = (await store.load()).get("1.999001")
    assert procedure.name == "Tên mới" and procedure.online_level == "Một phần"
    assert procedure.documents[0].name.startswith("Tờ khai")


async def test_bundled_catalogue_is_loaded_once_and_exports_round_trip(db, tmp_path) -> None:
    store = CatalogueStore(db, "commune")
    assert await store.ensure_bundled() == len(load_bundled("commune"))
    assert await store.ensure_bundled() == 0
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(await store.export(), ensure_ascii=False), encoding="utf-8")
    report = read_catalogue_file(exported)
    assert report.ok and len(report.procedures) == len(load_bundled("commune"))
    result = await store.apply(report)
    assert result.unchanged == len(report.procedures)


# ------------------------------------------------------------------ the command line
def run_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_DATABASE_URL"] = f"sqlite:///{tmp_path}/cli.sqlite3"
    return subprocess.run(
        [sys.executable, "-m", "bot", "catalogue", *args],
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_import_reports_and_refuses_a_bad_file(tmp_path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [record("1.999001")])
    result = run_cli(tmp_path, "import", str(good), "--catalogue", "mine")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "nhận 1 bản ghi" in out and "loại 0" in out
    assert "thêm 1, cập nhật 0, giữ nguyên 0" in out

    bad = write_jsonl(tmp_path / "bad.jsonl", [record("1.999001", name="Đổi"), record("1.999001")])
    result = run_cli(tmp_path, "import", str(bad), "--catalogue", "mine")
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "line 2 (1.999001): code: duplicate code" in err
    assert "danh mục giữ nguyên" in err
    shown = run_cli(tmp_path, "show", "1.999001", "--catalogue", "mine")
    assert "📋 Thủ tục thử nghiệm" in shown.stdout.decode()


def test_cli_show_prints_the_card_and_export_writes_json(tmp_path) -> None:
    result = run_cli(tmp_path, "show", "1.001193")
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.startswith("📋 Thủ tục đăng ký khai sinh")
    assert "Giấy chứng sinh" in out and "Phí, lệ phí: miễn phí" in out
    english = run_cli(tmp_path, "show", "1.001193", "--lang", "en").stdout.decode()
    assert "Fees: free of charge" in english
    missing = run_cli(tmp_path, "show", "9.999999")
    assert missing.returncode == 1 and "9.999999" in missing.stderr.decode()
    exported = run_cli(tmp_path, "export", "--json", "-o", str(tmp_path / "out.json"))
    assert exported.returncode == 0
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["count"] == len(data["procedures"]) == len(load_bundled("commune"))


def test_skip_invalid_imports_every_valid_record(tmp_path) -> None:
    """Line numbers in problems are file lines; skipping them must not drop good records."""
    records = [record("1.999001"), record("bad"), record("1.999002"), record("1.999001")]
    path = write_jsonl(tmp_path / "mixed.jsonl", records)
    report = read_catalogue_file(path)
    assert {(p.line, p.field) for p in report.rejected} == {(2, "ma_thu_tuc"), (4, "code")}
    assert "first seen on line 1" in [p for p in report.rejected if p.line == 4][0].reason
    result = run_cli(tmp_path, "import", str(path), "--catalogue", "mine", "--skip-invalid")
    assert result.returncode == 0, result.stderr.decode()
    assert "thêm 2, cập nhật 0, giữ nguyên 0" in result.stdout.decode()
