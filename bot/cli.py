"""The ``motcua`` command (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from bot import __version__
from bot.i18n import operator_locale, translator


def _parser(t) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="motcua",
        description=t(
            "Một Cửa bot: a chat assistant for the one-stop desk of a commune or ward. "
            "Settings come from MOTCUA_* environment variables or a .env file (see README)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"motcua {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help=t("migrate the database and start the bot (web chat and configured channels)")
    )
    run.add_argument("--host", help=t("address to listen on (default: MOTCUA_HOST or 127.0.0.1)"))
    run.add_argument(
        "--port", type=int, help=t("port to listen on (default: MOTCUA_PORT or 8080; 0 = any free)")
    )
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help=t(
            "run N bot processes on the same port (needs PostgreSQL, and webhook mode for "
            "Telegram); default 1"
        ),
    )

    console = commands.add_parser(
        "console", help=t("chat with the bot in this terminal (buttons become numbered choices)")
    )
    console.add_argument(
        "--conversation", help=t("conversation name, to keep separate chats (default: your user)")
    )
    console.add_argument("--verbose", action="store_true", help=t("show log lines in the terminal"))

    commands.add_parser("migrate", help=t("create or upgrade the database schema"))

    catalogue = commands.add_parser("catalogue", help=t("import, export and show procedures"))
    catalogue_commands = catalogue.add_subparsers(dest="catalogue_command", metavar="ACTION")
    imp = catalogue_commands.add_parser(
        "import",
        help=t(
            "import a catalogue file: portal records (.jsonl), an export (.json) "
            "or a list (.csv, .xlsx)"
        ),
    )
    imp.add_argument("file", help=t("the file to import"))
    imp.add_argument("--dry-run", action="store_true", help=t("check the file, change nothing"))
    imp.add_argument(
        "--skip-invalid",
        action="store_true",
        help=t("import the valid records even if some are rejected (default: import nothing)"),
    )
    export = catalogue_commands.add_parser("export", help=t("write the catalogue out"))
    export.add_argument("--json", action="store_true", required=True, help=t("as JSON"))
    export.add_argument("--output", "-o", help=t("file to write (default: standard output)"))
    show = catalogue_commands.add_parser(
        "show", help=t("print what the bot says about a procedure")
    )
    show.add_argument("code", help=t("national procedure code, e.g. 1.001193"))
    add_units = catalogue_commands.add_parser(
        "add-units",
        help=t("add or update unit profiles (one JSON file per unit, as the bundled demo.json)"),
        description=t(
            "Add or update the profiles of the units (communes, wards) this deployment serves: "
            "name, province, address, opening hours, hotline, the procedures applied. One JSON "
            "file per unit, in the form of procedures_catalog/data/units/demo.json. List the "
            "ids in MOTCUA_UNITS to serve them."
        ),
    )
    add_units.add_argument("files", nargs="+", metavar="FILE", help=t("unit profile (.json)"))
    catalogue_commands.add_parser(
        "units", help=t("list the unit profiles and which of them the bot serves")
    )
    for sub in (imp, export, show):
        sub.add_argument(
            "--catalogue", help=t("catalogue name (default: MOTCUA_CATALOGUE or commune)")
        )
    show.add_argument("--lang", choices=("vi", "en"), help=t("language of the answer"))

    from bot.dossiers.cli import import_epilog, statuses_epilog

    dossiers = commands.add_parser(
        "dossiers", help=t("import dossiers, record status changes, show a dossier")
    )
    dossier_commands = dossiers.add_subparsers(
        dest="dossiers_command", metavar="ACTION", required=True
    )
    dossier_import = dossier_commands.add_parser(
        "import",
        help=t("import the dossier list exported by the one-stop software (.csv)"),
        description=t(
            "Import the dossier list exported by the one-stop software into the local table."
        ),
        epilog=import_epilog(t),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dossier_import.add_argument("file", help=t("the CSV file to import"))
    dossier_import.add_argument(
        "--dry-run", action="store_true", help=t("check the file against the table, change nothing")
    )
    set_status = dossier_commands.add_parser(
        "set-status",
        help=t("record a new status of a dossier (added to its history)"),
        epilog=statuses_epilog(t),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    set_status.add_argument("code", help=t("receipt code, e.g. 000.00.15.H26-260115-0001"))
    set_status.add_argument("status", help=t("new status: a code below or its Vietnamese words"))
    set_status.add_argument(
        "--note", default="", help=t("note the citizen reads, e.g. the documents to add")
    )
    dossier_show = dossier_commands.add_parser(
        "show", help=t("print a dossier's status and history (no personal data)")
    )
    dossier_show.add_argument("code", help=t("receipt code"))
    for sub in (dossier_import, set_status, dossier_show):
        sub.add_argument("--unit", help=t("commune or ward id (default: MOTCUA_UNIT)"))

    from bot.feedback.cli import (
        DEFAULT_LIMIT,
        STATUS_CHOICES,
        list_epilog,
        positive_int,
        staff_name,
    )

    feedback = commands.add_parser(
        "feedback", help=t("list, show and answer citizens' feedback (phản ánh, kiến nghị)")
    )
    feedback_commands = feedback.add_subparsers(
        dest="feedback_command", metavar="ACTION", required=True
    )
    feedback_list = feedback_commands.add_parser(
        "list",
        help=t("list the unit's feedback, newest first, and the counts per status"),
        epilog=list_epilog(t),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    feedback_list.add_argument("--status", choices=STATUS_CHOICES, help=t("only this status"))
    feedback_list.add_argument(
        "--overdue", action="store_true", help=t("only feedback past its due date, not answered")
    )
    feedback_list.add_argument(
        "--limit",
        type=positive_int(t),
        default=DEFAULT_LIMIT,
        metavar="N",
        help=t("at most this many (default: {n})", n=DEFAULT_LIMIT),
    )
    feedback_show = feedback_commands.add_parser(
        "show", help=t("print a feedback: content, files, history")
    )
    feedback_show.add_argument("code", metavar="CODE", help=t("tracking code, e.g. PA-2026-000123"))
    feedback_show.add_argument(
        "--show-phone", action="store_true", help=t("print the phone number in full")
    )
    feedback_answer = feedback_commands.add_parser(
        "answer",
        help=t("record the answer; the running bot sends it to the citizen's chat"),
    )
    feedback_assign = feedback_commands.add_parser(
        "assign", help=t("take a feedback in hand (status: being handled)")
    )
    feedback_close = feedback_commands.add_parser("close", help=t("close a feedback"))
    feedback_reopen = feedback_commands.add_parser(
        "reopen", help=t("reopen a feedback (status: being handled)")
    )
    for sub in (feedback_answer, feedback_assign, feedback_close, feedback_reopen):
        sub.add_argument("code", metavar="CODE", help=t("tracking code, e.g. PA-2026-000123"))
        sub.add_argument(
            "--staff",
            required=True,
            metavar="NAME",
            type=staff_name(t),
            help=t("your name, recorded in the history"),
        )
    answer_text = feedback_answer.add_mutually_exclusive_group(required=True)
    answer_text.add_argument("--text", metavar="TEXT", help=t("the answer"))
    answer_text.add_argument(
        "--file",
        metavar="PATH",
        help=t("a UTF-8 text file holding the answer (- for standard input)"),
    )
    feedback_assign.add_argument(
        "--to",
        metavar="NAME",
        type=staff_name(t),
        help=t("the officer who handles it (default: you)"),
    )
    feedback_close.add_argument("--note", default="", metavar="TEXT", help=t("why it is closed"))
    feedback_reopen.add_argument(
        "--reason", required=True, metavar="TEXT", help=t("why it is reopened")
    )
    for sub in (
        feedback_list,
        feedback_show,
        feedback_answer,
        feedback_assign,
        feedback_close,
        feedback_reopen,
    ):
        sub.add_argument("--unit", help=t("commune or ward id (default: MOTCUA_UNIT)"))

    from bot.staff.cli import ROLE_CHOICES

    staff = commands.add_parser("staff", help=t("accounts of the staff dashboard (/staff)"))
    staff_commands = staff.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    create_user = staff_commands.add_parser(
        "create-user",
        help=t("create a dashboard account; the password is asked for, never given as an option"),
    )
    create_user.add_argument("username", metavar="USERNAME", help=t("login name, e.g. lan.nguyen"))
    create_user.add_argument("--unit", required=True, help=t("commune or ward id of the account"))
    create_user.add_argument(
        "--role",
        required=True,
        choices=ROLE_CHOICES,
        help=t("officer: own unit; unit_admin: also its accounts; super_admin: every unit"),
    )
    create_user.add_argument("--name", help=t("full name shown on the dashboard"))
    set_password = staff_commands.add_parser(
        "set-password", help=t("set a new password for an account (also unlocks it)")
    )
    set_password.add_argument("username", metavar="USERNAME", help=t("login name"))
    for sub in (create_user, set_password):
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help=t("read the password from the first line of standard input instead of a prompt"),
        )
    list_users = staff_commands.add_parser("list-users", help=t("list the dashboard accounts"))
    list_users.add_argument("--unit", help=t("only the accounts of this unit"))
    from bot.backup import add_backup_commands

    add_backup_commands(commands, t)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen command; return the exit status."""
    t = translator(operator_locale())
    args = _parser(t).parse_args(argv)
    if args.command is None:
        _parser(t).print_help()
        return 0

    from bot.config import SettingsError, load_settings

    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None) is not None:
        overrides["port"] = args.port
    if getattr(args, "catalogue", None):
        overrides["catalogue"] = args.catalogue
    if args.command == "catalogue" and args.catalogue_command is None:
        _parser(t).parse_args(["catalogue", "--help"])
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(t("Invalid settings:"), file=sys.stderr)
        for variable, reason in exc.problems:
            print(f"  {variable}: {reason}", file=sys.stderr)
        return 2
    t = translator(settings.default_locale)
    if args.command == "run" and args.workers < 1:
        print(t("--workers must be at least 1."), file=sys.stderr)
        return 2
    quiet = args.command != "run" and not getattr(args, "verbose", False)
    _setup_logging(
        "WARNING" if quiet else settings.log_level,
        _secrets_of(settings),
        json_lines=settings.log_format == "json",
    )
    if args.command == "run" and args.workers > 1:
        return _run_workers(args, settings, overrides, t)
    try:
        return asyncio.run(_COMMANDS[args.command](args, settings, t))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(
                t(
                    "Port {port} is already in use. Stop the other program or choose another "
                    "port with MOTCUA_PORT or --port.",
                    port=settings.port,
                ),
                file=sys.stderr,
            )
        else:
            print(t("Cannot start: {reason}", reason=exc), file=sys.stderr)
        return 1


def _run_workers(args: argparse.Namespace, settings, overrides: dict, t) -> int:
    """``motcua run --workers N`` (N > 1): the supervisor of bot/workers.py."""
    from bot import workers

    if args.workers > 64:
        print(t("Too many workers: at most 64."), file=sys.stderr)
        return 2
    found = workers.problems(settings)
    if found:
        for problem in found:
            print(t("Cannot start several workers: {reason}", reason=t(problem)), file=sys.stderr)
        return 2
    overrides = {**overrides, "workers": args.workers}
    if not settings.port:
        overrides["port"] = workers.free_port(settings.host)

    def migrate() -> None:
        from bot.app import open_database

        async def once() -> None:
            await (await open_database(settings)).dispose()

        asyncio.run(once())

    def ready(port: int) -> None:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        print(
            t(
                "Một Cửa bot is running in {count} processes. Open the chat page at: {url}",
                count=args.workers,
                url=f"http://{host}:{port}/",
            )
        )
        print(t("Staff dashboard: {url}", url=f"http://{host}:{port}/staff/"))
        print(t("Press Ctrl+C to stop."), flush=True)

    try:
        return workers.supervise(args.workers, overrides, ready, migrate)
    except _DB_ERRORS as exc:
        return _database_error(t, settings, exc)


async def _run(args: argparse.Namespace, settings, t) -> int:
    from bot.app import serve
    from bot.channels.base import ChannelStartError

    def ready(port: int, channels: list) -> None:
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        print(
            t("Một Cửa bot is running. Open the chat page at: {url}", url=f"http://{host}:{port}/")
        )
        print(t("Staff dashboard: {url}", url=f"http://{host}:{port}/staff/"))
        for channel in channels:
            if channel.name == "zalo":
                print(
                    t(
                        "Zalo: events are received at {url} (give Zalo this path on your public "
                        "HTTPS address).",
                        url=f"http://{host}:{port}{channel.path}",
                    )
                )
            if channel.name != "telegram":
                continue
            if not channel.ready:
                print(t("Telegram: cannot reach the Bot API yet; retrying in the background."))
            elif channel.mode == "webhook":
                print(
                    t(
                        "Telegram: @{username} receives updates at {url}",
                        username=channel.username,
                        url=channel.webhook_url,
                    )
                )
            else:
                print(
                    t(
                        "Telegram: @{username} is fetching messages (polling).",
                        username=channel.username,
                    )
                )
        print(t("Press Ctrl+C to stop."), flush=True)

    try:
        await serve(settings, ready)
    except _DB_ERRORS as exc:
        return _database_error(t, settings, exc)
    except ChannelStartError as exc:
        if exc.channel == "telegram":
            reason = t(
                "Telegram refused the bot token. Copy it again from BotFather into "
                "MOTCUA_TELEGRAM_TOKEN."
            )
            print(reason, file=sys.stderr)
        else:
            print(t("Cannot start: {reason}", reason=exc), file=sys.stderr)
        return 1
    return 0


async def _console(args: argparse.Namespace, settings, t) -> int:
    from bot.app import build_engine, open_database
    from bot.channels.console import ConsoleChannel

    try:
        db = await open_database(settings)
    except _DB_ERRORS as exc:
        return _database_error(t, settings, exc)
    try:
        engine = await build_engine(settings, db)
        await ConsoleChannel(engine, conversation_id=args.conversation).run()
    finally:
        await db.dispose()
    return 0


async def _migrate(args: argparse.Namespace, settings, t) -> int:
    from bot.storage.db import Database
    from bot.storage.migrate import current_revision, upgrade

    db = Database(settings.database_url)
    try:
        await upgrade(db)
        revision = await current_revision(db)
    except _DB_ERRORS as exc:
        return _database_error(t, settings, exc)
    finally:
        await db.dispose()
    print(t("Database {url} is at revision {revision}.", url=db.describe(), revision=revision))
    return 0


def _database_error(t, settings, exc: BaseException) -> int:
    from bot.storage.db import async_url

    url = async_url(settings.database_url).render_as_string(hide_password=True)
    print(t("Cannot use the database {url}: {reason}", url=url, reason=exc), file=sys.stderr)
    return 1


def _setup_logging(level: str, secrets: Sequence[str] = (), json_lines: bool = False) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if json_lines:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    if secrets:
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactSecrets(secrets))
    # Third-party request logs could carry tokens in URLs (Telegram puts them in the path).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.getLogger("pikepdf").setLevel(logging.WARNING)  # an INFO line at import, of no use


class JsonFormatter(logging.Formatter):
    """One JSON object per line (MOTCUA_LOG_FORMAT=json), for log collectors. The message is
    the same text as in the plain format: no message text of citizens, no tokens."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RedactSecrets(logging.Filter):
    """Replace tokens and secrets in log lines (a library may print a URL that holds one)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[secret]")
            record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if any(secret in text for secret in self.secrets):
                for secret in self.secrets:
                    text = text.replace(secret, "[secret]")
                record.msg = f"{record.msg}\n{text}"
                record.exc_info, record.exc_text = None, None
        return True


def _secrets_of(settings) -> list[str]:
    values = [
        settings.telegram_token,
        settings.telegram_webhook_secret,
        settings.dossier_http_token,
        settings.zalo_oa_secret_key,
        settings.zalo_app_secret_key,
        settings.zalo_access_token,
        settings.zalo_refresh_token,
    ]
    return [value.get_secret_value() for value in values if value is not None]


def _delegated(module: str, function: str):
    """A command whose code lives in ``module`` (imported only when it runs, so that
    ``motcua --help`` stays quick); a database that cannot be reached is reported plainly."""

    async def command(args: argparse.Namespace, settings, t) -> int:
        import importlib

        run = getattr(importlib.import_module(module), function)
        try:
            return await run(args, settings, t)
        except _DB_ERRORS as exc:
            return _database_error(t, settings, exc)

    return command


_COMMANDS = {
    "run": _run,
    "console": _console,
    "migrate": _migrate,
    "catalogue": _delegated("bot.catalogue_cli", "run_catalogue_command"),
    "dossiers": _delegated("bot.dossiers.cli", "run_dossiers_command"),
    "feedback": _delegated("bot.feedback.cli", "run_feedback_command"),
    "staff": _delegated("bot.staff.cli", "run_staff_command"),
    "backup": _delegated("bot.backup", "run_backup_command"),
    "restore": _delegated("bot.backup", "run_backup_command"),
}
# What a database driver raises when it cannot connect or open the file.
_DB_ERRORS = (DBAPIError, ConnectionError)
