"""The staff dashboard at /staff: an aiohttp sub-application rendered with Jinja2 (autoescape).

What every page gets for free (from ``web_guard.guard``, the sub-application's middleware):
- no session, no page: any URL under /staff but the login page, the language switch and the
  static files redirects to /staff/login (and back after logging in);
- every POST must carry the session's CSRF token in the form field ``csrf`` (403 otherwise);
- ``roles=`` on a route: other roles get a 403 page;
- security headers on every response: a CSP without inline scripts or styles, nosniff, no
  framing, no caching of pages, no referrer to other sites.
A handler reads the logged-in officer with ``staff_of(request)``, a ``Staff``: the account,
``staff.unit`` (the only unit whose data it may show: the officer's own, or the one a super
admin chose in the header), ``staff.t`` (the UI language), ``staff.db``, ``staff.services``,
``staff.feedback()`` (a FeedbackService of that unit) and ``staff.audit(...)``.

Adding a page
-------------
1. Write ``bot/staff/web_<topic>.py``::

       from bot.i18n import N_
       from bot.staff.auth import ADMINS
       from bot.staff.web import StaffRoutes, redirect, render, staff_of

       # Labels of the audit log's actions this module writes (shown on /staff/audit).
       routes = StaffRoutes(actions={"figures_export": N_("exported the figures")})

       @routes.get("/figures", nav=N_("Figures"), roles=ADMINS)  # nav: a link in the header
       async def figures(request):
           staff = staff_of(request)
           async with staff.db.session() as session:
               rows = ...  # ALWAYS filter on staff.unit: an officer never sees another unit
           return render(request, "figures.html", title=staff.t("Figures"), rows=rows)

       @routes.post("/figures/export", roles=ADMINS)  # CSRF already checked here
       async def export(request):
           staff = staff_of(request)
           async with staff.db.write_transaction() as session:
               ...
               staff.audit(session, "figures_export", target="2026-Q1")
           raise redirect("/staff/figures?done=export")  # after the commit

2. Add ``"bot.staff.web_figures"`` to ``PAGES`` below (the header's links follow its order).
3. Write ``templates/figures.html``: ``{% extends "base.html" %}``, ``{% block content %}``;
   every form has ``{{ csrf_field() }}``; every text is ``{{ t("English msgid") }}`` (the
   Vietnamese goes into locales/vi with ``make i18n``); no inline script or style (the CSP
   blocks them): CSS goes into static/staff.css. Something of another unit (or of nobody) asked
   for by id: ``raise not_found(request)``, the same 404 page for both.
4. Tests: a URL of the page without a session redirects to the login page
   (tests/test_staff_auth.py lists the URLs), and a form post without CSRF gets 403.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from aiohttp import web
from markupsafe import Markup

from bot.dossiers.model import VN_TZ
from bot.i18n import N_, SUPPORTED_LOCALES, Translator, translator
from bot.staff import auth
from bot.storage.models import StaffUser, as_utc

# The modules whose ``routes`` make the dashboard, in the order of the header's links.
PAGES = (
    "bot.staff.web_login",
    "bot.staff.web_inbox",
    "bot.staff.web_dossiers",
    "bot.staff.web_figures",
    "bot.staff.web_search",
    "bot.staff.web_catalogue",
    "bot.staff.web_admin",
)

HERE = Path(__file__).parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"
PREFIX = "/staff"
SESSION_COOKIE = "motcua_staff"
LOGIN_COOKIE = "motcua_staff_login"  # the login form's CSRF token, before there is a session
LANG_COOKIE = "motcua_staff_lang"
UNIT_COOKIE = "motcua_staff_unit"  # the unit a super admin looks at
CSP = (
    "default-src 'self'; img-src 'self'; script-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SERVICES = web.AppKey("staff_services", object)
NAV = web.AppKey("staff_nav", list)
STATIC_FILES = web.AppKey("staff_static", object)
AUDIT_ACTIONS = web.AppKey("staff_audit_actions", dict)
_JINJA = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STAFF = web.RequestKey("staff", object)  # the Staff of a request (after the guard)


@dataclass
class Staff:
    """The logged-in officer of one request, and what they may reach."""

    user: StaffUser
    csrf: str
    token: str
    unit: str
    units: list[str]
    locale: str
    t: Translator
    services: object

    @property
    def db(self):
        return self.services.db

    @property
    def is_admin(self) -> bool:
        return self.user.role in auth.ADMINS

    @property
    def is_super(self) -> bool:
        return self.user.role == auth.SUPER_ADMIN

    @property
    def actor(self) -> str:
        """The officer as the feedback history names them."""
        return f"staff:{self.user.username}"

    def feedback(self):
        """The feedback service of the unit this officer looks at (never another one)."""
        return self.services.feedback.for_unit(self.unit)

    def audit(self, session, action: str, target: str = "", detail: str = "") -> None:
        auth.audit(session, self.user.username, self.unit, action, target, detail)


@dataclass
class _Route:
    method: str
    path: str
    handler: Handler
    nav: str | None
    roles: frozenset[str] | None
    public: bool


@dataclass
class StaffRoutes:
    """The routes of one page module (paths relative to /staff), and the labels (msgids) of
    the audit log actions it writes."""

    actions: dict[str, str] = field(default_factory=dict)
    routes: list[_Route] = field(default_factory=list)

    def get(self, path: str, **options) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **options)

    def post(self, path: str, **options) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **options)

    def _add(
        self,
        method: str,
        path: str,
        *,
        nav: str | None = None,
        roles: Iterable[str] | None = None,
        public: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            route = _Route(method, path, handler, nav, frozenset(roles) if roles else None, public)
            handler.staff_route = route
            self.routes.append(route)
            return handler

        return register


def add_staff(app: web.Application, services) -> None:
    """Mount the dashboard on the bot's one aiohttp application, under /staff."""
    from bot.staff.web_guard import guard

    staff_app = web.Application(middlewares=[guard])
    staff_app[SERVICES] = services
    nav, actions = [], {}
    for name in PAGES:
        module = importlib.import_module(name)
        actions |= module.routes.actions
        for route in module.routes.routes:
            staff_app.router.add_route(route.method, route.path, route.handler)
            if route.nav:
                nav.append(route)
    staff_app[NAV], staff_app[AUDIT_ACTIONS] = nav, actions
    staff_app[STATIC_FILES] = staff_app.router.add_static("/static/", STATIC, append_version=True)
    app.add_subapp(PREFIX + "/", staff_app)


def staff_of(request: web.Request) -> Staff:
    return request[STAFF]


def services_of(request: web.Request):
    return request.config_dict[SERVICES]


def request_locale(request: web.Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    return services_of(request).settings.default_locale


def render(request: web.Request, template: str, *, status: int = 200, **context) -> web.Response:
    """A page of the dashboard (``title`` for the browser tab and the heading)."""
    staff = request.get(STAFF)
    locale = staff.locale if staff else request_locale(request)
    t = staff.t if staff else translator(locale)
    csrf = staff.csrf if staff else context.pop("login_csrf", "")
    static = request.config_dict[STATIC_FILES]
    nav = [
        (PREFIX + route.path, t(route.nav), request.path == PREFIX + route.path)
        for route in request.config_dict[NAV]
        if staff and (route.roles is None or staff.user.role in route.roles)
    ]
    html = _JINJA.get_template(template).render(
        t=t,
        locale=locale,
        staff=staff,
        nav=nav,
        path=request.path_qs if request.method == "GET" else PREFIX + "/",
        csrf_field=lambda: Markup('<input type="hidden" name="csrf" value="%s">') % csrf,
        static=lambda name: str(static.url_for(filename=name)),
        unit_name=lambda unit: unit_name(request, unit),
        role_name=lambda role: t(auth.ROLES.get(role, role)),
        when=format_time,
        day=format_date,
        size=format_size,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html")


def error_page(request: web.Request, status: int, message: str) -> web.Response:
    t = staff_of(request).t if STAFF in request else translator(request_locale(request))
    return render(request, "error.html", status=status, title=t(message), message=t(message))


def not_found(request: web.Request) -> web.HTTPException:
    """The one 404 page: for something that does not exist and for another unit's alike."""
    page = error_page(request, 404, N_("Not found."))
    exc = web.HTTPNotFound(text=page.text, content_type="text/html")
    exc.staff_page = True
    return exc


def redirect(location: str) -> web.HTTPException:
    return web.HTTPSeeOther(location)


def safe_next(value: str | None) -> str:
    """A place to return to after a form: a page of the dashboard, never another site."""
    if value and value.startswith(PREFIX + "/") and _SAFE_PATH.fullmatch(value):
        return value
    return PREFIX + "/"


_SAFE_PATH = re.compile(r"/staff/(?!/)[A-Za-z0-9/_.~%&=+,;:@?-]*")


def unit_name(request: web.Request, unit: str) -> str:
    found = services_of(request).catalogue.units.get(unit)
    return f"{found.name} ({unit})" if found else unit


def format_time(moment) -> str:
    return as_utc(moment).astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M") if moment else "—"


def format_date(moment) -> str:
    return as_utc(moment).astimezone(VN_TZ).strftime("%d/%m/%Y") if moment else "—"


def format_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, **kw):
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Strict",
        secure=services_of(request).settings.web_secure_cookies,
        path=PREFIX,
        **kw,
    )
