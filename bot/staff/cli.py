"""``motcua staff create-user | set-password | list-users``: dashboard accounts from a terminal
(the first super admin is created here; later accounts also on the dashboard's Accounts page).

A password is read from a prompt (typed twice, not shown) or, with ``--password-stdin``, from
the first line of standard input; never from the command line, where other users of the
machine and the shell history would see it.

Only light modules are imported at the top: ``bot/cli.py`` reads ``ROLE_CHOICES`` while
building its parser.
"""

from __future__ import annotations

import getpass
import sys
from argparse import Namespace

EXIT_OK, EXIT_REFUSED = 0, 1
ROLE_CHOICES = ("officer", "unit_admin", "super_admin")  # bot.staff.auth.ROLES


async def run_staff_command(args: Namespace, settings, t) -> int:
    """Run ``motcua staff ACTION``; return the exit status."""
    from bot.app import open_database
    from bot.staff import auth

    password = None
    if args.staff_command in ("create-user", "set-password"):
        password = _read_password(args, t)
        if password is None:
            return EXIT_REFUSED
        try:
            auth.check_password(password)
        except auth.AccountError as exc:
            print(t(exc.message, **exc.params), file=sys.stderr)
            return EXIT_REFUSED
    db = await open_database(settings)
    try:
        if args.staff_command == "create-user":
            return await _create(args, db, password, t)
        if args.staff_command == "set-password":
            return await _set_password(args, db, password, t)
        return await _list(args, db, t)
    finally:
        await db.dispose()


def _read_password(args: Namespace, t) -> str | None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            password = getpass.getpass(t("Password: "))
            again = getpass.getpass(t("Repeat the password: "))
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return None
        if password != again:
            print(t("The passwords differ."), file=sys.stderr)
            return None
    return password


async def _create(args: Namespace, db, password: str, t) -> int:
    from bot.staff import auth

    try:
        user = await auth.create_user(
            db,
            args.username,
            password,
            role=args.role,
            unit=args.unit,
            display_name=args.name or "",
            actor="cli",
        )
    except auth.AccountError as exc:
        print(t(exc.message, **exc.params), file=sys.stderr)
        return EXIT_REFUSED
    print(
        t(
            "Account {name} created: {role} of unit {unit}.",
            name=user.username,
            role=t(auth.ROLES[user.role]),
            unit=user.unit,
        )
    )
    return EXIT_OK


async def _set_password(args: Namespace, db, password: str, t) -> int:
    from sqlalchemy import select

    from bot.staff import auth
    from bot.storage.models import StaffUser

    name = args.username.strip().lower()
    async with db.session() as session:
        user_id = await session.scalar(select(StaffUser.id).where(StaffUser.username == name))
    if user_id is None:
        print(t("No account {name}.", name=name), file=sys.stderr)
        return EXIT_REFUSED
    await auth.set_password(db, user_id, password, actor="cli")
    print(t("Password of {name} changed; the account is unlocked.", name=name))
    return EXIT_OK


async def _list(args: Namespace, db, t) -> int:
    from sqlalchemy import select

    from bot.staff import auth
    from bot.staff.web import format_time
    from bot.storage.models import StaffUser, as_utc, utcnow

    query = select(StaffUser).order_by(StaffUser.unit, StaffUser.username)
    if args.unit:
        query = query.where(StaffUser.unit == args.unit)
    async with db.session() as session:
        users = list(await session.scalars(query))
    if not users:
        print(t("No accounts."))
        return EXIT_OK
    now = utcnow()
    for user in users:
        if not user.active:
            state = t("deactivated")
        elif user.locked_until and as_utc(user.locked_until) > now:
            state = t("locked")
        else:
            state = t("active")
        print(
            "  ".join(
                (
                    user.username,
                    user.unit,
                    t(auth.ROLES.get(user.role, user.role)),
                    state,
                    t("last login: {at}", at=format_time(user.last_login_at)),
                )
            )
        )
    return EXIT_OK
