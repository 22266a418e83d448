"""The "Nộp trực tuyến" guide in chat: overview, steps with Back/Next, the document checklist
(and its printable copy), the expected date of the result, and phone photos -> one PDF.

The conversations run in English so that they read the same before and after a translation is
reviewed; the catalogue's own words (names of procedures and documents) stay Vietnamese.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from datetime import datetime

import pytest
from PIL import Image

from bot.core.messages import Attachment, Incoming
from bot.dossiers.model import VN_TZ
from bot.submission.pdf import pdf_filename
from handlers import submission
from procedures_catalog.loader import Catalogue
from tests.conftest import Chat, bundled_commune, make_engine

TAM_TRU = "1.004194"  # Đăng ký tạm trú: online, 3 working days, fee 7,000 đồng per registration
KHAI_SINH = "1.001193"  # Đăng ký khai sinh: online, free of charge
CHUNG_THUC = "2.000815"  # Chứng thực bản sao: in person only, no processing time in the record
TACH_HO = "1.010038"  # Tách hộ: 3 documents, two only in one case, forms named


@pytest.fixture
def engine(db):
    return make_engine(db)


@pytest.fixture
def chat(engine) -> Chat:
    return Chat(engine, locale="en")


@pytest.fixture
def today(monkeypatch):
    """Fix "now" of the guide to a Vietnam time."""

    def set_today(*args: int) -> None:
        monkeypatch.setattr(submission, "now", lambda: datetime(*args, tzinfo=VN_TZ))

    set_today(2027, 6, 14, 9, 0)  # a Monday morning of an ordinary week
    return set_today


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 160), colour).save(out, "JPEG")
    return out.getvalue()


def photo(name: str, data: bytes, mime: str = "image/jpeg") -> Attachment:
    return Attachment("photo", name, mime, len(data), data)


async def send_files(chat: Chat, *files: Attachment) -> None:
    chat.replies = await chat.engine.handle(
        Incoming(chat.channel, chat.conversation_id, "u", attachments=files, locale=chat.locale)
    )


# --- The guide ---------------------------------------------------------------------------------


async def test_procedure_card_offers_the_guide(chat: Chat) -> None:
    await chat.press(f"proc:show:{TAM_TRU}")
    assert f"sub:start:{TAM_TRU}" in chat.payloads
    assert "📝 How to submit online" in chat.buttons


async def test_fully_online_procedure(engine, chat: Chat, today) -> None:
    # The bundled records do not say "toàn trình"; a record that does is read as such.
    base = bundled_commune()[0]
    full = dataclasses.replace(base.get(TAM_TRU), online_level="toàn trình")
    engine.services.catalogue = Catalogue("test", {**base.procedures, TAM_TRU: full}, base.units)
    await chat.press(f"sub:start:{TAM_TRU}")
    text = chat.text
    assert text.startswith("📝 Submitting online: Đăng ký tạm trú (code 1.004194)")
    assert "can be done fully online (toàn trình)" in text
    assert "level-2 electronic identity account" in text and "VNeID" in text
    assert "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/019d2bf7-770b" in text
    assert chat.payloads[:3] == [
        f"sub:step:{TAM_TRU}:0",
        f"sub:chk:{TAM_TRU}",
        f"sub:photos:{TAM_TRU}",
    ]


async def test_online_level_unknown_is_said_honestly(chat: Chat, today) -> None:
    await chat.press(f"sub:start:{TAM_TRU}")
    assert "does not say whether the whole procedure can be done online" in chat.text
    assert "fully online" not in chat.text


async def test_procedure_with_no_online_information(chat: Chat, today) -> None:
    await chat.press(f"sub:start:{CHUNG_THUC}")
    text = chat.text
    assert "lists no online submission for this procedure" in text
    assert "VNeID" not in text  # no portal steps to prepare for
    assert "gives no processing time for this procedure, so I cannot estimate" in text
    assert not any(p.startswith(("sub:step:", "sub:photos:")) for p in chat.payloads)
    assert f"sub:chk:{CHUNG_THUC}" in chat.payloads


async def test_steps_next_back_fee_and_follow(chat: Chat, today) -> None:
    await chat.press(f"sub:step:{TAM_TRU}:0")
    assert chat.text.startswith("Step 1 of 7\nLog in.")
    assert "VNeID" in chat.text and "https://dichvucong.gov.vn" in chat.text
    assert chat.payloads[:2] == [f"sub:start:{TAM_TRU}", f"sub:step:{TAM_TRU}:1"]
    await chat.press(chat.payloads[1])  # Next
    assert chat.text.startswith("Step 2 of 7\nFind the procedure.") and TAM_TRU in chat.text
    await chat.press(chat.payloads[0])  # Back
    assert chat.text.startswith("Step 1 of 7")
    await chat.press(chat.payloads[0])  # Back from the first step: the overview
    assert chat.text.startswith("📝 Submitting online")
    await chat.press(f"sub:step:{TAM_TRU}:3")
    assert "Attach the documents" in chat.text and "Tờ khai thay đổi thông tin cư trú" in chat.text
    assert f"sub:photos:{TAM_TRU}" in chat.payloads
    await chat.press(f"sub:step:{TAM_TRU}:4")
    assert chat.text.startswith("Step 5 of 7\nPay the fee online.")
    assert "7,000 đồng/lần đăng ký" in chat.text
    await chat.press(f"sub:step:{TAM_TRU}:5")
    assert "public postal service" in chat.text and "at the one-stop desk" in chat.text
    await chat.press(f"sub:step:{TAM_TRU}:6")
    assert chat.text.startswith("Step 7 of 7\nSubmit and note the receipt code.")
    assert "expected on 17/06/2027" in chat.text
    assert "Next ▶" not in chat.buttons and "sub:follow" in chat.payloads
    await chat.press("sub:follow")
    assert "type here the dossier code (mã hồ sơ)" in chat.text
    await chat.say("xyz")  # the dossier flow has the next message
    assert "does not look like a dossier code" in chat.text


async def test_no_fee_step_when_free(chat: Chat, today) -> None:
    await chat.press(f"sub:step:{KHAI_SINH}:0")
    assert chat.text.startswith("Step 1 of 6")
    for n in range(6):
        await chat.press(f"sub:step:{KHAI_SINH}:{n}")
        assert "Pay the fee" not in chat.text
    assert "Submit and note the receipt code" in chat.text


async def test_online_fee_is_the_online_one(chat: Chat, today) -> None:
    # Tách hộ costs 10,000 đồng in person and 5,000 đồng online: the guide is about online.
    await chat.press(f"sub:step:{TACH_HO}:4")
    assert "Pay the fee online" in chat.text and "5,000 đồng" in chat.text
    assert "10,000" not in chat.text


async def test_unknown_procedure_and_odd_step_numbers(chat: Chat, today) -> None:
    await chat.press("sub:start:9.999999")
    assert chat.text == "That procedure is not in the catalogue any more."
    await chat.press(f"sub:step:{TAM_TRU}:99")  # clamped to the last step
    assert chat.text.startswith("Step 7 of 7")
    await chat.press(f"sub:step:{TAM_TRU}:x")
    assert chat.text.startswith("Step 1 of 7")


# --- Expected date ------------------------------------------------------------------------------


async def test_expected_date_in_an_ordinary_week(chat: Chat, today) -> None:
    # Received Monday 14/06/2027 at 09:00; 3 working days after it: Tue, Wed, Thu 17/06.
    await chat.press(f"sub:start:{TAM_TRU}")
    assert (
        "If you submit today (14/06/2027), the result is expected on 17/06/2027 "
        "(processing time: 3 working days)." in chat.text
    )
    assert "not counted" in chat.text and "next working day" not in chat.text


@pytest.mark.parametrize(
    ("received", "due", "late"),
    [
        # holidays.Vietnam(years=2027): Tết holidays are Thu 04/02 (29 Tết) to Wed 10/02
        # (Mùng 5); Mùng 1 is Sat 06/02. Received Tue 02/02 at 09:00, the count starts that
        # day: Wed 03/02 is day 1, 04-10/02 are holidays or weekend, Thu 11/02 is day 2 and
        # Fri 12/02 day 3.
        ((2027, 2, 2, 9, 0), "12/02/2027", False),
        # Received Wed 03/02 at 18:00, after the 17:00 cut-off: the count starts on the next
        # working day, Thu 11/02; then Fri 12/02, Mon 15/02 and Tue 16/02 is day 3.
        ((2027, 2, 3, 18, 0), "16/02/2027", True),
    ],
)
async def test_expected_date_across_tet_2027(chat: Chat, today, received, due, late) -> None:
    today(*received)
    await chat.press(f"sub:start:{TAM_TRU}")
    assert f"the result is expected on {due}" in chat.text
    assert ("so the count starts on the next working day" in chat.text) is late


async def test_expected_date_falls_back_to_the_in_person_time(engine, chat: Chat, today) -> None:
    base = bundled_commune()[0]
    procedure = base.get(TACH_HO)
    online = [c for c in procedure.channels if c.channel == "online"][0]
    blank = dataclasses.replace(online, time=dataclasses.replace(online.time, value=None))
    changed = dataclasses.replace(
        procedure, channels=[blank if c is online else c for c in procedure.channels]
    )
    engine.services.catalogue = Catalogue("test", {**base.procedures, TACH_HO: changed}, base.units)
    await chat.press(f"sub:start:{TACH_HO}")
    # 5 working days from Monday 14/06/2027: Tue 15 ... Mon 21/06.
    assert "expected on 21/06/2027" in chat.text
    assert "this uses the in-person time" in chat.text


# --- Checklist ----------------------------------------------------------------------------------


async def test_checklist_answers_and_missing_summary(chat: Chat) -> None:
    await chat.press(f"sub:chk:{TACH_HO}")
    assert chat.text.startswith("Document 1 of 3:\nTờ khai thay đổi thông tin cư trú")
    assert "Only when: Trường hợp thành viên hộ gia đình" in chat.text
    assert chat.buttons[:3] == ["✅ I have it", "❌ Not yet", "➖ Not my case"]
    await chat.say("có")
    assert chat.text.startswith("Document 2 of 3:\nGiấy tờ, tài liệu chứng minh việc ly hôn")
    await chat.say("hmm")
    assert chat.text.startswith("Please answer “có” (yes) or “chưa có” (not yet).")
    await chat.press("sub:have:1:x")
    assert chat.text.startswith("Document 3 of 3:")
    assert "➖ Not my case" not in chat.buttons  # the third one applies to everyone
    await chat.say("Chưa có")
    text = chat.text
    assert text.startswith("☑️ Your documents for: Tách hộ")
    assert "You have 1 of the 2 documents that apply to you." in text
    assert "Still missing:\n✗ Tờ khai thay đổi thông tin cư trú (Mẫu CT01" in text
    assert "Form: Thngts53 (4).doc. The template is attached to this procedure" in text
    assert "Not needed in your case: 1." in text
    assert chat.payloads[:2] == ["sub:print:png", "sub:print:pdf"]


async def test_checklist_where_to_get_is_never_guessed(chat: Chat) -> None:
    await chat.press(f"sub:chk:{KHAI_SINH}")
    for _ in range(8):
        await chat.say("chưa")
    assert "You have 0 of the 8 documents" in chat.text
    assert "Where to get it: the record does not say; please ask the one-stop desk." in chat.text
    # The record's own note on a document is repeated, nothing else is added.
    assert "Note: Trường hợp người được ủy quyền là ông, bà" in chat.text


async def test_checklist_back_and_double_tap(chat: Chat) -> None:
    await chat.press(f"sub:chk:{TACH_HO}")
    await chat.press("sub:have:0:y")
    await chat.press("sub:have:0:y")  # a double tap only shows the current question again
    assert chat.text.startswith("Document 2 of 3:")
    await chat.press("sub:have:1:b")
    assert chat.text.startswith("Document 1 of 3:")
    for answer in ("n", "n", "y"):
        await chat.press(f"sub:have:{chat.payloads[0].split(':')[2]}:{answer}")
    assert "You have 1 of the 3 documents" in chat.text


async def test_checklist_sent_as_png_and_pdf(chat: Chat, today) -> None:
    await chat.press(f"sub:chk:{TACH_HO}")
    for answer in ("có", "không cần", "chưa có"):
        await chat.say(answer)
    await chat.press("sub:print:png")
    (document,) = chat.replies[0].documents
    assert (document.filename, document.mime_type) == ("giay-to-1.010038.png", "image/png")
    image = Image.open(io.BytesIO(document.data))
    assert image.format == "PNG" and image.width == 1240
    await chat.press("sub:print:pdf")
    (document,) = chat.replies[0].documents
    assert document.mime_type == "application/pdf" and document.data.startswith(b"%PDF-")
    assert "✓ you have it, ✗ still missing" in chat.text


async def test_checklist_on_a_chat_without_files_is_text_only(db) -> None:
    engine = make_engine(db)
    engine.services.file_channels = frozenset({"telegram"})
    chat = Chat(engine, channel="web", locale="en")
    await chat.press(f"sub:chk:{TACH_HO}")
    for answer in ("có", "có", "có"):
        await chat.say(answer)
    assert "✅ You have every document on the list." in chat.text
    assert "take a screenshot" in chat.text
    assert not any(p.startswith("sub:print:") for p in chat.payloads)
    await chat.press(f"sub:photos:{TACH_HO}")
    assert chat.text == "Sorry, photos cannot be turned into PDF files in this chat."


async def test_print_without_a_finished_checklist(chat: Chat) -> None:
    await chat.press("sub:print:pdf")
    assert chat.text.startswith("This checklist is no longer open.")
    assert not chat.replies[0].documents


# --- Photos -> PDF ------------------------------------------------------------------------------


def stored_photos(engine) -> list:
    root = engine.services.attachments.root / "submission"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_photos_become_one_pdf_per_document(engine, chat: Chat) -> None:
    await chat.press(f"sub:photos:{TACH_HO}")
    assert "not kept on the server after they are sent to you" in chat.text
    assert "deleted after 60 minutes" in chat.text
    assert "📄 Document 1 of 3:" in chat.text
    await send_files(chat, photo("trang1.jpg", jpeg((200, 30, 30))))
    await send_files(chat, photo("trang2.jpg", jpeg((30, 30, 200))))
    assert "Photos received: 2 (at most 20)." in chat.text
    assert len(stored_photos(engine)) == 2
    assert chat.payloads[0] == "sub:phdone:0"
    await chat.press("sub:phdone:0")
    sent, next_question = chat.replies
    (document,) = sent.documents
    name = engine.services.catalogue.get(TACH_HO).documents[0].name
    assert document.filename == pdf_filename(name)
    assert document.mime_type == "application/pdf" and document.data.startswith(b"%PDF-")
    assert "2 page(s)" in sent.text and "deleted from the server" in sent.text
    assert stored_photos(engine) == []  # deleted once the PDF is made
    assert next_question.text.startswith("📄 Document 2 of 3:")
    await chat.press("sub:phdone:0")  # an old button does not convert again
    assert not any(r.documents for r in chat.replies)
    await chat.press("sub:phskip:1")
    await chat.press("sub:phskip:2")
    assert chat.text.startswith("That was the last document.")


async def test_pdf_has_a_page_per_photo(engine, chat: Chat) -> None:
    pypdf = pytest.importorskip("pypdf")
    await chat.press(f"sub:photos:{TACH_HO}")
    await send_files(chat, photo("a.jpg", jpeg((10, 200, 10))), photo("b.jpg", jpeg((0, 0, 0))))
    await chat.press("sub:phdone:0")
    reader = pypdf.PdfReader(io.BytesIO(chat.replies[0].documents[0].data))
    assert len(reader.pages) == 2


async def test_fake_jpeg_refused_politely(engine, chat: Chat) -> None:
    await chat.press(f"sub:photos:{TACH_HO}")
    await send_files(chat, photo("giay.jpg", b"this is not a picture at all"))
    assert "“giay.jpg” is not a photo I can convert." in chat.text
    assert "Send the photos of its pages" in chat.text
    assert "sub:phdone:0" not in chat.payloads  # nothing to convert yet
    assert stored_photos(engine) == []


async def test_broken_jpeg_is_removed_at_conversion(engine, chat: Chat) -> None:
    await chat.press(f"sub:photos:{TACH_HO}")
    broken = b"\xff\xd8\xff\xe0" + b"\x00" * 200  # JPEG magic, no picture behind it
    await send_files(chat, photo("ok.jpg", jpeg((1, 2, 3))), photo("hong.jpg", broken))
    assert "Photos received: 2" in chat.text
    await chat.press("sub:phdone:0")
    assert "Photo 2 could not be read as a picture and was removed." in chat.text
    assert "Photos received: 1" in chat.text and len(stored_photos(engine)) == 1
    await chat.press("sub:phdone:0")
    assert chat.replies[0].documents[0].data.startswith(b"%PDF-")


async def test_pdf_file_is_not_converted(chat: Chat) -> None:
    await chat.press(f"sub:photos:{TACH_HO}")
    await send_files(chat, photo("scan.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))
    assert "“scan.pdf” is already a PDF: you can upload it as it is." in chat.text


async def test_photos_expire_after_the_retention_time(engine, chat: Chat) -> None:
    await chat.press(f"sub:photos:{TACH_HO}")
    await send_files(chat, photo("a.jpg", jpeg((9, 9, 9))))
    (stored,) = stored_photos(engine)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stored, (two_hours_ago, two_hours_ago))
    # Any later use of the converter deletes photos older than the retention time (1 hour).
    other = Chat(engine, conversation_id="c2", locale="en")
    await other.press(f"sub:photos:{KHAI_SINH}")
    assert stored_photos(engine) == []
    await chat.press("sub:phdone:0")
    assert "Your photos were deleted after 60 minutes. Please send them again." in chat.text
