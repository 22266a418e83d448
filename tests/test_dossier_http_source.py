"""The HTTP dossier source against a real fake provincial system: answers, faults, retries, the
circuit breaker and the cached answer, all within the deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.dossiers.http_source import (
    DEFAULT_MAPPING,
    CircuitBreaker,
    FieldMapping,
    HttpDossierSource,
    MemoryCache,
    SchemaError,
)
from bot.dossiers.model import VN_TZ, ReceiptChannel, dossier_to_dict
from tests.fakes.provincial_api import FAULTS, FakeProvincialAPI

CODE = "H26.22-251002-0012"
PERSONAL = ("Nguyễn Thị Hoa", "Láng", "001190012345", "0912", "345 678")
# Tight limits so "slow" costs about a second per lookup; one test below uses the real defaults.
FAST = {"deadline": 1.0, "attempt_timeout": 0.3, "attempts": 3, "backoff": 0.05}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def api() -> AsyncIterator[FakeProvincialAPI]:
    async with FakeProvincialAPI() as fake:
        yield fake


@pytest.fixture
async def make_source(api):
    sources: list[HttpDossierSource] = []

    def make(**kwargs) -> HttpDossierSource:
        options = {"cache": MemoryCache(), **FAST, **kwargs}
        source = HttpDossierSource("xa-dong-tam", api.url_template, DEFAULT_MAPPING, **options)
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.close()


def _vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VN_TZ).astimezone(UTC)


async def _cached_lookup(api, source) -> datetime:
    """Look a healthy dossier up once, so it is cached; returns when."""
    api.add_dossier(CODE, status="Đang xử lý")
    first = await source.lookup(CODE)
    assert first.dossier is not None and not first.stale
    return first.as_of


# -- answers ----------------------------------------------------------------------------------


async def test_found_dossier_is_mapped_with_history_and_vietnamese_dates(api, make_source):
    api.add_dossier(CODE, received_at="15/01/2026 08:30", due_at="22/01/2026", channel="Trực tuyến")
    api.add_status(CODE, "Đang xử lý", "2026-01-16T10:05:00+07:00")
    api.add_status(CODE, "Chờ bổ sung", "19/01/2026 14:20:15", "Bổ sung giấy chứng sinh bản gốc")
    source = make_source()
    before = datetime.now(UTC)

    result = await source.lookup(CODE)

    dossier = result.dossier
    assert dossier is not None and not result.stale and not result.unavailable
    assert before <= result.as_of <= datetime.now(UTC)
    assert dossier.code == CODE and dossier.unit == "xa-dong-tam"
    assert dossier.status == "needs_documents"
    assert dossier.channel is ReceiptChannel.ONLINE
    assert dossier.received_at == _vn(2026, 1, 15, 8, 30)
    assert dossier.due_at == _vn(2026, 1, 22)
    assert dossier.procedure_code == "1.001193"
    assert dossier.procedure_name == "Đăng ký khai sinh"
    assert [(c.status, c.at) for c in dossier.history] == [
        ("received", _vn(2026, 1, 15, 8, 30)),
        ("in_progress", _vn(2026, 1, 16, 10, 5)),
        ("needs_documents", _vn(2026, 1, 19, 14, 20, 15)),
    ]
    assert dossier.last_note == "Bổ sung giấy chứng sinh bản gốc"
    assert dossier.phone_last4 == "5678"
    assert [c.code for c in api.calls] == [CODE]
    assert source.cache.entries[("xa-dong-tam", CODE)] == (dossier, result.as_of)


async def test_unknown_code_is_none_and_not_a_failure(api, make_source):
    breaker = CircuitBreaker(threshold=1)
    source = make_source(breaker=breaker)
    result = await source.lookup("H26.22-251002-9999")
    assert result.dossier is None and not result.stale and not result.unavailable
    assert breaker.state == "closed"
    assert len(api.calls) == 1  # a 404 is an answer: no retry


async def test_code_is_quoted_into_the_url(api, make_source):
    api.add_dossier("A B#1/2?x")
    result = await make_source().lookup("A B#1/2?x")
    assert result.dossier is not None and result.dossier.code == "A B#1/2?x"
    assert api.calls[0].code == "A B#1/2?x"


async def test_token_and_accept_headers_are_sent():
    async with FakeProvincialAPI(require_token="s3cret-token") as api:
        api.add_dossier(CODE)
        source = HttpDossierSource(
            "xa", api.url_template, DEFAULT_MAPPING, cache=MemoryCache(), token="s3cret-token"
        )
        try:
            result = await source.lookup(CODE)
        finally:
            await source.close()
    assert result.dossier is not None
    assert api.calls[0].headers["Authorization"] == "Bearer s3cret-token"
    assert api.calls[0].headers["Accept"] == "application/json"


async def test_refused_request_is_not_retried():
    async with FakeProvincialAPI(require_token="right") as api:
        api.add_dossier(CODE)
        source = HttpDossierSource(
            "xa",
            api.url_template,
            DEFAULT_MAPPING,
            cache=MemoryCache(),
            token="wrong",
            breaker=CircuitBreaker(threshold=1),
            **FAST,
        )
        try:
            result = await source.lookup(CODE)
        finally:
            await source.close()
    assert result.unavailable and result.dossier is None
    assert len(api.calls) == 1
    assert source.breaker.state == "open"  # refused is still a failed lookup


async def test_personal_fields_never_reach_the_dossier_or_the_cache(api, make_source):
    api.add_dossier(CODE, NoiSinh="Bệnh viện Phụ sản Hà Nội")
    source = make_source()
    result = await source.lookup(CODE)
    stored = repr(dossier_to_dict(source.cache.entries[("xa-dong-tam", CODE)][0]))
    shown = repr(dossier_to_dict(result.dossier))
    for text in (*PERSONAL, "Phụ sản"):
        assert text not in stored and text not in shown
    assert result.dossier.phone_last4 == "5678"


async def test_logs_hold_neither_token_nor_code_nor_phone(api, make_source, caplog):
    caplog.set_level(logging.DEBUG, logger="motcua.dossiers.http")
    api.add_dossier(CODE)
    source = make_source(token="s3cret-token")
    await source.lookup(CODE)
    api.fault = "wrong_schema"
    await source.lookup(CODE)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("motcua"))
    assert "lookup failed" in text and "SchemaError(code)" in text
    for secret in ("s3cret", CODE, "251002", "5678", "Nguyễn", "result"):
        assert secret not in text


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_gives_the_cached_answer_with_its_time(api, make_source, fault):
    source = make_source()
    cached_at = await _cached_lookup(api, source)
    api.add_status(CODE, "Đã có kết quả", "20/01/2026 09:40")  # the fresh answer never arrives
    api.fault = fault
    start = time.monotonic()

    result = await source.lookup(CODE)

    assert time.monotonic() - start < FAST["deadline"] + 0.5
    assert result.stale and not result.unavailable
    assert result.as_of == cached_at
    assert result.dossier.status == "in_progress"
    assert len(api.calls) >= 2 and all(c.fault == fault for c in api.calls[1:])


@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_with_nothing_cached_is_unavailable(api, make_source, fault):
    api.add_dossier(CODE)
    api.fault = fault
    source = make_source()
    start = time.monotonic()
    result = await source.lookup(CODE)
    assert time.monotonic() - start < FAST["deadline"] + 0.5
    assert result.unavailable and not result.stale and result.dossier is None
    assert source.cache.entries == {}
    assert abs(result.as_of - datetime.now(UTC)) < timedelta(seconds=5)


async def test_fast_faults_are_retried_up_to_the_attempt_limit(api, make_source):
    api.add_dossier(CODE)
    api.fault = "http_500"
    await make_source(attempts=3).lookup(CODE)
    assert len(api.calls) == 3


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_fault_that_clears_is_retried_into_a_fresh_answer(api, make_source, fault):
    api.add_dossier(CODE, status="Đang xử lý")
    api.fault, api.fail_times = fault, 1
    source = make_source(breaker=CircuitBreaker(threshold=1))
    result = await source.lookup(CODE)
    assert result.dossier is not None and result.dossier.status == "in_progress"
    assert not result.stale and not result.unavailable
    assert [c.fault for c in api.calls] == [fault, None]
    assert source.breaker.state == "closed"  # with threshold 1, any counted failure opens it


async def test_real_defaults_answer_within_three_seconds_on_a_five_second_delay(api):
    source = HttpDossierSource("xa", api.url_template, DEFAULT_MAPPING, cache=MemoryCache())
    try:
        cached_at = await _cached_lookup(api, source)
        api.fault = "slow"  # api.delay is 5 s
        start = time.monotonic()
        result = await source.lookup(CODE)
        elapsed = time.monotonic() - start
    finally:
        await source.close()
    assert elapsed < 3.0
    assert result.stale and result.as_of == cached_at and result.dossier.code == CODE


# -- circuit breaker --------------------------------------------------------------------------


async def test_open_breaker_makes_no_call_then_one_trial_closes_it(api, make_source):
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, reset_after=30.0, clock=clock)
    source = make_source(breaker=breaker, attempts=2)
    cached_at = await _cached_lookup(api, source)

    api.fault = "http_500"
    for _ in range(2):
        assert (await source.lookup(CODE)).stale
    assert breaker.state == "open"
    calls = len(api.calls)
    assert calls == 1 + 2 * 2  # the healthy lookup, then two lookups of two attempts

    result = await source.lookup(CODE)
    assert len(api.calls) == calls  # no network call while open
    assert result.stale and result.as_of == cached_at and result.dossier.status == "in_progress"
    assert (await source.lookup("H26.22-251002-0404")).unavailable  # nothing cached for it
    assert len(api.calls) == calls

    clock.now += 29.9
    await source.lookup(CODE)
    assert len(api.calls) == calls

    api.fault = None
    api.add_status(CODE, "Đã có kết quả", "20/01/2026 09:40")
    clock.now += 0.1
    result = await source.lookup(CODE)
    assert len(api.calls) == calls + 1
    assert not result.stale and result.dossier.status == "result_ready"
    assert breaker.state == "closed"


async def test_failed_trial_reopens_the_breaker(api, make_source):
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, reset_after=10.0, clock=clock)
    source = make_source(breaker=breaker, attempts=1)
    api.add_dossier(CODE)
    api.fault = "http_500"
    assert (await source.lookup(CODE)).unavailable
    assert breaker.state == "open"
    clock.now += 10
    await source.lookup(CODE)
    assert len(api.calls) == 2 and breaker.state == "open"
    clock.now += 5
    await source.lookup(CODE)
    assert len(api.calls) == 2


def test_breaker_opens_after_threshold_consecutive_failures():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_after=30.0, clock=clock)
    breaker.failure()
    breaker.failure()
    breaker.success()  # not consecutive: the count starts again
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()


def test_breaker_half_open_lets_exactly_one_trial_through():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, reset_after=30.0, clock=clock)
    breaker.failure()
    clock.now += 29.99
    assert not breaker.allow()
    clock.now += 0.01
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow() and not breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()


def test_breaker_failed_trial_waits_a_full_period_again():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=2, reset_after=30.0, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 30
    assert breaker.allow()
    breaker.failure()  # one failure is enough while half-open
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_breaker_trial_that_never_reports_is_replaced_after_a_period():
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, reset_after=30.0, clock=clock)
    breaker.failure()
    clock.now += 30
    assert breaker.allow()  # this trial's lookup is cancelled and never reports
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


# -- field mapping ----------------------------------------------------------------------------


def _record(**data) -> dict:
    base = {"MaHoSo": CODE, "TrangThai": "Mới tiếp nhận", "NgayTiepNhan": "15/01/2026"}
    return {"data": {**base, **data}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15/01/2026", _vn(2026, 1, 15)),
        ("15/01/2026 08:30", _vn(2026, 1, 15, 8, 30)),
        ("15/01/2026 08:30:45", _vn(2026, 1, 15, 8, 30, 45)),
        ("2026-01-15T08:30:00", _vn(2026, 1, 15, 8, 30)),
        ("2026-01-15T01:30:00Z", _vn(2026, 1, 15, 8, 30)),
        ("2026-01-15 08:30:00+07:00", _vn(2026, 1, 15, 8, 30)),
    ],
)
def test_date_formats(text, expected):
    assert DEFAULT_MAPPING.parse(_record(NgayTiepNhan=text), "xa").received_at == expected


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"result": {"id": 1}}, "code"),
        (_record(TrangThai=None), "status"),
        (_record(NgayTiepNhan=""), "received_at"),
        (_record(NgayTiepNhan="hôm qua"), "received_at"),
        (_record(TrangThai="Đã hủy"), "status"),
        (_record(MaHoSo={"HoTen": "Nguyễn Thị Hoa"}), "code"),
        (_record(QuaTrinhXuLy=[{"TrangThai": "Lạ", "ThoiDiem": "15/01/2026"}]), "history.status"),
        (_record(QuaTrinhXuLy=[{"TrangThai": "Đang xử lý"}]), "history.at"),
        (_record(QuaTrinhXuLy="none"), "history"),
        ([1, 2], "code"),
    ],
)
def test_schema_errors_name_the_field(data, field):
    with pytest.raises(SchemaError) as raised:
        DEFAULT_MAPPING.parse(data, "xa")
    assert str(raised.value) == field


def test_values_are_matched_loosely_and_optional_fields_may_be_absent():
    import unicodedata

    data = _record(TrangThai=unicodedata.normalize("NFD", "  ĐANG xử  lý "), HinhThuc="Lạ")
    dossier = DEFAULT_MAPPING.parse(data, "xa")
    assert dossier.status == "in_progress"
    assert dossier.channel is ReceiptChannel.IN_PERSON  # unmapped channel: the counter
    assert dossier.due_at is None and dossier.history == () and dossier.phone_last4 is None


def test_custom_mapping_from_settings():
    mapping = FieldMapping.from_settings(
        {
            "code": "result.0.receiptNo",
            "status": "result.0.state",
            "received_at": "result.0.received",
            "phone": "result.0.applicant.mobile",
        },
        {"3": "in_progress"},
        {},
    )
    data = {"result": [{"receiptNo": "X-1", "state": 3, "received": "2026-01-15T08:30:00+07:00"}]}
    data["result"][0]["applicant"] = {"mobile": "+84 912-345-678", "name": "Nguyễn Thị Hoa"}
    dossier = mapping.parse(data, "xa")
    assert (dossier.code, dossier.status, dossier.phone_last4) == ("X-1", "in_progress", "5678")
    assert mapping.channels == DEFAULT_MAPPING.channels  # the part not set is the default
    assert FieldMapping.from_settings({}, {}, {}).fields == DEFAULT_MAPPING.fields


@pytest.mark.parametrize(
    "setting",
    [
        {"fields": {"code": "a", "status": "b"}},  # received_at missing
        {"fields": {"code": "a", "status": "b", "received_at": "c", "name": "d"}},
        {"statuses": {"Xong": "done"}},
        {"channels": {"Zalo": "chat"}},
    ],
)
def test_invalid_mapping_settings_fail_at_start(setting):
    with pytest.raises(ValueError, match="invalid dossier field mapping"):
        FieldMapping.from_settings(**setting)
