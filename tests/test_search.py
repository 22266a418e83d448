"""Procedure search: ranking, synonyms, the confidence threshold, hostile input, the CLI.

Queries here are written for these tests (not copied from the evaluation files), on the bundled
commune catalogue.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from procedures_catalog.search import Lexicon, SearchIndex

ROOT = Path(__file__).resolve().parent.parent


def top(index: SearchIndex, query: str) -> str | None:
    hits = index.search(query)
    return hits[0].code if hits else None


# --- general procedure first, variants when asked -------------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("đăng ký khai sinh", "1.001193"),
        ("dang ky khai sinh", "1.001193"),
        ("khai sinh có yếu tố nước ngoài", "2.000528"),
        ("đăng ký khai sinh lưu động", "1.003583"),
        ("đăng ký lại khai sinh", "1.004884"),
        ("đăng ký kết hôn", "1.000894"),
        ("đăng ký kết hôn có yếu tố nước ngoài", "2.000806"),
        ("cấp thẻ căn cước", "1.014061"),
        ("cấp lại thẻ căn cước", "1.014064"),
    ],
)
def test_general_procedure_ranks_first_unless_a_variant_is_asked_for(commune_index, query, code):
    assert top(commune_index, query) == code


def test_an_age_in_the_query_picks_the_matching_age_variant(commune_index):
    assert top(commune_index, "làm căn cước cho con 8 tuổi") == "1.014062"  # dưới 14 tuổi
    assert top(commune_index, "làm căn cước cho con 16 tuổi") == "1.014061"  # từ đủ 14 tuổi


def test_exact_diacritics_rank_above_folded_matches():
    from procedures_catalog.schema import Procedure

    index = SearchIndex(
        [
            Procedure.from_dict({"code": "9.000001", "name": "Cấp bản sao giấy tờ nhà ở"}),
            Procedure.from_dict({"code": "9.000002", "name": "Cấp phép bán giấy tờ nhà ở"}),
        ]
    )
    assert [h.code for h in index.search("bản giấy tờ nhà")][:1] == ["9.000001"]
    assert [h.code for h in index.search("bán giấy tờ nhà")][:1] == ["9.000002"]
    # Without diacritics both fit equally: the two are offered.
    assert {h.code for h in index.search("ban giay to nha")} == {"9.000001", "9.000002"}


def test_a_typo_without_diacritics_is_tolerated(commune_index):
    assert top(commune_index, "dang ky khai sinhh") == "1.001193"
    assert top(commune_index, "dang ky tam truu") == "1.004194"


def test_exact_diacritics_on_the_commune_catalogue(commune_index):
    # "ban" folds "bản" (copy) and "bán" (sell): as typed, the marks decide.
    copy = [h.code for h in commune_index.search("chứng thực bản sao", limit=3)]
    assert copy[0] == "2.000815"


# --- synonyms and colloquial wording (data/synonyms.txt) --------------------------------------


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("xin cấp bìa đỏ", "1.013978"),
        ("giay doc than", "1.004873"),
        ("photo công chứng giấy tờ", "2.000815"),
        ("cccd bị mất", "1.014064"),
        ("cắt hộ khẩu", "1.003197"),
        ("lấy vợ", "1.000894"),
        ("bố em qua đời", "1.000656"),
        ("con mới đẻ", "1.001193"),
        ("thẻ BHYT bị mất", "1.002759"),
    ],
)
def test_colloquial_words_find_the_official_procedure(commune_index, query, code):
    codes = [hit.code for hit in commune_index.search(query, limit=3)]
    assert codes and codes[0] == code, codes


def test_synonym_needs_agreeing_diacritics_when_typed_with_them(commune_index):
    lexicon = commune_index.lexicon
    # "sổ đỏ" is a land-use certificate, "sơ đồ" is a diagram: same letters, other marks.
    assert top(commune_index, "sổ đỏ") == top(commune_index, "so do") == "1.013978"
    assert top(commune_index, "sơ đồ") != "1.013978"
    assert "so" in lexicon.synonyms


def test_every_synonym_target_occurs_in_some_procedure_name():
    """A synonym that points at wording no procedure uses can never help; keep the file honest."""
    from procedures_catalog.loader import load_bundled
    from procedures_catalog.normalize import words

    names = [
        f" {' '.join(w.folded for w in words(p.name))} "
        for p in load_bundled("national").procedures.values()
    ]
    missing = []
    for entries in Lexicon.read().synonyms.values():
        for _, targets in entries:
            for target in targets:
                if not any(f" {' '.join(target)} " in name for name in names):
                    missing.append(" ".join(target))
    assert not missing, sorted(set(missing))


# --- the confidence threshold ---------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "giá vàng hôm nay",
        "asdfgh",
        "xin chào",
        "tỷ số trận đấu tối qua",
        "kết quả xổ số miền bắc",
        "công thức nấu phở bò",
        "zxcvbnm qwerty",
    ],
)
def test_off_topic_questions_find_nothing(commune_index, query):
    assert commune_index.search(query) == []


def test_a_near_miss_is_offered_as_a_suggestion_not_an_answer(commune_index):
    result = commune_index.lookup("hộ kinh doanh bán hàng rong ngoài chợ quê tôi")
    assert result.hits or result.suggestions
    assert result.hits == [] or result.suggestions == []


def test_search_by_national_code(commune_index):
    hits = commune_index.search("cho tôi xem thủ tục 1.004873")
    assert hits[0].code == "1.004873"


def test_fields_can_be_browsed(commune_index):
    fields = dict(commune_index.fields())
    assert fields["Hộ tịch"] >= 20
    in_civil = [hit.code for hit in commune_index.in_field("Hộ tịch")]
    assert "1.001193" in in_civil and len(in_civil) == fields["Hộ tịch"]
    assert commune_index.in_field("no such field") == []


# --- hostile input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "khai sinh " * 1000,  # 10,000 characters
        "!!!???...,,,;;;---",
        "😀🎉🙏🏻👍",
        "'; DROP TABLE catalogue_procedures; --",
        "1' OR '1'='1",
        "регистрация рождения 出生登记 تسجيل",
        "\u0301\u0300\u0309" * 50,  # only combining marks
        "",
        "   ",
        "a" * 10_000,
    ],
)
def test_hostile_queries_return_quickly_with_a_clear_answer(commune_index, query):
    started = time.perf_counter()
    result = commune_index.lookup(query)
    elapsed = time.perf_counter() - started
    assert isinstance(result.hits, list)
    assert elapsed < 1.0  # generous: a correctness guard against runaway work, not a benchmark
    if query.strip("!?.,;- ") == "" or query.startswith(("😀", "'", "1'", "\u0301", "a" * 20)):
        assert result.hits == []


def test_nfd_queries_find_the_same(commune_index):
    for query in ("đăng ký kết hôn", "xin giấy xác nhận tình trạng hôn nhân", "hòa giải đất đai"):
        nfd = unicodedata.normalize("NFD", query)
        assert [h.code for h in commune_index.search(nfd)] == [
            h.code for h in commune_index.search(query)
        ]


# --- command line ---------------------------------------------------------------------------


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "procedures_catalog", *args],
        input=stdin.encode(),
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )


def test_cli_batch_writes_one_json_line_per_query():
    queries = ["đăng ký khai sinh", "asdfgh", "", "lam so do", "ddang kys ket hon"]
    result = run_cli("search", "--batch", "--limit", "3", stdin="\n".join(queries) + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode("utf-8").splitlines()
    assert len(lines) == len(queries)
    answers = [json.loads(line) for line in lines]
    assert answers[0][0]["code"] == "1.001193"
    assert {"code", "name", "score"} <= set(answers[0][0])
    assert all(len(answer) <= 3 for answer in answers)
    assert answers[1] == [] and answers[2] == []
    assert answers[3][0]["code"] == "1.013978"
    assert answers[4][0]["code"] == "1.000894"
    scores = [hit["score"] for hit in answers[0]]
    assert scores == sorted(scores, reverse=True)


def test_cli_batch_reads_nfd_and_windows_line_ends():
    query = unicodedata.normalize("NFD", "đăng ký tạm trú")
    result = run_cli("search", "--batch", stdin=query + "\r\n")
    assert json.loads(result.stdout.decode())[0]["code"] == "1.004194"


def test_cli_readable_search_and_errors(tmp_path):
    found = run_cli("search", "đăng", "ký", "khai", "sinh")
    assert found.returncode == 0
    assert "1.001193" in found.stdout.decode()
    nothing = run_cli("search", "giá", "vàng", "hôm", "nay")
    assert nothing.returncode == 1
    assert "No procedure" in nothing.stdout.decode()
    missing = run_cli("search", "--catalogue", str(tmp_path / "nope.json"), "khai sinh")
    assert missing.returncode == 2
    assert "no such file" in missing.stderr.decode()
    bad_limit = run_cli("search", "--limit", "0", "x")
    assert bad_limit.returncode == 2


def test_cli_searches_another_catalogue_file(tmp_path):
    export = tmp_path / "mine.json"
    export.write_text(
        json.dumps({"procedures": [{"code": "9.000001", "name": "Cấp phép nuôi ong mật"}]}),
        encoding="utf-8",
    )
    result = run_cli("search", "--batch", "--catalogue", str(export), stdin="nuôi ong\n")
    assert json.loads(result.stdout.decode())[0]["code"] == "9.000001"
