"""One log line per handled message, with channel, handler and duration, and nothing personal."""

from __future__ import annotations

import logging

from tests.conftest import Chat


async def test_one_line_per_message_without_text(engine, caplog) -> None:
    caplog.set_level(logging.INFO, logger="motcua.engine")
    chat = Chat(engine, channel="web", conversation_id="123456789")
    await chat.say("xin chào")
    await chat.say("số điện thoại của tôi là 0912345678")
    lines = [r.getMessage() for r in caplog.records if r.name == "motcua.engine"]
    assert len(lines) == 2
    assert lines[0].startswith("handled channel=web conv=")
    assert "handler=start.show_menu" in lines[0] and "duration_ms=" in lines[0]
    assert "handler=fallback.not_understood" in lines[1]
    for line in lines:
        assert "0912345678" not in line and "xin" not in line
        assert "123456789" not in line  # the chat id is pseudonymised


async def test_a_failing_handler_is_logged_and_the_user_gets_an_apology(db, caplog) -> None:
    from bot.core import Context, Router
    from tests.conftest import make_engine

    router = Router("broken")

    @router.payload("boom")
    async def boom(ctx: Context):
        ctx.state.data["half"] = "written"
        raise RuntimeError("database went away")

    chat = Chat(make_engine(db, extra=[router]))
    await chat.say("english")
    await chat.press("boom")
    assert chat.text.startswith("Sorry, something went wrong on our side")
    assert chat.buttons, "the menu is offered"
    assert any("handler failed" in r.getMessage() for r in caplog.records)
    # Nothing of the failed turn was saved, and the chat goes on in its language.
    await chat.say("menu")
    assert chat.text.startswith("Hello!")


def test_json_log_lines_carry_no_secret() -> None:
    """MOTCUA_LOG_FORMAT=json: one JSON object per line, secrets redacted as in text lines."""
    import json
    import logging

    from bot.cli import JsonFormatter, RedactSecrets

    record = logging.LogRecord(
        "motcua.test", logging.WARNING, __file__, 1, "call to %s failed", ("/botSECRET-1/x",), None
    )
    RedactSecrets(["SECRET-1"]).filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line and "SECRET-1" not in line
    assert entry["level"] == "WARNING" and entry["logger"] == "motcua.test"
    assert entry["message"] == "call to /bot[secret]/x failed"
    assert entry["time"].endswith("+00:00")
