"""Questions about the reorganisation of 1 July 2025 as citizens type them: whether a message is
one, and which place it names ("cho hỏi xã Tân Thành giờ thuộc xã nào ạ" -> "xã Tân Thành")."""

from __future__ import annotations

import re
import unicodedata

from procedures_catalog.normalize import fold

# A question about the reorganisation, once folded. Narrow on purpose: "xã" alone is in many
# procedure questions. The strong ones ("... giờ thuộc xã nào", "tên xã mới") are answered even
# when the place is not found; the others ("sau sáp nhập thì làm căn cước ở đâu") go on to the
# procedure search then.
STRONG = re.compile(
    r"\b(thuoc|la|thanh|vao|ve) (xa|phuong|dac khu) (moi )?(nao|gi)\b"
    r"|\bten (xa|phuong) moi\b|\b(xa|phuong) moi (la |cua |o |ten )?(gi|nao|dau|toi|minh|em)\b"
)
QUESTION = re.compile(
    rf"\bsa[pt] nhap\b|\bsau (khi )?sap xep\b|\bdon vi hanh chinh moi\b|{STRONG.pattern}"
)
# The words of such a question around the place's name, at its start and at its end.
_HEAD = re.compile(
    r"^((cho (toi|em|minh|chau|con) hoi|xin hoi|cho hoi|hoi|tra cuu|tim)\s+"
    r"|(ten )?(xa|phuong|don vi hanh chinh) moi (cua |cho |o )?"
    r"|(sau (khi )?)?sa[pt] nhap\s+(cua\s+)?)+"
)
_TAIL = re.compile(
    r"(^|\s+)((bay gio|gio|hien nay|hien gio|hien tai|nay|sau (khi )?sa[pt] nhap)\s+)*"
    r"(((da|duoc|bi)\s+)?(sa[pt] nhap|nhap|gop)\b"
    r"|(thuoc|la|thanh|vao|ve|voi)\s+((xa|phuong|dac khu|don vi)\s+)?(moi\s+)?(nao|gi|dau)\b"
    r"|((ten|la)\s+)?(xa|phuong)\s+moi\b).*$"
)
_PRONOUNS = {"toi", "minh", "em", "chung", "nha", "cua", "xa", "phuong", "thi", "tran"}
_WORD = re.compile(r"[^\W_]+")


def place_in_question(text: str) -> str:
    """The place a question about the reorganisation names, as typed ("" if it names none):
    "cho hỏi xã Tân Thành, Hàm Thuận Nam giờ thuộc xã nào ạ" -> "xã Tân Thành, Hàm Thuận Nam"."""
    folded = fold(text)
    head = _HEAD.match(folded)
    start = len(head.group().split()) if head else 0
    rest = folded[head.end() :] if head else folded
    tail = _TAIL.search(rest)
    end = start + len((rest[: tail.start()] if tail else rest).split())
    place = folded.split()[start:end]
    if set(place) <= _PRONOUNS:
        return ""
    # The same words as typed, with their diacritics and commas (they help the lookup).
    words = list(_WORD.finditer(unicodedata.normalize("NFC", text)))
    if len(words) != len(folded.split()):
        return " ".join(place)
    return unicodedata.normalize("NFC", text)[words[start].start() : words[end - 1].end()]
