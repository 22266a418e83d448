"""Vietnamese text normalisation for matching what citizens type.

Citizens type with or without diacritics, in NFC or NFD, with stray punctuation and spaces.
``fold`` reduces all of these to one comparable form: lower case, no tone or vowel marks,
``đ`` -> ``d``, punctuation dropped, single spaces.
"""

from __future__ import annotations

import re
import unicodedata

# Đ (U+0110), its look-alike Ð (U+00D0, Icelandic eth) and đ/ð all fold to "d".
_D_MAP = str.maketrans({"đ": "d", "Đ": "d", "ð": "d", "Ð": "d"})
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


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
