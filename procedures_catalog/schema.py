"""The catalogue's typed schema: a Procedure (thủ tục hành chính) and its parts, and a Unit.

Every object converts to and from plain JSON-ready dicts (``to_dict`` / ``from_dict``), which is
the format of the bundled catalogue files and of ``motcua catalogue export --json``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from dataclasses import field as _field
from enum import StrEnum
from typing import Any

CODE_RE = re.compile(r"^\d\.\d{6}$")  # national code, e.g. 1.001193


class Channel(StrEnum):
    """How a dossier can be submitted (hình thức nộp)."""

    IN_PERSON = "in_person"  # Trực tiếp
    ONLINE = "online"  # Trực tuyến
    POSTAL = "postal"  # Dịch vụ bưu chính


class TimeUnit(StrEnum):
    WORKING_DAYS = "working_days"  # ngày làm việc
    DAYS = "days"  # ngày
    HOURS = "hours"  # giờ
    MONTHS = "months"  # tháng


@dataclass(slots=True)
class ProcessingTime:
    """Thời hạn giải quyết. value/unit None when the record gives no information."""

    value: float | None = None
    unit: TimeUnit | None = None
    unit_inferred: bool = False  # the record gave a bare number; working days assumed
    text: str = ""

    @property
    def known(self) -> bool:
        return self.value is not None and self.unit is not None


@dataclass(slots=True)
class Fee:
    """Phí, lệ phí for one channel, with the original text kept beside the parsed amount."""

    amount: int | None = None
    currency: str | None = None  # "VND" or "USD"
    per: str | None = None  # "trang", "bản", "hồ sơ", "lần"...
    free: bool = False
    set_by_province: bool = False  # the amount is decided by the provincial People's Council
    unknown: bool = False  # "Không có thông tin"
    text: str = ""


@dataclass(slots=True)
class ChannelOption:
    """One row of the submission table: a channel with its time, fees and description."""

    channel: Channel
    time: ProcessingTime
    fees: list[Fee] = _field(default_factory=list)
    description: str = ""


@dataclass(slots=True)
class DocumentRequirement:
    """One paper in the dossier (thành phần hồ sơ) or to show at the desk (xuất trình)."""

    name: str
    originals: int = 0  # bản chính
    copies: int = 0  # bản sao
    photocopies: int = 0  # bản chụp
    condition: str | None = None  # e.g. "trường hợp ủy quyền"
    form: str | None = None  # form template (mẫu đơn, tờ khai) when the record names one
    group: str | None = None  # the table heading it sits under, e.g. "Đối với tổ chức"
    details: str | None = None  # the rest of the record's text after the first sentence


@dataclass(slots=True)
class LegalBasis:
    """Căn cứ pháp lý: a legal document's title and number (e.g. 123/2015/NĐ-CP)."""

    title: str
    number: str | None = None


@dataclass(slots=True)
class Source:
    """Where a record came from, kept beside the facts."""

    name: str
    url: str | None = None
    retrieved: str | None = None
    file: str | None = None


@dataclass(slots=True)
class ParseIssue:
    """A field that could not be parsed fully, and why."""

    field: str
    reason: str


@dataclass(slots=True)
class Procedure:
    """A published administrative procedure (thủ tục hành chính), keyed by its national code."""

    code: str
    name: str
    field: str = ""  # lĩnh vực
    levels: list[str] = _field(default_factory=list)  # cấp thực hiện
    kind: str = ""  # loại thủ tục
    agency: str = ""  # cơ quan thực hiện
    target_groups: list[str] = _field(default_factory=list)  # đối tượng thực hiện
    steps: list[str] = _field(default_factory=list)  # trình tự thực hiện
    channels: list[ChannelOption] = _field(default_factory=list)  # cách thức thực hiện
    documents: list[DocumentRequirement] = _field(default_factory=list)  # giấy tờ phải nộp
    documents_to_show: list[DocumentRequirement] = _field(default_factory=list)  # xuất trình
    notes: list[str] = _field(default_factory=list)  # lưu ý
    conditions: str | None = None  # yêu cầu, điều kiện
    results: list[str] = _field(default_factory=list)  # kết quả
    legal_basis: list[LegalBasis] = _field(default_factory=list)
    decision: str | None = None  # số quyết định công bố
    portal_url: str | None = None
    related: list[str] = _field(default_factory=list)  # thủ tục liên quan / liên thông
    online_level: str | None = None  # "toàn trình" / "một phần" when known
    outdated: str | None = None  # why this record should not be relied on, when known
    source: Source | None = None
    issues: list[ParseIssue] = _field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return _drop_empty(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Procedure:
        """Build from a dict (bundled file, export); raises ValueError naming the bad field."""
        data = dict(data)
        code = str(data.get("code", "")).strip()
        if not CODE_RE.match(code):
            raise ValueError(f"code: not a national procedure code: {code!r}")
        name = str(data.get("name", "")).strip()
        if not name:
            raise ValueError("name: empty")
        try:
            return cls(
                code=code,
                name=name,
                field=data.get("field", ""),
                levels=list(data.get("levels", [])),
                kind=data.get("kind", ""),
                agency=data.get("agency", ""),
                target_groups=list(data.get("target_groups", [])),
                steps=list(data.get("steps", [])),
                channels=[_channel(c) for c in data.get("channels", [])],
                documents=[DocumentRequirement(**d) for d in data.get("documents", [])],
                documents_to_show=[
                    DocumentRequirement(**d) for d in data.get("documents_to_show", [])
                ],
                notes=list(data.get("notes", [])),
                conditions=data.get("conditions"),
                results=list(data.get("results", [])),
                legal_basis=[LegalBasis(**b) for b in data.get("legal_basis", [])],
                decision=data.get("decision"),
                portal_url=data.get("portal_url"),
                related=list(data.get("related", [])),
                online_level=data.get("online_level"),
                outdated=data.get("outdated"),
                source=Source(**data["source"]) if data.get("source") else None,
                issues=[ParseIssue(**i) for i in data.get("issues", [])],
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{code}: {exc}") from None

    def channel(self, channel: Channel) -> ChannelOption | None:
        return next((c for c in self.channels if c.channel == channel), None)


def _channel(data: dict[str, Any]) -> ChannelOption:
    time = dict(data.get("time") or {})
    if time.get("unit"):
        time["unit"] = TimeUnit(time["unit"])
    return ChannelOption(
        channel=Channel(data["channel"]),
        time=ProcessingTime(**time),
        fees=[Fee(**f) for f in data.get("fees", [])],
        description=data.get("description", ""),
    )


@dataclass(slots=True)
class Unit:
    """A commune or ward (xã, phường) running a one-stop desk, and what it applies."""

    id: str
    name: str
    province: str
    address: str = ""
    hours: str = ""
    hotline: str | None = None
    portal_url: str | None = None
    applied_codes: list[str] = _field(default_factory=list)
    # Local facts that override the national record, e.g. a fee set by the provincial council:
    # {"1.004873": {"fee": "...", "source": "Nghị quyết số .../NQ-HĐND"}}
    overrides: dict[str, dict[str, str]] = _field(default_factory=dict)
    demo: bool = False

    def applies(self, code: str) -> bool:
        return code in self.applied_codes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Unit:
        for required in ("id", "name", "province"):
            if not str(data.get(required, "")).strip():
                raise ValueError(f"unit {required}: empty")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unit: unknown fields {sorted(unknown)}")
        return cls(**data)


def _drop_empty(value: Any) -> Any:
    """Remove None, "", [], {} and False from nested dicts to keep the files small and readable."""
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {}, False)}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value
