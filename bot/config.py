"""Settings from environment variables prefixed ``MOTCUA_`` and an optional ``.env`` file."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.i18n import SUPPORTED_LOCALES
from bot.storage.db import async_url

ENV_PREFIX = "MOTCUA_"


class Settings(BaseSettings):
    """Every setting of the bot; see README for the list with examples."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///var/motcua.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8080
    default_locale: str = "vi"
    log_level: str = "INFO"
    # Set when the web chat is served over HTTPS (behind a reverse proxy) so cookies are Secure.
    web_secure_cookies: bool = False
    # Which catalogue the bot answers from ("commune" bundled by default, or "national"...).
    catalogue: str = "commune"
    # The unit (commune/ward) whose desk the bot speaks for; "demo" ships with the project.
    unit: str = "demo"

    # Telegram (see README, "Telegram"): the channel starts when a token is set.
    telegram_token: SecretStr | None = None
    # "polling" needs no public address; "webhook" needs an HTTPS URL that reaches this server.
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    # The Bot API server: Telegram's, a self-hosted one, or a local fake in tests.
    telegram_api_base_url: str = "https://api.telegram.org"

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
