"""Which commune serves me now: old commune -> new commune after 1 July 2025 (bot/units), and
the chat around it. Expected answers are read from the conversion table itself, never typed in
by hand: the table is parsed here with the csv module, independently of the lookup's reader."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import os
import random
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from bot.core.messages import Incoming
from bot.core.router import RouteTable
from bot.core.state import ConversationState
from bot.units import UnitIndex, lookup
from bot.units.lookup import DATA_FILE, read_rows
from bot.units.question import place_in_question
from handlers import all_routers
from procedures_catalog.normalize import fold
from procedures_catalog.schema import Unit
from tests.conftest import Chat, make_engine, skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOTCUA_TEST_SHARED_DIR", ROOT.parent / "shared"))
_TYPE = re.compile(r"^(thi tran|dac khu|thi xa|thanh pho|xa|phuong|huyen|quan|tinh) ")


def without_code(name: str) -> str:
    """ "Quận Ba Đình (001)" -> "Quận Ba Đình"."""
    return " ".join(re.sub(r"\(\d+\)", "", name).split())


def bare(name: str) -> str:
    """Folded, without the GSO code and the type word: "Phường Trúc Bạch" -> "truc bach"."""
    return _TYPE.sub("", fold(without_code(name)))


@dataclasses.dataclass
class OldUnit:
    name: str
    district: str
    province: str
    new: set[tuple[str, str]]  # (bare new name, bare new province)
    notes: set[str]  # "Ghi chú": how it was merged

    @property
    def typed(self) -> str:
        """The name as typed without diacritics or type word."""
        return bare(self.name)


def table() -> list[OldUnit]:
    """The old units of the conversion table, one per (province, district, name)."""
    with gzip.open(DATA_FILE, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))[2:]
    units: dict[tuple[str, str, str], OldUnit] = {}
    for row in rows:
        if not row[1].strip():
            continue  # a province heading
        name = without_code(row[3].strip() or row[6])
        key = (bare(row[7]), bare(row[6]), fold(name))
        unit = units.setdefault(key, OldUnit(name, row[6], row[7], set(), set()))
        unit.new.add((bare(row[1]), bare(row[0])))
        unit.notes.add(" ".join(row[5].split()))
    return list(units.values())


TABLE = table()
# Names (bare) per old province and provinces per name.
IN_PROVINCE = Counter((u.typed, bare(u.province)) for u in TABLE)
PROVINCES_OF = defaultdict(set)
for _unit in TABLE:
    PROVINCES_OF[_unit.typed].add(bare(_unit.province))


def eligible(unit: OldUnit) -> bool:
    """Names that one province knew once (the district is not needed), and not a number."""
    return IN_PROVINCE[(unit.typed, bare(unit.province))] == 1 and not unit.typed.isdigit()


def query(unit: OldUnit) -> str:
    """The name as a citizen types it: no diacritics, no type word; with the province (as
    "tinh X" / "thanh pho X") only when several provinces had the name."""
    if len(PROVINCES_OF[unit.typed]) == 1:
        return unit.typed
    return f"{unit.typed}, {fold(without_code(unit.province))}"


def sample(n: int, seed: int) -> list[OldUnit]:
    """n old units from n different old provinces, chosen by a seeded random generator."""
    rng = random.Random(seed)
    by_province = defaultdict(list)
    for unit in TABLE:
        if eligible(unit):
            by_province[bare(unit.province)].append(unit)
    provinces = rng.sample(sorted(by_province), n)
    return [rng.choice(by_province[p]) for p in provinces]


def resolves_to(text: str, unit: OldUnit) -> None:
    answer = lookup(text)
    assert not answer.needs_province, (text, answer.provinces)
    assert len(answer.matches) == 1, (text, [m.old_name for m in answer.matches])
    match = answer.matches[0]
    assert (bare(match.old_name), bare(match.province)) == (unit.typed, bare(unit.province))
    got = {(bare(new.name), bare(new.province)) for new in match.new_units}
    assert got == unit.new, text


# -- the lookup -------------------------------------------------------------------------------

ACCEPTANCE = sample(50, seed=20250701)


@pytest.mark.parametrize("unit", ACCEPTANCE, ids=[query(u) for u in ACCEPTANCE])
def test_fifty_old_names_typed_without_diacritics_resolve(unit: OldUnit) -> None:
    """Acceptance: 50 old units (from 50 provinces) typed without diacritics or "xã"/"phường"
    give the new unit(s) of the conversion table."""
    resolves_to(query(unit), unit)


def test_the_sample_covers_provinces_and_kinds() -> None:
    assert len({u.province for u in ACCEPTANCE}) == 50
    assert any(" " in query(u) and "," in query(u) for u in ACCEPTANCE)  # ambiguous ones too
    kinds = {fold(u.name).split()[0] for u in ACCEPTANCE}
    assert {"xa", "phuong"} <= kinds


def test_every_row_of_the_table_is_indexed() -> None:
    rows = read_rows()
    assert len(rows) == 10_571
    index = UnitIndex(rows)
    assert len(index) == len(TABLE)
    assert len({row[2].strip() for row in rows}) == 3_321  # new communes, by code


def test_the_index_loads_in_under_a_second() -> None:
    started = time.perf_counter()
    UnitIndex(read_rows())
    assert time.perf_counter() - started < 1.0


def test_bundled_table_is_the_shared_one() -> None:
    shared = SHARED / "data" / "admin_units" / "gso_old_to_new_communes_2025.csv"
    if not shared.exists():
        skip_or_fail(f"shared data not found at {shared}")
    with gzip.open(DATA_FILE, "rb") as fh:
        assert hashlib.sha256(fh.read()).digest() == hashlib.sha256(shared.read_bytes()).digest()


@pytest.mark.parametrize("unit", sample(20, seed=7), ids=lambda u: u.typed)
def test_one_letter_too_many_still_resolves(unit: OldUnit) -> None:
    words = unit.typed.split()
    longest = max(range(len(words)), key=lambda i: len(words[i]))
    middle = len(words[longest]) // 2
    words[longest] = words[longest][:middle] + words[longest][middle:][:1] + words[longest][middle:]
    resolves_to(query(unit).replace(unit.typed, " ".join(words)), unit)


@pytest.mark.parametrize(
    ("typed", "name", "district"),
    [
        ("truc bacj", "Phường Trúc Bạch", "Quận Ba Đình"),  # a letter wrong
        ("quan thanhh", "Phường Quán Thánh", "Quận Ba Đình"),  # a letter too many
        ("huyen hoi, tra vinh", "Xã Huyền Hội", "Huyện Càng Long"),  # "huyen" is in the name
        ("xa huyen hoi huyen cang long", "Xã Huyền Hội", "Huyện Càng Long"),
        ("Xã Tân Thành, huyện Hàm Thuận Nam, tỉnh Bình Thuận", "Xã Tân Thành", "Hàm Thuận Nam"),
        ("tan thanh ham thuan nam", "Xã Tân Thành", "Huyện Hàm Thuận Nam"),
        ("p1 q3", "Phường 1", "Quận 3"),
        ("phuong 1, quan 3, tp hcm", "Phường 1", "Quận 3"),
        ("P.1, Tân An", "Phường 1", "Thành phố Tân An"),
        ("TT Tân Thạnh, Long An", "Thị trấn Tân Thạnh", "Huyện Tân Thạnh"),  # not xã Tân Thành
        ("tôi ở phường Trúc Bạch cũ", "Phường Trúc Bạch", "Quận Ba Đình"),
        ("con dao", "Huyện Côn Đảo", "Huyện Côn Đảo"),  # a district made a special zone
    ],
)
def test_names_in_the_forms_citizens_type(typed: str, name: str, district: str) -> None:
    [unit] = [u for u in TABLE if fold(u.name) == fold(name) and bare(u.district) == bare(district)]
    resolves_to(typed, unit)


def test_an_ambiguous_name_asks_for_the_province() -> None:
    answer = lookup("tan thanh")
    assert answer.needs_province
    expected = {bare(u.province) for u in TABLE if u.typed == "tan thanh"}
    assert {bare(p) for p in answer.provinces} == expected
    assert len(expected) > 30
    chosen = lookup("tan thanh", province="Tỉnh Bình Thuận")
    assert not chosen.needs_province
    [unit] = [u for u in TABLE if u.typed == "tan thanh" and bare(u.province) == "binh thuan"]
    assert [bare(m.old_name) for m in chosen.matches] == ["tan thanh"]
    assert {(bare(n.name), bare(n.province)) for n in chosen.matches[0].new_units} == unit.new


def test_a_partly_merged_commune_lists_all_its_new_communes() -> None:
    divided = [u for u in TABLE if len(u.new) >= 3 and eligible(u)]
    assert divided
    for unit in random.Random(3).sample(divided, 10):
        answer = lookup(query(unit))
        [match] = answer.matches
        assert {(bare(n.name), bare(n.province)) for n in match.new_units} == unit.new
        assert match.partial and "một phần" in match.merge


def test_nothing_found() -> None:
    assert not lookup("qwertyuiop").found
    assert not lookup("").found
    assert not lookup("dang ky ket hon").found  # not "xã Dang" with three unknown words


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("cho hỏi xã Tân Thành giờ thuộc xã nào ạ", "xã Tân Thành"),
        ("sáp nhập xã Tân Thành vào đâu", "xã Tân Thành"),
        ("Trúc Bạch, Ba Đình sau sáp nhập là phường nào vậy", "Trúc Bạch, Ba Đình"),
        ("tên xã mới của phường Trúc Bạch", "phường Trúc Bạch"),
        ("Gio Linh giờ thuộc xã nào", "Gio Linh"),
        ("xã tôi giờ thuộc xã nào ạ", ""),
    ],
)
def test_the_place_in_a_question(question: str, place: str) -> None:
    assert place_in_question(question) == place


# -- the chat ---------------------------------------------------------------------------------


def one_unit(old_typed: str, province: str) -> OldUnit:
    [unit] = [u for u in TABLE if u.typed == old_typed and bare(u.province) == province]
    return unit


def new_names(unit: OldUnit) -> list[str]:
    return [name for name, _ in unit.new]


async def test_ask_then_answer(db) -> None:
    chat = Chat(make_engine(db))
    await chat.press("units:ask")
    assert "xã/phường/thị trấn" in chat.text
    await chat.say("truc bach")
    assert "Phường Trúc Bạch (quận Ba Đình, thành phố Hà Nội)" in chat.text
    assert "phường Ba Đình (thành phố Hà Nội)" in chat.text
    assert chat.payloads == ["units:ask", "menu"]


async def test_a_question_in_free_text_is_answered(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("cho hỏi phường Trúc Bạch giờ thuộc phường nào ạ")
    assert "phường Ba Đình" in chat.text
    await chat.say("xã mới")
    assert "xã/phường/thị trấn" in chat.text


async def test_a_unit_kept_as_it_was(db) -> None:
    kept = [u for u in TABLE if u.notes == {"Giữ nguyên"} and eligible(u)]
    unit = random.Random(5).choice(kept)
    chat = Chat(make_engine(db), locale="en")
    await chat.say(f"/xamoi {query(unit)}")
    assert "was kept as it was" in chat.text
    [(new_name, _)] = unit.new
    assert new_name in fold(chat.text)


async def test_ambiguous_name_province_buttons(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("/xamoi Tân Thành")
    assert "Tỉnh Bình Thuận" in chat.buttons
    assert all(len(p.encode()) <= 64 for p in chat.payloads)
    payload = chat.payloads[chat.buttons.index("Tỉnh Bình Thuận")]
    assert payload.startswith("units:prov:")
    await chat.press(payload)
    unit = one_unit("tan thanh", "binh thuan")
    assert "Xã Tân Thành (huyện Hàm Thuận Nam, tỉnh Bình Thuận)" in chat.text
    assert all(name in fold(chat.text) for name in new_names(unit))
    assert "tỉnh Lâm Đồng" in chat.text  # Bình Thuận is now part of Lâm Đồng


async def test_ambiguous_name_province_typed(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("/xamoi tan thanh")
    await chat.say("binh thuan")
    assert "Xã Tân Thành (huyện Hàm Thuận Nam, tỉnh Bình Thuận)" in chat.text


async def test_a_divided_commune_lists_all_parts(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("/xamoi kim ma")
    unit = one_unit("kim ma", "ha noi")
    assert len(unit.new) == 3
    for name in new_names(unit):
        assert name in fold(chat.text)


async def test_the_new_units_office_when_the_bot_knows_it(db) -> None:
    engine = make_engine(db)
    catalogue = engine.services.catalogue
    ba_dinh = Unit(
        id="ba-dinh",
        name="Phường Ba Đình",
        province="Thành phố Hà Nội",
        address="Số 1 phố Thử Nghiệm",
        hours="Thứ Hai – Thứ Sáu 8:00–17:00",
    )
    units = {**catalogue.units, ba_dinh.id: ba_dinh}
    engine.services.catalogue = dataclasses.replace(catalogue, units=units)
    chat = Chat(engine)
    await chat.say("/xamoi truc bach")
    assert "Số 1 phố Thử Nghiệm" in chat.text and "8:00–17:00" in chat.text
    await chat.say("/xamoi tan thanh, binh thuan")  # another new unit: no office shown
    assert "Số 1 phố Thử Nghiệm" not in chat.text


async def test_not_found_hints_at_the_district(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("/xamoi qwerty xyz")
    assert "qwerty xyz" in chat.text and "Hàm Thuận Nam" in chat.text
    await chat.say("quan thanh")  # still waiting for the name
    assert "phường Ba Đình" in chat.text


async def test_procedure_questions_are_not_taken(db) -> None:
    chat = Chat(make_engine(db))
    await chat.say("sau sáp nhập thì làm căn cước ở đâu")
    assert "units:ask" not in chat.payloads
    await chat.say("khai báo với xã thế nào")
    assert "units:ask" not in chat.payloads


def test_search_dev_queries_are_not_routed_here() -> None:
    dev = SHARED / "eval" / "search_dev.tsv"
    if not dev.exists():
        skip_or_fail(f"shared eval queries not found at {dev}")
    routes = RouteTable(all_routers())
    lines = dev.read_text(encoding="utf-8").splitlines()
    queries = [line.split("\t")[0] for line in lines if line and not line.startswith("#")]
    assert len(queries) > 50
    for text in queries:
        incoming = Incoming(channel="test", conversation_id="c", user_id="u", text=text)
        first, _ = routes.resolve(incoming, ConversationState())[0]
        assert not first.name.startswith("units."), text
