"""Facts of 15 civil-status (hộ tịch) procedures, hand-checked against the RAW portal records
(../shared/data/tthc/portal_procedures.jsonl); comments quote the raw text behind each value.
The parser errors this check found (glued results, legal numbers, form file names, conditions
taken from exemptions, fee units in notes) were fixed; the tests at the end pin those fixes."""

from __future__ import annotations

import unicodedata

import pytest

from procedures_catalog.loader import load_bundled
from procedures_catalog.schema import Channel, DocumentRequirement, Procedure, TimeUnit

ALL = (Channel.ONLINE, Channel.POSTAL, Channel.IN_PERSON)


@pytest.fixture(scope="module")
def catalogue():
    return load_bundled("commune")


def _nfc(text: str | None) -> str:
    return unicodedata.normalize("NFC", text or "")


def doc(docs: list[DocumentRequirement], text: str) -> DocumentRequirement:
    """The first document whose name contains ``text``."""
    found = [d for d in docs if _nfc(text) in _nfc(d.name)]
    assert found, f"no document containing {text!r} in {[d.name[:50] for d in docs]}"
    return found[0]


def counts(d: DocumentRequirement) -> tuple[int, int]:
    return d.originals, d.copies


def numbers(p: Procedure) -> set[str]:
    return {b.number for b in p.legal_basis if b.number}


def check_submission(p: Procedure, channels, days, inferred, *, free, province, amount=None):
    """Exactly ``channels``, each taking ``days`` working days (None: "Không có thông tin") and
    carrying one fee cell with these facts."""
    assert {c.channel for c in p.channels} == set(channels)
    for option in p.channels:
        time, fees = option.time, option.fees
        assert (time.value, time.unit_inferred) == (days, inferred)
        assert time.unit == (TimeUnit.WORKING_DAYS if days is not None else None)
        assert len(fees) == 1, option.channel
        assert (fees[0].free, fees[0].set_by_province, fees[0].amount) == (free, province, amount)
        assert fees[0].currency == ("VND" if amount else None)


def test_1_001193_khai_sinh(catalogue):
    p = catalogue.get("1.001193")
    # "Trực tuyến1Miễn phíDịch vụ bưu chính1Miễn phíTrực tiếp1Miễn phí" (no fee note at all)
    check_submission(p, ALL, 1, True, free=True, province=False)
    # "- Giấy chứng sinh; trường hợp không có Giấy chứng sinh thì nộp văn bản của người làm
    #  chứng xác nhận về việc sinh; nếu không có người làm chứng thì ...giấy cam đoan...1 bản chính"
    birth = doc(p.documents, "Giấy chứng sinh")
    assert counts(birth) == (1, 0) and "người làm chứng" in birth.name
    # "- Tờ khai đăng ký khai sinh theo mẫu (nếu ... trực tiếp hoặc ... bưu chính);1 bản chính"
    assert counts(doc(p.documents, "Tờ khai đăng ký khai sinh")) == (1, 0)
    # "* Giấy tờ phải xuất trình: ... - Hộ chiếu/Thẻ căn cước công dân/...1 bản chính"
    assert counts(doc(p.documents_to_show, "Hộ chiếu/Thẻ căn cước")) == (1, 0)
    assert not any("Hộ chiếu/Thẻ căn cước" in _nfc(d.name) for d in p.documents)
    assert p.results == ["Giấy khai sinh"]  # "Giấy khai sinhMã: KQ.G15.000031"
    # "...Luật Hộ tịch123/2015/NĐ-CP", "Luật 60/2014/QH1360/2014/QH13"
    assert {"123/2015/NĐ-CP", "60/2014/QH13"} <= numbers(p)


def test_1_000894_ket_hon(catalogue):
    p = catalogue.get("1.000894")
    # "Trực tuyến1Miễn phí(Miễn lệ phí. Phí cấp bản sao Trích lục kết hôn ... 281/2016/TT-BTC...)"
    check_submission(p, ALL, 1, True, free=True, province=False)
    # "- Tờ khai đăng ký kết hôn theo mẫu, có đủ thông tin của hai bên nam, nữ...;1 bản chính"
    assert counts(doc(p.documents, "Tờ khai đăng ký kết hôn")) == (1, 0)
    # xuất trình: identity papers and "Giấy tờ có giá trị chứng minh thông tin về cư trú"
    assert counts(doc(p.documents_to_show, "Hộ chiếu/Thẻ căn cước")) == (1, 0)
    assert counts(doc(p.documents_to_show, "chứng minh thông tin về cư trú")) == (1, 0)
    assert p.results == ["Giấy chứng nhận kết hôn"]  # "Giấy chứng nhận kết hônMã: KQ.G15.000032"
    assert {"123/2015/NĐ-CP", "52/2014/QH13"} <= numbers(p)  # "Luật 52/2014/QH1352/2014/QH13"


def test_1_000656_khai_tu(catalogue):
    p = catalogue.get("1.000656")
    # "Trực tuyến1Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh, thành phố trực thuộc
    #  Trung ương quyết định. Miễn lệ phí đối với trường hợp đăng ký khai tử đúng hạn, ...)"
    check_submission(p, ALL, 1, True, free=True, province=True)
    # "- Giấy báo tử hoặc giấy tờ thay Giấy báo tử do cơ quan có thẩm quyền cấp...1 bản chính"
    assert counts(doc(p.documents, "Giấy báo tử hoặc giấy tờ thay Giấy báo tử")) == (1, 0)
    # "- Giấy tờ, tài liệu, chứng cứ ... chứng minh sự kiện chết ... đã lâu...1 bản chính"
    assert counts(doc(p.documents, "chứng minh sự kiện chết")) == (1, 0)
    assert counts(doc(p.documents, "Tờ khai đăng ký khai tử")) == (1, 0)
    # xuất trình: "- Giấy tờ chứng minh nơi cư trú cuối cùng của người chết ...1 bản chính"
    assert counts(doc(p.documents_to_show, "nơi cư trú cuối cùng của người chết")) == (1, 0)
    # "- Trong thời hạn 15 ngày kể từ ngày có người chết thì vợ, chồng ...0 bản chính"
    assert any("Trong thời hạn 15 ngày kể từ ngày có người chết" in n for n in p.notes)
    assert p.results == ["Trích lục khai tử"]  # "Trích lục khai tửMã: KQ.G15.000034"
    assert {"123/2015/NĐ-CP", "60/2014/QH13"} <= numbers(p)


def test_1_004873_xac_nhan_tinh_trang_hon_nhan(catalogue):
    p = catalogue.get("1.004873")
    # "Trực tuyến3Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 3, True, free=True, province=True)
    # "- Tờ khai cấp Giấy xác nhận tình trạng hôn nhân (nếu ... trực tiếp);1 bản chính"
    assert counts(doc(p.documents, "Tờ khai cấp Giấy xác nhận tình trạng hôn nhân")) == (1, 0)
    # "... thì phải nộp lại Giấy xác nhận tình trạng hôn nhân đã được cấp trước đó.1 bản chính"
    assert counts(doc(p.documents, "nộp lại Giấy xác nhận tình trạng hôn nhân")) == (1, 0)
    assert p.results == ["Giấy xác nhận tình trạng hôn nhân"]  # "...hôn nhânMã: KQ.G15.000038"
    assert {"123/2015/NĐ-CP", "52/2014/QH13"} <= numbers(p)


def test_2_000635_ban_sao_trich_luc(catalogue):
    p = catalogue.get("2.000635")
    # "Trực tuyếnKhông có thông tin8,000 VNĐDịch vụ bưu chínhKhông có thông tin8,000 VNĐ..."
    check_submission(p, ALL, None, False, free=False, province=False, amount=8000)
    # "- Tờ khai đề nghị bản sao Trích lục hộ tịch theo mẫu ... là cá nhân ...1 bản chính"
    assert counts(doc(p.documents, "Tờ khai đề nghị bản sao Trích lục hộ tịch")) == (1, 0)
    # "Bản sao Trích lục hộ tịch, bản sao giấy khai sinhMã: KQ.G15.000342"
    assert p.results == ["Bản sao Trích lục hộ tịch, bản sao giấy khai sinh"]
    # "Thông tư 281/2016/TT-BTC281/2016/TT-BTC" (the 8,000 đ copy fee)
    assert {"123/2015/NĐ-CP", "281/2016/TT-BTC"} <= numbers(p)


def test_1_004859_thay_doi_cai_chinh(catalogue):
    p = catalogue.get("1.004859")
    # "Trực tuyến1Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 1, True, free=True, province=True)
    # "- Giấy tờ làm căn cứ thay đổi, cải chính, bổ sung thông tin hộ tịch.1 bản chính"
    assert counts(doc(p.documents, "Giấy tờ làm căn cứ thay đổi, cải chính")) == (1, 0)
    # "- Tờ khai đăng ký thay đổi, cải chính, bổ sung thông tin hộ tịch, xác định lại dân tộc..."
    assert counts(doc(p.documents, "Tờ khai đăng ký thay đổi, cải chính")) == (1, 0)
    assert p.results == [
        "Trích lục thay đổi, cải chính, bổ sung thông tin hộ tịch, xác định lại dân tộc"
    ]
    assert {"123/2015/NĐ-CP", "91/2015/QH13"} <= numbers(p)  # "Bộ luật Dân sự91/2015/QH13"


def test_1_004884_dang_ky_lai_khai_sinh(catalogue):
    p = catalogue.get("1.004884")
    # "Trực tuyến5Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 5, True, free=True, province=True)
    # "+ Bản sao Giấy khai sinh do cơ quan có thẩm quyền ... cấp hợp lệ ...0 bản chính,1 bản sao"
    assert counts(doc(p.documents, "Bản sao Giấy khai sinh")) == (0, 1)
    # "+ Trường hợp người yêu cầu không có giấy tờ nêu trên thì ...0 bản chính,1 bản sao"
    assert counts(doc(p.documents, "không có giấy tờ nêu trên")) == (0, 1)
    assert counts(doc(p.documents, "Tờ khai đăng ký lại khai sinh")) == (1, 0)
    assert p.results == ["Giấy khai sinh"]  # "Giấy khai sinhMã: KQ.G15.000031"
    assert {"123/2015/NĐ-CP", "04/2020/TT-BTP"} <= numbers(p)


def test_1_001022_nhan_cha_me_con(catalogue):
    p = catalogue.get("1.001022")
    # "Trực tuyến3Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 3, True, free=True, province=True)
    # "+ Văn bản của cơ quan y tế, cơ quan giám định ... xác nhận quan hệ cha con...1 bản chính"
    assert counts(doc(p.documents, "Văn bản của cơ quan y tế, cơ quan giám định")) == (1, 0)
    # "- Tờ khai đăng ký đăng ký nhận cha, mẹ, con theo mẫu (...trực tiếp);1 bản chính"
    assert counts(doc(p.documents, "nhận cha, mẹ, con theo mẫu")) == (1, 0)
    assert p.results == ["Trích lục đăng ký nhận cha, mẹ, con"]  # "...conMã: KQ.G15.000033"
    assert {"123/2015/NĐ-CP", "52/2014/QH13"} <= numbers(p)


def test_1_004837_giam_ho(catalogue):
    p = catalogue.get("1.004837")
    # "Trực tuyến3 Ngày làm việcMiễn phí(Phí cấp bản sao Trích lục ...)...Trực tiếp3 Ngày làm
    #  việcMiễn phí": the unit is given, and no HĐND wording
    check_submission(p, ALL, 3, False, free=True, province=False)
    # "- Giấy tờ chứng minh điều kiện giám hộ đương nhiên ...1 bản chính"
    assert counts(doc(p.documents, "Giấy tờ chứng minh điều kiện giám hộ đương nhiên")) == (1, 0)
    assert counts(doc(p.documents, "Tờ khai đăng ký giám hộ")) == (1, 0)
    assert p.results == ["Trích lục đăng ký giám hộ"]  # "...giám hộMã: KQ.G15.000035"
    assert {"123/2015/NĐ-CP", "91/2015/QH13"} <= numbers(p)


def test_2_001263_nuoi_con_nuoi(catalogue):
    p = catalogue.get("2.001263")
    # "Trực tuyếnKhông có thông tin400,000 Việt Nam Đồng(Lệ phí : 400.000 Đồng (Mức thu lệ phí:
    #  400.000đ/trường hợp. Miễn lệ phí ... cha dượng hoặc mẹ kế ...))" - same for the 3 channels
    check_submission(p, ALL, None, False, free=False, province=False, amount=400000)
    # "Hồ sơ của người nhận con nuôi: ...- Đơn  xin nhận  con nuôi;1.nxinnhnconnui.doc1 bản chính"
    adopter = doc(p.documents, "Đơn xin nhận con nuôi")
    assert counts(adopter) == (1, 0) and _nfc(adopter.group) == "Hồ sơ của người nhận con nuôi"
    # "- Bản sao Hộ chiếu, Thẻ căn cước hoặc giấy tờ có giá trị thay thế;0 bản chính,1 bản sao"
    assert counts(doc(p.documents, "Bản sao Hộ chiếu, Thẻ căn cước")) == (0, 1)
    # "- Văn  bản xác nhận hoàn cảnh gia đình, tình  trạng chỗ ở, điều kiện kinh tế ..."
    assert counts(doc(p.documents, "xác nhận hoàn cảnh gia đình")) == (1, 0)
    # "Hồ sơ của người được nhận làm con nuôi: ...- Giấy    khai sinh;1 bản chính"
    child = doc(p.documents, "Giấy khai sinh")
    assert counts(child) == (1, 0) and "người được nhận làm con nuôi" in _nfc(child.group)
    assert p.results == ["Giấy chứng nhận nuôi con nuôi trong nước"]  # "...nướcMã: KQ.G15.000002"
    assert {"66.7/2025/NQ-CP", "120/2025/NĐ-CP", "24/2019/NĐ-CP"} <= numbers(p)


def test_2_000528_khai_sinh_yeu_to_nuoc_ngoai(catalogue):
    p = catalogue.get("2.000528")
    # "Trực tuyến1Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 1, True, free=True, province=True)
    # "Số lượngGiấy Chứng sinh1 bản chính"
    assert counts(doc(p.documents, "Giấy Chứng sinh")) == (1, 0)
    assert counts(doc(p.documents, "Tờ khai đăng ký khai sinh")) == (1, 0)
    # xuất trình: "- Giấy tờ chứng minh việc trẻ em nhập cảnh hợp pháp vào Việt Nam ...1 bản chính"
    assert counts(doc(p.documents_to_show, "nhập cảnh hợp pháp vào Việt Nam")) == (1, 0)
    assert p.results == ["Giấy khai sinh"]
    assert {"123/2015/NĐ-CP", "60/2014/QH13"} <= numbers(p)


def test_1_003583_khai_sinh_luu_dong(catalogue):
    p = catalogue.get("1.003583")
    # The only row: "Hình thức nộpThời gianPhí, lệ phíMô tảTrực tiếp5 Ngày làm việcMiễn phí"
    check_submission(p, [Channel.IN_PERSON], 5, False, free=True, province=False)
    # "- Bản chính Giấy chứng sinh; trường hợp không có Giấy chứng sinh thì ...;1 bản chính"
    assert counts(doc(p.documents, "Bản chính Giấy chứng sinh")) == (1, 0)
    assert counts(doc(p.documents, "Tờ khai đăng ký khai sinh theo mẫu")) == (1, 0)
    # xuất trình: "- Giấy chứng nhận kết hôn nếu cha, mẹ đã đăng ký kết hôn. ...1 bản chính"
    assert counts(doc(p.documents_to_show, "Giấy chứng nhận kết hôn")) == (1, 0)
    assert p.results == ["Giấy khai sinh"]
    assert {"123/2015/NĐ-CP", "04/2020/TT-BTP"} <= numbers(p)


def test_1_000689_khai_sinh_ket_hop_nhan_cha_me_con(catalogue):
    p = catalogue.get("1.000689")
    # "Trực tuyến3Miễn phí((Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...))"
    check_submission(p, ALL, 3, True, free=True, province=True)
    # "- Bản chính Giấy chứng sinh; ...;1 bản chính"
    assert counts(doc(p.documents, "Bản chính Giấy chứng sinh")) == (1, 0)
    # "- Tờ khai đăng ký nhận cha, mẹ, con theo mẫu;1 bản chính,1 bản sao" (the raw says so)
    assert doc(p.documents, "Tờ khai đăng ký nhận cha, mẹ, con").originals == 1
    assert doc(p.documents, "Tờ khai đăng ký khai sinh").originals == 1
    assert {"123/2015/NĐ-CP", "52/2014/QH13"} <= numbers(p)


def test_1_000689_two_results(catalogue):
    # "Giấy khai sinhMã: KQ.G15.000031Trích lục đăng ký nhận cha, mẹ, conMã: KQ.G15.000033Từ khóa"
    expected = ["Giấy khai sinh", "Trích lục đăng ký nhận cha, mẹ, con"]
    assert catalogue.get("1.000689").results == expected


def test_1_004746_dang_ky_lai_ket_hon(catalogue):
    p = catalogue.get("1.004746")
    # "Trực tuyến5Miễn phí(Mức lệ phí cụ thể do Hội đồng nhân dân tỉnh ... quyết định. ...)"
    check_submission(p, ALL, 5, True, free=True, province=True)
    # "Bản sao Giấy chứng nhận kết hôn được cấp trước đây. ...0 bản chính,1 bản sao"
    assert counts(doc(p.documents, "Bản sao Giấy chứng nhận kết hôn")) == (0, 1)
    assert counts(doc(p.documents, "Tờ khai đăng ký lại kết hôn")) == (1, 0)
    # "- Giấy tờ chứng minh nơi cư trú để xác định thẩm quyền (nếu ...) ...1 bản chính"
    assert counts(doc(p.documents_to_show, "nơi cư trú để xác định thẩm quyền")) == (1, 0)
    assert p.results == ["Giấy chứng nhận kết hôn"]  # "Giấy chứng nhận kết hônMã: KQ.G15.000032"
    assert {"123/2015/NĐ-CP", "60/2014/QH13"} <= numbers(p)


def test_2_002516_xac_nhan_thong_tin_ho_tich(catalogue):
    p = catalogue.get("2.002516")
    # "Trực tuyếnKhông có thông tin8,000 VNĐ(8.000 đồng/Văn bản xác nhận về một việc hộ tịch ...
    #  Miễn lệ phí cho người thuộc gia đình có công ...)Trực tiếp thực hiện hoặc ủy quyền ..."
    check_submission(p, ALL, None, False, free=False, province=False, amount=8000)
    # "Giấy tờ, tài liệu có liên quan đến nội dung đề nghị xác nhận thông tin hộ tịch1 bản chính"
    assert counts(doc(p.documents, "có liên quan đến nội dung đề nghị xác nhận")) == (1, 0)
    # "Tờ khai đề nghị xác nhận thông tin hộ tịch theo mẫu (nếu ... trực tiếp)1 bản chính"
    assert counts(doc(p.documents, "Tờ khai đề nghị xác nhận thông tin hộ tịch")) == (1, 0)
    assert p.results == ["Văn bản xác nhận thông tin hộ tịch"]  # "...hộ tịchMã: KQ.G15.000216"
    assert {"123/2015/NĐ-CP", "281/2016/TT-BTC"} <= numbers(p)


def test_2_001263_legal_numbers_before_upper_case_titles(catalogue):
    # "...cung cấp dịch vụ công104/2022/NĐ-CPTHÔNG TƯ  SỬA ĐỔI, ...NUÔI CON NUÔI07/2023/TT-BTP
    #  Nghị định số 06/2025/NĐ-CP ... về nuôi con nuôi06/2025/NĐ-CPBAN HÀNH, ...10/2020/TT-BTP"
    assert {"104/2022/NĐ-CP", "06/2025/NĐ-CP"} <= numbers(catalogue.get("2.001263"))


def test_2_000528_legal_fee_circular(catalogue):
    # "Thông tư 281/2016/TT-BTC281/2016/TT-BTC01/2013/TT-BVHTTDL01/2013/TT-BVHTTDL"
    assert {"281/2016/TT-BTC", "01/2013/TT-BVHTTDL"} <= numbers(catalogue.get("2.000528"))


@pytest.mark.parametrize(
    ("name", "form"),
    [
        # "- Đơn  xin nhận  con nuôi;1.nxinnhnconnui.doc1 bản chính"
        ("Đơn xin nhận con nuôi", "1.nxinnhnconnui.doc"),
        # "...nhận cháu làm con nuôi);2.Vnbnxcnhnhoncnhgianhchiukinkinht (1).doc1 bản chính"
        ("xác nhận hoàn cảnh gia đình", "2.Vnbnxcnhnhoncnhgianhchiukinkinht (1).doc"),
        # "...để nhận làm con nuôi).8.nngknhucunhntremlmconnuiRepaired.doc1 bản chính"
        ("Đơn đăng ký nhu cầu", "8.nngknhucunhntremlmconnuiRepaired.doc"),
    ],
)
def test_2_001263_form_files(catalogue, name, form):
    d = doc(catalogue.get("2.001263").documents, name)
    assert d.form == form
    assert not d.name.rstrip(" ;.").endswith(form.split(".")[0])


@pytest.mark.parametrize(
    ("code", "per"),
    [
        ("2.001263", "trường hợp"),  # "(Mức thu lệ phí: 400.000đ/trường hợp. Miễn lệ phí ...)"
        ("2.002516", "Văn bản xác nhận"),  # "(8.000 đồng/Văn bản xác nhận về một việc hộ tịch ...)"
    ],
)
def test_fee_per_unit(catalogue, code, per):
    for option in catalogue.get(code).channels:
        assert per in (option.fees[0].per or "")


@pytest.mark.parametrize(
    ("code", "to_show", "name", "condition"),
    [
        # "- Văn bản cử người giám hộ ... đối với trường hợp đăng ký giám hộ cử."
        ("1.004837", False, "Văn bản cử người giám hộ", "giám hộ cử"),
        # "+ Trường hợp cha hoặc mẹ hoặc cả cha, mẹ là người nước ngoài thì phải nộp văn bản ..."
        ("2.000528", False, "lựa chọn quốc tịch cho con", "người nước ngoài"),
        # "Giấy tờ có giá trị chứng minh thông tin về cư trú trong trường hợp cơ quan đăng ký hộ
        #  tịch không thể khai thác được thông tin về nơi cư trú ... Trường hợp các thông tin
        #  ... đã được khai thác ... thì ... không phải xuất trình": needed only when NOT found
        ("1.001193", True, "chứng minh thông tin về cư trú", "không thể khai thác"),
        # "- Giấy chứng nhận kết hôn nếu cha, mẹ đã đăng ký kết hôn. Trường hợp đã có thông tin về
        #  việc kết hôn ... trong CSDLHTĐT, CSDLQGVDC thì không phải xuất trình."
        ("1.003583", True, "Giấy chứng nhận kết hôn", "đã đăng ký kết hôn"),
        # "- Giấy chứng sinh; trường hợp không có Giấy chứng sinh thì nộp văn bản của người làm
        #  chứng ...": the certificate itself is always asked for
        ("1.001193", False, "Giấy chứng sinh", None),
        # "- Giấy báo tử ... Trường hợp người yêu cầu đã nộp bản điện tử Giấy báo tử ... thì
        #  không phải nộp bản giấy.": always required (paper or electronic)
        ("1.000656", False, "Giấy báo tử hoặc giấy tờ thay", None),
        # "- Trường hợp cá nhân yêu cầu cấp lại Giấy xác nhận tình trạng hôn nhân để sử dụng vào
        #  mục đích khác ... thì phải nộp lại Giấy xác nhận ... đã được cấp trước đó."
        ("1.004873", False, "nộp lại Giấy xác nhận", "cấp lại"),
    ],
)
def test_document_condition(catalogue, code, to_show, name, condition):
    p = catalogue.get(code)
    d = doc(p.documents_to_show if to_show else p.documents, name)
    if condition is None:
        assert d.condition is None
    else:
        assert condition in _nfc(d.condition)
