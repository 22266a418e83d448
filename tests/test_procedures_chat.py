"""Finding a procedure and reading its card in chat, through the neutral types."""

from __future__ import annotations

import pytest

from bot.core.messages import MAX_PAYLOAD_BYTES
from bot.i18n import translator
from handlers import procedure_card
from procedures_catalog.schema import Unit
from tests.conftest import Chat, bundled_commune, make_engine


async def test_menu_button_asks_and_search_shows_the_card(chat: Chat) -> None:
    await chat.press("proc:search")
    assert chat.text.startswith("Bạn cần làm thủ tục gì?")
    assert "proc:show:1.001193" in chat.payloads
    await chat.say("xac nhan tinh trang hon nhan")
    assert chat.text.startswith("📋 Thủ tục cấp Giấy xác nhận tình trạng hôn nhân")
    assert "Mã thủ tục: 1.004873" in chat.text
    assert "Nơi nộp: Bộ phận Một cửa Xã Minh Họa" in chat.text
    assert chat.buttons[:5] == [
        "📄 Giấy tờ cần chuẩn bị",
        "💰 Phí và thời hạn",
        "🌐 Nộp trực tuyến",
        "📍 Nơi nộp, giờ làm việc",
        "📚 Căn cứ pháp lý",
    ]


async def test_card_sections_birth_registration(chat: Chat) -> None:
    await chat.press("proc:show:1.001193")
    assert "Phí, lệ phí: miễn phí" in chat.text
    await chat.press("proc:docs:1.001193")
    assert chat.text.startswith("Giấy tờ cần nộp:")
    assert "☐ Giấy chứng sinh" in chat.text and "1 bản chính" in chat.text
    assert "Giấy tờ cần xuất trình:" in chat.text
    await chat.press("proc:fees:1.001193")
    assert "• Trực tuyến: 1 ngày làm việc* — miễn phí" in chat.text
    assert "* Dữ liệu công bố chỉ ghi con số" in chat.text
    await chat.press("proc:online:1.001193")
    assert "https://dichvucong.gov.vn/thu-tuc-hanh-chinh/" in chat.text
    await chat.press("proc:where:1.001193")
    assert "Giờ làm việc:" in chat.text and "đơn vị trình diễn" in chat.text
    await chat.press("proc:law:1.001193")
    assert "123/2015/NĐ-CP" in chat.text and "Nguồn: Cổng Dịch vụ công quốc gia" in chat.text


async def test_certified_copy_fee_per_page(chat: Chat) -> None:
    await chat.press("proc:fees:2.000815")
    assert "2.000 đồng/trang" in chat.text
    assert "từ trang thứ 3 trở lên thu 1.000 đồng/trang" in chat.text
    assert "200.000 đồng/bản" in chat.text


async def test_typing_a_code_opens_the_card(chat: Chat) -> None:
    await chat.say("cho hỏi thủ tục 1.000656")
    assert chat.text.startswith("📋 Thủ tục đăng ký khai tử")


async def test_best_match_card_comes_with_alternatives(chat: Chat) -> None:
    await chat.say("hộ kinh doanh")
    replies = chat.replies
    assert replies[0].text.startswith("📋 Đăng ký thành lập hộ kinh doanh")
    assert replies[-1].text == "Chưa đúng thủ tục bạn cần? Các thủ tục khác có thể phù hợp:"
    alternatives = [b.payload for b in replies[-1].buttons]
    assert 2 <= len(alternatives) <= 4
    assert all(p.startswith("proc:show:") for p in alternatives)
    assert "proc:show:1.001612" not in alternatives


async def test_nothing_found_says_so_and_keeps_asking(chat: Chat) -> None:
    await chat.press("proc:search")
    await chat.say("xyzzy plugh")
    assert chat.text.startswith("Tôi chưa tìm thấy thủ tục nào cho “xyzzy plugh”")
    await chat.say("khai tu")  # still in the search step: this is searched, not "not understood"
    offered = chat.text.startswith("📋 Thủ tục đăng ký khai tử") or (
        chat.payloads and chat.payloads[0] == "proc:show:1.000656"
    )
    assert offered, chat.text


async def test_free_text_without_a_match_gets_the_fallback(chat: Chat) -> None:
    await chat.say("trời hôm nay đẹp quá")
    assert chat.text.startswith("Xin lỗi, tôi chưa hiểu ý bạn.")


async def test_procedure_not_applied_at_the_unit_says_where_to_go(chat: Chat) -> None:
    await chat.press("proc:show:1.004222")  # permanent residence: the commune police
    assert "⚠️ Xã Minh Họa không giải quyết thủ tục này. Nơi thực hiện:" in chat.text


async def test_card_in_english(chat: Chat) -> None:
    await chat.say("english")
    await chat.press("proc:show:1.001193")
    assert "Code: 1.001193 · Field: Hộ tịch" in chat.text
    assert "Fees: free of charge" in chat.text
    assert "official Vietnamese ones" in chat.text
    assert chat.buttons[0] == "📄 Documents"


async def test_unknown_code_in_a_stale_button(chat: Chat) -> None:
    await chat.press("proc:docs:9.999999")
    assert chat.text == "Thủ tục này không còn trong danh mục."
    assert chat.payloads[-1] == "lang:choose"


async def test_unit_fee_override_is_shown_with_its_source(db) -> None:
    engine = make_engine(db)
    catalogue, _ = bundled_commune()
    unit = Unit(
        id="override-test",
        name="Phường Thử",
        province="Tỉnh Thử",
        applied_codes=["1.004873"],
        overrides={"1.004873": {"fee": "5.000 đồng", "source": "Nghị quyết số 01/2025/NQ-HĐND"}},
    )
    assert engine.services.catalogue is catalogue  # the same object handlers use
    text = procedure_card.fees_and_times(translator("vi"), catalogue.get("1.004873"), unit)
    assert "Tại Phường Thử: 5.000 đồng (nguồn: Nghị quyết số 01/2025/NQ-HĐND)" in text
    # The portal's cell says "Miễn phí" but its note says the council sets the amount.
    assert (
        "theo mức do Hội đồng nhân dân tỉnh quyết định (Cổng Dịch vụ công ghi “Miễn phí”)" in text
    )


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_every_card_renders_and_fits_the_channels(databases) -> None:
    """All 319 procedures: every section renders in both languages; payloads fit 64 bytes."""
    catalogue, _ = bundled_commune()
    unit = catalogue.units["demo"]
    for locale in ("vi", "en"):
        t = translator(locale)
        for procedure in catalogue.procedures.values():
            sections = procedure_card.full_card(t, procedure, unit)
            assert all(section.strip() for section in sections)
            for button in procedure_card.card_buttons(t, procedure):
                assert len(button.payload.encode()) <= MAX_PAYLOAD_BYTES


async def test_related_procedures_offer_the_variants(chat: Chat) -> None:
    await chat.press("proc:show:1.001193")
    assert chat.buttons[5] == "🔗 Thủ tục liên quan"
    await chat.press("proc:rel:1.001193")
    assert chat.text == "Các thủ tục liên quan:"
    offered = set(chat.payloads)
    assert {"proc:show:1.004884", "proc:show:2.000528"} <= offered
    assert "proc:show:1.001193" not in offered


async def test_not_found_offers_fields_and_feedback(chat: Chat) -> None:
    await chat.press("proc:search")
    await chat.say("qwerty zxcvb")
    assert chat.text.startswith("Tôi chưa tìm thấy thủ tục nào cho “qwerty zxcvb”")
    assert "proc:fields" in chat.payloads and "feedback:new" in chat.payloads


async def test_near_miss_asks_did_you_mean(chat: Chat, commune_index) -> None:
    # Only part of this matches procedure names: not an answer, but worth offering.
    query = "xin giấy phép karaoke"
    result = commune_index.lookup(query)
    assert result.hits == [] and result.suggestions
    await chat.press("proc:search")
    await chat.say(query)
    assert chat.text.startswith("Tôi chưa chắc bạn muốn hỏi thủ tục nào")
    offered = [p for p in chat.payloads if p.startswith("proc:show:")]
    assert offered == [f"proc:show:{hit.code}" for hit in result.suggestions[:3]]
    assert "proc:fields" in chat.payloads


async def test_browse_fields_then_a_field_then_a_procedure(chat: Chat) -> None:
    await chat.press("proc:fields")
    assert chat.text.startswith("Thủ tục theo lĩnh vực — trang 1/")
    field_buttons = [p for p in chat.payloads if p.startswith("proc:field:")]
    assert len(field_buttons) == 8
    assert "proc:fields:1" in chat.payloads  # next page
    await chat.press("proc:fields:1")
    assert chat.text.startswith("Thủ tục theo lĩnh vực — trang 2/")
    assert "proc:fields:0" in chat.payloads  # previous page
    await chat.press(field_buttons[0])
    shown = [p for p in chat.payloads if p.startswith("proc:show:")]
    assert shown and "thủ tục (trang 1/" in chat.text
    await chat.press(shown[0])
    assert chat.text.startswith("📋")


async def test_field_payload_out_of_range_shows_the_field_list(chat: Chat) -> None:
    await chat.press("proc:field:9999:0")
    assert chat.text.startswith("Thủ tục theo lĩnh vực")
    await chat.press("proc:field:abc:zz")
    assert chat.text.startswith("Thủ tục theo lĩnh vực")


async def test_searches_are_logged_masked_and_without_who_asked(chat: Chat) -> None:
    from sqlalchemy import select

    from bot.storage.models import SearchLogEntry

    await chat.press("proc:search")
    await chat.say("đăng ký kết hôn - sđt 0912 345 678, a.b@example.com")
    await chat.say("thủ tục nuôi rồng vàng")  # found nothing: logged as a miss
    async with chat.engine.db.session() as session:
        rows = (await session.scalars(select(SearchLogEntry).order_by(SearchLogEntry.id))).all()
    assert len(rows) == 2
    found, missed = rows
    assert found.top_code == "1.000894" and found.results >= 1
    assert "0912" not in found.query and "345" not in found.query and "@" not in found.query
    assert found.query == "đăng ký kết hôn - sđt [số], [email]"
    assert missed.top_code is None and missed.results == 0
    assert missed.query == "thủ tục nuôi rồng vàng"
    columns = set(SearchLogEntry.__table__.columns.keys())
    assert not {"user_id", "conversation_id"} & columns
    assert all(row.channel == "test" for row in rows)


def test_mask_personal_data_in_logged_queries() -> None:
    from bot.search_log import MAX_LOGGED_CHARS, mask_personal

    assert mask_personal("cccd 001203004567 của tôi") == "cccd [số] của tôi"
    assert mask_personal("sđt 0912.345.678") == "sđt [số]"
    assert mask_personal("mức 2, trẻ dưới 14 tuổi") == "mức 2, trẻ dưới 14 tuổi"
    assert mask_personal("x" * 500) == "x" * MAX_LOGGED_CHARS
