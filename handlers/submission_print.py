"""The document checklist drawn as a PNG image or an A4 PDF, to print or show at the desk.

Drawn with Pillow in DejaVu Sans (the system font that has every Vietnamese letter) and put
into a PDF by img2pdf; where any of them is missing, ``available()`` is False and the chat
offers the text only.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR, BOLD = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
DPI = 150
PAGE_W, PAGE_H = 1240, 1754  # A4 at 150 dpi
MARGIN = 90
MAX_PAGES = 30  # a checklist of 50 long documents fits in a few; this only bounds the work
INK, GREY, RED, GREEN = (0, 0, 0), (80, 80, 80), (170, 20, 20), (20, 110, 40)

Row = tuple[str, str, list[str]]  # mark (✓ ✗ –), document name, notes


def available() -> bool:
    try:
        import img2pdf  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        return False
    return REGULAR.is_file() and BOLD.is_file()


@cache
def _font(bold: bool, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(str(BOLD if bold else REGULAR), size)


def _wrap(text: str, font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if font.getlength(candidate) <= width or not line:
                line = candidate
            else:
                lines.append(line)
                line = word
            while font.getlength(line) > width:  # a single word wider than the page
                cut = max(1, int(len(line) * width / font.getlength(line)))
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line)
    return lines


def _part(text: str, bold: bool, size: int, colour, indent: int = 0) -> tuple:
    font = _font(bold, size)
    return (_wrap(text, font, PAGE_W - 2 * MARGIN - indent), font, colour, indent)


def _layout(title: str, subtitle: str, rows: list[Row]) -> list[tuple]:
    """Blocks (mark or None, parts), each kept whole on a page; a part is (lines, font,
    colour, indent)."""
    blocks = [(None, [_part(title, True, 30, INK)]), (None, [_part(subtitle, False, 20, GREY)])]
    indent = 44
    for mark, name, notes in rows:
        parts = [_part(name, False, 23, INK, indent)]
        parts += [_part(note, False, 19, GREY, indent) for note in notes]
        blocks.append(((mark, {"✓": GREEN, "✗": RED}.get(mark, GREY)), parts))
    return blocks


def _line_height(font) -> int:
    return font.size + 8


def _block_height(block) -> int:
    _mark, parts = block
    return sum(len(lines) * _line_height(font) for lines, font, _c, _i in parts) + 18


def _pages(blocks, page_height: int | None) -> list[list]:
    pages, current, y = [], [], MARGIN
    for block in blocks:
        h = _block_height(block)
        if page_height and current and y + h > page_height - MARGIN:
            pages.append(current)
            current, y = [], MARGIN
        current.append(block)
        y += h
    pages.append(current)
    return pages[:MAX_PAGES]


def _draw(page: list, height: int):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (PAGE_W, height), "white")
    draw = ImageDraw.Draw(image)
    y = MARGIN
    for mark, parts in page:
        if mark is not None:
            draw.text((MARGIN, y), mark[0], font=_font(True, 26), fill=mark[1])
        for lines, font, colour, indent in parts:
            for line in lines:
                draw.text((MARGIN + indent, y), line, font=font, fill=colour)
                y += _line_height(font)
        y += 18
    return image


@cache
def _palette():
    """Each ink blended into white in 8 steps: the anti-aliased edges of every colour used."""
    from PIL import Image

    colours = []
    for ink in (INK, GREY, RED, GREEN):
        for step in range(8):
            colours += [round(c + (255 - c) * step / 7) for c in ink]
    palette = Image.new("P", (1, 1))
    palette.putpalette(colours + colours[:3] * (256 - len(colours) // 3))
    return palette


def _png(image) -> bytes:
    # Four inks on white: a fixed 32-colour palette keeps the marks' colours (an adaptive one
    # drops the green of a single ✓) at about a fifth of the size of an RGB PNG.
    from PIL import Image

    out = io.BytesIO()
    image.quantize(palette=_palette(), dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return out.getvalue()


def render(title: str, subtitle: str, rows: list[Row], kind: str) -> bytes:
    """The checklist as PNG bytes (one tall image) or PDF bytes (A4 pages, lossless)."""
    blocks = _layout(title, subtitle, rows)
    if kind == "png":
        (page,) = _pages(blocks, None)
        height = max(PAGE_H, MARGIN * 2 + sum(_block_height(b) for b in page))
        return _png(_draw(page, height))
    import img2pdf

    pages = [_png(_draw(page, PAGE_H)) for page in _pages(blocks, PAGE_H)]
    layout = img2pdf.get_fixed_dpi_layout_fun((DPI, DPI))
    return img2pdf.convert(pages, title=title, layout_fun=layout, nodate=True)
