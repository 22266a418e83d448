"""The guard every request to /staff passes (the sub-application's middleware): the session,
the CSRF token of a form, the roles of a route, and the security headers of every response."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from bot.i18n import N_, translator
from bot.staff import auth
from bot.staff.web import (
    CSP,
    PREFIX,
    SESSION_COOKIE,
    STAFF,
    UNIT_COOKIE,
    Handler,
    Staff,
    error_page,
    request_locale,
    services_of,
)
from bot.storage.models import Feedback, StaffUser


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await _checked(request, handler)
    except web.HTTPException as exc:
        if exc.status != 404 or getattr(exc, "staff_page", False) or STAFF not in request:
            _secure(request, exc)
            raise
        response = error_page(request, 404, N_("Not found."))
    _secure(request, response)
    return response


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == PREFIX:
        raise web.HTTPFound(PREFIX + "/")
    if request.path.startswith(PREFIX + "/static/"):
        return await handler(request)
    route = getattr(request.match_info.handler, "staff_route", None)
    if route is not None and route.public:
        return await handler(request)
    staff = await _staff(request)
    if staff is None:
        target = PREFIX + "/login"
        if request.method == "GET" and request.path != PREFIX + "/":
            target += "?next=" + quote(request.path_qs, safe="")
        raise web.HTTPSeeOther(target)
    limit = getattr(route, "max_body", None)
    if request.method == "POST" and limit:
        # File uploads are larger than the app-wide limit sized for chat messages.
        request = request.clone(client_max_size=limit)  # keeps match_info and state
    request[STAFF] = staff
    if request.method == "POST":
        form = await request.post()
        if not auth.same_token(staff.csrf, form.get("csrf")):
            return error_page(request, 403, N_("This form has expired. Please try again."))
    if route is not None and route.roles is not None and staff.user.role not in route.roles:
        return error_page(request, 403, N_("You may not open this page."))
    return await handler(request)


async def _staff(request: web.Request) -> Staff | None:
    services = services_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    found = await auth.current(services.db, token)
    if found is None:
        return None
    user, session = found
    units = [user.unit]
    unit = user.unit
    if user.role == auth.SUPER_ADMIN:
        units = await known_units(services)
        chosen = request.cookies.get(UNIT_COOKIE)
        if chosen in units:
            unit = chosen
    locale = request_locale(request)
    return Staff(user, session.csrf_token, token, unit, units, locale, translator(locale), services)


async def known_units(services) -> list[str]:
    """Every unit a super admin may choose: the catalogue's, the bot's, those with accounts or
    feedback."""
    units = set(services.catalogue.units) | {services.settings.unit}
    async with services.db.session() as session:
        units |= set(await session.scalars(select(StaffUser.unit).distinct()))
        units |= set(await session.scalars(select(Feedback.unit).distinct()))
    return sorted(units)


def _secure(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if not request.path.startswith(PREFIX + "/static/"):
        headers.setdefault("Cache-Control", "no-store")
