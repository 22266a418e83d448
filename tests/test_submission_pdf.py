"""Photos -> upload-ready PDF: real JPEG/PNG inputs made here with Pillow, read back with pypdf."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image, ImageDraw
from pypdf import PdfReader

from bot.submission.pdf import (
    DEFAULT_MAX_BYTES,
    MAX_PAGES,
    MAX_PIXELS,
    PhotoError,
    aphotos_to_pdf,
    pdf_filename,
    photos_to_pdf,
)

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
A4_PORTRAIT = (595, 842)  # points, rounded


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def noisy_photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A phone-like photo: colour gradients, dark text-like bars, sensor-like noise."""
    rng = random.Random(seed)
    width, height = size
    ramp = Image.linear_gradient("L").resize(size)
    base = Image.merge(
        "RGB",
        (
            ramp,
            ramp.transpose(Image.Transpose.ROTATE_90).resize(size),
            Image.new("L", size, rng.randrange(120, 230)),
        ),
    )
    draw = ImageDraw.Draw(base)
    for _ in range(100):
        x, y = rng.randrange(width - width // 5), rng.randrange(height - 30)
        draw.rectangle(
            (x, y, x + rng.randrange(width // 20, width // 5), y + 20), fill=(30, 30, 40)
        )
    noise = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    return Image.blend(base, noise, 0.12)


def halves(size: tuple[int, int], top: tuple, bottom: tuple) -> Image.Image:
    """An image whose top half is one colour and bottom half another, to see orientation."""
    image = Image.new("RGB", size, bottom)
    image.paste(top, (0, 0, size[0], size[1] // 2))
    return image


def png_header_only_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height, all black, a few KB: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def read(pdf: bytes) -> PdfReader:
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def page_size(reader: PdfReader, n: int = 0) -> tuple[int, int]:
    box = reader.pages[n].mediabox
    return round(float(box.width)), round(float(box.height))


def embedded(reader: PdfReader, n: int = 0) -> Image.Image:
    (picture,) = reader.pages[n].images
    return picture.image


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.fixture(scope="module")
def twelve_mp_jpeg() -> bytes:
    data = encode(noisy_photo((4000, 3000), seed=12), quality=90)
    assert len(data) > 2_000_000  # the noise keeps it phone-sized, not a few KB
    return data


def test_exif_rotated_photo_comes_out_upright():
    # Stored landscape with red on top; EXIF 6 says "turn 90° clockwise to view", so the
    # citizen sees a portrait photo with red on the right.
    stored = halves((400, 300), top=RED, bottom=BLUE)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"  # Make; phones also write the GPS position here
    pdf = photos_to_pdf([encode(stored, exif=exif.tobytes())], title="CCCD")
    # JPEG streams are embedded as they are, so EXIF (and a location) would show in the bytes.
    assert b"PhoneMaker" not in pdf
    reader = read(pdf)

    assert len(reader.pages) == 1
    assert page_size(reader) == A4_PORTRAIT
    image = embedded(reader)
    assert image.size == (300, 400)
    assert near(image.getpixel((290, 200)), RED)
    assert near(image.getpixel((10, 200)), BLUE)


def test_photo_without_exif_keeps_its_orientation_on_a_landscape_page():
    reader = read(photos_to_pdf([encode(halves((400, 300), RED, BLUE))], title="x"))
    assert page_size(reader) == A4_PORTRAIT[::-1]
    image = embedded(reader)
    assert image.size == (400, 300)
    assert near(image.getpixel((200, 10)), RED)


def test_twelve_megapixel_photo_is_downscaled_under_the_limit(twelve_mp_jpeg):
    pdf = photos_to_pdf([twelve_mp_jpeg], title="Giấy khai sinh")
    reader = read(pdf)
    assert len(reader.pages) == 1
    assert len(pdf) <= DEFAULT_MAX_BYTES
    assert embedded(reader).size == (2000, 1500)
    assert page_size(reader) == A4_PORTRAIT[::-1]


def test_png_with_alpha_is_flattened_onto_white():
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    image.paste((*BLUE, 255), (100, 0, 200, 100))
    reader = read(photos_to_pdf([encode(image, "PNG")], title="x"))
    page = embedded(reader)
    assert page.mode == "RGB"
    assert near(page.getpixel((20, 50)), WHITE)
    assert near(page.getpixel((180, 50)), BLUE)


def test_grayscale_photo_stays_grayscale():
    image = Image.linear_gradient("L").resize((300, 500))
    reader = read(photos_to_pdf([encode(image)], title="x"))
    assert len(reader.pages) == 1
    assert embedded(reader).mode == "L"


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    image = Image.new("I;16", (64, 64), 40000)  # about 61 % grey in 16 bits
    page = embedded(read(photos_to_pdf([encode(image, "PNG")], title="x")))
    assert page.mode == "L" and 140 <= page.getpixel((32, 32)) <= 170


def test_several_photos_make_one_pdf_with_a_page_each_in_order():
    photos = [
        encode(Image.new("RGB", (300, 400), RED)),
        encode(Image.new("RGBA", (500, 300), (*BLUE, 255)), "PNG"),
        encode(Image.new("RGB", (640, 480), (0, 160, 0)), "WEBP"),
    ]
    title = "Tờ khai đăng ký khai sinh"
    pdf = photos_to_pdf(photos, title=title)
    reader = read(pdf)
    assert len(reader.pages) == 3
    assert near(embedded(reader, 0).getpixel((5, 5)), RED)
    assert near(embedded(reader, 1).getpixel((5, 5)), BLUE)
    assert [page_size(reader, n) for n in range(3)] == [A4_PORTRAIT] + [A4_PORTRAIT[::-1]] * 2
    assert reader.metadata.title == title
    assert photos_to_pdf(photos, title=title) == pdf  # deterministic


def test_a_small_limit_forces_smaller_pages(twelve_mp_jpeg):
    max_bytes = 300 * 1024
    pdf = photos_to_pdf([twelve_mp_jpeg] * 3, title="x", max_bytes=max_bytes)
    reader = read(pdf)
    assert len(pdf) <= max_bytes
    assert len(reader.pages) == 3
    assert max(embedded(reader, 2).size) < 2000


def test_photos_that_cannot_fit_are_refused(twelve_mp_jpeg):
    with pytest.raises(PhotoError) as refused:
        photos_to_pdf([twelve_mp_jpeg], title="x", max_bytes=20_000)
    assert (refused.value.reason, refused.value.index) == ("cannot_fit", None)


def _truncated_jpeg() -> bytes:
    return encode(noisy_photo((300, 200), seed=1))[:600]


@pytest.mark.parametrize(
    "fake",
    [
        pytest.param(b"\xff\xd8\xff\xe0" + b"not really a jpeg " * 50, id="jpeg-magic-then-text"),
        pytest.param(b"Hello, this is photo.jpg", id="text"),
        pytest.param(b"%PDF-1.4\n%%EOF\n", id="pdf"),
        pytest.param(b"", id="empty"),
        pytest.param(_truncated_jpeg(), id="truncated-jpeg"),
        pytest.param(encode(Image.new("RGB", (20, 20)), "PPM"), id="format-not-accepted"),
    ],
)
def test_non_images_are_refused_with_their_position(fake):
    good = encode(Image.new("RGB", (100, 100), RED))
    with pytest.raises(PhotoError) as refused:
        photos_to_pdf([good, fake, good], title="x")
    assert (refused.value.reason, refused.value.index) == ("not_image", 1)
    assert "photo 2" in str(refused.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [8000, 12000])  # 64 MP (over our limit), 144 MP (Pillow's too)
def test_images_over_the_pixel_limit_are_refused_before_decoding(side):
    bomb = png_header_only_bomb(side, side)
    assert side * side > MAX_PIXELS and len(bomb) < 100_000
    with pytest.raises(PhotoError) as refused:
        photos_to_pdf([encode(Image.new("RGB", (10, 10))), bomb], title="x")
    assert (refused.value.reason, refused.value.index) == ("too_large_image", 1)


def test_more_than_max_pages_is_refused_and_max_pages_is_fine():
    photo = encode(Image.new("RGB", (60, 80), BLUE))
    with pytest.raises(PhotoError) as refused:
        photos_to_pdf([photo] * (MAX_PAGES + 1), title="x")
    assert (refused.value.reason, refused.value.index) == ("too_many_pages", None)
    assert len(read(photos_to_pdf([photo] * MAX_PAGES, title="x")).pages) == MAX_PAGES


def test_no_photos_is_a_programming_error():
    with pytest.raises(ValueError):
        photos_to_pdf([], title="x")


async def test_async_variant_gives_the_same_pdf():
    photos = [encode(halves((120, 90), RED, BLUE))]
    assert await aphotos_to_pdf(photos, title="x") == photos_to_pdf(photos, title="x")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tờ khai đăng ký khai sinh", "to-khai-dang-ky-khai-sinh.pdf"),
        ("ĐƠN ĐỀ NGHỊ cấp bản sao", "don-de-nghi-cap-ban-sao.pdf"),
        ("CCCD số 2 (mặt trước)", "cccd-so-2-mat-truoc.pdf"),
        ("To\u0302\u0300 khai", "to-khai.pdf"),  # decomposed (NFD) input
        ("../../etc/passwd", "etc-passwd.pdf"),
        ("Giấy tờ 身份证", "giay-to.pdf"),
        ("", "tai-lieu.pdf"),
        ("???", "tai-lieu.pdf"),
    ],
)
def test_pdf_filename(name, expected):
    assert pdf_filename(name) == expected


def test_pdf_filename_cuts_long_names_at_a_word():
    name = "Giấy chứng nhận quyền sử dụng đất quyền sở hữu nhà ở và tài sản khác gắn liền với đất"
    filename = pdf_filename(name)
    stem = filename.removesuffix(".pdf")
    assert len(stem) <= 80 and not stem.endswith("-")
    assert "giay-chung-nhan-quyen-su-dung-dat".startswith(stem[:20])
    assert all(word in pdf_filename(name * 2).removesuffix(".pdf").split("-") for word in ["giay"])
    assert pdf_filename("a" * 200) == "a" * 80 + ".pdf"
