"""Settings from environment variables prefixed ``MOTCUA_`` and an optional ``.env`` file."""

from __future__ import annotations

from pydantic import ValidationError, field_validator
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
            problems.append((ENV_PREFIX + field.upper(), reason))
        raise SettingsError(problems) from None
