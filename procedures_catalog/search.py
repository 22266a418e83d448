"""Procedure search: what a citizen types -> the procedures that fit, best first, or nothing.

How a query is read (see docs/SEARCH.md for the reasoning and the figures):

1. ``normalize.words``: NFC, case folding, đ/Ð, tone placement and i/y unified; every word keeps a
   folded key for matching and a marked key that says whether its diacritics agree.
2. Repairs of words the catalogue does not know: Telex/VNI keystrokes (``ddang kys``), words typed
   glued together (``dangky``). A repair is kept only if it yields known words.
3. Phrases from the reviewed data files (``data/synonyms.txt``, ``data/stopwords.txt``), longest
   first: a colloquial phrase ("sổ đỏ", "giấy độc thân") becomes a *concept* that is matched by
   the catalogue wording it stands for; politeness and question words are dropped.
4. Each remaining word is a *term*, weighted by rarity in the catalogue (IDF). A word the catalogue
   does not know is matched to close known words (rapidfuzz), or counts as an unmatched term,
   which is how off-topic questions end with "nothing found".
5. A procedure's *coverage* is the weighted share of the query's terms and concepts its name
   matches. Below ``THRESHOLD`` it is not an answer. Above it, the ranking adds the share of the
   name the query explains (prefers the general procedure over its qualified variants), words in
   the same order, a penalty for an unrequested qualifier ("nước ngoài", "lưu động", "cấp lại" —
   ``data/qualifiers.txt``), and agreement of an age in the query with the age in the name.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from rapidfuzz import fuzz, process

from procedures_catalog.normalize import Word, fold, keystroke_repairs, words
from procedures_catalog.schema import Procedure

DATA_DIR = Path(__file__).parent / "data"

# A procedure must match at least this share of the query's weight to be an answer.
THRESHOLD = 0.55
# How many one-word stopwords may sit inside a colloquial phrase ("bố tôi vừa mất").
SYNONYM_GAPS = 2
# The weight of a context word ("ông", "bé", "quê") relative to its rarity.
CONTEXT_WEIGHT = 0.3
# Up to this many terms, every unmatched term counts fully against a procedure; beyond, less.
CONTEXT_WORDS = 4
# A syllable seen at least this often, and with the same neighbour this share of the time, is
# taken as one half of a two-syllable word.
BOUND_MIN_COUNT = 3
BOUND_SHARE = 0.9
# Credit for such a syllable typed without its neighbour.
UNBOUND_CREDIT = 0.3
# A colloquial phrase found as such in a name ("nhập khẩu" in a vehicle-import procedure)
# counts less than the catalogue wording it stands for ("đăng ký thường trú").
LITERAL_CREDIT = 0.8
# Names at least this similar (cosine of IDF-weighted words) are offered as related.
SIMILAR_THRESHOLD = 0.5
# Between this and THRESHOLD a procedure is only a "did you mean" suggestion.
NEAR_THRESHOLD = 0.4
# A word whose diacritics disagree with the catalogue's ("bán" for "bản") counts this much.
MARKS_MISMATCH = 0.3
# Only this much of a query is read: enough for any real question, bounded for hostile input.
MAX_QUERY_CHARS = 300
MAX_QUERY_WORDS = 40
CODE_PATTERN = re.compile(r"\b(\d\.\d{6})\b")
# E-mail addresses and links say nothing about a procedure.
_NOT_WORDS = re.compile(r"\S+@\S+|\bhttps?://\S+|\bwww\.\S+", re.IGNORECASE)
_AGE_IN_QUERY = re.compile(r"\b(\d{1,3})\s*tuoi\b")
_AGE_BELOW = re.compile(r"\bduoi (\d{1,3}) tuoi\b")
_AGE_FROM = re.compile(r"\btu (?:du )?(\d{1,3}) tuoi tro len\b")
# How many of the best-covered procedures get the finer ranking.
_RERANK = 60


@dataclass(frozen=True)
class Hit:
    code: str
    name: str
    score: float


@dataclass
class SearchResult:
    """Answers, near misses for "did you mean", and the corrections made to the query."""

    hits: list[Hit]
    suggestions: list[Hit] = field(default_factory=list)
    corrections: list[tuple[str, str]] = field(default_factory=list)


# --- the reviewed data files ----------------------------------------------------------------


def _data_lines(path: Path) -> Iterable[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def _phrase(text: str) -> tuple[Word, ...]:
    return tuple(words(text))


def _folded(text: str) -> tuple[str, ...]:
    return tuple(w.folded for w in words(text))


def _add_synonym(synonyms: dict[str, list], left: str, right: str) -> None:
    """Add the rules of one ``left | left => right | right`` line."""
    targets = tuple(_folded(p) for p in right.split("|") if _folded(p))
    for phrase in left.split("|"):
        typed = _phrase(phrase)
        if typed and targets:
            synonyms[typed[0].folded].append((typed, targets))


def _longest_first(synonyms: dict[str, list]) -> None:
    # The first phrase that matches at a position is the one taken.
    for rules in synonyms.values():
        rules.sort(key=lambda rule: -len(rule[0]))


@dataclass(frozen=True)
class Lexicon:
    """Synonyms, stopwords and qualifiers, read from the reviewed files in ``data/``."""

    # first folded word -> [(phrase as written, catalogue wordings)]
    synonyms: dict[str, list[tuple[tuple[Word, ...], tuple[tuple[str, ...], ...]]]]
    stopwords: dict[str, list[tuple[Word, ...]]]
    # folded -> the context words (as written) that fold to it
    context: dict[str, list[Word]]
    # (qualifier phrase, trigger phrases any of which in the query means "asked for")
    qualifiers: tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...]

    @classmethod
    def read(cls, directory: Path = DATA_DIR) -> Lexicon:
        synonyms: dict[str, list] = defaultdict(list)
        for line in _data_lines(directory / "synonyms.txt"):
            left, _, right = line.partition("=>")
            _add_synonym(synonyms, left, right)
        stopwords: dict[str, list] = defaultdict(list)
        for line in _data_lines(directory / "stopwords.txt"):
            typed = _phrase(line)
            if typed:
                stopwords[typed[0].folded].append(typed)
        context: dict[str, list] = defaultdict(list)
        for line in _data_lines(directory / "context.txt"):
            for word in words(line):
                context[word.folded].append(word)
        qualifiers = []
        for line in _data_lines(directory / "qualifiers.txt"):
            phrase, _, triggers = line.partition("=>")
            folded = _folded(phrase)
            trigger_list = tuple(_folded(t) for t in triggers.split("|") if _folded(t))
            qualifiers.append((folded, trigger_list or (folded,)))
        _longest_first(synonyms)
        for phrases in stopwords.values():
            phrases.sort(key=lambda phrase: -len(phrase))
        return cls(dict(synonyms), dict(stopwords), dict(context), tuple(qualifiers))

    def with_synonyms(self, pairs: Iterable[tuple[str, str]]) -> Lexicon:
        """A copy with more synonyms, e.g. those a unit's staff added: (phrase, replacement)
        pairs, each side as in ``synonyms.txt`` (alternatives separated by ``|``). An added
        phrase wins over a bundled phrase of the same length."""
        synonyms: dict[str, list] = defaultdict(list)
        for left, right in pairs:
            _add_synonym(synonyms, left, right)
        for first, rules in self.synonyms.items():
            synonyms[first].extend(rules)
        _longest_first(synonyms)  # a stable sort: among equal lengths the added come first
        return Lexicon(dict(synonyms), self.stopwords, self.context, self.qualifiers)

    def words(self) -> set[str]:
        """Every folded word the data files know (for repairs of unknown words)."""
        known: set[str] = set()
        for entries in self.synonyms.values():
            for typed, _ in entries:
                known.update(w.folded for w in typed)
        for entries in self.stopwords.values():
            for typed in entries:
                known.update(w.folded for w in typed)
        return known


@cache
def default_lexicon() -> Lexicon:
    return Lexicon.read()


# --- the index ------------------------------------------------------------------------------


@dataclass
class _Entry:
    code: str
    name: str
    field: str
    words: tuple[str, ...]
    marked: frozenset[str]
    spaced: str  # " word word ... " for phrase containment
    mass: float  # sum of the IDF of the distinct words of the name
    age_range: tuple[int, int] | None
    # (word, IDF) for the distinct words of the name; the qualifiers (by number) it contains
    weighted_words: tuple[tuple[str, float], ...] = ()
    qualifiers: tuple[int, ...] = ()


@dataclass
class _Group:
    """One thing the query asks for: a term (one word) or a concept (a colloquial phrase)."""

    weight: float
    # alternatives: (folded words, credit factor); the best one a name matches counts. A
    # concept's last alternative is the phrase as typed.
    alternatives: list[tuple[tuple[str, ...], float]]
    typed: tuple[Word, ...]
    concept: bool = False
    context: bool = False  # a context word ("ông", "quê"): weighs little, asks for nothing


class SearchIndex:
    """An in-memory index of procedure names; build once, search many times (thread-safe reads)."""

    def __init__(self, procedures: Iterable[Procedure], lexicon: Lexicon | None = None) -> None:
        self.lexicon = lexicon or default_lexicon()
        self._entries: list[_Entry] = []
        self._by_code: dict[str, int] = {}
        postings: dict[str, list[int]] = defaultdict(list)
        bigrams: set[tuple[str, str]] = set()
        neighbours: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for procedure in procedures:
            name_words = words(procedure.name)
            folded = tuple(w.folded for w in name_words)
            index = len(self._entries)
            self._by_code[procedure.code] = index
            spaced = f" {' '.join(folded)} "
            self._entries.append(
                _Entry(
                    procedure.code,
                    procedure.name,
                    procedure.field,
                    folded,
                    frozenset(w.marked for w in name_words),
                    spaced,
                    0.0,
                    _age_range(spaced),
                )
            )
            for word in set(folded):
                postings[word].append(index)
            bigrams.update(zip(folded, folded[1:], strict=False))
            marked = [w.marked for w in name_words]
            for first, second in zip(marked, marked[1:], strict=False):
                neighbours[(first, 1)][second] += 1
                neighbours[(second, -1)][first] += 1
        total = max(len(self._entries), 1)
        self._postings = {word: tuple(docs) for word, docs in postings.items()}
        self._idf = {word: math.log(1 + total / len(docs)) for word, docs in postings.items()}
        self._max_idf = math.log(1 + total)
        self._bigrams = frozenset(bigrams)
        # Syllables that in the catalogue (almost) always come with the same neighbour: "yêu"
        # is only ever "yêu cầu", "chiếu" only "hộ chiếu". Typed without that neighbour, such a
        # syllable is another word ("người yêu"), and matching it would be a coincidence.
        self._bound: dict[tuple[str, int], str] = {}
        for key, counts in neighbours.items():
            total_count = sum(counts.values())
            neighbour, count = max(counts.items(), key=lambda item: item[1])
            if total_count >= BOUND_MIN_COUNT and count >= BOUND_SHARE * total_count:
                self._bound[key] = neighbour
        marked_postings: dict[str, set[int]] = defaultdict(set)
        for index, entry in enumerate(self._entries):
            entry.weighted_words = tuple((w, self._idf[w]) for w in set(entry.words))
            entry.mass = sum(weight for _, weight in entry.weighted_words)
            entry.qualifiers = tuple(
                number
                for number, (phrase, _) in enumerate(self.lexicon.qualifiers)
                if f" {' '.join(phrase)} " in entry.spaced
            )
            for key in entry.marked:
                marked_postings[key].add(index)
        self._marked_postings = {key: frozenset(docs) for key, docs in marked_postings.items()}
        field_counts: dict[str, int] = defaultdict(int)
        for entry in self._entries:
            if entry.field:
                field_counts[entry.field] += 1
        self._fields = sorted(field_counts.items(), key=lambda item: fold(item[0]))
        self._vocabulary = sorted(w for w in self._postings if len(w) >= 2 and not w.isdigit())
        self._known = set(self._postings) | self.lexicon.words()
        self._segment_words = {w for w in self._known if len(w) >= 2 and w.isalpha()}

    def __len__(self) -> int:
        return len(self._entries)

    # --- public API -----------------------------------------------------------------------

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """The procedures that fit ``query``, best first; [] when none fits with confidence."""
        return self.lookup(query, limit).hits

    def lookup(self, query: str, limit: int = 5) -> SearchResult:
        """Like ``search``, with near misses and the corrections made to the query."""
        query = query[:MAX_QUERY_CHARS]
        by_code = [
            self._entries[self._by_code[code]]
            for code in dict.fromkeys(CODE_PATTERN.findall(query))
            if code in self._by_code
        ]
        code_hits = [Hit(entry.code, entry.name, 1.0) for entry in by_code]
        text = _NOT_WORDS.sub(" ", CODE_PATTERN.sub(" ", query))
        typed, corrections = self._repair(words(text)[:MAX_QUERY_WORDS])
        groups = self._groups(typed)
        scored = self._score(groups, typed) if groups else []
        hits = [hit for hit, coverage in scored if coverage >= THRESHOLD]
        near = [hit for hit, coverage in scored if NEAR_THRESHOLD <= coverage < THRESHOLD]
        hits = code_hits + [hit for hit in hits if hit.code not in {h.code for h in code_hits}]
        return SearchResult(hits[:limit], near[:limit] if not hits else [], corrections)

    def similar(self, code: str, limit: int = 5) -> list[Hit]:
        """Procedures whose names share most of this one's informative words (its variants:
        re-registration, foreign element, mobile...), most similar first."""
        index = self._by_code.get(code)
        if index is None:
            return []
        entry = self._entries[index]
        overlap: dict[int, float] = defaultdict(float)
        for word, weight in entry.weighted_words:
            for other in self._postings[word]:
                overlap[other] += weight
        overlap.pop(index, None)
        scored = []
        for other, shared in overlap.items():
            candidate = self._entries[other]
            similarity = shared / math.sqrt(entry.mass * candidate.mass)
            if similarity >= SIMILAR_THRESHOLD:
                scored.append(Hit(candidate.code, candidate.name, round(similarity, 4)))
        scored.sort(key=lambda hit: (-hit.score, hit.code))
        return scored[:limit]

    def fields(self) -> list[tuple[str, int]]:
        """The fields (lĩnh vực) of the catalogue with their number of procedures, by name."""
        return list(self._fields)

    def in_field(self, field_name: str) -> list[Hit]:
        """The procedures of one field, by name."""
        return sorted(
            (Hit(e.code, e.name, 1.0) for e in self._entries if e.field == field_name),
            key=lambda hit: fold(hit.name),
        )

    # --- reading the query ----------------------------------------------------------------

    def _repair(self, typed: list[Word]) -> tuple[list[Word], list[tuple[str, str]]]:
        """Telex/VNI leftovers and glued words, when that turns unknown words into known ones."""
        repaired: list[Word] = []
        corrections: list[tuple[str, str]] = []
        for word in typed:
            if word.folded in self._known or word.folded.isdigit():
                repaired.append(word)
                continue
            candidates = [] if word.has_marks else keystroke_repairs(word.folded)
            known = next((c for c in candidates if c in self._known), None)
            if known:
                repaired.append(Word(known, known, False))
                corrections.append((word.folded, known))
                continue
            # A word typed with diacritics came from a real keyboard layout: not glued.
            for candidate in () if word.has_marks else (word.folded, *candidates):
                pieces = self._segment(candidate)
                if pieces:
                    repaired.extend(Word(p, p, False) for p in pieces)
                    corrections.append((word.folded, " ".join(pieces)))
                    break
            else:
                repaired.append(word)
        return repaired, corrections

    def _segment(self, text: str) -> list[str] | None:
        """Split a glued word into the fewest known words ("dangky" -> dang ky), or None."""
        if len(text) < 4 or not text.isalpha() or len(text) > 24:
            return None
        best: list[list[str] | None] = [None] * (len(text) + 1)
        best[0] = []
        for end in range(2, len(text) + 1):
            for start in range(max(0, end - 7), end - 1):
                piece = text[start:end]
                if best[start] is not None and piece in self._segment_words:
                    candidate = [*best[start], piece]
                    if best[end] is None or len(candidate) < len(best[end]):
                        best[end] = candidate
        pieces = best[len(text)]
        return pieces if pieces and len(pieces) >= 2 else None

    def _match_at(self, typed: list[Word], start: int, phrase: tuple[Word, ...]) -> bool:
        return self._phrase_end(typed, start, phrase, gaps=0) is not None

    def _phrase_end(
        self, typed: list[Word], start: int, phrase: tuple[Word, ...], gaps: int
    ) -> tuple[int, list[int]] | None:
        """Where ``phrase`` ends if it is typed at ``start`` and the positions of its words, or
        None. Up to ``gaps`` one-word stopwords or context words may sit inside it ("bố tôi vừa
        mất" is "bố mất", "thuê một mặt bằng" is "thuê mặt bằng")."""
        position = start
        matched = []
        for number, want in enumerate(phrase):
            while True:
                if position >= len(typed):
                    return None
                got = typed[position]
                if got.folded == want.folded and not (got.has_marks and got.marked != want.marked):
                    break
                if number == 0 or gaps == 0:
                    return None
                if not (self._is_stopword(got) or self._is_context(got)):
                    return None
                gaps -= 1
                position += 1
            matched.append(position)
            position += 1
        return position, matched

    def _is_stopword(self, word: Word) -> bool:
        """A one-word stopword for sure: typed as listed (not "the" for "thế", which may be
        "thẻ")."""
        return any(
            len(entry) == 1
            and (word.has_marks or not entry[0].has_marks)
            and self._match_at([word], 0, entry)
            for entry in self.lexicon.stopwords.get(word.folded, ())
        )

    def _stopword_at(self, typed: list[Word], start: int) -> int:
        """Length of the longest stopword phrase at ``start`` (0 if none)."""
        for phrase in self.lexicon.stopwords.get(typed[start].folded, ()):
            if not self._match_at(typed, start, phrase):
                continue
            end = start + len(phrase)
            guessed = any(
                not got.has_marks and want.has_marks
                for got, want in zip(typed[start:end], phrase, strict=False)
            )
            # Typed without diacritics, "dang" may be "đang" (stopword) or "đăng" (in "đăng
            # ký"): keep it when it forms a pair of words found in procedure names.
            if guessed and (
                (start > 0 and (typed[start - 1].folded, typed[start].folded) in self._bigrams)
                or (
                    end < len(typed) and (typed[end - 1].folded, typed[end].folded) in self._bigrams
                )
            ):
                continue
            return len(phrase)
        return 0

    def _groups(self, typed: list[Word]) -> list[_Group]:
        groups: list[_Group] = []
        seen: set[str] = set()
        position = 0
        while position < len(typed):
            word = typed[position]
            synonym = next(
                (
                    (phrase, targets, found)
                    for phrase, targets in self.lexicon.synonyms.get(word.folded, ())
                    if (found := self._phrase_end(typed, position, phrase, SYNONYM_GAPS))
                ),
                None,
            )
            stop = self._stopword_at(typed, position)
            if synonym and len(synonym[0]) >= stop:
                phrase, targets, (end, positions) = synonym
                span = [typed[at] for at in positions]
                literal = tuple(w.folded for w in span)
                # As informative as the words typed, or as the wording it stands for.
                weight = max(
                    sum(self._idf.get(w, self._max_idf) for w in words_)
                    for words_ in (literal, *targets)
                )
                groups.append(
                    _Group(
                        min(max(self._max_idf, weight), 1.5 * self._max_idf),
                        [(target, 1.0) for target in targets] + [(literal, LITERAL_CREDIT)],
                        tuple(span),
                        concept=True,
                    )
                )
                position = end
                continue
            if stop:
                position += stop
                continue
            position += 1
            if word.marked in seen:
                continue  # a word said twice is not twice the evidence
            seen.add(word.marked)
            group = self._term(
                word, self._unbound(typed, position - 1), self._context_at(typed, position - 1)
            )
            if group is not None:
                groups.append(group)
        return groups

    def _unbound(self, typed: list[Word], position: int) -> bool:
        """True if this typed syllable lacks the neighbour it always has in the catalogue."""
        word = typed[position]
        if not word.has_marks:
            return False
        for side in (1, -1):
            neighbour = self._bound.get((word.marked, side))
            at = position + side
            if neighbour and not (0 <= at < len(typed) and typed[at].marked == neighbour):
                return True
        return False

    def _context_at(self, typed: list[Word], position: int) -> bool:
        """A context word here: listed as one, and (typed without diacritics) not part of a pair
        of words found in names ("ba ngoai" is a grandmother, "nuoc ngoai" is abroad)."""
        word = typed[position]
        if not self._is_context(word):
            return False
        if word.has_marks:
            return True
        before = position > 0 and (typed[position - 1].folded, word.folded)
        after = position + 1 < len(typed) and (word.folded, typed[position + 1].folded)
        return before not in self._bigrams and after not in self._bigrams

    def _term(self, word: Word, unbound: bool = False, context: bool = False) -> _Group | None:
        if word.folded.isdigit():
            number = word.folded.lstrip("0") or "0"
            if number in self._idf:
                return _Group(0.5 * self._idf[number], [((number,), 1.0)], (word,))
            return None  # a number the names do not contain says nothing (ages are ranked apart)
        if word.folded in self._idf:
            credit = UNBOUND_CREDIT if unbound else 1.0
            weight = self._idf[word.folded]
            if word.has_marks:
                # Typed with diacritics, the word is as informative as its marked form is rare
                # ("chó" is in no name, although "cho" is in many).
                marked = self._marked_postings.get(word.marked)
                total = len(self._entries)
                weight = math.log(1 + total / len(marked)) if marked else self._max_idf
            if context:
                weight *= CONTEXT_WEIGHT
            return _Group(weight, [((word.folded,), credit)], (word,), context=context)
        # Typos are looked for in words typed without diacritics; a word typed with them that
        # the catalogue does not know ("trời", "đẹp") is simply another word.
        if word.folded not in self._known and len(word.folded) >= 4 and not word.has_marks:
            cutoff = 80 if len(word.folded) >= 5 else 75
            close = process.extract(
                word.folded, self._vocabulary, scorer=fuzz.ratio, score_cutoff=cutoff, limit=3
            )
            if close:
                alternatives = [((c,), 0.9 * score / 100) for c, score, _ in close]
                return _Group(self._idf[close[0][0]], alternatives, (word,))
        # Unknown: it still counts, so a question about something else finds nothing.
        weight = self._max_idf * (CONTEXT_WEIGHT if context else 1.0)
        return _Group(weight, [], (word,), context=context)

    def _is_context(self, word: Word) -> bool:
        return any(
            not word.has_marks or word.marked == known.marked
            for known in self.lexicon.context.get(word.folded, ())
        )

    # --- ranking ------------------------------------------------------------------------------

    def _score(self, groups: list[_Group], typed: list[Word]) -> list[tuple[Hit, float]]:
        total = sum(group.weight for group in groups)
        if total <= 0:
            return []
        typed_words = sum(len(group.typed) for group in groups)
        coverage: dict[int, float] = defaultdict(float)
        numbers = []
        for group in groups:
            if group.typed[0].folded.isdigit():
                numbers.append(group)
                continue
            for index, credit in self._group_credit(group).items():
                coverage[index] += group.weight * credit
        # A number ("mức 2") supports a procedure that matched words; alone it proves nothing.
        for group in numbers:
            for index, credit in self._group_credit(group).items():
                if index in coverage:
                    coverage[index] += group.weight * credit
        # Only names that can reach NEAR_THRESHOLD are ranked further: with a share of the
        # unmatched weight ``context`` counted, share >= NEAR iff weighted >= floor.
        context = min(1.0, CONTEXT_WORDS / typed_words)
        floor = NEAR_THRESHOLD * context * total / (1 - NEAR_THRESHOLD + NEAR_THRESHOLD * context)
        best = heapq.nlargest(
            _RERANK,
            ((index, weighted) for index, weighted in coverage.items() if weighted >= floor),
            key=lambda item: item[1],
        )
        asked = {
            w for group in groups if not group.context for alt, _ in group.alternatives for w in alt
        }
        asked.update(w.folded for group in groups if not group.context for w in group.typed)
        context_words = {g.typed[0].folded for g in groups if g.context}
        spaced_query = f" {' '.join(w.folded for w in typed if w.folded not in context_words)} "
        plain = [g.typed[0].folded for g in groups if not g.concept and g.alternatives]
        pairs = list(zip(plain, plain[1:], strict=False))
        age = _AGE_IN_QUERY.search(" ".join(w.folded for w in typed))
        requested = {
            number
            for number, (_, triggers) in enumerate(self.lexicon.qualifiers)
            if any(
                f" {' '.join(t)} " in spaced_query or (len(t) == 1 and t[0] in asked)
                for t in triggers
            )
        }
        results = []
        for index, weighted in best:
            # The more a citizen writes, the more of it is context ("my mother passed away
            # yesterday, what do I do at the commune"): unmatched weight counts less.
            unmatched = (total - weighted) * context
            share = weighted / (weighted + unmatched)
            if share < NEAR_THRESHOLD:
                continue
            entry = self._entries[index]
            explained = sum(weight for w, weight in entry.weighted_words if w in asked)
            precision = explained / entry.mass if entry.mass else 0.0
            order = _longest_run(pairs, entry.spaced) / len(pairs) if pairs else 0.0
            penalty = 0.12 * sum(1 for number in entry.qualifiers if number not in requested)
            score = share + 0.1 * precision + 0.15 * order - min(penalty, 0.24)
            if age and entry.age_range:
                low, high = entry.age_range
                score += 0.1 if low <= int(age.group(1)) < high else -0.5
            results.append((Hit(entry.code, entry.name, round(score, 4)), share))
        results.sort(key=lambda item: (-item[0].score, item[0].code))
        return results

    def _group_credit(self, group: _Group) -> dict[int, float]:
        """How much of ``group`` each matching procedure's name satisfies, in [0, 1]."""
        credit: dict[int, float] = {}
        typed = group.typed[0] if len(group.typed) == 1 else None
        exact = None
        if typed is not None and typed.has_marks and not group.concept:
            exact = self._marked_postings.get(typed.marked, frozenset())
        last = len(group.alternatives) - 1
        for number, (alternative, factor) in enumerate(group.alternatives):
            if group.concept and number == last:
                # The colloquial phrase itself counts only where a name contains it as written.
                needle = f" {' '.join(alternative)} "
                for index in self._postings.get(alternative[0], ()):
                    if factor > credit.get(index, 0.0) and needle in self._entries[index].spaced:
                        credit[index] = factor
                continue
            if len(alternative) == 1:
                mismatch = factor * MARKS_MISMATCH
                for index in self._postings.get(alternative[0], ()):
                    value = factor if exact is None or index in exact else mismatch
                    if value > credit.get(index, 0.0):
                        credit[index] = value
                continue
            weights = [self._idf.get(w, self._max_idf) for w in alternative]
            whole = sum(weights)
            partial: dict[int, float] = defaultdict(float)
            for word, weight in zip(alternative, weights, strict=False):
                for index in self._postings.get(word, ()):
                    partial[index] += weight
            needle = f" {' '.join(alternative)} "
            for index, got in partial.items():
                share = got / whole
                if group.concept:
                    # A catalogue wording is one unit: half of its words is much less than half.
                    share *= share
                value = factor * share
                # All the words, but not as one phrase (or only some of them): less.
                if got < whole - 1e-9 or needle not in self._entries[index].spaced:
                    value *= 0.75
                if exact is not None and index not in exact:
                    value *= MARKS_MISMATCH
                if value > credit.get(index, 0.0):
                    credit[index] = value
        return credit


def _longest_run(pairs: list[tuple[str, str]], spaced_name: str) -> int:
    """The longest run of consecutive query word pairs that are also consecutive in the name."""
    longest = run = 0
    for first, second in pairs:
        run = run + 1 if f" {first} {second} " in spaced_name else 0
        longest = max(longest, run)
    return longest


def _age_range(spaced_name: str) -> tuple[int, int] | None:
    below = _AGE_BELOW.search(spaced_name)
    if below:
        return (0, int(below.group(1)))
    above = _AGE_FROM.search(spaced_name)
    if above:
        return (int(above.group(1)), 1000)
    return None
