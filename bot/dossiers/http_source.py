"""Dossier statuses from a provincial one-stop system over HTTP, degrading to the last known answer.

The citizen must get an answer within 3 seconds whatever the upstream does: every lookup runs
under one overall deadline, failed attempts are retried with backoff inside it, a circuit breaker
stops calling an upstream that keeps failing, and when no fresh answer comes the cached one is
shown with its time ("hệ thống đang gián đoạn, thông tin lúc 09:40").

The upstream's JSON is read through a ``FieldMapping`` (dotted paths, status and channel values)
set per province. Only the fields a ``Dossier`` has are read: the applicant's name, address or ID
number are never copied even when the upstream sends them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from bot.dossiers.model import STATUSES, Dossier, Lookup, ReceiptChannel, StatusChange, utc
from bot.metrics import UPSTREAM_ERRORS

log = logging.getLogger("motcua.dossiers.http")

# Bounds a DB-backed cache so that deadline (2.5 s) + cache stays within the 3-second promise.
_CACHE_TIMEOUT = 0.4
_MAX_BACKOFF = 2.0
_REQUIRED = ("code", "status", "received_at")
_OPTIONAL = ("procedure_code", "procedure_name", "due_at", "channel", "history", "phone")
_HISTORY = ("history.status", "history.at", "history.note")

# The default shape is our own invention (no province publishes one we could copy): a plausible
# {"data": {...}} record with Vietnamese field names, which tests/fakes/provincial_api.py serves.
# A province whose system differs sets its own paths and values in the settings.
DEFAULT_FIELDS = {
    "code": "data.MaHoSo",
    "status": "data.TrangThai",
    "procedure_code": "data.MaTTHC",
    "procedure_name": "data.TenTTHC",
    "received_at": "data.NgayTiepNhan",
    "due_at": "data.NgayHenTra",
    "channel": "data.HinhThuc",
    "history": "data.QuaTrinhXuLy",
    "history.status": "TrangThai",
    "history.at": "ThoiDiem",
    "history.note": "GhiChu",
    "phone": "data.SoDienThoai",
}
DEFAULT_STATUSES = {
    "Mới tiếp nhận": "received",
    "Đang xử lý": "in_progress",
    "Chờ bổ sung": "needs_documents",
    "Tạm dừng": "paused",
    "Đã có kết quả": "result_ready",
    "Đã trả kết quả trước hạn": "returned_early",
    "Đã trả kết quả đúng hạn": "returned_on_time",
    "Đã trả kết quả quá hạn": "returned_late",
    "Không đủ điều kiện": "rejected",
    "Rút hồ sơ": "withdrawn",
}
DEFAULT_CHANNELS = {"Trực tuyến": "online", "Trực tiếp": "in_person", "Bưu chính": "postal"}


class SchemaError(ValueError):
    """The upstream answered with JSON we cannot read; the message names our field only."""


def _key(value: Any) -> str:
    # Upstream values may arrive decomposed (NFD), in another case, or as numbers.
    return " ".join(unicodedata.normalize("NFC", str(value)).casefold().split())


def _parse_time(value: Any, field: str) -> datetime:
    text = str(value).strip()
    for pattern in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
        try:
            return utc(datetime.strptime(text, pattern))
        except ValueError:
            pass
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise SchemaError(field) from None


class FieldMapping:
    """Where our fields are in the upstream JSON, and what its status and channel values mean."""

    def __init__(
        self,
        fields: Mapping[str, str],
        statuses: Mapping[str, str],
        channels: Mapping[str, str] | None = None,
    ) -> None:
        unknown = set(fields) - {*_REQUIRED, *_OPTIONAL, *_HISTORY}
        missing = [name for name in _REQUIRED if not fields.get(name)]
        bad_status = {v for v in statuses.values() if v not in STATUSES}
        bad_channel = {v for v in (channels or {}).values()} - {c.value for c in ReceiptChannel}
        if unknown or missing or bad_status or bad_channel:  # a settings error: fail at start
            raise ValueError(
                f"invalid dossier field mapping: unknown fields {sorted(unknown)}, missing "
                f"{missing}, unknown statuses {sorted(bad_status)}, channels {sorted(bad_channel)}"
            )
        self.fields = dict(fields)
        self.statuses = {_key(k): v for k, v in statuses.items()}
        self.channels = {_key(k): ReceiptChannel(v) for k, v in (channels or {}).items()}

    @classmethod
    def from_settings(
        cls,
        fields: Mapping[str, str] | None = None,
        statuses: Mapping[str, str] | None = None,
        channels: Mapping[str, str] | None = None,
    ) -> FieldMapping:
        """From the three settings; an empty one is replaced whole by its default (not merged,
        so a province's mapping never silently mixes with paths of our invented shape)."""
        return cls(
            fields or DEFAULT_FIELDS, statuses or DEFAULT_STATUSES, channels or DEFAULT_CHANNELS
        )

    def _get(self, data: Any, name: str) -> Any:
        path = self.fields.get(name)
        if not path:
            return None
        for part in path.split("."):
            if isinstance(data, Mapping):
                data = data.get(part)
            elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
                data = data[int(part)]
            else:
                return None
        return None if data == "" else data

    def _value(self, data: Any, name: str) -> str | None:
        """A scalar field as text: an object where a value belongs is a schema error, not text."""
        value = self._get(data, name)
        if isinstance(value, Mapping | list | bool):
            raise SchemaError(name)
        return None if value is None else str(value)

    def _status(self, value: Any, field: str) -> str:
        try:
            return self.statuses[_key(value)]
        except KeyError:
            raise SchemaError(field) from None

    def parse(self, data: Any, unit: str) -> Dossier:
        """The Dossier in an upstream answer; SchemaError names the first field that is wrong."""
        scalars = (*_REQUIRED, "procedure_code", "procedure_name", "due_at", "channel")
        values = {name: self._value(data, name) for name in scalars}
        for name in _REQUIRED:
            if values[name] is None:
                raise SchemaError(name)
        history = self._get(data, "history") or []
        if not isinstance(history, list):
            raise SchemaError("history")
        changes = []
        for item in history:
            status, at = self._value(item, "history.status"), self._value(item, "history.at")
            for name, value in (("history.status", status), ("history.at", at)):
                if value is None:
                    raise SchemaError(name)
            note = self._value(item, "history.note") or ""
            changes.append(
                StatusChange(
                    self._status(status, "history.status"), _parse_time(at, "history.at"), note
                )
            )
        changes.sort(key=lambda c: c.at)  # some systems list newest first; last_note needs last
        channel = self.channels.get(_key(values["channel"])) if values["channel"] else None
        if values["channel"] and channel is None:
            log.warning("unmapped value in field=channel unit=%s; taken as in_person", unit)
        digits = re.sub(r"\D", "", self._value(data, "phone") or "")
        return Dossier(
            code=values["code"],
            unit=unit,
            received_at=_parse_time(values["received_at"], "received_at"),
            # Commune desks receive most dossiers over the counter: the least surprising default.
            channel=channel or ReceiptChannel.IN_PERSON,
            status=self._status(values["status"], "status"),
            procedure_code=values["procedure_code"],
            procedure_name=values["procedure_name"],
            due_at=_parse_time(values["due_at"], "due_at") if values["due_at"] else None,
            history=tuple(changes),
            phone_last4=digits[-4:] if len(digits) >= 4 else None,  # only for the second factor
        )


DEFAULT_MAPPING = FieldMapping(DEFAULT_FIELDS, DEFAULT_STATUSES, DEFAULT_CHANNELS)


class CircuitBreaker:
    """Closed; open after ``threshold`` consecutive failures; half-open after ``reset_after``
    seconds, letting one trial through whose success closes it and failure re-opens it."""

    def __init__(
        self,
        threshold: int = 3,
        reset_after: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold, self.reset_after, self.clock = threshold, reset_after, clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_at: float | None = None

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self._opened_at >= self.reset_after else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "open":
            return False
        # A trial whose lookup was cancelled never reports back: give another after reset_after.
        if self._trial_at is not None and self.clock() - self._trial_at < self.reset_after:
            return False
        self._trial_at = self.clock()
        return True

    def success(self) -> None:
        self._failures, self._opened_at, self._trial_at = 0, None, None

    def failure(self) -> None:
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.threshold:
            self._opened_at, self._trial_at = self.clock(), None


class DossierCache(Protocol):
    """The last good answer per (unit, code), shown when the upstream is down or slow."""

    async def get(self, unit: str, code: str) -> tuple[Dossier, datetime] | None: ...

    async def put(self, unit: str, code: str, dossier: Dossier, fetched_at: datetime) -> None: ...


class MemoryCache:
    """A DossierCache in a dict (tests, single-process deployments)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[Dossier, datetime]] = {}

    async def get(self, unit: str, code: str) -> tuple[Dossier, datetime] | None:
        return self.entries.get((unit, code))

    async def put(self, unit: str, code: str, dossier: Dossier, fetched_at: datetime) -> None:
        self.entries[(unit, code)] = (dossier, fetched_at)


class _Retryable(Exception):
    """A failure worth another attempt (5xx, invalid JSON); the message is safe to log."""


class _Refused(Exception):
    """A 4xx other than 404: the same request would be refused again."""


def _reason(exc: BaseException) -> str:
    # aiohttp messages can hold the URL (and so the code); our own messages hold no payload.
    if isinstance(exc, _Retryable | _Refused | SchemaError):
        return f"{type(exc).__name__}({exc})"
    return type(exc).__name__


class HttpDossierSource:
    """Looks codes up in one unit's provincial system; answers within ``deadline`` (+ cache)."""

    name = "http"
    remote = True  # lookups cross the network: callers run them outside database transactions

    def __init__(
        self,
        unit: str,
        url_template: str,
        mapping: FieldMapping,
        *,
        cache: DossierCache,
        token: str | None = None,
        deadline: float = 2.5,
        attempt_timeout: float = 1.0,
        attempts: int = 3,
        backoff: float = 0.2,
        breaker: CircuitBreaker | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.unit, self.url_template, self.mapping, self.cache = unit, url_template, mapping, cache
        self.deadline, self.attempt_timeout = deadline, attempt_timeout
        self.attempts, self.backoff = max(1, attempts), backoff
        self.breaker = breaker or CircuitBreaker()
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session, self._owns_session = session, session is None

    async def lookup(self, code: str) -> Lookup:
        """Fresh answer, else the cached one marked stale, else ``unavailable``; never raises
        for upstream trouble."""
        # The code identifies a citizen's dossier: logs carry a short hash of it, never the code.
        where = f"unit={self.unit} code={hashlib.sha256(code.encode()).hexdigest()[:10]}"
        if not self.breaker.allow():
            log.info("breaker open, no upstream call %s", where)
            return await self._fallback(code)
        url = self.url_template.format(code=urllib.parse.quote(code, safe=""))
        try:
            async with asyncio.timeout(self.deadline):
                dossier = await self._fetch_with_retries(url, where)
        except (TimeoutError, aiohttp.ClientError, _Retryable, _Refused, SchemaError) as exc:
            self.breaker.failure()  # one per lookup: attempts of one lookup are one outage
            UPSTREAM_ERRORS.inc()
            log.warning(
                "lookup failed %s reason=%s breaker=%s", where, _reason(exc), self.breaker.state
            )
            return await self._fallback(code)
        self.breaker.success()
        now = datetime.now(UTC)
        if dossier is not None:
            try:
                async with asyncio.timeout(_CACHE_TIMEOUT):
                    await self.cache.put(self.unit, code, dossier, now)
            except Exception as exc:  # a cache problem must not hide a fresh answer
                log.warning("cache put failed unit=%s reason=%s", self.unit, type(exc).__name__)
        return Lookup(dossier, now)

    async def _fetch_with_retries(self, url: str, where: str) -> Dossier | None:
        for attempt in range(1, self.attempts):
            try:
                return await self._fetch(url)
            except (TimeoutError, aiohttp.ClientError, _Retryable, SchemaError) as exc:
                log.info("attempt %d failed %s reason=%s", attempt, where, _reason(exc))
            await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), _MAX_BACKOFF))
        return await self._fetch(url)  # the last attempt: its failure fails the lookup

    async def _fetch(self, url: str) -> Dossier | None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.attempt_timeout)
        async with self._session.get(url, headers=self._headers, timeout=timeout) as response:
            if response.status == 404:
                return None
            if response.status >= 500:
                raise _Retryable(f"HTTP {response.status}")
            if not 200 <= response.status < 300:
                raise _Refused(f"HTTP {response.status}")
            body = await response.read()
        try:
            data = json.loads(body)
        except ValueError:
            raise _Retryable("invalid JSON") from None
        return self.mapping.parse(data, self.unit)

    async def _fallback(self, code: str) -> Lookup:
        try:
            async with asyncio.timeout(_CACHE_TIMEOUT):
                cached = await self.cache.get(self.unit, code)
        except Exception as exc:  # the citizen still gets "unavailable" in time
            log.warning("cache get failed unit=%s reason=%s", self.unit, type(exc).__name__)
            cached = None
        if cached is None:
            return Lookup(None, datetime.now(UTC), unavailable=True)
        dossier, fetched_at = cached
        return Lookup(dossier, fetched_at, stale=True)

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
