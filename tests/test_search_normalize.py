"""Each normalisation rule of the search, on real words (procedures_catalog/normalize.py)."""

from __future__ import annotations

import unicodedata

import pytest

from procedures_catalog.normalize import fold, keystroke_repairs, words


def keys(text: str) -> list[tuple[str, str]]:
    return [(w.folded, w.marked) for w in words(text)]


def test_nfd_input_reads_as_nfc():
    nfc = "Đăng ký khai sinh cho con"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert keys(nfd) == keys(nfc)
    assert fold(nfd) == fold(nfc) == "dang ky khai sinh cho con"


def test_case_folding_and_d_with_stroke():
    assert [w.folded for w in words("ĐĂNG KÝ Kết Hôn")] == ["dang", "ki", "ket", "hon"]
    # Ð (U+00D0, Icelandic eth) looks like Đ and is typed by some keyboards.
    assert keys("Ðăng ký") == keys("Đăng ký")
    assert keys("ðất") == keys("đất")


def test_tone_marks_removed_for_matching_but_kept_in_the_marked_key():
    ban_copy, ban_sell, ban_plain = words("bản bán ban")
    assert ban_copy.folded == ban_sell.folded == ban_plain.folded == "ban"
    assert len({ban_copy.marked, ban_sell.marked, ban_plain.marked}) == 3
    assert ban_copy.has_marks and ban_sell.has_marks and not ban_plain.has_marks


@pytest.mark.parametrize(
    ("old", "new"),
    [("hoà giải", "hòa giải"), ("thuỷ sản", "thủy sản"), ("khoẻ", "khỏe"), ("uỷ ban", "ủy ban")],
)
def test_old_and_new_tone_placement_are_the_same_word(old, new):
    assert keys(old) == keys(new)


@pytest.mark.parametrize(
    ("i_form", "y_form"), [("kí", "ký"), ("lí lịch", "lý lịch"), ("quí", "quý"), ("mĩ", "mỹ")]
)
def test_i_and_y_after_a_consonant_are_the_same_vowel(i_form, y_form):
    assert keys(i_form) == keys(y_form)


def test_y_that_is_not_after_a_consonant_is_kept():
    # "y tế", "thủy", "tuyến" must not become "i".
    assert [w.folded for w in words("y tế thủy tuyến")] == ["y", "te", "thuy", "tuyen"]


def test_punctuation_and_extra_spaces_are_ignored():
    assert keys("  đăng ký...   khai-sinh?!  ") == keys("đăng ký khai sinh")


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("ddang", "dang"),  # Telex dd = đ
        ("kys", "ki"),  # Telex s = sắc, and i/y unified
        ("dduwowngf", "duong"),  # Telex uw ow = ươ, f = huyền
        ("hoon", "hon"),  # Telex oo = ô
        ("d9a7ng", "dang"),  # VNI
        ("ky1", "ki"),  # VNI tone digit
    ],
)
def test_telex_and_vni_leftovers_are_repaired(typed, meant):
    assert meant in keystroke_repairs(typed)


def test_no_repair_for_words_without_keystroke_signs_or_numbers():
    assert keystroke_repairs("dang") == []
    assert keystroke_repairs("2026") == []
    assert keystroke_repairs("đăng") == []  # not ASCII: typed with a real input method


def test_real_words_are_not_rewritten_by_the_search(commune_index):
    # "sinh", "hon", "tu" are words of the catalogue; no keystroke repair is tried on them.
    result = commune_index.lookup("khai tu")
    assert result.corrections == []
    assert result.hits and result.hits[0].code == "1.000656"


def test_search_repairs_telex_and_glued_words(commune_index):
    for query in ("ddang kys khai sinh", "dangky khaisinh", "d9a7ng ky1 khai sinh"):
        result = commune_index.lookup(query)
        assert result.hits, query
        assert result.hits[0].code == "1.001193", query
        assert result.corrections, query
