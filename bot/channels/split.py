"""Splitting a long reply into messages a platform accepts, without cutting words or lines."""

from __future__ import annotations

from collections.abc import Callable


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, measure: Callable[[str], int] = utf16_length) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` (by ``measure``), preferring to cut between
    paragraphs, then between lines, then between words; a single word longer than the limit
    (a pasted link) is the only thing ever cut inside.

    Replies are plain text, so keeping lines whole keeps lists and headings intact.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    pieces: list[str] = []
    rest = text
    while measure(rest) > limit:
        head = _longest_prefix(rest, limit, measure)
        cut, skip = _best_cut(head, rest[len(head)])
        piece, rest = rest[:cut].rstrip(), rest[cut + skip :]
        if piece:
            pieces.append(piece)
    if rest.strip() or not pieces:
        pieces.append(rest)
    return pieces


def _longest_prefix(text: str, limit: int, measure: Callable[[str], int]) -> str:
    """The longest prefix of ``text`` that measures at most ``limit`` (binary search)."""
    low, high = 1, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def _best_cut(head: str, following: str) -> tuple[int, int]:
    """Where to cut ``head`` (``following`` is the next character) and how many separator
    characters to drop: the last paragraph break in its second half, else the last line break,
    else between two words (right after ``head`` if a space follows it), else its very end (one
    word longer than a whole message)."""
    at = head.rfind("\n\n")
    if at > len(head) // 2:
        return at, 2
    at = head.rfind("\n")
    if at > 0:
        return at, 1
    if following in " \n":
        return len(head), 1
    at = head.rfind(" ")
    if at > 0:
        return at, 1
    return len(head), 0
