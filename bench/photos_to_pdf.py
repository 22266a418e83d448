"""Time to turn phone photos into upload-ready PDFs (bot/submission/pdf.py).

Usage:
    python bench/photos_to_pdf.py [--photos 20] [--rounds 3] [--seed 7]

Makes ``--photos`` phone-like 12-megapixel JPEGs once, in memory, from the seed: colour
gradients, dark text-like bars and sensor-like noise, encoded at quality 90 (about 3-4 MB
each, what a phone camera sends); one in three is stored landscape with EXIF orientation 6, as
a phone held upright writes it. Then, best and median of ``--rounds`` runs of:

    documents      the photos split into documents of 1-3 photos (seeded), one
                   ``photos_to_pdf`` call per document, one after another: what a citizen
                   sending a whole dossier costs
    concurrent     the same documents at once through ``aphotos_to_pdf`` (worker threads; Pillow
                   releases the GIL while decoding, resizing and encoding)
    one PDF        all photos in one ``photos_to_pdf`` call, default 5 MB limit
    one PDF, 2 MB  the same under a 2 MB limit, which forces the lower-quality steps

and prints each PDF's size, page count and the size of its first page image.
Target (issue): 20 photos processed in under 10 s. Exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.submission.pdf import (  # noqa: E402
    DEFAULT_MAX_BYTES,
    aphotos_to_pdf,
    photos_to_pdf,
)

SIZE = (4000, 3000)  # 12 MP, the usual phone camera


def phone_photo(rng: random.Random) -> bytes:
    """One 12-MP phone-like JPEG, 3-4 MB."""
    width, height = SIZE
    ramp = Image.linear_gradient("L").resize(SIZE)
    across = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(SIZE)
    base = Image.merge("RGB", (ramp, across, Image.new("L", SIZE, rng.randrange(120, 230))))
    draw = ImageDraw.Draw(base)
    for _ in range(120):  # lines of "text"
        x, y = rng.randrange(width - 800), rng.randrange(height - 40)
        draw.rectangle(
            (x, y, x + rng.randrange(200, 800), y + rng.randrange(8, 30)), fill=(30,) * 3
        )
    noise = Image.frombytes("RGB", SIZE, rng.randbytes(width * height * 3))
    photo = Image.blend(base, noise, 0.12)
    params = {}
    if rng.random() < 1 / 3:
        exif = Image.Exif()
        exif[0x0112] = 6
        params["exif"] = exif.tobytes()
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90, **params)
    return out.getvalue()


def split_documents(photos: list[bytes], rng: random.Random) -> list[list[bytes]]:
    documents, at = [], 0
    while at < len(photos):
        take = rng.randint(1, 3)
        documents.append(photos[at : at + take])
        at += take
    return documents


def timed(run: Callable[[], list[bytes]], rounds: int) -> tuple[list[float], list[bytes]]:
    times, pdfs = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        pdfs = run()
        times.append(time.perf_counter() - start)
    return times, pdfs


def describe(pdf: bytes) -> str:
    from pypdf import PdfReader  # the bench's only use of pypdf, a dev dependency

    reader = PdfReader(io.BytesIO(pdf))
    width, height = reader.pages[0].images[0].image.size
    return f"{len(pdf) / 1e6:.2f} MB, {len(reader.pages)} p, first page {width}x{height}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    start = time.perf_counter()
    photos = [phone_photo(rng) for _ in range(args.photos)]
    sizes = [len(p) / 1e6 for p in photos]
    print(
        f"made {len(photos)} photos {SIZE[0]}x{SIZE[1]} in {time.perf_counter() - start:.1f} s: "
        f"{min(sizes):.2f}-{max(sizes):.2f} MB, {sum(sizes):.1f} MB in all"
    )
    documents = split_documents(photos, rng)
    print(f"documents: {len(documents)} of {[len(d) for d in documents]} photos")

    async def concurrently() -> list[bytes]:
        jobs = [aphotos_to_pdf(d, title=f"Tài liệu {i}") for i, d in enumerate(documents)]
        return list(await asyncio.gather(*jobs))

    scenarios: list[tuple[str, Callable[[], list[bytes]]]] = [
        ("documents", lambda: [photos_to_pdf(d, title="Tài liệu") for d in documents]),
        ("concurrent", lambda: asyncio.run(concurrently())),
        ("one PDF", lambda: [photos_to_pdf(photos, title="Tài liệu")]),
        ("one PDF, 2 MB", lambda: [photos_to_pdf(photos, title="Tài liệu", max_bytes=2_000_000)]),
    ]
    limit = f"default limit {DEFAULT_MAX_BYTES:,} B"
    print(f"\n{'scenario':<15}{'best s':>8}{'median s':>10}   output ({limit})")
    for name, run in scenarios:
        times, pdfs = timed(run, args.rounds)
        total = sum(len(p) for p in pdfs) / 1e6
        largest = max(pdfs, key=len)
        output = f"{len(pdfs)} PDFs, {total:.2f} MB in all, largest {describe(largest)}"
        print(f"{name:<15}{min(times):>8.2f}{statistics.median(times):>10.2f}   {output}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax RSS {rss:.0f} MB (includes the {sum(sizes):.0f} MB of input photos)")
    print(f"target: {args.photos} photos in under 10 s")


if __name__ == "__main__":
    main()
