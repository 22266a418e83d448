"""The staff dashboard's tools on the database (bot/staff/tools.py): the unit's procedures and
profile, catalogue and dossier files previewed then applied, dossier statuses reaching the
citizens who follow them, searches that found nothing and the synonyms that fix them. Every
change leaves an audit row; every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import load_services
from bot.catalogue import CatalogueStore
from bot.dossiers.calendar import WorkingCalendar
from bot.dossiers.model import DEFAULT_CODE_PATTERN
from bot.dossiers.notifier import DossierNotifier
from bot.staff import tools
from bot.staff.tools import StaffToolError
from bot.storage.models import (
    DossierEvent,
    DossierRecord,
    OutboxMessage,
    SearchLogEntry,
    StaffAudit,
    UnitProfile,
    UnitSynonym,
)
from handlers.dossier_card import change_notice
from procedures_catalog.importer import read_catalogue_file
from procedures_catalog.schema import Unit
from tests.conftest import Chat, bundled_commune, make_engine

UNIT = "xa-thu"
OTHER = "xa-ben"
OFFICER = "can-bo-an"
CODE1 = "000.00.15.H26-260115-0001"
CODE2 = "000.00.15.H26-260115-0002"
CODE3 = "000.00.15.H26-260115-0003"
MISSED = "bé mới chào đời"  # no word of it is in a procedure name of the commune catalogue


def portal_record(code: str, name: str = "Thủ tục thử nghiệm") -> dict:
    return {
        "ma_thu_tuc": code,
        "ten_thu_tuc": name,
        "cap_thuc_hien": "Cấp xã",
        "linh_vuc": "Hộ tịch",
        "cach_thuc_thuc_hien": "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tiếp3 Ngày làm việc"
        "Miễn phí",
        "thanh_phan_ho_so": "--Tên giấy tờMẫu đơn, tờ khaiSố lượng- Tờ khai theo mẫu1 bản chính",
    }


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


async def seed(db, tmp_path) -> CatalogueStore:
    """A small catalogue "test" and two units."""
    store = CatalogueStore(db, "test")
    records = [portal_record("1.999001"), portal_record("1.999002", "Thủ tục thứ hai")]
    await store.apply(read_catalogue_file(write_jsonl(tmp_path / "seed.jsonl", records)))
    async with db.write_transaction() as session:
        for unit in (UNIT, OTHER):
            document = Unit(unit, f"Xã {unit}", "Tỉnh Thử", address="Thôn 1").to_dict()
            session.add(UnitProfile(id=unit, document=document))
    return store


async def audit(db) -> list[tuple[str, str, str, str]]:
    async with db.session() as session:
        rows = await session.scalars(select(StaffAudit).order_by(StaffAudit.id))
        return [(r.username, r.unit, r.action, r.target) for r in rows]


async def stored_unit(db, unit: str) -> Unit:
    async with db.session() as session:
        return Unit.from_dict((await session.get(UnitProfile, unit)).document)


async def count(db, model, *where) -> int:
    async with db.session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


# -- the unit ----------------------------------------------------------------------------------


async def test_applied_procedures_are_saved_and_audited(db, tmp_path) -> None:
    await seed(db, tmp_path)
    unit = await tools.set_applied(db, UNIT, {"1.999002", "1.999001"}, OFFICER, catalogue="test")
    assert unit.applied_codes == ["1.999001", "1.999002"]
    assert (await stored_unit(db, UNIT)).applied_codes == ["1.999001", "1.999002"]
    assert (await stored_unit(db, UNIT)).address == "Thôn 1"  # the rest of the profile is kept
    assert (await stored_unit(db, OTHER)).applied_codes == []

    await tools.set_applied(db, UNIT, ["1.999002"], OFFICER)
    await tools.set_applied(db, UNIT, ["1.999002"], OFFICER)  # no change: no audit row
    assert await audit(db) == [(OFFICER, UNIT, "unit.applied", UNIT)] * 2
    async with db.session() as session:
        details = list(await session.scalars(select(StaffAudit.detail).order_by(StaffAudit.id)))
    assert details[-1] == "added: -; removed: 1.999001"

    with pytest.raises(StaffToolError) as refused:
        await tools.set_applied(db, UNIT, ["1.999001", "1.000000"], OFFICER, catalogue="test")
    assert refused.value.describe() == "Not in the catalogue: 1.000000."
    with pytest.raises(StaffToolError, match="no unit"):
        await tools.set_applied(db, "xa-khong-co", ["1.999001"], OFFICER)
    assert (await stored_unit(db, UNIT)).applied_codes == ["1.999002"]
    assert len(await audit(db)) == 2


async def test_unit_profile_is_saved_and_audited(db, tmp_path) -> None:
    await seed(db, tmp_path)
    unit = await tools.update_unit_profile(
        db,
        UNIT,
        address="  Bộ phận Một cửa,\n UBND xã Thử ",
        hours="Thứ Hai – Thứ Sáu: 7:30–11:30, 13:30–17:00",
        hotline=" +84 234  3822 123 ",
        actor=OFFICER,
    )
    assert (unit.address, unit.hotline) == ("Bộ phận Một cửa, UBND xã Thử", "+84 234 3822 123")
    saved = await stored_unit(db, UNIT)
    assert saved == unit and saved.hours.startswith("Thứ Hai")
    assert (await stored_unit(db, OTHER)).address == "Thôn 1"
    await tools.update_unit_profile(
        db, UNIT, address=unit.address, hours=unit.hours, hotline="", actor=OFFICER
    )
    assert (await stored_unit(db, UNIT)).hotline is None
    assert [row[2] for row in await audit(db)] == ["unit.profile", "unit.profile"]


@pytest.mark.parametrize(
    ("hotline", "reason"),
    [
        ("0234-3822-123", "only digits, spaces"),
        ("gọi 1022", "only digits, spaces"),
        ("84+234", "only digits, spaces"),
        ("12", "3 to 15 digits"),
        ("1234567890123456", "3 to 15 digits"),
    ],
)
async def test_an_invalid_hotline_is_refused(db, tmp_path, hotline, reason) -> None:
    await seed(db, tmp_path)
    with pytest.raises(StaffToolError, match=reason):
        await tools.update_unit_profile(
            db, UNIT, address="Thôn 2", hours="", hotline=hotline, actor=OFFICER
        )
    with pytest.raises(StaffToolError, match="address is longer than 300"):
        await tools.update_unit_profile(
            db, UNIT, address="x" * 301, hours="", hotline=None, actor=OFFICER
        )
    assert (await stored_unit(db, UNIT)).address == "Thôn 1"
    assert await audit(db) == []


# -- catalogue files ---------------------------------------------------------------------------


async def test_a_catalogue_file_is_previewed_then_applied(db, tmp_path) -> None:
    store = await seed(db, tmp_path)
    path = write_jsonl(
        tmp_path / "upload.jsonl",
        [
            portal_record("1.999001", "Tên đã sửa"),
            portal_record("1.999003", "Thủ tục mới"),
            portal_record("x"),
            portal_record("1.999002", "Thủ tục thứ hai"),
        ],
    )
    preview = await tools.preview_catalogue_file(db, "test", path)
    assert not preview.ok
    assert [(p.line, p.field) for p in preview.problems] == [(3, "ma_thu_tuc")]
    assert (preview.added, preview.updated, preview.unchanged) == (["1.999003"], ["1.999001"], 1)
    assert (await store.load()).get("1.999001").name == "Thủ tục thử nghiệm"

    with pytest.raises(StaffToolError, match=r"problems \(1\); nothing was imported"):
        await tools.apply_catalogue_file(db, "test", path, unit=UNIT, actor=OFFICER)
    assert await store.count() == 2 and await audit(db) == []

    result = await tools.apply_catalogue_file(
        db, "test", path, unit=UNIT, actor=OFFICER, skip_invalid=True
    )
    assert (result.added, result.updated, result.unchanged) == (1, 1, 1)
    catalogue = await store.load()
    assert catalogue.get("1.999001").name == "Tên đã sửa" and catalogue.get("1.999003")
    assert await audit(db) == [(OFFICER, UNIT, "catalogue.import", "test")]

    # A province's list updates labels only: the same name again changes nothing.
    listed = tmp_path / "list.csv"
    listed.write_text("Mã số,Tên\n1.999001,Tên đã sửa\n1.999004,Thủ tục bốn\n", encoding="utf-8")
    preview = await tools.preview_catalogue_file(db, "test", listed)
    assert preview.ok and (preview.added, preview.updated, preview.unchanged) == (
        ["1.999004"],
        [],
        1,
    )
    (tmp_path / "notes.txt").write_text("1.999001", encoding="utf-8")
    with pytest.raises(StaffToolError, match="Cannot read the file: .*unknown format"):
        await tools.preview_catalogue_file(db, "test", tmp_path / "notes.txt")


# -- dossier files -----------------------------------------------------------------------------

EXPORT = (
    "Mã hồ sơ,Đơn vị,Mã thủ tục,Họ tên,Ngày tiếp nhận,Hình thức,Trạng thái,Ghi chú\n"  # 1
    f"{CODE1},,1.001193,Nguyễn Văn A,15/01/2026 08:30,Trực tuyến,Đã tiếp nhận,\n"  # 2
    f"{CODE2},{UNIT},1.001193,Trần Thị B,15/01/2026 09:00,Trực tiếp,Đang xử lý,\n"  # 3
    f"{CODE3},,1.001193,Lê Văn C,31/02/2026,Trực tiếp,Đang xử lý,\n"  # 4: no such date
    f'000.00.15.H26-260115-0004,{OTHER},1.001193,Phạm D,15/01/2026,Trực tiếp,Đang xử lý,"hai\n'
    'dòng"\n'  # 5-6: another unit's
    f"000.00.15.H26-260115-0005,,1.001193,Vũ E,16/01/2026,Trực tiếp,Chờ bổ sung,Bổ sung\n"  # 7
)


async def import_export(db, tmp_path, apply: bool):
    path = tmp_path / "export.csv"
    path.write_text(EXPORT, encoding="utf-8")
    args = (db, UNIT, path, bundled_commune()[0], WorkingCalendar(), DEFAULT_CODE_PATTERN)
    if apply:
        return await tools.apply_dossier_file(*args, OFFICER)
    return await tools.preview_dossier_file(*args)


async def test_a_dossier_file_is_previewed_then_applied(db, tmp_path) -> None:
    preview = await import_export(db, tmp_path, apply=False)
    assert preview.dry_run and preview.path.endswith("export.csv")
    reasons = {r.line: r.describe() for r in preview.rejected}
    assert reasons == {
        4: "“Ngày tiếp nhận”: “31/02/2026” is not a date (dd/mm/yyyy HH:MM or ISO 8601)",
        5: f"the row is for unit “{OTHER}”; only dossiers of {UNIT} can be imported here",
    }
    assert (preview.rows, preview.accepted, preview.created) == (5, 3, 3)
    assert await count(db, DossierRecord) == 0 and await audit(db) == []

    report = await import_export(db, tmp_path, apply=True)
    assert not report.dry_run and sorted(reasons) == [r.line for r in report.rejected]
    assert (report.rows, report.created) == (5, 3)
    assert await count(db, DossierRecord, DossierRecord.unit == UNIT) == 3
    assert await count(db, DossierRecord, DossierRecord.unit == OTHER) == 0
    assert await audit(db) == [(OFFICER, UNIT, "dossiers.import", "export.csv")]

    with pytest.raises(StaffToolError, match="required columns missing"):
        broken = tmp_path / "broken.csv"
        broken.write_text("Mã hồ sơ;Trạng thái\n", encoding="utf-8")
        await tools.preview_dossier_file(db, UNIT, broken, None, None, DEFAULT_CODE_PATTERN)


# -- dossiers ----------------------------------------------------------------------------------


async def add_dossier(db, unit: str, code: str) -> None:
    received = datetime.now(UTC) - timedelta(days=1)
    async with db.write_transaction() as session:
        session.add(
            DossierRecord(
                unit=unit,
                code=code,
                procedure_code="1.001193",
                received_at=received,
                channel="online",
                status="received",
            )
        )
        session.add(DossierEvent(unit=unit, code=code, status="received", at=received))


async def test_find_and_change_a_dossier_status_within_the_unit(db) -> None:
    await add_dossier(db, UNIT, CODE1)
    await add_dossier(db, OTHER, CODE2)
    found = await tools.find_dossier(db, UNIT, " " + CODE1.lower() + " ")
    assert found is not None and found.status == "received" and len(found.history) == 1
    assert await tools.find_dossier(db, UNIT, CODE2) is None  # another unit's
    assert await tools.find_dossier(db, UNIT, "") is None

    assert not await tools.change_dossier_status(db, UNIT, CODE2, "in_progress", "", OFFICER)
    assert (await tools.find_dossier(db, OTHER, CODE2)).status == "received"
    assert await tools.change_dossier_status(
        db, UNIT, CODE1, "Chờ bổ sung", " Bổ sung tờ khai ", OFFICER
    )
    changed = await tools.find_dossier(db, UNIT, CODE1)
    assert changed.status == "needs_documents" and changed.last_note == "Bổ sung tờ khai"
    assert len(changed.history) == 2
    assert await audit(db) == [(OFFICER, UNIT, "dossier.status", CODE1)]

    with pytest.raises(StaffToolError, match="Unknown dossier status “lost”"):
        await tools.change_dossier_status(db, UNIT, CODE1, "lost", "", OFFICER)
    with pytest.raises(StaffToolError, match="note is longer"):
        await tools.change_dossier_status(db, UNIT, CODE1, "paused", "x" * 1001, OFFICER)
    assert len((await tools.find_dossier(db, UNIT, CODE1)).history) == 2


async def test_a_status_change_is_pushed_once_to_a_subscriber(db) -> None:
    engine = make_engine(db, dossier_source="local", push_channels=["test"], unit=UNIT)
    service = engine.services.dossiers
    await add_dossier(db, UNIT, CODE1)
    async with db.write_transaction() as session:
        dossier = await tools.find_dossier(db, UNIT, CODE1)
        assert await service.subscribe(session, "test", "c1", dossier, "vi")
    notifier = DossierNotifier(
        service, interval=60, channels=frozenset({"test"}), render=change_notice
    )
    assert await notifier.run_once() == 0  # subscribing tells nothing new

    assert await tools.change_dossier_status(
        db, UNIT, CODE1, "needs_documents", "Bổ sung tờ khai", OFFICER
    )
    assert await notifier.run_once() == 1
    assert await notifier.run_once() == 0
    async with db.session() as session:
        queued = (await session.scalars(select(OutboxMessage))).all()
    assert [(m.channel, m.conversation_id, m.reason) for m in queued] == [
        ("test", "c1", "dossier_update")
    ]
    text = queued[0].replies[0]["text"]
    assert CODE1 in text and "Bổ sung tờ khai" in text


# -- searches that found nothing, and synonyms -------------------------------------------------


async def log_search(db, query: str, at: datetime, *, unit: str = "demo", results: int = 0):
    async with db.write_transaction() as session:
        session.add(
            SearchLogEntry(channel="web", unit=unit, query=query, results=results, created_at=at)
        )


async def test_search_misses_are_grouped_across_accents_and_case(db) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for minutes, query in [
        (50, "Bé mới chào đời"),
        (40, "be moi chao doi"),
        (30, "BÉ MỚI CHÀO ĐỜI!"),
        (20, "Bé mới chào đời"),
        (10, "giá vàng hôm nay"),
    ]:
        await log_search(db, query, now - timedelta(minutes=minutes))
    await log_search(db, "bé mới chào đời", now - timedelta(days=40))  # before the window
    await log_search(db, "bé mới chào đời", now, unit=OTHER)  # another unit's
    await log_search(db, "bé mới chào đời", now, results=2)  # found something
    await log_search(db, "???", now)  # no words

    since, until = now - timedelta(days=30), now + timedelta(minutes=1)
    groups = await tools.search_misses(db, "demo", since, until, 10)
    assert [(g.key, g.count) for g in groups] == [("be moi chao doi", 4), ("gia vang hom nay", 1)]
    first = groups[0]
    assert first.examples == ["Bé mới chào đời", "BÉ MỚI CHÀO ĐỜI!", "be moi chao doi"]
    assert first.last_seen == now - timedelta(minutes=20)
    assert first.found_now == ()
    assert len(await tools.search_misses(db, "demo", since, until, 1)) == 1
    assert await tools.search_misses(db, OTHER, since, now, 10) == []


async def test_a_synonym_makes_a_missed_question_find_the_procedure(db) -> None:
    await CatalogueStore(db, "commune").ensure_bundled()
    engine = make_engine(db)
    services = engine.services
    chat = Chat(engine)
    await chat.say(MISSED)
    assert "Thủ tục đăng ký khai sinh" not in chat.text
    now = datetime.now(UTC)
    [miss] = await tools.search_misses(db, "demo", now - timedelta(hours=1), now, 10)
    assert miss.examples == [MISSED]

    synonym = await tools.add_synonym(
        db, "demo", " chào  đời ", "đăng ký khai sinh", OFFICER, catalogue=services.catalogue
    )
    assert (synonym.phrase, synonym.replacement, synonym.created_by) == (
        "chào đời",
        "đăng ký khai sinh",
        OFFICER,
    )
    assert await audit(db) == [(OFFICER, "demo", "synonym.add", "chào đời")]
    await chat.say(MISSED)
    assert "Thủ tục đăng ký khai sinh" not in chat.text  # the running index is as it was

    await services.reload_catalogue()
    await chat.say(MISSED)
    assert "Thủ tục đăng ký khai sinh" in chat.text
    await chat.say("be moi chao doi")  # typed without diacritics too
    assert "Thủ tục đăng ký khai sinh" in chat.text
    [miss] = await tools.search_misses(
        db, "demo", now - timedelta(hours=1), datetime.now(UTC), 10, index=services.search
    )
    assert miss.count == 2 and miss.found_now[0] == "1.001193"

    # The bot started afresh reads the synonyms too; other units' are not applied.
    await tools.add_synonym(
        db, OTHER, "lọt lòng", "đăng ký kết hôn", OFFICER, catalogue=services.catalogue
    )
    started = await load_services(services.settings, db)
    assert started.search.search(MISSED)[0].code == "1.001193"
    assert started.search.search("lọt lòng") == []

    # The reload also brings the unit profile edited on the dashboard.
    await tools.update_unit_profile(
        db, "demo", address="Thôn Đông", hours="7:30–17:00", hotline="1022", actor=OFFICER
    )
    assert services.unit.hotline is None
    await services.reload_catalogue()
    assert services.unit.hotline == "1022"

    assert await tools.remove_synonym(db, "demo", synonym.id, OFFICER)
    assert not await tools.remove_synonym(db, "demo", synonym.id, OFFICER)
    await services.reload_catalogue()
    await chat.say(MISSED)
    assert "Thủ tục đăng ký khai sinh" not in chat.text


@pytest.mark.parametrize(
    ("phrase", "replacement", "reason"),
    [
        ("chào đời", "giá vàng hôm nay", "would still find nothing"),
        ("đăng ký khai sinh", "đăng ký khai sinh", "changes nothing"),
        ("chào đời", "   ", "Enter both"),
        ("!!!", "đăng ký khai sinh", "Enter both"),
        ("chào đời | lọt lòng", "đăng ký khai sinh", "without “|” or “=>”"),
        ("chào đời", "đăng ký khai sinh " * 20, "longer than 200 characters"),
        ("Mới CHAO DOI", "đăng ký khai sinh", "already a synonym for “mới chào đời”"),
    ],
)
async def test_a_useless_synonym_is_refused(db, phrase, replacement, reason) -> None:
    catalogue = bundled_commune()[0]
    await tools.add_synonym(
        db, "demo", "mới chào đời", "đăng ký khai sinh", OFFICER, catalogue=catalogue
    )
    with pytest.raises(StaffToolError, match=reason):
        await tools.add_synonym(db, "demo", phrase, replacement, OFFICER, catalogue=catalogue)
    assert await count(db, UnitSynonym) == 1 and len(await audit(db)) == 1
