"""Parse one record of the National Public Service Portal (as crawled) into a Procedure.

The crawled table cells are glued together without separators, e.g. the submission table
"Hình thức nộpThời gianPhí, lệ phíMô tảTrực tuyến1Miễn phíDịch vụ bưu chính1Miễn phí...".
Each parser below undoes one such table and records a ParseIssue where it had to give up,
so that nothing is silently dropped: the original text always stays in the record.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from procedures_catalog.normalize import fold, strip_marks
from procedures_catalog.schema import (
    CODE_RE,
    Channel,
    ChannelOption,
    DocumentRequirement,
    Fee,
    LegalBasis,
    ParseIssue,
    Procedure,
    ProcessingTime,
    Source,
    TimeUnit,
)

NO_INFO = "Không có thông tin"
SOURCE_NAME = "Cổng Dịch vụ công quốc gia (dichvucong.gov.vn)"

# ---------------------------------------------------------------- submission table (cách thức)
CHANNEL_TABLE_HEAD = "Hình thức nộpThời gianPhí, lệ phíMô tả"
CHANNELS = {
    "Trực tiếp": Channel.IN_PERSON,
    "Trực tuyến": Channel.ONLINE,
    "Dịch vụ bưu chính": Channel.POSTAL,
}
# A row starts with a channel name immediately followed by its time cell (a number or "no info");
# the same words inside a description are followed by ":" or a space instead.
_ROW = re.compile(r"(Trực tiếp|Trực tuyến|Dịch vụ bưu chính)(?=\d|Không có thông tin)")
_UNITS = {
    "Ngày làm việc": TimeUnit.WORKING_DAYS,
    "Ngày": TimeUnit.DAYS,
    "Giờ làm việc": TimeUnit.HOURS,
    "Giờ": TimeUnit.HOURS,
    "Tháng": TimeUnit.MONTHS,
}
_TIME_WITH_UNIT = re.compile(r"(\d+(?:[.,]\d+)?) (Ngày làm việc|Ngày|Giờ làm việc|Giờ|Tháng)")
_CURRENCY = r"(Việt Nam Đồng|VNĐ|Đồng|đồng|USD)"
_AMOUNT_CURRENCY = re.compile(r"(\d[\d.,]*) ?" + _CURRENCY)
_VALID_AMOUNT = re.compile(r"[1-9]\d{0,2}(?:[.,]\d{3})+|[1-9]\d*|0")
_SPLIT_AMOUNT = re.compile(r"[1-9]\d{0,2}(?:[.,]\d{3})+|[1-9]\d*")
_PROVINCE_SET = re.compile(
    r"(Hội đồng nhân dân|HĐND)[^.;]{0,80}(quyết định|quy định)|do (Hội đồng nhân dân|HĐND) tỉnh",
    re.IGNORECASE,
)


def parse_channels(text: str, issues: list[ParseIssue]) -> list[ChannelOption]:
    """Parse the submission table: channel, processing time, fees, description per row."""
    if not text or text.strip() == NO_INFO:
        issues.append(ParseIssue("channels", "no submission table"))
        return []
    if not text.startswith(CHANNEL_TABLE_HEAD):
        issues.append(ParseIssue("channels", "table header missing"))
        return []
    body = text[len(CHANNEL_TABLE_HEAD) :]
    parts = _ROW.split(body)
    if parts[0].strip():
        issues.append(ParseIssue("channels", f"text before the first row: {parts[0][:60]!r}"))
    rows: list[tuple[Channel, str]] = [
        (CHANNELS[name], cell) for name, cell in zip(parts[1::2], parts[2::2], strict=True)
    ]
    if not rows:
        issues.append(ParseIssue("channels", "no channel rows found"))
        return []
    unit_times = [m.group(1) for _, cell in rows if (m := _TIME_WITH_UNIT.match(cell))]
    options = []
    for channel, cell in rows:
        time, rest = _parse_time(cell, rest_hint=unit_times, issues=issues)
        fees, description = _parse_fees(rest, issues)
        options.append(ChannelOption(channel, time, fees, _tidy(description)))
    return options


def _parse_time(
    cell: str, rest_hint: list[str], issues: list[ParseIssue]
) -> tuple[ProcessingTime, str]:
    if cell.startswith(NO_INFO):
        return ProcessingTime(text=NO_INFO), cell[len(NO_INFO) :]
    match = _TIME_WITH_UNIT.match(cell)
    if match:
        value = _number(match.group(1))
        return (
            ProcessingTime(value, _UNITS[match.group(2)], text=match.group(0)),
            cell[match.end() :],
        )
    # A bare number: its unit was lost in the crawl. When a fee amount follows, the digits of
    # the time and of the amount are glued ("150,000 Việt Nam Đồng" = 1 day + 50,000 đ).
    digits = re.match(r"\d[\d.,]*", cell).group(0)
    glued = _AMOUNT_CURRENCY.match(cell)
    if glued and glued.group(1) == digits:
        splits = [
            (digits[:i], digits[i:])
            for i in range(1, len(digits))
            if digits[:i].isdigit() and _SPLIT_AMOUNT.fullmatch(digits[i:])
        ]
        if len(splits) > 1:
            preferred = [s for s in splits if s[0] in rest_hint]
            splits = preferred if len(preferred) == 1 else splits
        if len(splits) != 1:
            issues.append(ParseIssue("channels", f"time and fee digits glued: {digits!r}"))
            return ProcessingTime(text=digits), cell
        time_digits = splits[0][0]
    else:
        time_digits = re.match(r"\d+(?:[.,]\d+)?", cell).group(0)
    return (
        ProcessingTime(
            _number(time_digits), TimeUnit.WORKING_DAYS, unit_inferred=True, text=time_digits
        ),
        cell[len(time_digits) :],
    )


def _parse_fees(text: str, issues: list[ParseIssue]) -> tuple[list[Fee], str]:
    """Read fee cells from the start of ``text``; return them and the description after."""
    fees: list[Fee] = []
    rest = text
    while True:
        if rest.startswith("Miễn phí"):
            fee, rest = Fee(free=True, text="Miễn phí"), rest[len("Miễn phí") :]
        elif rest.startswith(NO_INFO) and not fees:
            fee, rest = Fee(unknown=True, text=NO_INFO), rest[len(NO_INFO) :]
        else:
            match = _AMOUNT_CURRENCY.match(rest)
            if not match:
                break
            amount = _amount(match.group(1))
            if amount is None:
                issues.append(ParseIssue("fees", f"unreadable amount {match.group(1)!r}"))
            currency = "USD" if match.group(2) == "USD" else "VND"
            fee, rest = (
                Fee(amount=amount, currency=currency, text=match.group(0)),
                rest[match.end() :],
            )
        note, rest = _parenthesised(rest)
        if note is not None:
            inner = note.strip("() ")
            if inner.startswith("/") or re.fullmatch(r"đồng/\S+", inner):
                fee.per = inner.split("/", 1)[1].strip() or None
            fee.text = f"{fee.text} ({inner})" if inner else fee.text
        if fee.per is None and fee.amount and note:
            fee.per = _per_from_note(note, fee.amount)
        fee.set_by_province = bool(_PROVINCE_SET.search(fee.text))
        fees.append(fee)
    if not fees:
        issues.append(ParseIssue("fees", f"no fee cell: {text[:60]!r}"))
    return fees, rest


def _per_from_note(note: str, amount: int) -> str | None:
    """ "400.000đ/trường hợp" in the note of a 400,000 fee -> "trường hợp"."""
    for match in re.finditer(r"(\d[\d.,]*)\s*(?:đ|đồng|VNĐ|vnđ)\s*/\s*([^,.;:()\d]{1,60})", note):
        if _amount(match.group(1)) == amount:
            return " ".join(match.group(2).split()[:6]) or None
    return None


def _parenthesised(text: str) -> tuple[str | None, str]:
    """Split a leading balanced "( ... )" group off ``text``."""
    if not text.startswith("("):
        return None, text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return text[: i + 1], text[i + 1 :]
    return text, ""  # unbalanced: everything is the note


def _number(text: str) -> float:
    value = float(text.replace(",", "."))
    return int(value) if value.is_integer() else value


def _amount(text: str) -> int | None:
    """ "2,000" / "2.000" / "200000" -> 2000 / 2000 / 200000 (both separators group thousands)."""
    text = text.rstrip(".,")
    if not _VALID_AMOUNT.fullmatch(text):
        return None
    return int(text.replace(",", "").replace(".", ""))


# ---------------------------------------------------------------- documents (thành phần hồ sơ)
DOC_TABLE_HEAD = "Tên giấy tờMẫu đơn, tờ khaiSố lượng"
# The count cell is glued to the next row; "01 bản sao có chứng thực ..." inside a row's text is
# followed by a space and a lower-case word instead, and is not a count cell.
_COUNT = re.compile(
    r"(\d+) (bản chính|bản sao|bản chụp)(?:\s*,\s*(\d+) (bản chính|bản sao|bản chụp))*"
    r"(?!\s+[a-zđà-ỹ])"
)
_COUNT_ONE = re.compile(r"(\d+) (bản chính|bản sao|bản chụp)")
_FORM_SUFFIX = re.compile(r"\.(?:docx?|pdf|xlsx?)(?:\.(?:docx?|pdf|xlsx?))*\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-+•*]+|[a-zđ]\)|\d+(?:\.\d+)*[.)])\s*", re.IGNORECASE)
_CONDITION = re.compile(
    r"(?<![Tt]rừ )\b((?:[Tt]rong )?[Tt]rường hợp [^.;:]{3,300}?|[Nn]ếu [^.;:]{3,300}?)"
    r"(?P<end> thì |[.;:]|$)"
)
_CONDITION_HEADING = re.compile(r"^(Trường hợp|Đối với|Nếu|Khi)\b", re.IGNORECASE)


def parse_documents(
    text: str, issues: list[ParseIssue]
) -> tuple[list[DocumentRequirement], list[DocumentRequirement], list[str]]:
    """Return (documents to submit, documents to show, notes) from the dossier table(s).

    The text is one or more tables, each "<heading>Tên giấy tờMẫu đơn, tờ khaiSố lượng<rows>",
    where each row ends with its count ("1 bản chính", "2 bản sao", "1 bản chính,1 bản sao").
    Rows counted 0 are explanations, kept as notes.
    """
    to_submit: list[DocumentRequirement] = []
    to_show: list[DocumentRequirement] = []
    notes: list[str] = []
    if not text or text.strip() in ("", NO_INFO):
        issues.append(ParseIssue("documents", "no dossier table"))
        return to_submit, to_show, notes
    chunks = text.split(DOC_TABLE_HEAD)
    if len(chunks) == 1:
        issues.append(ParseIssue("documents", "no table header; kept as a note"))
        notes.append(_tidy(text))
        return to_submit, to_show, notes
    heading = chunks[0]
    for number, chunk in enumerate(chunks[1:], start=1):
        entries, leftover = _entries(chunk)
        last = number == len(chunks) - 1
        kind, condition, group = _section(heading)
        for entry_text, counts in entries:
            if (
                kind == "note"
                or not any(counts.values())
                or _BULLET.sub("", entry_text).lower().startswith("lưu ý")
            ):
                notes.append(_tidy(_BULLET.sub("", entry_text)))
                continue
            if not any(ch.isalpha() for ch in entry_text):
                continue  # "...: 01 bản sao;1 bản sao": the count was already in the row's text
            doc = _document(entry_text, counts)
            if not doc.name:
                issues.append(ParseIssue("documents", "a count with no document name"))
                continue
            doc.condition = doc.condition or condition
            doc.group = group
            (to_show if kind == "show" else to_submit).append(doc)
        if last and _tidy(leftover).strip("-* "):
            issues.append(ParseIssue("documents", f"text without a count: {leftover[:60]!r}"))
            notes.append(_tidy(_BULLET.sub("", leftover)))
        heading = leftover
    return to_submit, to_show, [n for n in notes if n]


def _section(heading: str) -> tuple[str, str | None, str | None]:
    """Classify a table by its heading: ("submit" | "show" | "note", condition, group)."""
    heading = _tidy(heading).strip("*-: ").strip()
    lowered = heading.lower()
    if "lưu ý" in lowered:
        return "note", None, None
    if "xuất trình" in lowered:
        return "show", None, None
    if not heading or lowered in ("giấy tờ phải nộp", "thành phần hồ sơ", "hồ sơ gồm"):
        return "submit", None, None
    if _CONDITION_HEADING.match(heading):
        return "submit", heading, None
    return "submit", None, heading


def _entries(body: str) -> tuple[list[tuple[str, dict[str, int]]], str]:
    """Split a section body at each "<n> bản chính/sao/chụp" that ends an entry."""
    entries = []
    position = 0
    for match in _COUNT.finditer(body):
        entry_text = body[position : match.start()]
        if not entry_text.strip(" -+*•\n\t") and body[match.end() : match.end() + 1].isspace():
            continue  # "01 bản chính Biên bản ...": a row that starts by saying how many
        counts = {"bản chính": 0, "bản sao": 0, "bản chụp": 0}
        for one in _COUNT_ONE.finditer(match.group(0)):
            counts[one.group(2)] += int(one.group(1))
        entries.append((entry_text, counts))
        position = match.end()
    return entries, body[position:]


def _document(text: str, counts: dict[str, int]) -> DocumentRequirement:
    text = _tidy(_BULLET.sub("", text))
    form = None
    suffix = _FORM_SUFFIX.search(text)
    if suffix:
        start = _form_start(text, suffix.start())
        form = text[start:].strip().lstrip(".")
        text = text[:start].rstrip(" ;,.")
    name, details = _first_sentence(text)
    return DocumentRequirement(
        name=name,
        originals=counts["bản chính"],
        copies=counts["bản sao"],
        photocopies=counts["bản chụp"],
        condition=_condition(name),
        form=form,
        details=details,
    )


def _condition(name: str) -> str | None:
    """The case in which a paper is needed, read from the first clause of its name only.

    "Giấy chứng sinh; trường hợp không có ... thì nộp văn bản ..." names an alternative, not a
    condition; "trừ trường hợp ..." is an exception; "Trường hợp ... thì không phải nộp" is an
    exemption. None of these is the condition of the paper.
    """
    first_clause = name.split(";", 1)[0]
    for match in _CONDITION.finditer(first_clause):
        after = first_clause[match.end() : match.end() + 20].lower()
        if match.group("end") == " thì " and after.startswith("không phải"):
            continue
        condition = match.group(1).strip()
        if condition.count(")") > condition.count("("):
            condition = condition.rstrip(")").rstrip()
        return condition
    return None


def _form_start(text: str, end: int) -> int:
    """Where a form's file name glued to the end of a row starts.

    Portal file names are often Vietnamese with the accents stripped and spaces removed
    ("1.MuCT01banhnhkmtheoThngts53.doc"): then the name is the whole run of non-space ASCII
    characters back to ")", ";" or ":". Otherwise ("...Bộ Công an)Mẫu DC02 Phiếu ... cước.doc")
    it starts at the last visible seam.
    """
    copy_marker = re.search(r"\s\(\d+\)$", text[:end])  # "...kinht (1).doc"
    run_start = copy_marker.start() if copy_marker else end
    while run_start > 0 and not text[run_start - 1].isspace() and text[run_start - 1] not in ");:":
        run_start -= 1
    run = text[run_start : copy_marker.start() if copy_marker else end].lstrip(".")
    if len(run) >= 6 and run.isascii():
        return run_start
    return _glue_point(text, end)


def _glue_point(text: str, end: int) -> int:
    """Where a glued cell (a form's file name) starts: after ")", ".", ";", or where a lower-case
    letter or digit runs straight into an upper-case one ("...Bộ Công an)Mẫu DC02...")."""
    for j in range(end - 1, 0, -1):
        before, here = text[j - 1], text[j]
        if before in ").;:" and not here.isspace():
            return j
        if (before.islower() or before.isdigit()) and here.isupper():
            return j
    return text.rfind(" ", 0, end) + 1  # no visible seam: take the last word as the file name


def _first_sentence(text: str) -> tuple[str, str | None]:
    """Split after the first full stop that ends a sentence (not "số 23/2015." inside a number)."""
    match = re.search(r"(?<=[^\d\s.])\.\s+(?=[A-ZĐÀ-Ỹ(])", text)
    if not match:
        return text.rstrip(" ;"), None
    return text[: match.start() + 1].rstrip(" ;"), text[match.end() :].strip() or None


# ---------------------------------------------------------------- legal basis, results, others
LEGAL_HEAD = "Tên văn bản pháp lýMã văn bản"
_LEGAL_NUMBER_START = re.compile(r"\d+(?:\.\d+)?/\d{4}/")
_LEGAL_LAST_NUMBER = re.compile(r"\d+(?:\.\d+)?/\d{4}/[A-ZĐ][A-Za-zĐđ0-9\-]*")
_TYPE_ONLY_TITLES = frozenset(
    fold(t)
    for t in (
        "",
        "Luật",
        "Bộ luật",
        "Nghị định",
        "Nghị định số",
        "Thông tư",
        "Thông tư số",
        "Thông tư liên tịch",
        "Quyết định",
        "Quyết định số",
        "Nghị quyết",
        "Nghị quyết số",
    )
)
_CAPITAL_TITLE_WORDS = tuple(
    w.upper()
    for w in (
        "Thông tư",
        "Nghị định",
        "Luật",
        "Quyết định",
        "Nghị quyết",
        "Ban hành",
        "Sửa đổi",
        "Quy định",
        "Hướng dẫn",
        "Bộ luật",
    )
)
_LEGAL_SUFFIX_CHARS = re.compile(r"[A-Za-zĐđ0-9\-]*")
# The issuer part of a number: "TT-BTC", "NĐ-CP", "QĐ-TTg", "NQ-HĐND", "TTLT-BTC-BTP", "QH13".
# Digits follow only a legislature ("QH13", "UBTVQH15"), so "NĐ-CP280/..." ends after "CP".
_LEGAL_SEGMENT = r"[A-ZĐ][A-Za-zĐđ]{0,10}(?:(?<=QH)\d{2})?"
_LEGAL_SUFFIX = re.compile(_LEGAL_SEGMENT + r"(?:-" + _LEGAL_SEGMENT + r")*")


def parse_legal_basis(text: str, issues: list[ParseIssue]) -> list[LegalBasis]:
    """Split "<title><number><title><number>..." into (title, number) rows.

    A number such as 104/2022/NĐ-CP ends a row when the next character starts a new cell: an
    upper-case letter (Vietnamese included), the start of another number, or the end.
    """
    if not text or text.strip() == NO_INFO:
        return []
    if not text.startswith(LEGAL_HEAD):
        issues.append(ParseIssue("legal_basis", "table header missing"))
        return [LegalBasis(title=_tidy(text))]
    body = text[len(LEGAL_HEAD) :]
    rows: list[LegalBasis] = []
    position = scan = 0
    while match := _LEGAL_NUMBER_START.search(body, scan):
        scan = match.start() + 1
        if _inside_a_number(body, match.start()):
            continue
        suffix = _LEGAL_SUFFIX_CHARS.match(body, match.end()).group(0)
        # First the clear seams; a lower-case word glued on is the last resort, since
        # "TT-BTCVề ..." must end at "TT-BTC" (before "Về"), not at "TT-BTCV".
        candidates = [
            (strict, length)
            for strict in (True, False)
            for length in range(len(suffix), 0, -1)
            if _LEGAL_SUFFIX.fullmatch(suffix[:length])
        ]
        for strict, length in candidates:
            end = match.end() + length
            if _starts_cell(body, end, suffix[:length], strict=strict):
                break
        else:
            continue  # a number inside a title ("Nghị định số 123/2015/NĐ-CP ngày ...")
        start = _without_year_prefix(body, match)
        title = _tidy(body[position:start])
        if fold(title) in _TYPE_ONLY_TITLES:
            continue  # "Luật 60/2014/QH13" + "60/2014/QH13": the number belongs to the title
        following = _LEGAL_NUMBER_START.match(body, end)
        if following and following.group(0) in body[position:end]:
            continue  # "...bởi Nghị định số 07/2025/NĐ-CP" + "280/2025/NĐ-CP" named in the title
        rows.append(LegalBasis(title, body[start:end].strip()))
        position = scan = end
    leftover = _tidy(body[position:])
    last = list(_LEGAL_LAST_NUMBER.finditer(leftover))
    if leftover and last and last[-1].end() == len(leftover):
        # The last row's title was only "Luật"/"Thông tư" or the number itself.
        rows.append(LegalBasis(title=leftover, number=last[-1].group(0)))
    elif leftover:
        issues.append(ParseIssue("legal_basis", f"row without a number: {leftover[:60]!r}"))
        rows.append(LegalBasis(title=leftover))
    return rows


def _starts_cell(text: str, index: int, suffix: str, *, strict: bool = True) -> bool:
    """Does a new cell start at ``index`` (just after a number ending in ``suffix``)?

    Yes for a capitalised word, a title in capitals ("THÔNG TƯ SỬA ĐỔI"), a quote, another
    number, or the end; and for a lower-case word glued straight onto an all-capitals issuer
    ("257/2016/TT-BTCsửa đổi ...").
    """
    glued = index < len(text) and text[index] != " "
    while index < len(text) and text[index] == " ":
        index += 1
    if index >= len(text):
        return True
    here = text[index]
    after = text[index + 1] if index + 1 < len(text) else " "
    if here.isupper() and after.islower() and _word_onset(here, after):
        return True
    if here.isupper() and text[index : index + 12].upper().startswith(_CAPITAL_TITLE_WORDS):
        return True
    if not strict and glued and here.islower() and suffix[-1].isupper():
        return True
    return here in '"“' or bool(_LEGAL_NUMBER_START.match(text, index))


_VOWELS = frozenset("aeiouy")
_ONSETS = frozenset({"ch", "gh", "kh", "ng", "nh", "ph", "th", "tr"})


def _word_onset(first: str, second: str) -> bool:
    """Can a Vietnamese word start with these two letters? ("Cs" cannot: in "TT-BTCsửa" the
    number ends after "BTC", it does not end at "BT" before a word "Csửa")."""
    if strip_marks(second).lower() in _VOWELS or strip_marks(first).lower() in _VOWELS:
        return True
    return (first + second).lower().replace("đ", "d") in _ONSETS


def _inside_a_number(text: str, index: int) -> bool:
    """Is ``index`` in the middle of digits ("6|0/2014/...") rather than after an issuer code
    such as "QH13" whose digits the next number is glued to ("QH13|60/2014/QH13")?"""
    start = index
    while start > 0 and text[start - 1].isdigit():
        start -= 1
    if text[max(start - 2, 0) : start] == "QH":  # "QH1360/2014/QH13": "13" belongs to QH
        return index != start + 2
    return index != start


def _without_year_prefix(text: str, match: re.Match[str]) -> int:
    """ "Luật Cư trú 202068/2020/QH14": the title's year ran into the number; skip it."""
    digits = re.match(r"\d+", text[match.start() :]).group(0)
    if len(digits) > 4 and re.match(r"(19|20)\d\d", digits):
        return match.start() + 4
    return match.start()


_RESULT_TAIL = "Chọn cơ quan thực hiện"


_RESULT_CODE = re.compile(r"Mã: ?KQ[.-][A-Z]\d{2}\.\d{6}")
_RESULT_META = re.compile(r"^Từ khóa.*?Mô tả(?:Không có thông tin)?", re.S)


def parse_results(text: str, issues: list[ParseIssue]) -> list[str]:
    """Result names: "<name>Mã: KQ...[Từ khóa...Mô tả...]<name>Mã: KQ...Từ khóa..."."""
    if not text or text.strip() == NO_INFO:
        return []
    text = text.split(_RESULT_TAIL, 1)[0]
    parts = _RESULT_CODE.split(text)
    if len(parts) == 1:
        return [_tidy(text)] if _tidy(text) else []
    names = [_tidy(_RESULT_META.sub("", part)) for part in parts[:-1]]
    return [name for name in names if name]


def split_outside_parentheses(text: str) -> list[str]:
    """Split "A, B (x, y), C" at top-level commas."""
    parts, depth, current = [], 0, []
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_steps(text: str) -> list[str]:
    if not text or text.strip() == NO_INFO:
        return []
    lines = [_tidy(line) for line in text.replace("\r", "").split("\n")]
    return [line for line in lines if line]


def parse_related(text: str) -> list[str]:
    """The portal's related-procedures table: "#Tên thủ tục1<name>2<name>..." (names only)."""
    if not text or text.strip() == NO_INFO:
        return []
    body = text.removeprefix("#Tên thủ tục")
    return [_tidy(n) for n in re.split(r"(?:^|(?<=\D))\d{1,2}(?=[A-ZĐÀ-Ỹ])", body) if _tidy(n)]


def _tidy(text: str | None) -> str:
    """Collapse runs of spaces, strip edges, drop invisible marks the portal leaves in text."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u200e", "").replace("\u200b", "").replace("\xa0", " ")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n+", "\n", text)
    return text.strip()


def _optional(text: Any) -> str | None:
    text = _tidy(str(text)) if text else ""
    return None if not text or text == NO_INFO else text


# ---------------------------------------------------------------- the whole record

# Records that the data's own README flags: liên thông procedures in an older version.
KNOWN_OUTDATED = {
    "2.000986": "older version of the liên thông procedure that still mentions the household "
    "book (sổ hộ khẩu)",
    "2.001023": "older version of the liên thông procedure that still mentions the household "
    "book (sổ hộ khẩu)",
}


class RecordError(ValueError):
    """A record that cannot become a Procedure at all (no code, no name...)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def parse_record(record: dict[str, Any], *, retrieved: str | None = None) -> Procedure:
    """Turn one portal record into a Procedure; its ``issues`` list what was only partly parsed."""
    if not isinstance(record, dict):
        raise RecordError("record", "not a JSON object")
    code = str(record.get("ma_thu_tuc") or "").strip()
    if not code:
        raise RecordError("ma_thu_tuc", "missing")
    if not CODE_RE.match(code):
        raise RecordError("ma_thu_tuc", f"not a national procedure code: {code[:40]!r}")
    name = _tidy(str(record.get("ten_thu_tuc") or ""))
    if not name:
        raise RecordError("ten_thu_tuc", "empty name")
    issues: list[ParseIssue] = []
    documents, to_show, notes = parse_documents(_str(record, "thanh_phan_ho_so"), issues)
    agency = _optional(record.get("co_quan_thuc_hien")) or _optional(
        record.get("co_quan_co_tham_quyen")
    )
    return Procedure(
        code=code,
        name=name,
        field=_tidy(_str(record, "linh_vuc")),
        levels=split_outside_parentheses(_str(record, "cap_thuc_hien")),
        kind=_tidy(_str(record, "loai_thu_tuc")),
        agency=agency or "",
        target_groups=split_outside_parentheses(_str(record, "doi_tuong_thuc_hien")),
        steps=parse_steps(_str(record, "trinh_tu_thuc_hien")),
        channels=parse_channels(_str(record, "cach_thuc_thuc_hien"), issues),
        documents=documents,
        documents_to_show=to_show,
        notes=notes,
        conditions=_optional(record.get("yeu_cau_dieu_kien")),
        results=parse_results(_str(record, "ket_qua_xu_ly"), issues),
        legal_basis=parse_legal_basis(_str(record, "can_cu_phap_ly"), issues),
        decision=_optional(record.get("so_quyet_dinh")),
        portal_url=_optional(record.get("detail_url")),
        related=parse_related(_str(record, "thu_tuc_lien_quan")),
        outdated=KNOWN_OUTDATED.get(code),
        source=Source(
            name=SOURCE_NAME,
            url=_optional(record.get("detail_url")),
            retrieved=retrieved,
            file=_optional(record.get("_source_file")),
        ),
        issues=issues,
    )


def _str(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    return value if isinstance(value, str) else ""
