"""Staff accounts, passwords, logins and sessions: the dashboard's security core (no HTTP here).

- Passwords are stored only as argon2id hashes (argon2-cffi's defaults), checked in a worker
  thread, and upgraded when the parameters change (``check_needs_rehash``). An unknown, inactive
  or locked account is checked against a dummy hash, so its answer takes as long as a real one.
- Lockout: after ``MAX_FAILURES`` consecutive wrong passwords an account is locked for
  ``LOCK_FOR``; while locked even the right password is refused, with the same message as a wrong
  one. The counter is only reset by a successful login (or a password reset), so after a lock
  expires one more wrong password locks the account again.
- Rate limit per client address: ``ADDRESS_LIMIT`` failed logins in ``ADDRESS_WINDOW`` and the
  address gets "too many attempts" without any password being checked (counted in
  ``staff_login_attempts``, shared by every process).
- Sessions: the cookie holds a random 32-byte token, the table only its SHA-256, with a CSRF
  token of the session and an absolute expiry of ``SESSION_LIFETIME``.
- Log lines name the account (only if it exists: people type passwords into the user name
  field) and never a password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select

from bot.i18n import N_
from bot.storage.db import Database
from bot.storage.models import (
    StaffAudit,
    StaffLoginAttempt,
    StaffSession,
    StaffUser,
    as_utc,
    utcnow,
)

log = logging.getLogger("motcua.staff")

OFFICER, UNIT_ADMIN, SUPER_ADMIN = "officer", "unit_admin", "super_admin"
ROLES: dict[str, str] = {
    OFFICER: N_("Officer"),
    UNIT_ADMIN: N_("Unit administrator"),
    SUPER_ADMIN: N_("Super administrator"),
}
ADMINS = frozenset({UNIT_ADMIN, SUPER_ADMIN})

MAX_FAILURES = 10
LOCK_FOR = timedelta(minutes=15)
ADDRESS_LIMIT = 30
ADDRESS_WINDOW = timedelta(minutes=15)
ATTEMPTS_KEPT = timedelta(days=1)
SESSION_LIFETIME = timedelta(hours=8)
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # characters; argon2 takes any length, a megabyte "password" is an attack

# Replaced in tests by a cheap one; hashes made with other parameters are upgraded at login.
hasher = PasswordHasher()
# argon2 takes 64 MiB per hash: a burst of logins must not take the server's memory.
_HASH_SLOTS = threading.BoundedSemaphore(4)
_dummy: dict[int, str] = {}
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")


class AccountError(ValueError):
    """A refused account change; ``message`` is a msgid, ``params`` fill its placeholders."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params) if params else message)
        self.message, self.params = message, params


# -- passwords -----------------------------------------------------------------------------------


def _hash(password: str) -> str:
    with _HASH_SLOTS:
        return hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with _HASH_SLOTS:
        try:
            return hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _dummy_hash() -> str:
    key = id(hasher)
    if key not in _dummy:
        _dummy[key] = hasher.hash(secrets.token_urlsafe(16))
    return _dummy[key]


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; with no hash, spend the same time on a dummy one and say no."""
    if password_hash is None:
        await asyncio.to_thread(_verify, await asyncio.to_thread(_dummy_hash), password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(N_("A password needs at least {n} characters."), n=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise AccountError(N_("A password has at most {n} characters."), n=MAX_PASSWORD)


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            N_(
                "A user name has 2 to 64 characters: lowercase letters without accents, "
                "digits, and . _ @ -"
            )
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(N_("Unknown role: {role}"), role=role)
    return role


# -- logging in ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: ``ok`` with a new session's token, ``refused`` (one
    message for every reason), or ``limited`` (this address tried too often)."""

    outcome: str
    user: StaffUser | None = None
    token: str = ""


async def login(db: Database, username: str, password: str, address: str) -> Login:
    """Check a user name and password from ``address``; on success open a session."""
    now = utcnow()
    name = username.strip().lower()[:64]
    address = address[:64]
    password = password[:MAX_PASSWORD]
    async with db.session() as session:
        recent = await session.scalar(
            select(func.count())
            .select_from(StaffLoginAttempt)
            .where(
                StaffLoginAttempt.address == address, StaffLoginAttempt.at > now - ADDRESS_WINDOW
            )
        )
        user = await session.scalar(select(StaffUser).where(StaffUser.username == name))
    if recent >= ADDRESS_LIMIT:
        log.warning("staff login refused: too many failures from address=%s", address)
        return Login("limited")
    locked = user is not None and (as_utc(user.locked_until) or now) > now
    usable = user is not None and user.active and not locked
    ok = await verify_password(user.password_hash if usable else None, password)
    new_hash = None
    if ok and hasher.check_needs_rehash(user.password_hash):
        new_hash = await hash_password(password)
    async with db.write_transaction() as session:
        if not ok:
            await _failed(session, user, usable, address)
            reason = "unknown" if user is None else "inactive" if not user.active else "locked"
            log.info(
                "staff login refused user=%s address=%s reason=%s",
                user.username if user else "?",
                address,
                "password" if usable else reason,
            )
            return Login("refused")
        row = await session.scalar(
            select(StaffUser).where(StaffUser.id == user.id).with_for_update()
        )
        if row is None or not row.active or (as_utc(row.locked_until) or now) > now:
            # Locked or deactivated while the password was being checked.
            log.info(
                "staff login refused user=%s address=%s reason=changed", user.username, address
            )
            return Login("refused")
        row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
        if new_hash:
            row.password_hash = new_hash
        token = await _open_session(session, row, now)
        audit(session, row.username, row.unit, "login", detail=address)
    log.info("staff login ok user=%s unit=%s", row.username, row.unit)
    return Login("ok", row, token)


async def _failed(session, user: StaffUser | None, usable: bool, address: str) -> None:
    """Count a failure for the address and, for a usable account, towards its lockout.

    The name typed is kept only when it is an account's: people type passwords there too."""
    now = utcnow()
    session.add(StaffLoginAttempt(at=now, username=user.username if user else "", address=address))
    await session.execute(
        delete(StaffLoginAttempt).where(StaffLoginAttempt.at < now - ATTEMPTS_KEPT)
    )
    if user is None or not usable:
        return
    row = await session.scalar(select(StaffUser).where(StaffUser.id == user.id).with_for_update())
    row.failed_logins += 1
    if row.failed_logins >= MAX_FAILURES:
        row.locked_until = now + LOCK_FOR
        audit(session, row.username, row.unit, "locked", detail=address)
        log.warning(
            "staff account locked user=%s after %d failures", row.username, row.failed_logins
        )


async def _open_session(session, user: StaffUser, now) -> str:
    token = secrets.token_urlsafe(32)
    await session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    session.add(
        StaffSession(
            token_hash=token_hash(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current(db: Database, token: str) -> tuple[StaffUser, StaffSession] | None:
    """The active account and session behind a cookie's token, or None."""
    if not token or len(token) > 128:
        return None
    async with db.session() as session:
        found = (
            await session.execute(
                select(StaffUser, StaffSession)
                .join(StaffSession, StaffSession.user_id == StaffUser.id)
                .where(StaffSession.token_hash == token_hash(token))
            )
        ).first()
    if found is None:
        return None
    user, row = found
    if not user.active or as_utc(row.expires_at) <= utcnow():
        return None
    return user, row


async def logout(db: Database, token: str) -> None:
    async with db.write_transaction() as session:
        row = await session.get(StaffSession, token_hash(token))
        if row is not None:
            user = await session.get(StaffUser, row.user_id)
            await session.delete(row)
            if user is not None:
                audit(session, user.username, user.unit, "logout")
                log.info("staff logout user=%s", user.username)


def same_token(expected: str, given: str | None) -> bool:
    """Compare a CSRF token in constant time."""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


# -- accounts ------------------------------------------------------------------------------------


async def create_user(
    db: Database,
    username: str,
    password: str,
    *,
    role: str,
    unit: str,
    display_name: str = "",
    actor: str = "cli",
) -> StaffUser:
    """Create an account; AccountError if a field is invalid or the name is taken."""
    name = check_username(username)
    check_role(role)
    check_password(password)
    unit = unit.strip()
    if not unit or len(unit) > 64:
        raise AccountError(N_("Give the unit (commune or ward id) of the account."))
    password_hash = await hash_password(password)
    async with db.write_transaction() as session:
        if await session.scalar(select(StaffUser.id).where(StaffUser.username == name)):
            raise AccountError(N_("The user name {name} is taken."), name=name)
        user = StaffUser(
            username=name,
            display_name=" ".join(display_name.split())[:128],
            password_hash=password_hash,
            role=role,
            unit=unit,
            active=True,
            failed_logins=0,
            created_at=utcnow(),
        )
        session.add(user)
        audit(session, actor, unit, "user_create", name, role)
    log.info("staff account created user=%s role=%s unit=%s by=%s", name, role, unit, actor)
    return user


async def set_password(db: Database, user_id: int, password: str, *, actor: str) -> StaffUser:
    """Give an account a new password: unlocks it and ends its sessions."""
    check_password(password)
    password_hash = await hash_password(password)
    async with db.write_transaction() as session:
        user = await session.get(StaffUser, user_id)
        if user is None:
            raise AccountError(N_("No such account."))
        user.password_hash, user.failed_logins, user.locked_until = password_hash, 0, None
        await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        audit(session, actor, user.unit, "user_password", user.username)
    log.info("staff password reset user=%s by=%s", user.username, actor)
    return user


async def set_active(db: Database, user_id: int, active: bool, *, actor: str) -> StaffUser:
    """Deactivate an account (its sessions end at once) or activate it again."""
    async with db.write_transaction() as session:
        user = await session.get(StaffUser, user_id)
        if user is None:
            raise AccountError(N_("No such account."))
        user.active = active
        if active:
            user.failed_logins, user.locked_until = 0, None
        else:
            await session.execute(delete(StaffSession).where(StaffSession.user_id == user.id))
        audit(
            session,
            actor,
            user.unit,
            "user_activate" if active else "user_deactivate",
            user.username,
        )
    log.info(
        "staff account %s user=%s by=%s",
        "activated" if active else "deactivated",
        user.username,
        actor,
    )
    return user


def audit(
    session, username: str, unit: str, action: str, target: str = "", detail: str = ""
) -> None:
    """Add a row to the audit log in the caller's transaction."""
    session.add(
        StaffAudit(
            at=utcnow(),
            username=username[:64],
            unit=unit[:64],
            action=action[:32],
            target=target[:128],
            detail=detail[:2000],
        )
    )
