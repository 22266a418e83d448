"""Which commune serves me now: from an old commune, ward or township (xã, phường, thị trấn) to
the new commune (xã, phường, đặc khu) after the reorganisation of 1 July 2025.

The data is the GSO conversion table in ``data/`` (see its README). An old unit either went whole
into one new commune ("Nhập toàn bộ", "Giữ nguyên") or was divided between several ("Nhập một
phần"); a lookup answers every new commune it went into.

What citizens type is read leniently: with or without diacritics, with or without the type word
("xã", "phường", "thị trấn", "p.", "tt"...), with a letter wrong, and with the old district and
province after the name ("xã A, huyện B, tỉnh C", "A huyen B", "A B C") to tell apart the many
communes that shared a name: "Tân Thành" was the name of communes in 35 provinces.
"""

from __future__ import annotations

import csv
import functools
import gzip
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from procedures_catalog.normalize import fold, word

DATA_FILE = Path(__file__).parent / "data" / "gso_old_to_new_communes_2025.csv.gz"
# A name typed with one letter wrong still scores at least this (fuzz.ratio, 0-100) against a
# name of six letters or more; shorter names must be typed right.
FUZZY_CUTOFF = 84.0
MIN_FUZZY_CHARS = 5
# How many near misses are weighed; the place typed after the name (if any) chooses among them
# before the nearest is taken: "kien huong, thai binh" is Kiến Xương, not the nearer Kiến Hưng
# of another province.
FUZZY_LIMIT = 50
# A district or province name typed with a letter wrong.
PLACE_CUTOFF = 86.0
NEW_PROVINCE_WEIGHT = 0.99
# In "A, B, C" the B is more likely the district and C the province.
LEVEL_PREFERENCE = 0.995
# The longest name (in words) a lookup considers; the rest of the text is read as the place.
MAX_NAME_WORDS = 12

# Type words (folded) and how they are written; two-word types first.
_TYPES = {
    "thi tran": "Thị trấn",
    "dac khu": "Đặc khu",
    "thi xa": "Thị xã",
    "thanh pho": "Thành phố",
    "xa": "Xã",
    "phuong": "Phường",
    "huyen": "Huyện",
    "quan": "Quận",
    "tinh": "Tỉnh",
}


def _phrases(text: str) -> tuple[tuple[str, ...], ...]:
    """ "thi tran | xa" -> (("thi", "tran"), ("xa",)): folded phrases compared word by word."""
    return tuple(tuple(phrase.split()) for phrase in text.split("|"))


# How the table spells type words (lower case); "xa" lacks its accent in one new commune's row.
_TYPE_SPELLINGS = set(
    "thị trấn|thi trấn|đặc khu|thị xã|thành phố|xã|xa|phường|huyện|quận|tỉnh".split("|")
)
# What citizens put before a commune's name: type words and abbreviations.
_COMMUNE_PREFIXES = _phrases(
    "thi tran|dac khu|thi xa|thanh pho|xa|phuong|tt|p|f|x|huyen|quan|tp|tx"
)
# The kind of unit a prefix names: "phường X" is preferred to "xã X" when both existed; a
# district's type word only finds the districts made special zones.
_PREFIX_KIND = {
    "x": "xa",
    "p": "phuong",
    "f": "phuong",
    "tt": "thi tran",
    "tp": "thanh pho",
    "tx": "thi xa",
}
_DISTRICT_KINDS = {"huyen", "quan", "thi xa", "thanh pho"}
# What citizens put before a district's or province's name; the written-out ones first.
_PLACE_PREFIXES = _phrases("thi xa|thanh pho|huyen|quan|tinh|tp|tx|q|h|t")
_WRITTEN_OUT = 7
# The level a place prefix names: "d" district, "p" province (none: either).
_PREFIX_LEVEL = {
    **dict.fromkeys(_phrases("tinh|t"), "p"),
    **dict.fromkeys(_phrases("huyen|quan|thi xa|tx|q|h"), "d"),
}
# Words before a place: "xã A ở huyện B", "thuộc tỉnh C".
_PLACE_FILLER = _phrases("o|tai|thuoc|cua|ben")
# Words around the name in "tôi ở xã A cũ", "trước đây là xã A".
_LEADING_FILLER = _phrases("nha toi o|toi o|minh o|em o|truoc day la|truoc day|truoc kia|o|tai")
_TRAILING_FILLER = _phrases("truoc day|truoc kia|cu|a|ah|nhe|nha|vay|oi")
# Province names people shorten (folded, type word removed).
_PROVINCE_ALIASES = {
    "hcm": "ho chi minh",
    "tphcm": "ho chi minh",
    "sai gon": "ho chi minh",
    "sg": "ho chi minh",
    "hn": "ha noi",
    "brvt": "ba ria vung tau",
    "thua thien hue": "hue",
    "daklak": "dak lak",
}
_CODE = re.compile(r"\s*\(\d+\)\s*$")
_SPLIT_PARTS = re.compile(r"[,;\n]+")
_LETTER_NUMBER = re.compile(r"^(p|q|f)(\d+)$")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True, slots=True)
class NewUnit:
    """A commune after 1 July 2025, as one old unit went into it."""

    name: str  # "Phường Ba Đình"
    province: str  # "Thành phố Hà Nội"
    merge: str  # how the old unit went into it, the table's "Ghi chú": "Nhập toàn bộ"...

    @property
    def partial(self) -> bool:
        """Only part of the old unit went into this one ("Nhập một phần", "Phần còn lại")."""
        return "phan" in fold(self.merge).split()


@dataclass(frozen=True, slots=True)
class OldUnitMatch:
    """An old commune that matches what was typed, and where it went."""

    old_name: str  # "Phường Trúc Bạch"
    old_district: str  # "Quận Ba Đình"
    province: str  # the old province: "Tỉnh Bắc Giang"
    new_units: tuple[NewUnit, ...]
    score: float  # 100 for the name as typed (diacritics aside), less for a near miss

    @property
    def new_names(self) -> list[str]:
        return [unit.name for unit in self.new_units]

    @property
    def merge(self) -> str:
        """How it was merged, in the table's words ("Nhập toàn bộ", "Nhập một phần"...)."""
        return "; ".join(dict.fromkeys(unit.merge for unit in self.new_units if unit.merge))

    @property
    def partial(self) -> bool:
        """Divided: several new communes share the old one, or only part of it went in."""
        return len(self.new_units) > 1 or any(unit.partial for unit in self.new_units)


@dataclass(frozen=True, slots=True)
class UnitAnswer:
    """The answer to one lookup."""

    matches: list[OldUnitMatch] = field(default_factory=list)
    # The name existed in several provinces and the text did not say which one.
    needs_province: bool = False
    provinces: list[str] = field(default_factory=list)  # old provinces of the matches

    @property
    def found(self) -> bool:
        return bool(self.matches)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One old unit in the index: its answer and the folded names it is compared by."""

    name: str
    district: str
    province: str
    new_units: tuple[NewUnit, ...]
    core: str  # the index key: folded name without its type word
    kind: str  # folded type word of the old name ("xa", "phuong", "thi tran", "")
    provinces: tuple[str, ...]  # folded, without type word: the old province, then the new
    # What may follow the name: (folded name, weight, level "d" district, "p" province or
    # "dp" both). The new province alone weighs slightly less than the old one: an old
    # address is more often given with the old province.
    places: tuple[tuple[str, float, str], ...]


# A typed word: folded, and its marked form when it was typed with diacritics ("" if not).
Token = tuple[str, str]


@functools.lru_cache(maxsize=20_000)
def clean(raw: str) -> str:
    """NFC, single spaces, no GSO code in brackets, the type word spelled as the law does."""
    text = " ".join(unicodedata.normalize("NFC", raw).split())
    text = _CODE.sub("", text)
    words = text.split(" ")
    for size in (2, 1):
        head = " ".join(words[:size])
        if len(words) > size and head.casefold() in _TYPE_SPELLINGS:
            return " ".join([_TYPES[fold(head)], *words[size:]])
    return text


@functools.lru_cache(maxsize=20_000)
def split_type(name: str) -> tuple[str, str]:
    """("xa", "tan thanh") for "Xã Tân Thành": the folded type word and the folded rest."""
    folded = fold(name)
    for type_word in _TYPES:
        if folded.startswith(type_word + " "):
            return type_word, folded[len(type_word) + 1 :]
    return "", folded


@functools.lru_cache(maxsize=1_000)
def _province_name(raw: str) -> str:
    name = clean(raw)
    return name if split_type(name)[0] else f"Tỉnh {name}"


@functools.lru_cache(maxsize=1_000)
def _places(
    district: str, province: str, new_provinces: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[tuple[str, float, str], ...]]:
    """The folded provinces of an old unit (old first) and the places that may follow its name
    (see _Entry.places)."""
    district_core, old_province = _core(district), _core(province)
    provinces = tuple(dict.fromkeys([old_province, *map(_core, new_provinces)]))
    places = [(district_core, 1.0, "d")]
    for core in provinces:
        weight = 1.0 if core == old_province else NEW_PROVINCE_WEIGHT
        places += [(core, weight, "p"), (f"{district_core} {core}", weight, "dp")]
    return provinces, tuple(places)


@functools.lru_cache(maxsize=2_000)
def _core(name: str) -> str:
    return _numbers(split_type(name)[1].split())


def _natural(name: str) -> str:
    """A sort key that puts "Quận 3" before "Quận 10"."""
    return re.sub(r"\d+", lambda number: number.group().zfill(4), _core(name))


def _numbers(words: Sequence[str]) -> str:
    """Join words, writing numbers without leading zeros ("Phường 01" is "Phường 1")."""
    return " ".join(str(int(w)) if w.isascii() and w.isdigit() else w for w in words)


@functools.lru_cache(maxsize=20_000)
def _marks(name: str) -> tuple[str, ...]:
    """The marked words of a name without its type word."""
    kind = split_type(name)[0]
    raw = unicodedata.normalize("NFC", name).casefold().split()[len(kind.split()) :]
    return tuple(word(w).marked for w in raw)


def read_rows(path: Path = DATA_FILE) -> list[list[str]]:
    """The data rows of the conversion table (two header rows and province headings left out)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    return [row for row in rows[2:] if len(row) >= 8 and row[1].strip()]


class UnitIndex:
    """Old units by folded name, built once from the conversion table."""

    def __init__(self, rows: Iterable[Sequence[str]]) -> None:
        grouped: dict[tuple[str, ...], tuple[str, str, str, dict]] = {}
        for row in rows:
            district = clean(row[6])
            # The districts turned whole into a special zone (Côn Đảo...) have no commune name.
            old_name = clean(row[3]) or district
            province = _province_name(row[7])
            key = (province, district, *split_type(old_name))
            entry = grouped.setdefault(key, (old_name, district, province, {}))
            new = NewUnit(clean(row[1]), _province_name(row[0]), " ".join(row[5].split()))
            entry[3].setdefault((new.name, new.province), new)
        self.by_core: dict[str, list[_Entry]] = {}
        for old_name, district, province, new_units in grouped.values():
            new_provinces = tuple(dict.fromkeys(u.province for u in new_units.values()))
            provinces, places = _places(district, province, new_provinces)
            kind, core = split_type(old_name)
            entry = _Entry(
                old_name,
                district,
                province,
                tuple(new_units.values()),
                _numbers(core.split()),
                kind,
                provinces,
                places,
            )
            self.by_core.setdefault(entry.core, []).append(entry)
        self.keys = list(self.by_core)
        self.squeezed: dict[str, list[str]] = {}
        for key in self.keys:
            self.squeezed.setdefault(key.replace(" ", ""), []).append(key)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self.by_core.values())

    def lookup(self, text: str, province: str | None = None) -> UnitAnswer:
        """The old units ``text`` names, with the new communes they went into.

        ``province`` (old, else new; any spelling) keeps only the units of that province; a
        province, district or both may also follow the name in ``text`` itself.
        """
        parts = [tokens for tokens in map(_tokens, _SPLIT_PARTS.split(text)) if tokens]
        if not parts:
            return UnitAnswer()
        first, others = parts[0], parts[1:]
        best: tuple | None = None
        for size in range(min(len(first), MAX_NAME_WORDS), 0, -1):
            context = [first[size:], *others] if size < len(first) else others
            reading = self._read(first[:size], context)
            if reading and (best is None or reading[0] > best[0]):
                best = reading
        if best is None:
            return UnitAnswer()
        _, scores, entries = best
        if province:
            wanted, _ = _place_text(_tokens(province))
            wanted = _PROVINCE_ALIASES.get(wanted, wanted)
            # The old province first: "Thành phố Hồ Chí Minh" is not old Bình Dương's.
            entries = [e for e in entries if _ratio(wanted, e.provinces[0])] or [
                e for e in entries if any(_ratio(wanted, p) for p in e.provinces)
            ]
        entries = sorted(entries, key=lambda e: (e.provinces[0], _natural(e.district), e.name))
        provinces = list(dict.fromkeys(e.province for e in entries))
        matches = [
            OldUnitMatch(e.name, e.district, e.province, e.new_units, scores[e.core])
            for e in entries
        ]
        return UnitAnswer(matches, len(provinces) > 1, provinces)

    def _read(self, name: list[Token], context: list[list[Token]]) -> tuple | None:
        """One reading of the text: these words are the name, the rest say where it was."""
        scores, kind, typed = self._name(name)
        entries = [entry for key in scores for entry in self.by_core[key]]
        if not entries:
            return None
        matched = missed = 0
        context = [[t for t, _ in tokens] for tokens in context if tokens]
        for i, tokens in enumerate(context):
            # Addresses go from small to large: "A, B, C" is commune, district, province.
            level = None if len(context) == 1 else "p" if i == len(context) - 1 else "d"
            entries, hits, misses = _narrow(entries, tokens, level)
            matched, missed = matched + hits, missed + misses
        # Of near misses, the nearest left once the place has narrowed them down.
        score = max(scores[e.core] for e in entries)
        entries = [e for e in entries if scores[e.core] >= score - 0.01]
        if missed and (score < 99 or not matched):
            return None  # "dang ky ket hon" is not "xã Dang" followed by three unknown words
        if kind in _DISTRICT_KINDS:
            # "huyện Côn Đảo" (now a special zone) is a district, "quận 3" is not "phường 3".
            entries = [e for e in entries if e.kind == kind]
            if not entries:
                return None
        # Preferences, not filters: a "phường" that was a "xã", a tone typed wrong.
        entries = _prefer(entries, lambda e: e.kind == kind) if kind else entries
        entries = _prefer(entries, lambda e: _same_marks(typed, _marks(e.name)))
        rank = (missed == 0, score >= 99, matched, -missed, score, len(name))
        return rank, scores, entries

    def _name(self, tokens: list[Token]) -> tuple[dict[str, float], str, list[Token]]:
        """Index keys with their scores, the kind of unit typed ("xa", "phuong"...) and the
        words of the name itself (filler and type word removed)."""
        variants = _name_variants(tokens)
        for variant, kind in variants:
            key = _numbers([t for t, _ in variant])
            if key in self.by_core:
                return {key: 100.0}, kind, variant
            if key.replace(" ", "") in self.squeezed:
                return dict.fromkeys(self.squeezed[key.replace(" ", "")], 99.0), kind, variant
        best: tuple[dict[str, float], str, list[Token]] = ({}, "", tokens)
        for variant, kind in variants:
            key = _numbers([t for t, _ in variant])
            if len(key.replace(" ", "")) < MIN_FUZZY_CHARS:
                continue
            hits = process.extract(
                key, self.keys, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=FUZZY_LIMIT
            )
            if hits and hits[0][1] > max(best[0].values(), default=0.0):
                best = ({hit[0]: hit[1] for hit in hits}, kind, variant)
        return best


def _prefer(entries: list[_Entry], test) -> list[_Entry]:
    kept = [e for e in entries if test(e)]
    return kept or entries


def _same_marks(typed: list[Token], marks: tuple[str, ...]) -> bool:
    """Whether the diacritics typed (on the words that have some) are the name's."""
    return len(typed) == len(marks) and all(
        not mark or mark == own for (_, mark), own in zip(typed, marks, strict=True)
    )


def _tokens(text: str) -> list[Token]:
    """Folded words, with their marked form when typed with diacritics; "p1", "q.10" become
    "p 1", "q 10"."""
    tokens: list[Token] = []
    for raw in _NON_WORD.sub(" ", unicodedata.normalize("NFC", text).casefold()).split():
        typed = word(raw)
        found = _LETTER_NUMBER.match(typed.folded)
        if found:
            tokens.extend((part, "") for part in found.groups())
        else:
            tokens.append((fold(raw), typed.marked if typed.has_marks else ""))
    return tokens


def _strip(tokens: list, prefixes: Sequence[tuple[str, ...]], *, end: bool = False):
    """``tokens`` without the first of ``prefixes`` (or suffixes) found, and which it was."""
    folded = [t if isinstance(t, str) else t[0] for t in tokens]
    for prefix in prefixes:
        n = len(prefix)
        if len(tokens) > n and tuple(folded[-n:] if end else folded[:n]) == prefix:
            return (tokens[:-n] if end else tokens[n:]), prefix
    return tokens, None


def _name_variants(tokens: list[Token]) -> list[tuple[list[Token], str]]:
    """The name as typed, then without filler words, then without its type word: each with
    the kind of unit its type word named."""
    variants = [(tokens, "")]
    bare, _ = _strip(tokens, _LEADING_FILLER)
    bare, _ = _strip(bare, _TRAILING_FILLER, end=True)
    if bare != tokens:
        variants.append((bare, ""))
    typeless, prefix = _strip(bare, _COMMUNE_PREFIXES)
    if prefix:
        kind = " ".join(prefix)
        variants.append((typeless, _PREFIX_KIND.get(kind, kind)))
    return variants


def _place_text(tokens: list) -> tuple[str, str | None]:
    """A district or province as typed, without its type word; and the level its type word
    names ("d" district, "p" province, None: either or no type word)."""
    bare, _ = _strip(tokens, _PLACE_FILLER)
    bare, prefix = _strip(bare, _PLACE_PREFIXES)
    return _numbers([t if isinstance(t, str) else t[0] for t in bare]), _PREFIX_LEVEL.get(prefix)


def _ratio(typed: str, place: str) -> float:
    """How well a typed district or province fits a name (0 if not at all)."""
    if typed == place:
        return 100.0
    if len(typed) < MIN_FUZZY_CHARS:
        return 0.0
    return fuzz.ratio(typed, place, score_cutoff=PLACE_CUTOFF)


def _fit(tokens: list[str], entry: _Entry, prefer: str | None) -> float:
    """How well words typed after the name fit the old unit's district and/or province;
    a fit at the ``prefer``red level counts slightly more."""
    bare, level = _place_text(tokens)
    readings = [(_numbers(tokens), None), (bare, level)]
    if bare in _PROVINCE_ALIASES:
        readings.append((_PROVINCE_ALIASES[bare], "p"))
    best = 0.0
    for typed, typed_level in readings:
        for place, weight, place_level in entry.places:
            if typed_level and typed_level not in place_level:
                continue  # "tinh B" is not the district B
            bonus = 1.0 if not prefer or prefer in place_level else LEVEL_PREFERENCE
            best = max(best, _ratio(typed, place) * weight * bonus)
    return best


def _keep_best(entries: list[_Entry], tokens: list[str], prefer: str | None) -> list[_Entry]:
    """The entries that the place words fit best (none if they fit none)."""
    scores = [_fit(tokens, e, prefer) for e in entries]
    top = max(scores, default=0.0)
    return [e for e, score in zip(entries, scores, strict=True) if score and score >= top - 0.01]


def _narrow(
    entries: list[_Entry], tokens: list[str], prefer: str | None
) -> tuple[list[_Entry], int, int]:
    """Keep the entries that the place words fit: the words as a whole ("huyen B", "B C"),
    else piece by piece ("huyen B tinh C", "B C" without type words). Returns the entries, how
    many pieces fitted and how many words fitted nothing."""
    kept = _keep_best(entries, tokens, prefer)
    if kept:
        return kept, 1, 0
    splits = [_split_at_place_words(tokens)]
    if len(splits[0]) == 1:
        splits = [[tokens[:i], tokens[i:]] for i in range(1, len(tokens))]
    best = (entries, 0, len(tokens))
    for pieces in splits:
        narrowed, hits, missed = entries, 0, 0
        for i, piece in enumerate(pieces):
            kept = _keep_best(narrowed, piece, "p" if i == len(pieces) - 1 else "d")
            if kept:
                narrowed, hits = kept, hits + 1
            else:
                missed += len(piece)
        if (hits, -missed) > (best[1], -best[2]):
            best = (narrowed, hits, missed)
    return best


def _split_at_place_words(tokens: list[str]) -> list[list[str]]:
    """ "huyen b tinh c" -> [["huyen", "b"], ["tinh", "c"]] (only the written-out type words)."""
    pieces: list[list[str]] = [[]]
    for i, token in enumerate(tokens):
        for prefix in _PLACE_PREFIXES[:_WRITTEN_OUT]:
            if pieces[-1] and tuple(tokens[i : i + len(prefix)]) == prefix:
                pieces.append([])
                break
        pieces[-1].append(token)
    return [piece for piece in pieces if piece]


@functools.cache
def default_index() -> UnitIndex:
    """The index over the bundled conversion table, built on first use."""
    return UnitIndex(read_rows())


def lookup(text: str, province: str | None = None) -> UnitAnswer:
    """The new communes that the old unit named in ``text`` went into (see UnitIndex.lookup)."""
    return default_index().lookup(text, province)
