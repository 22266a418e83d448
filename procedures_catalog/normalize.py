"""Vietnamese text normalisation for matching what citizens type.

Citizens type with or without diacritics, in NFC or NFD, with old or new tone placement, with
``kí``/``ký`` variants, with Telex or VNI keystrokes left in the text when their input method was
off, and with stray punctuation and spaces. This module reduces all of these to comparable forms:

- ``fold``: lower case, no tone or vowel marks, ``đ`` -> ``d``, punctuation dropped, single spaces.
  Used by the dialogue router for whole-message phrases.
- ``words``: the search view of a text, one ``Word`` per syllable with two keys:
  ``folded`` (as ``fold``, plus ``i``/``y`` unified after a consonant: ``ky`` -> ``ki``) and
  ``marked`` (vowel-quality marks kept, the tone moved to a suffix so that ``hoà``/``hòa`` and
  ``thuỷ``/``thủy`` are the same, ``i``/``y`` unified: ``ký`` -> ``ki1``). Matching is on
  ``folded``; an equal ``marked`` key means the citizen's diacritics agree with the catalogue's.
- ``keystroke_repairs``: what a word typed with Telex (``ddang``, ``kys``, ``dduwowngf``) or VNI
  (``d9a7ng``, ``ky1``) leftovers would be without them. The search applies a repair only when the
  word itself is unknown and the repaired one is known, so real words are never rewritten.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Đ (U+0110), its look-alike Ð (U+00D0, Icelandic eth) and đ/ð all fold to "d".
_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})
# For the marked key the look-alikes become the real đ.
_D_TO_VIETNAMESE = str.maketrans({"Ð": "đ", "ð": "đ", "Đ": "đ"})
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
# The five Vietnamese tone marks as combining characters, with a digit for the marked key.
_TONES = {"\u0301": "1", "\u0300": "2", "\u0309": "3", "\u0303": "4", "\u0323": "5"}
# Onsets (folded) after which a lone final "y" is the vowel "i": ký/kí, lý/lí, mỹ/mĩ, quý/quí.
_I_Y = re.compile(r"^(b|c|ch|d|g|gh|h|k|kh|l|m|n|ng|ngh|nh|p|ph|qu|r|s|t|th|tr|v|x)y$")
_VOWELS = set("aeiouy")


def strip_marks(text: str) -> str:
    """Remove combining marks (tones, breve, circumflex, horn) after canonical decomposition."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold(text: str) -> str:
    """Return the diacritic-free, lower-case, punctuation-free form of ``text``."""
    text = unicodedata.normalize("NFC", text).translate(_D_MAP).casefold()
    text = strip_marks(text)
    text = _NON_WORD.sub(" ", text).replace("_", " ")
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Word:
    """One word (syllable) of a text, as the search compares it."""

    folded: str
    marked: str
    # True when the word carried any diacritic (tone, vowel mark or đ) as typed.
    has_marks: bool


def _unify_i_y(base: str) -> str:
    return base[:-1] + "i" if _I_Y.match(base) else base


def word(raw: str) -> Word:
    """The search keys of one lower-case word (no spaces or punctuation)."""
    decomposed = unicodedata.normalize("NFD", raw.translate(_D_TO_VIETNAMESE))
    tone = ""
    kept = []
    for ch in decomposed:
        if ch in _TONES:
            tone = tone or _TONES[ch]
        elif unicodedata.combining(ch) and ch not in "\u0306\u0302\u031b":
            continue  # any other stray combining mark
        else:
            kept.append(ch)
    base = unicodedata.normalize("NFC", "".join(kept))
    folded = strip_marks(base).translate(_D_MAP)
    has_marks = bool(tone) or base != folded
    folded_iy = _unify_i_y(folded)
    if folded_iy != folded and base.endswith("y"):
        base = base[:-1] + "i"
    return Word(folded_iy, base + tone, has_marks)


def words(text: str) -> list[Word]:
    """Split ``text`` into search words: NFC, case-folded, punctuation and spaces dropped."""
    text = unicodedata.normalize("NFC", text).casefold()
    return [word(w) for w in _NON_WORD.sub(" ", text).replace("_", " ").split()]


def fold_word(raw: str) -> str:
    """The folded key of one word, with i/y unified (``ký`` -> ``ki``)."""
    return word(raw).folded


_TELEX_VOWELS = (
    ("uwow", "uo"),
    ("uwo", "uo"),
    ("uow", "uo"),
    ("uw", "u"),
    ("ow", "o"),
    ("aw", "a"),
    ("aa", "a"),
    ("ee", "e"),
    ("oo", "o"),
)
_VNI = re.compile(r"^[a-z][a-z0-9]*$")


def keystroke_repairs(folded: str) -> list[str]:
    """Candidate words for ``folded`` read as Telex or VNI keystrokes, best first.

    Returns nothing for words that show no sign of either method. The caller decides whether a
    candidate is a real word (the search accepts one only if the catalogue knows it).
    """
    if not folded.isascii() or not folded.isalnum() or len(folded) > 12:
        return []
    candidates: list[str] = []
    if any(ch.isdigit() for ch in folded) and not folded.isdigit() and _VNI.match(folded):
        # VNI: 1-5 tones, 6 circumflex, 7 horn, 8 breve, 9 đ (d9).
        candidates.append(re.sub(r"[0-9]", "", folded))
    if folded.isalpha():
        text = folded.replace("dd", "d")
        for typed, vowel in _TELEX_VOWELS:
            text = text.replace(typed, vowel)
        # Tone keys after the first vowel: s (sắc), f (huyền), r (hỏi), x (ngã), j (nặng).
        first_vowel = next((i for i, ch in enumerate(text) if ch in _VOWELS), None)
        if first_vowel is not None:
            head, tail = text[: first_vowel + 1], text[first_vowel + 1 :]
            text = head + re.sub(r"[sfrxj]", "", tail)
        text = text.replace("w", "u")
        if text != folded and text:
            candidates.append(text)
    return [_unify_i_y(c) for c in dict.fromkeys(candidates) if c]
