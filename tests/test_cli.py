"""The ``motcua`` command as a newcomer runs it, in real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def motcua_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOTCUA_")}
    env["MOTCUA_DATABASE_URL"] = f"sqlite:///{tmp_path}/cli.sqlite3"
    env.update(extra)
    return env


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from bot.storage.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def motcua(*args: str, env: dict[str, str], stdin: bytes = b"", timeout: float = 60):
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )


def test_console_prints_vietnamese_menu_and_exits_at_end_of_input(tmp_path) -> None:
    result = motcua("console", env=motcua_env(tmp_path), stdin="xin chào\n".encode())
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.startswith("Xin chào! Tôi là trợ lý ảo của Bộ phận Một cửa.")
    assert "  1. 🔎 Tìm thủ tục" in out and "  4. 🌐 Ngôn ngữ / Language" in out
    assert b"Traceback" not in result.stderr


def test_console_numbered_choices_and_invalid_utf8(tmp_path) -> None:
    stdin = b"menu\n4\n2\n" + b"\xff\xfe\x00junk\n"
    result = motcua("console", env=motcua_env(tmp_path), stdin=stdin)
    out = result.stdout.decode()
    assert result.returncode == 0
    assert "From now on I will reply in English." in out
    assert out.rstrip().endswith("4. 🌐 Language / Ngôn ngữ")
    assert b"Traceback" not in result.stderr


def test_the_console_script_is_installed(tmp_path) -> None:
    script = Path(sys.executable).with_name("motcua")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, env=motcua_env(tmp_path), timeout=60
    )
    assert result.returncode == 0
    out = result.stdout.decode()
    for command in ("run", "console", "migrate"):
        assert command in out
    assert "Trợ lý Một cửa" in out


def test_help_in_english_when_asked(tmp_path) -> None:
    result = motcua("--help", env=motcua_env(tmp_path, MOTCUA_DEFAULT_LOCALE="en"))
    assert "a chat assistant for the one-stop desk" in result.stdout.decode()


def test_migrate_creates_the_database_and_is_idempotent(tmp_path) -> None:
    env = motcua_env(tmp_path)
    for _ in range(2):
        result = motcua("migrate", env=env)
        assert result.returncode == 0, result.stderr.decode()
        assert f"phiên bản {head_revision()}." in result.stdout.decode()
    assert (tmp_path / "cli.sqlite3").exists()


def test_default_database_lives_under_var(tmp_path) -> None:
    env = motcua_env(tmp_path)
    del env["MOTCUA_DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "var" / "motcua.sqlite3").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MOTCUA_DATABASE_URL", "not a url"),
        ("MOTCUA_DATABASE_URL", "mysql://root@localhost/x"),
        ("MOTCUA_DATABASE_URL", "postgresql+psycopg2://u@h/db"),
        ("MOTCUA_PORT", "eighty"),
        ("MOTCUA_DEFAULT_LOCALE", "fr"),
        ("MOTCUA_TELEGRAM_TOKEN", "123:abc"),
        ("MOTCUA_TELEGRAM_MODE", "hook"),
        ("MOTCUA_TELEGRAM_WEBHOOK_URL", "http://bot.example.vn/telegram"),
        ("MOTCUA_TELEGRAM_WEBHOOK_SECRET", "short"),
        ("MOTCUA_TELEGRAM_API_BASE_URL", "api.telegram.org"),
    ],
)
def test_invalid_setting_names_the_variable_without_traceback(tmp_path, variable, value) -> None:
    result = motcua("migrate", env=motcua_env(tmp_path, **{variable: value}))
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "Cấu hình không hợp lệ" in err or "Invalid settings" in err
    assert variable in err
    assert "Traceback" not in err


def test_webhook_mode_names_what_it_is_missing(tmp_path) -> None:
    env = motcua_env(
        tmp_path,
        MOTCUA_TELEGRAM_TOKEN="123456789:TESTtokenABCDEFGHIJKLMNOPQRSTUVWXYZ01",
        MOTCUA_TELEGRAM_MODE="webhook",
        MOTCUA_TELEGRAM_WEBHOOK_URL="https://bot.example.vn/telegram/webhook",
    )
    result = motcua("migrate", env=env)
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "MOTCUA_TELEGRAM_WEBHOOK_SECRET" in err
    assert "TESTtoken" not in err and "Traceback" not in err


def test_log_filter_hides_secrets_in_messages_and_tracebacks() -> None:
    import logging

    from bot.cli import RedactSecrets

    token = "123456789:TESTtokenABCDEFGHIJKLMNOPQRSTUVWXYZ01"
    record = logging.LogRecord(
        "x",
        logging.ERROR,
        __file__,
        1,
        "POST %s failed",
        (f"https://api.telegram.org/bot{token}/getMe",),
        None,
    )
    try:
        raise ConnectionError(f"cannot reach /bot{token}/getUpdates")
    except ConnectionError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecrets([token]).filter(record)
    line = logging.Formatter().format(record)
    assert token not in line
    assert "/bot[secret]/getMe" in line and "/bot[secret]/getUpdates" in line


def test_unreachable_database_is_a_clear_error(tmp_path) -> None:
    env = motcua_env(tmp_path, MOTCUA_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    result = motcua("migrate", env=env)
    err = result.stderr.decode()
    assert result.returncode == 1
    assert "Traceback" not in err
    assert "127.0.0.1:1" in err


def test_run_serves_the_chat_page_and_stops_cleanly(tmp_path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=motcua_env(tmp_path),
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline().decode()
        assert "Mở trang trò chuyện tại: http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(url, timeout=10) as response:
            assert "Trợ lý Một cửa" in response.read().decode()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert "Traceback" not in err


def test_run_on_a_busy_port_says_so(tmp_path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        result = motcua("run", "--port", str(port), env=motcua_env(tmp_path))
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert f"Cổng {port} đang được chương trình khác sử dụng" in result.stderr.decode()
