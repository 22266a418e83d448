"""The kill test in its short CI form (bench/feedback_kill.py): feedbacks sent through the web
chat while ``motcua run`` is killed with SIGKILL and restarted are all there, whole, once."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta

from bench.feedback_kill import Report, Submission, check, parse_args, run
from bot.feedback.model import tracking_code
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from bot.storage.models import Feedback, FeedbackEvent, utcnow
from tests.conftest import skip_or_fail
from tests.pg_helpers import PrivatePostgres

SHORT = ["--feedbacks", "60", "--kills", "2", "--concurrency", "4", "--seed", "7"]


def assert_clean(report: Report) -> None:
    assert report.ok, "\n".join(report.violations[:20])
    assert report.confirmed == report.requested == report.rows == 60
    assert report.kills >= 2
    assert report.killed_in_flight, "no request was cut off by a kill"
    assert report.missing == report.duplicates == report.incomplete == 0
    assert report.without_code == report.unseen == report.gave_up == report.code_changed == 0
    assert report.exit_status == 0
    assert report.server_log_errors == 0


async def test_feedbacks_survive_sigkill_on_sqlite() -> None:
    assert_clean(await run(parse_args(SHORT)))


async def test_feedbacks_survive_sigkill_on_postgresql() -> None:
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    assert_clean(await run(parse_args([*SHORT, "--postgres-url", url])))


async def test_feedbacks_survive_sigkill_of_one_worker_of_two_on_postgresql() -> None:
    """`motcua run --workers 2`: one worker killed at a time while the other serves on."""
    url = os.environ.get("MOTCUA_TEST_POSTGRES_URL")
    if not url:
        skip_or_fail("MOTCUA_TEST_POSTGRES_URL is not set")
    assert_clean(await run(parse_args([*SHORT, "--postgres-url", url, "--workers", "2"])))


async def test_feedbacks_survive_postgresql_restarts_under_load() -> None:
    """A private PostgreSQL server stopped (fast: connections cut) and started again twice
    under `motcua run --workers 2`: meanwhile every message is answered "briefly unavailable,
    send it again" (never a 5xx, no error logged), the bot recovers by itself, and every
    feedback a citizen was given a code for is there, whole, once."""
    reason = PrivatePostgres.available()
    if reason:
        skip_or_fail(reason)
    report = await run(parse_args([*SHORT, "--fault", "pg-restart", "--workers", "2"]))
    assert_clean(report)
    assert report.unavailable > 0, "no message met the outage"
    assert report.server_errors == report.connection_errors == 0


# -- the check itself must see what it is there to see ------------------------------------------


def _row(number: int, content: str, conversation: str, *, code: bool = True) -> Feedback:
    now = utcnow()
    row = Feedback(
        submit_key=f"key-{number}",
        unit="demo",
        kind="report",
        topic="other",
        content=content,
        channel="web",
        conversation_id=conversation,
        locale="vi",
        status="received",
        created_at=now,
        updated_at=now,
        due_at=now + timedelta(days=14),
    )
    row.id = number
    if code:
        row.tracking_code = tracking_code("report", now.year, number)
    return row


def _create(feedback_id: int) -> FeedbackEvent:
    return FeedbackEvent(
        feedback_id=feedback_id, actor="citizen", action="create", status="received"
    )


async def test_check_reports_missing_duplicated_and_broken_feedbacks(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/check.sqlite3"
    conv = hashlib.sha256(b"token").hexdigest()[:32]
    subs = [Submission(n, f"kill-test abcd #{n:05d} text {n}", conv) for n in range(5)]
    year = utcnow().year
    for sub in subs:
        sub.code = tracking_code("report", year, sub.number + 1)
        sub.codes_seen = {sub.code}
    db = Database(url)
    try:
        await upgrade(db)
        async with db.write_transaction() as session:
            session.add_all(
                [
                    _row(1, subs[0].content, conv),  # fine
                    _row(2, subs[1].content, conv),  # stored twice
                    _row(9, subs[1].content, conv),
                    _row(4, "kill-test abcd #00003 something else", conv),  # text changed
                    # subs[2]'s PA-...-000003 is missing; subs[4]'s row has no code
                    _row(5, subs[4].content, conv, code=False),
                ]
            )
            session.add_all([_create(1), _create(2), _create(9), _create(4), _create(4)])
            session.add(_create(77))  # history of no feedback
    finally:
        await db.dispose()

    report = Report(len(subs))
    await check(url, "abcd", subs, report)

    assert not report.ok
    assert report.rows == 5
    assert report.duplicates == 1
    assert report.missing == 2  # subs[2], and subs[4] whose code no row carries
    assert report.incomplete == 1  # subs[3]: other text, two 'create' rows
    assert report.without_code == 1
    assert report.orphan_events == 1
    assert any("stored 2 times" in v for v in report.violations)
    assert any("never saw" in v for v in report.violations)  # row 9 and the code-less row
