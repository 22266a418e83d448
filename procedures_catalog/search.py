"""Procedure search over names, on folded Vietnamese text.

A first, simple ranking: the share of the query's informative words (weighted by rarity) found
in a procedure's name, a bonus for words in the same order, and a preference for the general,
shorter procedure over its qualified variants unless the query asks for them. Synonyms and
colloquial phrases come later (issue 4); below the threshold the answer is "nothing found".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from procedures_catalog.normalize import fold
from procedures_catalog.schema import Procedure

# Words that say nothing about which procedure is meant.
STOPWORDS = frozenset(
    fold(w)
    for w in (
        "thủ tục",
        "làm",
        "xin",
        "cho",
        "của",
        "tôi",
        "em",
        "mình",
        "cần",
        "gì",
        "như thế nào",
        "thế nào",
        "ở đâu",
        "đâu",
        "muốn",
        "hỏi",
        "ạ",
        "với",
        "và",
        "hồ sơ",
        "giấy tờ",
        "được",
        "không",
        "có",
        "thì",
        "là",
        "để",
        "về",
        "việc",
        "nào",
        "bao nhiêu",
        "mất",
        "bao lâu",
    )
    for w in w.split()
) - {"khai", "ky", "dang"}
# Words that mark a qualified variant of a procedure; such names rank lower unless asked for.
QUALIFIERS = ("nuoc ngoai", "luu dong", "dang ky lai", "bien gioi", "ket hop", "lien thong")
MIN_COVERAGE = 0.6


@dataclass(frozen=True)
class Hit:
    code: str
    name: str
    score: float


class SearchIndex:
    def __init__(self, procedures: Iterable[Procedure]) -> None:
        self._entries: list[tuple[str, str, list[str], str]] = []
        document_frequency: Counter[str] = Counter()
        for procedure in procedures:
            folded = fold(procedure.name)
            tokens = folded.split()
            self._entries.append((procedure.code, procedure.name, tokens, folded))
            document_frequency.update(set(tokens))
        total = max(len(self._entries), 1)
        self._idf = {
            token: math.log(1 + total / count) for token, count in document_frequency.items()
        }
        self._default_idf = math.log(1 + total)

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        words = [w for w in fold(query).split() if w not in STOPWORDS]
        if not words:
            return []
        weights = {w: self._idf.get(w, self._default_idf) for w in words}
        total_weight = sum(weights.values())
        folded_query = " ".join(words)
        hits = []
        for code, name, tokens, folded_name in self._entries:
            token_set = set(tokens)
            matched = sum(weights[w] for w in set(words) if w in token_set)
            coverage = matched / total_weight
            if coverage < MIN_COVERAGE:
                continue
            bigrams = sum(
                1 for a, b in zip(words, words[1:], strict=False) if f"{a} {b}" in folded_name
            )
            score = coverage + 0.1 * bigrams - 0.01 * len(tokens)
            for qualifier in QUALIFIERS:
                if qualifier in folded_name and qualifier not in folded_query:
                    score -= 0.15
            hits.append(Hit(code, name, round(score, 4)))
        hits.sort(key=lambda hit: (-hit.score, hit.code))
        return hits[:limit]
