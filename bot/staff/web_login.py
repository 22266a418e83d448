"""Logging in and out, the language of the dashboard, and the unit a super admin looks at."""

from __future__ import annotations

import secrets

from aiohttp import web

from bot.i18n import N_, SUPPORTED_LOCALES, translator
from bot.proxies import client_address, networks_of
from bot.staff import auth
from bot.staff.web import (
    LANG_COOKIE,
    LOGIN_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    UNIT_COOKIE,
    StaffRoutes,
    redirect,
    render,
    request_locale,
    safe_next,
    services_of,
    set_cookie,
    staff_of,
)

routes = StaffRoutes(
    actions={
        "login": N_("logged in"),
        "logout": N_("logged out"),
        "locked": N_("account locked after wrong passwords"),
    }
)

REFUSED = N_(
    "Wrong user name or password, or the account is locked for a while. Try again later or "
    "ask the administrator of your unit."
)
LIMITED = N_("Too many failed logins from this computer. Wait 15 minutes, then try again.")
YEAR = 365 * 24 * 3600


@routes.get("/login", public=True)
async def login_page(request: web.Request) -> web.StreamResponse:
    """Show the login form (or go straight on when already logged in)."""
    services = services_of(request)
    target = safe_next(request.query.get("next"))
    if await auth.current(services.db, request.cookies.get(SESSION_COOKIE, "")):
        raise redirect(target)
    return _form(request, target)


@routes.post("/login", public=True)
async def login(request: web.Request) -> web.StreamResponse:
    """Check the user name and password; open a session."""
    form = await request.post()
    target = safe_next(form.get("next"))
    if not auth.same_token(request.cookies.get(LOGIN_COOKIE, ""), form.get("csrf")):
        t = translator(request_locale(request))
        return _form(request, target, t(N_("This form has expired. Please try again.")), 403)
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    services = services_of(request)
    address = client_address(
        request.remote,
        request.headers.get("X-Forwarded-For"),
        networks_of(tuple(services.settings.trusted_proxies)),
    )
    result = await auth.login(services.db, username, password, address)
    if result.outcome == "limited":
        return _form(request, target, translator(request_locale(request))(LIMITED), 429, username)
    if result.outcome != "ok":
        return _form(request, target, translator(request_locale(request))(REFUSED), 401, username)
    response = web.HTTPSeeOther(target)
    max_age = int(auth.SESSION_LIFETIME.total_seconds())
    set_cookie(request, response, SESSION_COOKIE, result.token, max_age=max_age)
    response.del_cookie(LOGIN_COOKIE, path=PREFIX)
    raise response


def _form(
    request: web.Request, target: str, error: str = "", status: int = 200, username: str = ""
) -> web.Response:
    token = request.cookies.get(LOGIN_COOKIE, "")
    if not 32 <= len(token) <= 64:
        token = secrets.token_urlsafe(32)
    t = translator(request_locale(request))
    response = render(
        request,
        "login.html",
        status=status,
        title=t("Log in"),
        login_csrf=token,
        next=target,
        error=error,
        username=username[:64],
    )
    set_cookie(request, response, LOGIN_COOKIE, token)
    return response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """End this session (its row is deleted: the cookie is worth nothing afterwards)."""
    staff = staff_of(request)
    await auth.logout(staff.db, staff.token)
    response = web.HTTPSeeOther(PREFIX + "/login")
    response.del_cookie(SESSION_COOKIE, path=PREFIX)
    raise response


@routes.get("/lang", public=True)
async def language(request: web.Request) -> web.StreamResponse:
    """Switch the dashboard between Vietnamese and English (a cookie of this browser)."""
    response = web.HTTPSeeOther(safe_next(request.query.get("next")))
    chosen = request.query.get("to")
    if chosen in SUPPORTED_LOCALES:
        set_cookie(request, response, LANG_COOKIE, chosen, max_age=YEAR)
    raise response


@routes.post("/unit", roles=[auth.SUPER_ADMIN])
async def choose_unit(request: web.Request) -> web.StreamResponse:
    """A super admin chooses the unit whose feedback and accounts the pages show."""
    staff = staff_of(request)
    form = await request.post()
    response = web.HTTPSeeOther(safe_next(form.get("next")))
    if form.get("unit") in staff.units:
        set_cookie(request, response, UNIT_COOKIE, str(form["unit"]), max_age=YEAR)
    raise response
