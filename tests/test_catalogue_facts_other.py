"""Facts of 15 commune procedures, checked by hand against the raw portal records.

Every expected value was read from the raw record in
../shared/data/tthc/portal_procedures.jsonl (the comments quote the snippet that justifies
it); the tests check that the bundled commune catalogue carries those facts. The parser errors
this check found were fixed; the tests at the end of the file pin those fixes.
"""

from __future__ import annotations

import pytest

from procedures_catalog.loader import Catalogue, load_bundled
from procedures_catalog.schema import Channel, ChannelOption, Fee, Procedure, TimeUnit

IN_PERSON, ONLINE, POSTAL = Channel.IN_PERSON, Channel.ONLINE, Channel.POSTAL
WORKING_DAYS, DAYS = TimeUnit.WORKING_DAYS, TimeUnit.DAYS


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_bundled("commune")


def get(catalogue: Catalogue, code: str) -> Procedure:
    procedure = catalogue.get(code)
    assert procedure is not None, f"{code} missing from the commune catalogue"
    return procedure


def channels(p: Procedure) -> list[Channel]:
    return [option.channel for option in p.channels]


def fee(option: ChannelOption) -> Fee:
    assert len(option.fees) == 1, option.fees  # every row of these records has one fee cell
    return option.fees[0]


def money(option: ChannelOption) -> tuple[int | None, str | None, str | None]:
    return fee(option).amount, fee(option).currency, fee(option).per


def time_is(option: ChannelOption, value: float | None, unit: TimeUnit | None) -> None:
    assert (option.time.value, option.time.unit, option.time.unit_inferred) == (value, unit, False)


def doc(p: Procedure, fragment: str, *, show: bool = False):
    found = [d for d in (p.documents_to_show if show else p.documents) if fragment in d.name]
    assert found, f"{p.code}: no document containing {fragment!r}"
    return found[0]


def counts(p: Procedure, fragment: str, *, show: bool = False) -> tuple[int, int]:
    d = doc(p, fragment, show=show)
    return d.originals, d.copies


def numbers(p: Procedure) -> set[str | None]:
    return {basis.number for basis in p.legal_basis}


def test_2_000815_certified_copy(catalogue):
    p = get(catalogue, "2.000815")
    assert p.name.startswith("Chứng thực bản sao từ bản chính giấy tờ, văn bản")
    # Two rows, both "Trực tiếpKhông có thông tin...": commune/notary, then embassy.
    assert channels(p) == [IN_PERSON, IN_PERSON]
    commune, embassy = p.channels
    time_is(commune, None, None)
    # "2,000 Việt Nam Đồng(/trang)"
    assert money(commune) == (2000, "VND", "trang") and not fee(commune).free
    # "...từ trang thứ 3 trở lên thu 1.000 đồng/trang, tối đa thu không quá 200.000 đồng/bản."
    assert "từ trang thứ 3 trở lên thu 1.000 đồng/trang" in commune.description
    assert "tối đa thu không quá 200.000 đồng/bản" in commune.description
    assert money(embassy) == (10, "USD", "bản")  # "10 USD(/bản)Tại cơ quan đại diện"
    # "Bản chính giấy tờ, văn bản làm cơ sở để chứng thực bản sao ...1 bản chính"
    assert counts(p, "Bản chính giấy tờ, văn bản làm cơ sở để chứng thực") == (1, 0)
    assert p.results == ["Bản sao được chứng thực từ bản chính"]
    assert {"23/2015/NĐ-CP", "280/2025/NĐ-CP", "226/2016/TT-BTC"} <= numbers(p)


def test_2_000884_signature(catalogue):
    p = get(catalogue, "2.000884")
    assert p.name.startswith("Chứng thực chữ ký trong các giấy tờ, văn bản")
    assert channels(p) == [IN_PERSON, IN_PERSON]
    time_is(p.channels[0], None, None)  # "Trực tiếpKhông có thông tin"
    assert money(p.channels[0]) == (10000, "VND", "trường hợp")  # "10,000 ...(/trường hợp)"
    assert money(p.channels[1]) == (10, "USD", "bản")  # "10 USD(/bản)"
    # "Người yêu cầu chứng thực phải xuất trình các giấy tờ sau:" - to show, nothing to hand in
    assert p.documents == []
    assert counts(p, "Căn cước điện tử", show=True) == (1, 0)
    assert counts(p, "mà mình sẽ yêu cầu chứng thực chữ ký", show=True) == (1, 0)
    assert p.results == ["Giấy tờ, văn bản được chứng thực chữ ký/điểm chỉ"]
    assert {"23/2015/NĐ-CP", "280/2025/NĐ-CP"} <= numbers(p)


def test_2_001035_transaction(catalogue):
    p = get(catalogue, "2.001035")
    assert p.name.startswith("Chứng thực giao dịch liên quan đến tài sản là động sản, quyền sử")
    assert channels(p) == [ONLINE, IN_PERSON, POSTAL]
    for option in p.channels:
        time_is(option, None, None)  # "Không có thông tin"
        assert money(option) == (50000, "VND", "giao dịch")  # "50,000 Việt Nam Đồng(/giao dịch)"
    # "...của giấy chứng nhận quyền sở hữu, quyền sử dụng ...1 bản chính,1 bản sao"
    assert counts(p, "giấy chứng nhận quyền sở hữu, quyền sử dụng") == (1, 1)
    assert counts(p, "Dự thảo giao dịch") == (1, 0)  # "Dự thảo giao dịch1 bản chính"
    assert p.results == ["Giao dịch được chứng thực"]
    assert "280/2025/NĐ-CP" in numbers(p)


def test_2_000908_copy_from_master_register(catalogue):
    p = get(catalogue, "2.000908")
    assert p.name == "Thủ tục cấp bản sao từ sổ gốc"
    # "Trực tuyến1 Ngày làm việcMiễn phíDịch vụ bưu chính1 Ngày làm việcMiễn phíTrực tiếp1 ..."
    assert channels(p) == [ONLINE, POSTAL, IN_PERSON]
    for option in p.channels:
        time_is(option, 1, WORKING_DAYS)
        assert fee(option).free
    # "Một trong các giấy tờ sau: Căn cước điện tử; ...1 bản chính"
    assert counts(p, "Một trong các giấy tờ sau: Căn cước điện tử") == (1, 0)
    # "...giấy tờ chứng minh quan hệ với người được cấp bản chính ...1 bản chính"
    assert counts(p, "giấy tờ chứng minh quan hệ với người được cấp bản chính") == (1, 0)
    assert p.results == ["Bản sao được cấp từ sổ gốc"]
    assert {"23/2015/NĐ-CP", "280/2025/NĐ-CP"} <= numbers(p)


def test_2_001019_will(catalogue):
    p = get(catalogue, "2.001019")
    assert p.name == "Chứng thực di chúc"
    assert channels(p) == [ONLINE, IN_PERSON, POSTAL]
    for option in p.channels:
        time_is(option, None, None)  # "Không có thông tin"
        assert money(option) == (50000, "VND", "di chúc")  # "50,000 Việt Nam Đồng(/di chúc)"
    assert counts(p, "Dự thảo di chúc") == (1, 0)  # "+ Dự thảo di chúc;1 bản chính"
    assert p.results == ["Di chúc được chứng thực"]
    assert {"280/2025/NĐ-CP", "226/2016/TT-BTC"} <= numbers(p)


def test_1_004222_permanent_residence(catalogue):
    p = get(catalogue, "1.004222")
    assert p.name == "Đăng ký thường trú"
    # "Trực tuyến7 Ngày làm việc10,000 Việt Nam Đồng(...)Trực tiếp7 Ngày làm việc20,000 ..."
    assert channels(p) == [ONLINE, IN_PERSON]
    online, in_person = p.channels
    assert [(o.time.value, o.time.unit) for o in p.channels] == [(7, WORKING_DAYS)] * 2
    assert money(online)[:2] == (10000, "VND")
    assert money(in_person)[:2] == (20000, "VND")
    # "Tờ khai thay đổi thông tin cư trú (mẫu CT01 ...) hoặc Tờ khai ... (mẫu CT02 ...).1 bản chính"
    assert counts(p, "mẫu CT02") == (1, 0)
    # "Hợp đồng, văn bản về việc cho thuê, cho mượn, cho ở nhờ được công chứng ...1 bản chính"
    assert counts(p, "Hợp đồng, văn bản về việc cho thuê, cho mượn") == (1, 0)
    # "*Lưu ý: - Không yêu cầu xuất trình Giấy khai sinh ...0 bản chính" is a note, not a paper
    assert any("Không yêu cầu xuất trình Giấy khai sinh" in note for note in p.notes)
    assert not any("Lưu ý" in d.name for d in p.documents)
    assert {"154/2024/NĐ-CP", "53/2025/TT-BCA"} <= numbers(p)


def test_1_004194_temporary_residence(catalogue):
    p = get(catalogue, "1.004194")
    assert p.name == "Đăng ký tạm trú"
    # "Trực tuyến3 Ngày làm việc7,000 Việt Nam Đồng(...)Trực tiếp3 Ngày làm việc10,000 ..."
    assert channels(p) == [ONLINE, IN_PERSON]
    online, in_person = p.channels
    assert [(o.time.value, o.time.unit) for o in p.channels] == [(3, WORKING_DAYS)] * 2
    assert money(online)[:2] == (7000, "VND")
    assert money(in_person)[:2] == (10000, "VND")
    # "Tờ khai thay đổi thông tin cư trú (Mẫu CT01 ...); đối với người ... chưa thành niên ..."
    assert counts(p, "Tờ khai thay đổi thông tin cư trú (Mẫu CT01") == (1, 0)
    # "Văn bản đề nghị đăng ký tạm trú, ...1 bản chính,1 bản sao"
    assert counts(p, "Văn bản đề nghị đăng ký tạm trú") == (1, 1)
    # "*Lưu ý: - ...văn bản đó không bắt buộc phải công chứng hoặc chứng thực. ...0 bản chính"
    assert any("không bắt buộc phải công chứng" in note for note in p.notes)
    assert {"154/2024/NĐ-CP", "75/2022/TT-BTC"} <= numbers(p)


def test_1_002755_extend_temporary_residence(catalogue):
    p = get(catalogue, "1.002755")
    assert p.name == "Gia hạn tạm trú"
    assert channels(p) == [ONLINE, IN_PERSON]
    online, in_person = p.channels  # "Trực tuyến3 Ngày làm việc", "Trực tiếp3 Ngày làm việc"
    assert [(o.time.value, o.time.unit) for o in p.channels] == [(3, WORKING_DAYS)] * 2
    # The cell says "5,000 Việt Nam Đồng" though its own note says "thu 7.000 đồng/lần đăng ký"
    # (the record contradicts itself); the parser must report the cell.
    assert money(online)[:2] == (5000, "VND")
    assert money(in_person)[:2] == (10000, "VND")  # "10,000 Việt Nam Đồng(- Gia hạn ..."
    # "- Văn bản đề nghị gia hạn tạm trú trong đó ghi rõ thông tin ...1 bản chính"
    assert counts(p, "Văn bản đề nghị gia hạn tạm trú") == (1, 0)
    assert counts(p, "Tờ khai thay đổi thông tin cư trú") == (1, 0)
    assert {"154/2024/NĐ-CP", "54/2025/TT-BCA"} <= numbers(p)


def test_1_010041_residence_confirmation(catalogue):
    p = get(catalogue, "1.010041")
    assert p.name == "Xác nhận thông tin về cư trú"
    # Two online rows only: "Trực tuyến1 Ngày làm việcMiễn phí..." (data already in the
    # national database) and "Trực tuyến3 Ngày làm việcMiễn phí..." (when it must be verified).
    assert channels(p) == [ONLINE, ONLINE]
    time_is(p.channels[0], 1, WORKING_DAYS)
    time_is(p.channels[1], 3, WORKING_DAYS)
    assert all(fee(option).free for option in p.channels)
    assert "03 ngày làm việc với trường hợp cần xác minh" in p.channels[1].description
    assert counts(p, "Tờ khai thay đổi thông tin cư trú") == (1, 0)
    # "*Lưu ý: Khi nộp hồ sơ trực tuyến, ... không đính kèm biểu mẫu CT01.0 bản chính"
    assert any("không đính kèm biểu mẫu CT01" in note for note in p.notes)
    assert {"62/2021/NĐ-CP", "55/2021/TT-BCA"} <= numbers(p)


def test_1_003197_remove_permanent_residence(catalogue):
    p = get(catalogue, "1.003197")
    assert p.name == "Xóa đăng ký thường trú"
    # The whole table: "Trực tuyến5 Ngày làm việcKhông có thông tin"
    assert channels(p) == [ONLINE]
    time_is(p.channels[0], 5, WORKING_DAYS)
    assert fee(p.channels[0]).unknown and not fee(p.channels[0]).free
    # "Thông tin chứng minh thuộc trường hợp xóa đăng ký thường trú ...1 bản chính"
    assert counts(p, "Thông tin chứng minh thuộc trường hợp xóa đăng ký thường trú") == (1, 0)
    assert counts(p, "Tờ khai thay đổi thông tin cư trú") == (1, 0)
    assert {"154/2024/NĐ-CP", "55/2021/TT-BCA"} <= numbers(p)


def test_1_012753_first_land_registration_of_organisations(catalogue):
    p = get(catalogue, "1.012753")
    # Not the household procedure: "...lần đầu đối với tổ chức đang sử dụng đất"
    assert p.name.startswith("Đăng ký đất đai, tài sản gắn liền với đất, cấp Giấy chứng nhận")
    assert p.name.endswith("lần đầu đối với tổ chức đang sử dụng đất")
    # "Trực tuyến17 Ngày làm việcMiễn phí(...)Dịch vụ bưu chính30 Ngày làm việc...Trực tiếp20 ..."
    assert channels(p) == [ONLINE, POSTAL, IN_PERSON]
    for option, days in zip(p.channels, (17, 30, 20), strict=True):
        time_is(option, days, WORKING_DAYS)
        assert fee(option).free
    # "Đơn đăng ký đất đai, tài sản gắn liền với đất1 bản chính,1 bản sao"
    assert counts(p, "Đơn đăng ký đất đai, tài sản gắn liền với đất") == (1, 1)
    # "Báo cáo kết quả rà soát hiện trạng sử dụng đất theo Mẫu số 15d ...1 bản chính,1 bản sao"
    assert counts(p, "Báo cáo kết quả rà soát hiện trạng sử dụng đất") == (1, 1)
    assert {"151/2025/NĐ-CP", "31/2024/QH15", "226/2025/NĐ-CP"} <= numbers(p)


def test_1_012812_land_dispute_mediation(catalogue):
    p = get(catalogue, "1.012812")
    assert p.name == "Hòa giải tranh chấp đất đai"
    # "Dịch vụ bưu chính30 NgàyMiễn phí(...)Trực tiếp40 NgàyMiễn phí(...)": calendar days
    assert channels(p) == [POSTAL, IN_PERSON]
    time_is(p.channels[0], 30, DAYS)
    time_is(p.channels[1], 40, DAYS)
    assert all(fee(option).free for option in p.channels)
    # "- Đơn yêu cầu yêu cầu hòa giải tranh chấp đất đai (bản chính);1 bản chính,1 bản sao"
    assert counts(p, "hòa giải tranh chấp đất đai") == (1, 1)
    assert counts(p, "Các giấy tờ có liên quan đến việc sử dụng đất") == (1, 1)
    assert "102/2024/NĐ-CP" in numbers(p)


def test_1_001612_register_household_business(catalogue):
    p = get(catalogue, "1.001612")
    assert p.name == "Đăng ký thành lập hộ kinh doanh"
    assert channels(p) == [ONLINE, POSTAL, IN_PERSON]
    for option in p.channels:
        time_is(option, None, None)  # every row: "Không có thông tin"
        # "(- Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh quyết định ...)"
        assert fee(option).set_by_province
    # "Trực tuyếnKhông có thông tin150,000 Việt Nam Đồng", postal the same; "Trực tiếp...50,000 VNĐ"
    amounts = [money(option)[:2] for option in p.channels]
    assert amounts == [(150000, "VND"), (150000, "VND"), (50000, "VND")]
    # "- Giấy đề nghị đăng ký hộ kinh doanh;1 bản chính"
    assert counts(p, "Giấy đề nghị đăng ký hộ kinh doanh") == (1, 0)
    # "- Bản sao văn bản ủy quyền của thành viên hộ gia đình ...0 bản chính,1 bản sao"
    assert counts(p, "Bản sao văn bản ủy quyền của thành viên hộ gia đình") == (0, 1)
    assert {"168/2025/NĐ-CP", "59/2020/QH14", "85/2019/TT-BTC"} <= numbers(p)


def test_2_000720_change_household_business(catalogue):
    p = get(catalogue, "2.000720")
    assert p.name == "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh"
    # "Trực tuyến1Miễn phí(...)Dịch vụ bưu chính1Miễn phí(...)Trực tiếp1Miễn phí(...)": a bare 1
    assert channels(p) == [ONLINE, POSTAL, IN_PERSON]
    for option in p.channels:
        assert (option.time.value, option.time.unit) == (1, WORKING_DAYS)
        assert option.time.unit_inferred
        # The cell says "Miễn phí"; its note "Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ..."
        assert fee(option).free and fee(option).set_by_province
    # "- Giấy đề nghị đăng ký thay đổi nội dung đăng ký hộ kinh doanh do chủ hộ ...;1 bản chính"
    assert counts(p, "Giấy đề nghị đăng ký thay đổi nội dung đăng ký hộ kinh doanh") == (1, 0)
    # "- Bản sao giấy chứng tử hoặc quyết định của Tòa án ...0 bản chính,1 bản sao"
    assert counts(p, "Bản sao giấy chứng tử") == (0, 1)
    assert {"168/2025/NĐ-CP", "59/2020/QH14"} <= numbers(p)


def test_1_011607_poor_household_recognition(catalogue):
    p = get(catalogue, "1.011607")
    assert p.name == "Công nhận hộ nghèo, hộ cận nghèo thường xuyên hằng năm"
    # "Dịch vụ bưu chính15 NgàyMiễn phíTrực tiếp15 NgàyMiễn phí": no online row, calendar days
    assert channels(p) == [POSTAL, IN_PERSON]
    for option in p.channels:
        time_is(option, 15, DAYS)
        assert fee(option).free
    # "Giấy đề nghị rà soát hộ nghèo, hộ cận nghèo  theo Mẫu số 01 ...24/2021/QĐ-TTg1 bản chính"
    assert counts(p, "Giấy đề nghị rà soát hộ nghèo, hộ cận nghèo") == (1, 0)
    assert p.results == [
        "Quyết định công nhận danh sách hộ nghèo, hộ cận nghèo thường xuyên hằng năm"
    ]
    assert {"24/2021/QĐ-TTg", "02/2022/TT-BLĐTBXH"} <= numbers(p)


# ------------------------------------------------------------------------------- parser errors

# ket_qua_xu_ly lists results as "<name>Mã: KQ...<name>Mã: KQ...Từ khóa..."; the parser only
# ends a name before "Từ khóa", so records with several results come out as one glued string.
GLUED_RESULTS = {
    "1.004222": "Phiếu từ chối tiếp nhận, giải quyết hồ sơ (lĩnh vực cư trú)",
    "1.004194": "Thông báo kết quả giải quyết thủ tục về cư trú, hủy bỏ thủ tục về cư trú",
    "1.002755": "Cập nhật thông tin trong Cơ sở dữ liệu quốc gia về dân cư",
    "1.010041": "Xác nhận thông tin về cư trú (CT07)",
    "1.003197": "Cập nhật thông tin trong Cơ sở dữ liệu về cư trú",
    "1.012753": "Quyết định hình thức sử dụng đất.",
    "1.012812": "Biên bản hòa giải có chữ ký của Chủ tịch Hội đồng hòa giải, các bên tranh chấp "
    "có mặt tại buổi hòa giải, các thành viên tham gia hòa giải (có đóng dấu UBND cấp xã)",
    "1.001612": "Giấy chứng nhận đăng ký hộ kinh doanh",
    "2.000720": "Giấy chứng nhận đăng ký hộ kinh doanh",
}


@pytest.mark.parametrize("code", sorted(GLUED_RESULTS))
def test_results_are_split(catalogue, code):
    p = get(catalogue, code)
    assert GLUED_RESULTS[code] in p.results
    assert not any("Mã: KQ" in result for result in p.results)


# (code, number the raw record gives, number the parser must not invent): a number cut short
# before a lower-case title ("...TT-BTCsửa đổi", "TT-BCAngày 01/7/2025") or glued to the year
# ending its title cell ("Luật Cư trú 2020" + "68/2020/QH14" -> "202068/2020/QH14").
LEGAL_NUMBER_ERRORS = [
    ("2.000884", "257/2016/TT-BTC", "257/2016/TT-BT"),  # "viên257/2016/TT-BTCsửa đổi, bổ sung"
    ("2.001035", "23/2015/NĐ-CP", "23/2015/NĐ-C"),  # "giao dịch23/2015/NĐ-CPsửa đổi"
    ("2.001019", "23/2015/NĐ-CP", "23/2015/NĐ-C"),  # "giao dịch23/2015/NĐ-CPsửa đổi"
    ("2.000908", "01/2020/TT-BTP", "01/2020/TT-BT"),  # "01/2020/TT-BTPsửa đổi, bổ sung"
    ("1.011607", "07/2021/TT-BLĐTBXH", "07/2021/TT-BLĐTBX"),  # "07/2021/TT-BLĐTBXHquy định"
    ("1.004222", "68/2020/QH14", "202068/2020/QH14"),  # "Luật Cư trú 202068/2020/QH14"
    ("1.004194", "68/2020/QH14", "53/2025/TT-BC"),  # "Thông tư số 53/2025/TT-BCAngày 01/7/2025"
    ("1.002755", "68/2020/QH14", "53/2025/TT-BC"),
    ("1.010041", "68/2020/QH14", "53/2025/TT-BC"),
    ("1.003197", "68/2020/QH14", "53/2025/TT-BC"),
    ("1.012753", "43/2024/QH15", "202443/2024/QH15"),  # "Luật số 43/2024/QH15 ngày 29/6/2024"
    ("1.012812", "43/2024/QH15", "202443/2024/QH15"),
    ("1.001612", "76/2025/QH15", "202076/2025/QH15"),  # "Luật Doanh nghiệp 202076/2025/QH15"
    ("2.000720", "76/2025/QH15", "202076/2025/QH15"),
]


@pytest.mark.parametrize(("code", "right", "wrong"), LEGAL_NUMBER_ERRORS)
def test_legal_basis_numbers(catalogue, code, right, wrong):
    p = get(catalogue, code)
    assert right in numbers(p)
    assert wrong not in numbers(p)


@pytest.mark.parametrize("code", ["1.004194", "1.002755", "1.010041", "1.003197"])
def test_ct01_form_file_name(catalogue, code):
    # "Tờ khai thay đổi thông tin cư trú (Mẫu CT01 ...).1.MuCT01banhnhkmtheoThngts53.doc1 bản chính"
    form = doc(get(catalogue, code), "Tờ khai thay đổi thông tin cư trú")
    assert form.form is not None and form.form.startswith("1.MuCT01banhnhkmtheoThngts53")
    assert "MuCT01" not in form.name


def test_1_002755_note_is_not_a_document(catalogue):
    # "--Tên giấy tờMẫu đơn, tờ khaiSố lượngLưu ý:- Trường hợp nộp hồ sơ trực tiếp ... không
    #  phải xuất trình, cung cấp giấy tờ chứng minh chỗ ở hợp pháp.1 bản chính,1 bản sao"
    p = get(catalogue, "1.002755")
    assert not any(d.name.startswith("Lưu ý") for d in p.documents)
    assert any("có thể nộp bản sao giấy tờ" in note for note in p.notes)


def test_1_004194_ct01_condition_is_not_the_exception(catalogue):
    # "Tờ khai ... (Mẫu CT01 ...); đối với người đăng ký tạm trú là người chưa thành niên thì ...
    #  phải ghi rõ ý kiến đồng ý của cha, mẹ hoặc người giám hộ, trừ trường hợp đã có ý kiến đồng
    #  ý bằng văn bản;" - the form is always needed; "trừ trường hợp" introduces an exception.
    form = doc(get(catalogue, "1.004194"), "Tờ khai thay đổi thông tin cư trú (Mẫu CT01")
    assert form.condition != "trường hợp đã có ý kiến đồng ý bằng văn bản"
