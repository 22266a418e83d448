"""Settings from environment variables prefixed ``MOTCUA_`` and an optional ``.env`` file."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.dossiers.model import DEFAULT_CODE_PATTERN
from bot.i18n import SUPPORTED_LOCALES
from bot.storage.db import async_url

ENV_PREFIX = "MOTCUA_"


# What a unit id looks like: it goes into buttons (64 bytes on Telegram), links and paths.
UNIT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


class Settings(BaseSettings):
    """Every setting of the bot; see README for the list with examples."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///var/motcua.sqlite3"
    # PostgreSQL connections each process keeps open (5 more for a moment); processes ×
    # (this + 5) must stay under the server's max_connections (100 by default).
    database_pool_size: int = 15
    host: str = "127.0.0.1"
    port: int = 8080
    default_locale: str = "vi"
    log_level: str = "INFO"
    # How many processes serve this deployment (`motcua run --workers N` sets it; set it
    # yourself when processes run on several machines). Above 1, webhooks are answered only
    # after the replies went out, so that a chat's next update, which another process may
    # handle, cannot overtake them.
    workers: int = 1
    # "text" (one readable line per event) or "json" (one JSON object per line).
    log_format: Literal["text", "json"] = "text"
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed, e.g.
    # ["127.0.0.1"] when nginx runs on the same machine: the staff login's per-address limit
    # then counts each officer's own address instead of nginx's (bot/proxies.py).
    trusted_proxies: list[str] = []
    # Set when the web chat is served over HTTPS (behind a reverse proxy) so cookies are Secure.
    web_secure_cookies: bool = False
    # Which catalogue the bot answers from ("commune" bundled by default, or "national"...).
    catalogue: str = "commune"
    # The unit (commune/ward) whose desk the bot speaks for; "demo" ships with the project.
    unit: str = "demo"

    # Other units this deployment also serves (a district or province running one bot for
    # several communes), e.g. ["xa-an-binh", "phuong-2"]: citizens pick theirs (/donvi, or a
    # Telegram link t.me/<bot>?start=<unit>, or the web chat's /?unit=<unit>); each unit has
    # its own feedback inbox, dossier source and staff. MOTCUA_UNIT stays the default one.
    units: list[str] = []

    # The unit the web chat's demonstration mode (/?demo=1) speaks for, with its demo
    # dossiers; empty turns the demo mode off.
    web_demo_unit: str = "demo"
    # Sites allowed to embed the chat page in a frame (the snippet of README "Web chat"), e.g.
    # ["https://xaminhhoa.gov.vn"]; empty: the page cannot be framed by other sites.
    web_embed_origins: list[str] = []

    # Zalo Official Account (see README, "Zalo"): the channel starts when an app id is set.
    zalo_app_id: str | None = None
    zalo_oa_secret_key: SecretStr | None = None  # signs webhook events (X-ZEvent-Signature)
    zalo_app_secret_key: SecretStr | None = None  # refreshes access tokens
    zalo_access_token: SecretStr | None = None
    zalo_refresh_token: SecretStr | None = None
    zalo_webhook_path: str = "/zalo/webhook"
    zalo_api_base_url: str = "https://openapi.zalo.me"
    zalo_oauth_base_url: str = "https://oauth.zaloapp.com"
    # Zalo lets an OA send free-form (consultation) messages only this many hours after the
    # citizen's last message; later ones wait until the citizen writes again.
    zalo_reply_window_hours: float = 48.0
    # ...and at most this many messages in that window (Zalo's free "reply" quota).
    zalo_replies_per_window: int = 8
    # Buttons as Zalo list elements the citizen can tap (up to 5 per message) besides the
    # numbered lines; off: numbered lines only (the citizen types the number).
    zalo_list_buttons: bool = True

    # Telegram (see README, "Telegram"): the channel starts when a token is set.
    telegram_token: SecretStr | None = None
    # "polling" needs no public address; "webhook" needs an HTTPS URL that reaches this server.
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    # The Bot API server: Telegram's, a self-hosted one, or a local fake in tests.
    telegram_api_base_url: str = "https://api.telegram.org"

    # Dossier status (see README, "Dossier status"). The source per unit: "local" (the table
    # filled by `motcua dossiers import`), "http" (a provincial system) or "demo"; by default
    # the demo unit uses the demo source and every other unit the local table.
    dossier_source: Literal["local", "http", "demo"] | None = None
    dossier_sources: dict[str, Literal["local", "http", "demo"]] = {}
    dossier_code_pattern: str = DEFAULT_CODE_PATTERN
    dossier_code_example: str = "000.00.15.H26-260115-0001"  # shown to citizens as a model
    # A dossier received at or after this hour (Vietnam time) counts from the next working day.
    dossier_cutoff_hour: int = 17
    # Lookups allowed per conversation and for the whole bot: "COUNT/SECONDS".
    dossier_lookup_limit: str = "10/600"
    dossier_global_lookup_limit: str = "300/60"
    # Units whose dossiers are shown only after the last 4 digits of the applicant's phone.
    dossier_phone_check_units: list[str] = []
    # How often subscribed dossiers are checked for changes, in seconds.
    dossier_poll_seconds: float = 60.0
    dossier_http_url: str | None = None  # e.g. https://motcua.example.gov.vn/api/hoso/{code}
    dossier_http_token: SecretStr | None = None
    dossier_http_fields: dict[str, str] = {}
    dossier_http_statuses: dict[str, str] = {}
    dossier_http_channels: dict[str, str] = {}
    dossier_http_timeout: float = 2.5

    # Feedback (phản ánh, kiến nghị).
    feedback_max_chars: int = 2000
    # Working days the staff have to handle a feedback, per kind; set them to your province's
    # rules.
    feedback_days_report: int = 10
    feedback_days_proposal: int = 10
    # Where feedback attachments are stored (content-addressed files). Default: "attachments"
    # beside the SQLite database, else var/attachments.
    attachments_dir: str | None = None
    # Photos sent to be turned into PDFs are deleted once the PDF is delivered; photos of an
    # unfinished conversion are deleted after this many minutes.
    submission_photo_retention_minutes: int = 60

    @field_validator("feedback_max_chars", "feedback_days_report", "feedback_days_proposal")
    @classmethod
    def _positive_int(cls, value: int) -> int:
        if not 1 <= value <= 100_000:
            raise ValueError("must be a positive whole number")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _telegram_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "does not look like a bot token from BotFather (digits, a colon, then letters)"
            )
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not _TELEGRAM_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _telegram_webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// address (Telegram only calls HTTPS webhooks)")
        return value

    @field_validator("telegram_api_base_url")
    @classmethod
    def _telegram_api(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s):// address, e.g. https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("zalo_api_base_url", "zalo_oauth_base_url")
    @classmethod
    def _zalo_api(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s):// address, e.g. https://openapi.zalo.me")
        return value.rstrip("/")

    @field_validator("zalo_webhook_path")
    @classmethod
    def _zalo_path(cls, value: str) -> str:
        if not value.startswith("/") or len(value) > 200:
            raise ValueError("must be a path starting with /, e.g. /zalo/webhook")
        return value.rstrip("/") or "/zalo/webhook"

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if not 1 <= value <= 64:
            raise ValueError("must be a whole number between 1 and 64")
        return value

    @field_validator("zalo_replies_per_window")
    @classmethod
    def _zalo_quota(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError("must be a whole number between 1 and 1000")
        return value

    @field_validator("zalo_reply_window_hours")
    @classmethod
    def _zalo_window(cls, value: float) -> float:
        if not 0 < value <= 24 * 30:
            raise ValueError("must be a number of hours between 0 and 720")
        return value

    @field_validator("database_pool_size")
    @classmethod
    def _pool_size(cls, value: int) -> int:
        if not 1 <= value <= 200:
            raise ValueError("must be between 1 and 200")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        from bot.proxies import parse_networks

        parse_networks(value)
        return value

    @field_validator("units")
    @classmethod
    def _units(cls, value: list[str]) -> list[str]:
        for unit in value:
            if not UNIT_ID.fullmatch(unit):
                raise ValueError(
                    f"{unit!r} is not a unit id (lower-case letters, digits and dashes, "
                    "at most 40, e.g. xa-an-binh)"
                )
        return list(dict.fromkeys(value))

    @property
    def served_units(self) -> list[str]:
        """The default unit first, then the others of MOTCUA_UNITS."""
        return list(dict.fromkeys([self.unit, *self.units]))

    @field_validator("web_embed_origins")
    @classmethod
    def _embed_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError(f"{origin!r} is not an origin like https://xaminhhoa.gov.vn")
        return value

    @model_validator(mode="after")
    def _zalo_needs(self) -> Settings:
        if self.zalo_app_id:
            missing = [
                name
                for name, value in (
                    ("MOTCUA_ZALO_OA_SECRET_KEY", self.zalo_oa_secret_key),
                    ("MOTCUA_ZALO_ACCESS_TOKEN", self.zalo_access_token),
                )
                if not value or not value.get_secret_value()
            ]
            if missing:
                raise ValueError(f"the Zalo channel also needs {' and '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _telegram_webhook_needs(self) -> Settings:
        if self.telegram_token and self.telegram_mode == "webhook":
            missing = [
                name
                for name, value in (
                    ("MOTCUA_TELEGRAM_WEBHOOK_URL", self.telegram_webhook_url),
                    ("MOTCUA_TELEGRAM_WEBHOOK_SECRET", self.telegram_webhook_secret),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"webhook mode also needs {' and '.join(missing)}")
        return self

    @field_validator("dossier_code_pattern")
    @classmethod
    def _dossier_code_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("dossier_cutoff_hour")
    @classmethod
    def _cutoff(cls, value: int) -> int:
        if not 0 <= value <= 23:
            raise ValueError("must be an hour between 0 and 23")
        return value

    @field_validator("dossier_lookup_limit", "dossier_global_lookup_limit")
    @classmethod
    def _limit(cls, value: str) -> str:
        parse_limit(value)
        return value

    @field_validator("dossier_poll_seconds", "dossier_http_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not 0 < value <= 86400:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("dossier_http_url")
    @classmethod
    def _dossier_http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or "{code}" not in value:
            raise ValueError("must be an http(s):// address containing {code}")
        return value

    @model_validator(mode="after")
    def _dossier_http_needs_url(self) -> Settings:
        if "http" in (self.dossier_source, *self.dossier_sources.values()):
            if not self.dossier_http_url:
                raise ValueError("the http dossier source needs MOTCUA_DOSSIER_HTTP_URL")
            from bot.dossiers.http_source import FieldMapping

            # A wrong mapping is reported at start-up, not at a citizen's first lookup.
            FieldMapping.from_settings(
                self.dossier_http_fields, self.dossier_http_statuses, self.dossier_http_channels
            )
        return self

    def dossier_source_for(self, unit: str) -> str:
        """Which source answers for a unit's dossiers."""
        if unit in self.dossier_sources:
            return self.dossier_sources[unit]
        if self.dossier_source:
            return self.dossier_source
        return "demo" if unit == "demo" else "local"

    @property
    def telegram_webhook_path(self) -> str:
        """The local path of the webhook route: the path of the public URL, so that a reverse
        proxy can pass requests through unchanged."""
        path = urlsplit(self.telegram_webhook_url or "").path.rstrip("/")
        return path or "/telegram/webhook"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        async_url(value)  # raises ValueError with the reason
        return value

    @field_validator("catalogue")
    @classmethod
    def _catalogue(cls, value: str) -> str:
        if not value or len(value) > 32 or not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("must be a short name of letters, digits, - or _ (e.g. commune)")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError("must be between 0 and 65535")
        return value

    @field_validator("default_locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        value = value.upper()
        if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value


# BotFather tokens: the bot's numeric id, a colon, then a 35-character secret.
_TELEGRAM_TOKEN = re.compile(r"[0-9]{3,20}:[A-Za-z0-9_-]{20,100}")
# Telegram accepts 1-256 characters; we ask for at least 16 so it cannot be guessed.
_TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")


def parse_limit(value: str) -> tuple[int, float]:
    """ "10/600" -> (10, 600.0): at most 10 in any 600 seconds."""
    count, _, seconds = value.partition("/")
    try:
        parsed = int(count), float(seconds)
    except ValueError:
        raise ValueError("must be COUNT/SECONDS, e.g. 10/600") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError("must be COUNT/SECONDS with both above zero, e.g. 10/600")
    return parsed


class SettingsError(Exception):
    """Invalid settings, with one (variable, reason) pair per problem."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{var}: {why}" for var, why in problems))
        self.problems = problems


def load_settings(**overrides: object) -> Settings:
    """Read settings; raise SettingsError naming each bad variable instead of a traceback."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            reason = error["msg"].removeprefix("Value error, ")
            variable = ENV_PREFIX + field.upper() if field else ENV_PREFIX + "TELEGRAM_MODE"
            problems.append((variable, reason))
        raise SettingsError(problems) from None
