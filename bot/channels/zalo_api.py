"""The Zalo Official Account API as the bot uses it: send a message, upload a file, fetch a file
a citizen sent, refresh the access token. One aiohttp session; the base URLs are settings so
that tests (and a proxy) can stand in for Zalo.

Calls (Zalo OA API v3 / OAuth v4, as documented by Zalo for Official Accounts):
- POST {api}/v3.0/oa/message/cs, header ``access_token``, JSON {"recipient": {"user_id"},
  "message": {...}} -> {"error": 0, "data": {"message_id"}} or {"error": <negative>, "message"}
- POST {api}/v2.0/oa/upload/file (multipart "file") -> {"error": 0, "data": {"token"}}
- POST {oauth}/v4/oa/access_token, header ``secret_key`` (the app's), form refresh_token,
  app_id, grant_type=refresh_token -> {"access_token", "refresh_token", "expires_in"}

Error -216 means the access token has expired: the token is refreshed once and the call
repeated. Zalo's refresh token is single-use, so the new pair is stored in ``channel_tokens``
at once, under the database's write lock, which also keeps two processes from spending the
same refresh token. Network errors, timeouts, HTTP 429 and 5xx are retried with backoff a
bounded number of times; any other answer is final.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from sqlalchemy import text, update
from yarl import URL

from bot.storage.db import Database
from bot.storage.models import ChannelToken, utcnow

log = logging.getLogger("motcua.zalo")

EXPIRED_TOKEN = -216
ATTEMPTS = 4  # per call, for network errors, 429 and 5xx
RETRY_DELAY = 0.5  # seconds before the first retry; doubles, with jitter
TIMEOUT = aiohttp.ClientTimeout(total=15, connect=5)
CHANNEL = "zalo"


class ZaloError(Exception):
    """Zalo answered with an error code (or the call failed after its retries: code None)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}" if code is not None else message)
        self.code = code


@dataclass
class Tokens:
    access: str
    refresh: str


class TokenStore:
    """The current access/refresh pair: the newest of the settings and ``channel_tokens``."""

    def __init__(self, db: Database, access: str, refresh: str) -> None:
        self.db = db
        self.seed = _seed(refresh)
        self.tokens = Tokens(access, refresh)
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Take the stored pair if it descends from the refresh token in the settings."""
        async with self.db.session() as session:
            row = await session.get(ChannelToken, CHANNEL)
            if row is not None and row.seed == self.seed:
                self.tokens = Tokens(row.access_token, row.refresh_token)

    async def refresh(self, api: ZaloApi, expired: str) -> str | None:
        """A new access token after ``expired`` was refused; None if it cannot be refreshed.

        Only one refresh at a time in this process (the lock) and across processes (the
        database write transaction around read-call-store): whoever comes second finds a
        token newer than the one that expired and uses it.
        """
        async with self._lock:
            if self.tokens.access != expired:
                return self.tokens.access
            async with self.db.write_transaction() as session:
                await _lock_tokens(session)
                row = await session.get(ChannelToken, CHANNEL, with_for_update=True)
                if row is not None and row.seed == self.seed and row.access_token != expired:
                    self.tokens = Tokens(row.access_token, row.refresh_token)
                    return self.tokens.access
                if not self.tokens.refresh or not api.app_secret:
                    log.error(
                        "zalo: the access token has expired and cannot be refreshed "
                        "(set MOTCUA_ZALO_REFRESH_TOKEN and MOTCUA_ZALO_APP_SECRET_KEY)"
                    )
                    return None
                fresh = await api.refresh_tokens(self.tokens.refresh)
                if fresh is None:
                    return None
                access, refresh, expires_in = fresh
                if row is None:
                    row = ChannelToken(channel=CHANNEL)
                    session.add(row)
                row.access_token, row.refresh_token, row.seed = access, refresh, self.seed
                row.expires_at = utcnow() + timedelta(seconds=expires_in) if expires_in else None
                row.updated_at = utcnow()
                self.tokens = Tokens(access, refresh)
            log.info("zalo: access token refreshed")
            return access


class ZaloApi:
    """The OA API calls, with token refresh and retries."""

    def __init__(
        self,
        base_url: str,
        oauth_url: str,
        app_id: str,
        app_secret: str,
        tokens: TokenStore,
    ) -> None:
        self.base_url, self.oauth_url = base_url, oauth_url
        self.app_id, self.app_secret = app_id, app_secret
        self.tokens = tokens
        self.retry_delay = RETRY_DELAY
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        await self.tokens.load()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("ZaloApi.start() was not called")
        return self._session

    # -- calls ---------------------------------------------------------------------------------

    async def send_message(self, user_id: str, message: dict) -> dict:
        """Send one message to a user; the response's data, or ZaloError."""
        body = {"recipient": {"user_id": user_id}, "message": message}
        return await self._with_token(
            lambda token: self._request(
                "POST", f"{self.base_url}/v3.0/oa/message/cs", token, json=body
            )
        )

    async def upload_file(self, data: bytes, filename: str, mime_type: str) -> str:
        """Upload a file (a PDF) to send; its token."""

        def form() -> aiohttp.FormData:
            built = aiohttp.FormData()
            built.add_field("file", data, filename=filename, content_type=mime_type)
            return built

        result = await self._with_token(
            lambda token: self._request(
                "POST", f"{self.base_url}/v2.0/oa/upload/file", token, data=form
            )
        )
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str):
            raise ZaloError(None, "upload answered without a file token")
        return token

    async def download(self, url: str, limit: int) -> bytes | None:
        """A file a citizen sent (the URL comes in a signed event); None if it is larger than
        ``limit`` or cannot be fetched."""
        delay = self.retry_delay
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.session.get(url) as response:
                    if response.status >= 500 and attempt < ATTEMPTS:
                        raise aiohttp.ClientResponseError(
                            response.request_info, (), status=response.status
                        )
                    if response.status != 200:
                        log.warning("zalo: file download answered HTTP %d", response.status)
                        return None
                    if (response.content_length or 0) > limit:
                        return None
                    data = await response.content.read(limit + 1)
                    return None if len(data) > limit else data
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == ATTEMPTS:
                    log.warning("zalo: file download failed: %s", type(exc).__name__)
                    return None
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay *= 2
        return None

    async def refresh_tokens(self, refresh_token: str) -> tuple[str, str, int] | None:
        """Exchange the refresh token for a new pair; None if Zalo refuses."""
        form = {
            "refresh_token": refresh_token,
            "app_id": self.app_id,
            "grant_type": "refresh_token",
        }
        try:
            async with self.session.post(
                f"{self.oauth_url}/v4/oa/access_token",
                data=form,
                headers={"secret_key": self.app_secret},
            ) as response:
                result = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.error("zalo: token refresh failed: %s", type(exc).__name__)
            return None
        if not isinstance(result, dict) or not isinstance(result.get("access_token"), str):
            reason = (
                result.get("error_description") or result.get("error")
                if isinstance(result, dict)
                else None
            )
            log.error("zalo: token refresh refused: %s", reason or "no access token in the answer")
            return None
        try:
            expires_in = int(result.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0
        return result["access_token"], str(result.get("refresh_token") or refresh_token), expires_in

    # -- plumbing ------------------------------------------------------------------------------

    async def _with_token(self, call) -> dict:
        token = self.tokens.tokens.access
        try:
            return await call(token)
        except ZaloError as exc:
            if exc.code != EXPIRED_TOKEN:
                raise
        fresh = await self.tokens.refresh(self, token)
        if fresh is None:
            raise ZaloError(EXPIRED_TOKEN, "access token expired and could not be refreshed")
        return await call(fresh)

    async def _request(self, method: str, url: str, token: str, **kwargs) -> dict:
        """One API call with retries; the ``data`` of a successful answer."""
        delay = self.retry_delay
        for attempt in range(1, ATTEMPTS + 1):
            if callable(kwargs.get("data")):
                kwargs = {**kwargs, "data": kwargs["data"]()}  # a form can be sent only once
            try:
                async with self.session.request(
                    method, url, headers={"access_token": token}, **kwargs
                ) as response:
                    if response.status == 429 or response.status >= 500:
                        raise _Transient(f"HTTP {response.status}")
                    result = await response.json(content_type=None)
            except (aiohttp.ClientError, TimeoutError, _Transient, ValueError) as exc:
                if attempt == ATTEMPTS:
                    raise ZaloError(
                        None, f"failed {attempt} times, last: {_describe(exc)}"
                    ) from exc
                log.warning("zalo: %s failed (%s), retrying", _path(url), _describe(exc))
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 16 * self.retry_delay)
                continue
            if not isinstance(result, dict):
                raise ZaloError(None, "answer is not a JSON object")
            code = result.get("error", 0)
            if code not in (0, None):
                raise ZaloError(int(code), str(result.get("message") or ""))
            data = result.get("data")
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")


class _Transient(Exception):
    pass


# Serialises token refreshes across processes on PostgreSQL (any fixed 64-bit number).
_REFRESH_LOCK = int.from_bytes(hashlib.sha256(b"motcua:channel_tokens").digest()[:8], "big") >> 1


async def _lock_tokens(session) -> None:
    """Take, for the rest of the transaction, the lock that keeps two processes from refreshing
    at once. ``SELECT ... FOR UPDATE`` alone does not: SQLite ignores it (and starts
    transactions deferred, so both would read the old pair), and in PostgreSQL it locks nothing
    before the first refresh has stored a row."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})
    else:  # SQLite: any write, even one that changes nothing, takes the database's write lock
        await session.execute(
            update(ChannelToken).where(ChannelToken.channel == CHANNEL).values(channel=CHANNEL)
        )


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, _Transient) else type(exc).__name__


def _path(url: str) -> str:
    """The API path only: never a token or a query in the logs."""
    return URL(url).path


def _seed(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest() if refresh_token else ""
