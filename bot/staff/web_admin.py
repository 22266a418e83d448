"""Accounts and the audit log, for administrators.

A unit admin manages the accounts of their own unit (officers and unit admins; never a super
admin); a super admin manages every account. An account out of reach is "not found".
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from bot.i18n import N_
from bot.staff import auth
from bot.staff.web import AUDIT_ACTIONS, PREFIX, StaffRoutes, not_found, redirect, render, staff_of
from bot.storage.models import StaffAudit, StaffUser, as_utc, utcnow

routes = StaffRoutes(
    actions={
        "user_create": N_("created an account"),
        "user_password": N_("changed a password"),
        "user_deactivate": N_("deactivated an account"),
        "user_activate": N_("activated an account"),
    }
)

AUDIT_PAGE = 50
DONE = {
    "created": N_("The account was created."),
    "password": N_("The password was changed; the account's sessions were ended."),
    "deactivated": N_("The account was deactivated; its sessions were ended."),
    "activated": N_("The account was activated."),
}


@routes.get("/users", nav=N_("Accounts"), roles=auth.ADMINS)
async def users(request: web.Request) -> web.Response:
    return await _users_page(request)


@routes.post("/users", roles=auth.ADMINS)
async def create_user(request: web.Request) -> web.StreamResponse:
    """Create an account in the admin's unit (a super admin: in any unit, any role)."""
    staff = staff_of(request)
    form = await request.post()
    role = str(form.get("role", ""))
    unit = str(form.get("unit", "")) if staff.is_super else staff.user.unit
    password = str(form.get("password", ""))
    fields = {
        "username": str(form.get("username", ""))[:64],
        "display_name": str(form.get("display_name", ""))[:128],
        "role": role,
        "unit": unit,
    }
    if role not in _roles_for(staff) or unit not in staff.units:
        return await _users_page(request, error=staff.t(N_("Choose a role and a unit.")), **fields)
    if password != form.get("password2"):
        return await _users_page(request, error=staff.t(N_("The passwords differ.")), **fields)
    try:
        await auth.create_user(
            staff.db,
            fields["username"],
            password,
            role=role,
            unit=unit,
            display_name=fields["display_name"],
            actor=staff.user.username,
        )
    except auth.AccountError as exc:
        return await _users_page(request, error=staff.t(exc.message, **exc.params), **fields)
    raise redirect(f"{PREFIX}/users?done=created")


@routes.post("/users/{id}/password", roles=auth.ADMINS)
async def reset_password(request: web.Request) -> web.StreamResponse:
    """Set a new password for an account (it is unlocked; its sessions end)."""
    staff = staff_of(request)
    form = await request.post()
    account = await _account(request)
    password = str(form.get("password", ""))
    if password != form.get("password2"):
        return await _users_page(request, error=staff.t(N_("The passwords differ.")))
    try:
        await auth.set_password(staff.db, account.id, password, actor=staff.user.username)
    except auth.AccountError as exc:
        return await _users_page(request, error=staff.t(exc.message, **exc.params))
    raise redirect(f"{PREFIX}/users?done=password")


@routes.post("/users/{id}/active", roles=auth.ADMINS)
async def set_active(request: web.Request) -> web.StreamResponse:
    """Deactivate an account (never one's own) or activate it again."""
    staff = staff_of(request)
    form = await request.post()
    account = await _account(request)
    active = form.get("active") == "1"
    if account.id == staff.user.id:
        return await _users_page(request, error=staff.t(N_("You cannot deactivate yourself.")))
    await auth.set_active(staff.db, account.id, active, actor=staff.user.username)
    raise redirect(f"{PREFIX}/users?done={'activated' if active else 'deactivated'}")


@routes.get("/audit", nav=N_("Audit log"), roles=auth.ADMINS)
async def audit_log(request: web.Request) -> web.Response:
    """What staff of the unit did, newest first."""
    staff = staff_of(request)
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1
    async with staff.db.session() as session:
        where = StaffAudit.unit == staff.unit
        total = await session.scalar(select(func.count()).select_from(StaffAudit).where(where))
        rows = await session.scalars(
            select(StaffAudit)
            .where(where)
            .order_by(StaffAudit.id.desc())
            .limit(AUDIT_PAGE)
            .offset((page - 1) * AUDIT_PAGE)
        )
        entries = list(rows)
    return render(
        request,
        "audit.html",
        title=staff.t("Audit log"),
        entries=entries,
        actions={
            code: staff.t(label) for code, label in request.config_dict[AUDIT_ACTIONS].items()
        },
        page=page,
        more=page * AUDIT_PAGE < total,
    )


# -- helpers -----------------------------------------------------------------------------------


def _roles_for(staff) -> list[str]:
    return list(auth.ROLES) if staff.is_super else [auth.OFFICER, auth.UNIT_ADMIN]


def _scope(staff, query):
    """Accounts this admin may see and change."""
    if staff.is_super:
        return query
    return query.where(StaffUser.unit == staff.user.unit, StaffUser.role != auth.SUPER_ADMIN)


async def _account(request: web.Request) -> StaffUser:
    staff = staff_of(request)
    try:
        user_id = int(request.match_info["id"])
    except ValueError:
        raise not_found(request) from None
    async with staff.db.session() as session:
        account = await session.scalar(
            _scope(staff, select(StaffUser).where(StaffUser.id == user_id))
        )
    if account is None:
        raise not_found(request)
    return account


async def _users_page(request: web.Request, *, error: str = "", **fields) -> web.Response:
    staff = staff_of(request)
    async with staff.db.session() as session:
        accounts = list(
            await session.scalars(
                _scope(staff, select(StaffUser)).order_by(StaffUser.unit, StaffUser.username)
            )
        )
    now = utcnow()
    done = request.query.get("done")
    return render(
        request,
        "users.html",
        status=400 if error else 200,
        title=staff.t("Accounts"),
        accounts=accounts,
        locked={a.id for a in accounts if a.locked_until and as_utc(a.locked_until) > now},
        roles=_roles_for(staff),
        error=error,
        done=staff.t(DONE[done]) if done in DONE else "",
        form={"username": "", "display_name": "", "role": auth.OFFICER, "unit": staff.unit}
        | fields,
        min_password=auth.MIN_PASSWORD,
    )
