"""Phone photos of one document (thành phần hồ sơ) -> one PDF ready to upload to the portal.

The national public service portal takes each document of a dossier as one file of a few MB.
Citizens have phone photos: sideways (EXIF orientation), 12 megapixels, PNG screenshots with
transparency. ``photos_to_pdf`` turns the photos of one document into one PDF:

- each photo is opened with Pillow from its bytes (never trusted by name or MIME type) and
  refused when Pillow cannot decode it (``not_image``) or when its header declares more than
  ``MAX_PIXELS`` (``too_large_image``, checked before the pixels are decoded);
- the photo is turned upright (``ImageOps.exif_transpose``), flattened onto white when it has
  transparency, kept grayscale when it is grayscale and made RGB otherwise, scaled so its long
  side is at most 2,000 px (about 170 dpi on A4, plenty for an officer to read and print) and
  re-encoded as a baseline JPEG. JPEGs are decoded at 1/2, 1/4 or 1/8 scale when that is still
  large enough (libjpeg's DCT scaling through ``Image.draft``), which is most of the speed.
  EXIF metadata, GPS position included, is not copied into the PDF;
- img2pdf puts each JPEG on its own A4 page as is (no second re-encoding), scaled to fit and
  centred; a landscape photo gets a landscape A4 page. A4 rather than photo-sized pages because
  officers print the files and the portal's viewers show pages at a common size;
- when the PDF is larger than ``max_bytes`` the pages are re-encoded smaller and at lower
  quality, a few steps down to 1,000 px at quality 40; when even that is too large the answer
  is ``cannot_fit``.

The output is deterministic: the same photos and title give the same bytes with the same library
versions (no dates in the PDF, a content-derived document ID).
"""

from __future__ import annotations

import asyncio
import io
import math
import re

import img2pdf
from PIL import Image, ImageOps

from procedures_catalog.normalize import fold

MAX_PAGES = 20
# Refuse larger images: a small file can declare an enormous canvas (decompression bomb).
MAX_PIXELS = 50_000_000
# The national portal usually accepts a few MB per file; the deployment can set another limit.
DEFAULT_MAX_BYTES = 5 * 1024 * 1024

# Pillow's own guard, process-wide: it warns above this and raises above twice this, in
# Image.open. Only ever tightened here, never loosened.
if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# Formats a phone or a computer sends as a photo or scan. Only these are decoded; Pillow's other
# readers (EPS through Ghostscript, PSD, ...) are not exposed to citizens' uploads. The JPEG
# reader also opens the multi-picture JPEGs (MPO) some phone cameras write. HEIC is not
# readable without a plugin and is refused as not_image.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")

# (long side in px, JPEG quality), tried in order until the PDF fits in max_bytes.
_STEPS = ((2000, 80), (1600, 70), (1400, 60), (1200, 50), (1000, 40))
_A4 = (img2pdf.mm_to_pt(210), img2pdf.mm_to_pt(297))
_LAYOUT = img2pdf.get_layout_fun(pagesize=_A4, fit=img2pdf.FitMode.into, auto_orient=True)
_WHITE = (255, 255, 255)

_MESSAGES = {
    "not_image": "photo {n} is not an image that can be read (JPEG, PNG, WebP, ...)",
    "too_large_image": f"photo {{n}} has more than {MAX_PIXELS:,} pixels",
    "too_many_pages": f"more than {MAX_PAGES} photos for one document",
    "cannot_fit": "the photos do not fit in the size limit even at the lowest quality",
}


class PhotoError(ValueError):
    """Photos that cannot become an upload-ready PDF; ``reason`` says why, for the citizen."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        self.reason = reason
        # 0-based position of the photo at fault, when the refusal is about one photo.
        self.index = index
        n = "?" if index is None else index + 1
        super().__init__(_MESSAGES.get(reason, reason).format(n=n))


def photos_to_pdf(images: list[bytes], *, title: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Return one PDF, a page per photo in the given order, no larger than ``max_bytes``."""
    if not images:
        raise ValueError("no photos given")
    if len(images) > MAX_PAGES:
        raise PhotoError("too_many_pages")
    # Read every header first so that a bad photo is refused before any decoding work.
    for index, data in enumerate(images):
        _open(data, index).close()
    long_side, quality = _STEPS[0]
    pages = [_page_jpeg(data, i, long_side, quality) for i, data in enumerate(images)]
    pdf = _build(pages, title)
    for long_side, quality in _STEPS[1:]:
        if len(pdf) <= max_bytes:
            return pdf
        # Work from the first pages, already upright and small: decoding them costs far less
        # than the originals, and they keep no EXIF orientation to apply twice.
        pages = [_page_jpeg(page, i, long_side, quality) for i, page in enumerate(pages)]
        pdf = _build(pages, title)
    if len(pdf) <= max_bytes:
        return pdf
    raise PhotoError("cannot_fit")


async def aphotos_to_pdf(
    images: list[bytes], *, title: str, max_bytes: int = DEFAULT_MAX_BYTES
) -> bytes:
    """Run ``photos_to_pdf`` in a worker thread, keeping the CPU work off the event loop."""
    return await asyncio.to_thread(photos_to_pdf, images, title=title, max_bytes=max_bytes)


def pdf_filename(document_name: str) -> str:
    """Return a safe ASCII file name for a document: "Tờ khai đăng ký" -> "to-khai-dang-ky.pdf"."""
    stem = re.sub(r"[^a-z0-9]+", "-", fold(document_name)).strip("-")
    if len(stem) > 80:
        # Cut at a word boundary when there is one, so no word is left half-written.
        stem = stem[:81].rsplit("-", 1)[0] if "-" in stem[:81] else stem[:80]
    return f"{stem or 'tai-lieu'}.pdf"


def _open(data: bytes, index: int) -> Image.Image:
    """Open a photo lazily (header only) and refuse it when it is not one or is too large."""
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise PhotoError("too_large_image", index) from None
    except MemoryError:
        raise
    except Exception:  # untrusted bytes: any reader failure means "not an image we can read"
        raise PhotoError("not_image", index) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise PhotoError("too_large_image", index)
    return image


def _page_jpeg(data: bytes, index: int, long_side: int, quality: int) -> bytes:
    """Decode one photo, upright, flattened, at most ``long_side`` px, as baseline JPEG bytes."""
    image = _open(data, index)
    try:
        scale = long_side / max(image.size)
        if scale < 1:
            # JPEG only: decode at the smallest 1/2^k scale still at least the target size.
            image.draft(None, (math.ceil(image.width * scale), math.ceil(image.height * scale)))
        image.load()
    except MemoryError:
        raise
    except Exception:  # truncated or corrupt pixel data behind a valid header
        raise PhotoError("not_image", index) from None
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # a broken EXIF block should not cost the citizen the photo: keep it as is
        pass
    page = _flatten(image)
    page.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=None)
    out = io.BytesIO()
    page.save(out, "JPEG", quality=quality, optimize=True, progressive=False)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Return the photo as RGB, or L when it is grayscale, with any transparency on white."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode.startswith("I"):
        # 16-bit grayscale PNG or TIFF: scale to 8 bits (a plain convert would clip to white).
        return image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if image.mode in ("1", "F"):
        return image.convert("L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        page = Image.new("RGB", rgba.size, _WHITE)
        page.paste(rgba, mask=rgba.getchannel("A"))
        return page.convert("L") if image.mode in ("LA", "La") else page
    return image.convert("L" if image.mode == "LA" else "RGB")


def _build(pages: list[bytes], title: str) -> bytes:
    """Put the JPEG pages on A4 pages of one PDF, as they are, with the document's title."""
    return img2pdf.convert(pages, title=title or None, layout_fun=_LAYOUT, nodate=True)
