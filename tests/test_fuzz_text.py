"""Fuzz: the Vietnamese normaliser, the cleaning of incoming text, the procedure search and its
command line, with any text hypothesis can think of (docs/FUZZ.md)."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import procedures_catalog.__main__ as catalogue_cli
from bot.core.text import clean_text
from procedures_catalog.normalize import fold, fold_word, keystroke_repairs, word, words
from procedures_catalog.search import CODE_PATTERN
from tests.conftest import bundled_commune
from tests.fuzz_settings import (
    REAL_PHRASES,
    any_text,
    examples,
    hostile_text,
    long_text,
    message_text,
    vietnamese_text,
)

ROOT = Path(__file__).resolve().parent.parent
texts = st.one_of(any_text, hostile_text, vietnamese_text, long_text, message_text)
CATALOGUE, INDEX = bundled_commune()
CODES = sorted(CATALOGUE.procedures)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


# --- normalize.py ---------------------------------------------------------------------------------


@examples(ci=300, long=25_000)
@given(texts)
def test_fold_gives_single_spaced_unmarked_text_and_is_idempotent(text: str) -> None:
    folded = fold(text)
    assert folded == folded.strip() and "  " not in folded
    assert not any(unicodedata.combining(ch) for ch in folded)
    assert fold(folded) == folded


@examples(ci=200, long=15_000)
@given(vietnamese_text)
def test_vietnamese_folds_to_lower_case_ascii_whatever_the_form_or_case(text: str) -> None:
    folded = fold(text)
    assert folded.isascii() and folded == folded.lower()
    assert fold(nfd(text)) == folded
    assert fold(text.upper()) == folded == fold(text.lower())


@examples(ci=300, long=25_000)
@given(texts)
def test_words_have_stable_keys_and_repairs_are_plain_words(text: str) -> None:
    for found in words(text):
        assert found.folded and not any(ch.isspace() for ch in found.folded)
        assert found.marked
        # The folded key of a folded key is itself (the search compares these keys).
        assert fold_word(found.folded) == found.folded
        assert word(found.folded).folded == found.folded
        for repaired in keystroke_repairs(found.folded):
            assert repaired and repaired.isascii() and repaired.isalnum()


@examples(ci=200, long=15_000)
@given(vietnamese_text)
def test_words_ignore_unicode_form_and_case(text: str) -> None:
    assert words(nfd(text)) == words(text) == words(text.upper())


# --- bot/core/text.py: what every channel's text goes through first -------------------------------

raw_inputs = st.one_of(
    texts,
    st.text(alphabet=st.characters(categories=["Cs", "Cc", "Mn", "Lo"]), max_size=50),
    st.binary(max_size=200),
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(st.integers(), max_size=3),
)


@examples(ci=300, long=25_000)
@given(raw_inputs)
def test_cleaned_text_is_nfc_printable_and_stable(raw: object) -> None:
    cleaned = clean_text(raw)
    assert isinstance(cleaned, str) and cleaned == cleaned.strip()
    cleaned.encode("utf-8")  # no lone surrogates
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in cleaned)
    assert unicodedata.is_normalized("NFC", cleaned)
    assert clean_text(cleaned) == cleaned


# --- search.py ------------------------------------------------------------------------------------


@examples(ci=150, long=12_000)
@given(texts, st.integers(min_value=1, max_value=12))
def test_lookup_answers_any_text_with_procedures_of_the_catalogue(query: str, limit: int) -> None:
    result = INDEX.lookup(query, limit=limit)
    assert len(result.hits) <= limit and len(result.suggestions) <= limit
    assert not (result.hits and result.suggestions)
    for hit in [*result.hits, *result.suggestions]:
        assert CATALOGUE.procedures[hit.code].name == hit.name
        assert math.isfinite(hit.score) and hit.score > 0
    assert len({hit.code for hit in result.hits}) == len(result.hits)
    for typed, read in result.corrections:
        assert typed and read
    assert INDEX.search(query, limit=limit) == result.hits
    assert INDEX.similar(query) == [] or query in CATALOGUE.procedures


@examples(ci=100, long=10_000)
@given(vietnamese_text)
def test_lookup_ignores_unicode_form_and_case(query: str) -> None:
    expected = INDEX.lookup(query).hits
    assert INDEX.lookup(nfd(query)).hits == expected
    assert INDEX.lookup(query.upper()).hits == expected


junk = st.text(max_size=100).filter(lambda s: not CODE_PATTERN.search(s))


@examples(ci=100, long=10_000)
@given(junk, st.sampled_from(CODES), junk)
def test_a_procedure_code_is_found_among_any_words(before: str, code: str, after: str) -> None:
    hits = INDEX.lookup(f"{before} {code} {after}").hits
    assert hits and hits[0].code == code


# --- python -m procedures_catalog search --batch ------------------------------------------------


def run_batch(stdin: bytes, *extra: str) -> tuple[int, str]:
    """``main(["search", "--batch", ...])`` in process with these bytes on standard input."""
    saved = sys.stdin, sys.stdout
    out = io.BytesIO()
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="latin-1")
    sys.stdout = io.TextIOWrapper(out, encoding="latin-1", write_through=True)
    try:
        status = catalogue_cli.main(["search", "--batch", *extra])
        sys.stdout.flush()
        written = out.getvalue()  # before the wrapper is dropped, which closes ``out``
    finally:
        sys.stdin, sys.stdout = saved
    return status, written.decode("utf-8")


def expected_lines(stdin: bytes) -> int:
    """How many lines Python's text reader sees (\\n, \\r\\n and a lone \\r all end one)."""
    return len(io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="replace").readlines())


line_bytes = st.one_of(
    texts.map(lambda s: s.encode("utf-8", errors="surrogatepass")),
    st.binary(max_size=300),
    st.sampled_from(REAL_PHRASES).map(str.encode),
)


@pytest.fixture
def cached_catalogue(monkeypatch):
    """The command line reads the bundled catalogue on every run (0.4 s); read it once here."""
    monkeypatch.setattr(catalogue_cli, "load_catalogue", lambda spec: CATALOGUE)
    monkeypatch.setattr(catalogue_cli, "SearchIndex", lambda procedures: INDEX)


@examples(ci=40, long=2_500)
@given(
    st.lists(line_bytes, max_size=12),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.booleans(),
    st.integers(min_value=1, max_value=9),
)
def test_batch_search_writes_one_json_line_per_input_line(
    cached_catalogue, lines: list[bytes], newline: bytes, final_newline: bool, limit: int
) -> None:
    stdin = newline.join(lines) + (newline if final_newline and lines else b"")
    status, output = run_batch(stdin, "--limit", str(limit))
    assert status == 0
    written = output.split("\n")
    assert written.pop() == ""  # every answer ends with a newline
    assert len(written) == expected_lines(stdin)
    for answer in written:
        hits = json.loads(answer)
        assert isinstance(hits, list) and len(hits) <= limit
        for hit in hits:
            procedure = CATALOGUE.procedures[hit["code"]]
            assert (hit["name"], hit["field"]) == (procedure.name, procedure.field)


@examples(ci=2, long=20)
@given(st.lists(line_bytes, min_size=1, max_size=30))
def test_batch_search_as_a_real_process(lines: list[bytes]) -> None:
    """The same through a real pipe, with the locale of a bare CI shell (C, not UTF-8)."""
    stdin = b"\n".join(lines) + b"\n"
    env = {**os.environ, "LC_ALL": "C", "PYTHONIOENCODING": ""}
    done = subprocess.run(
        [sys.executable, "-m", "procedures_catalog", "search", "--batch"],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    written = done.stdout.decode("utf-8").split("\n")
    assert written.pop() == ""
    assert len(written) == expected_lines(stdin)
    assert all(isinstance(json.loads(answer), list) for answer in written)
