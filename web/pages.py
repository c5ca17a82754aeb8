"""Pages: login, logout, language switch, the user's rooms, a room."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from server.auth.accounts import authenticate
from server.auth.sessions import COOKIE, create_session, end_session
from server.i18n import LOCALES
from server.keys import SESSION_CACHE, SESSIONS, SETTINGS, TRANSLATOR
from server.middlewares import LANG_COOKIE
from server.records.audit import Outcome, audit
from server.requestctx import USER, audit_context
from server.rooms.access import room_access, rooms_of

routes = web.RouteTableDef()


def safe_next(value: str | None, default: str = "/rooms") -> str:
    """Only local paths: an open redirect would let a phishing link borrow our login page."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


def login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={request.path}")


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/rooms" if request.get(USER) else "/login")


@routes.get("/login", name="login")
@aiohttp_jinja2.template("login.html")
async def login_page(request: web.Request) -> dict[str, object]:
    return {"next": safe_next(request.query.get("next")), "error": None, "email": ""}


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    email = str(form.get("email", ""))[:254]
    password = str(form.get("password", ""))[:1024]
    next_url = safe_next(str(form.get("next", "")))
    app = request.app
    async with app[SESSIONS].begin() as db:
        user = await authenticate(db, email, password) if email and password else None
        if user is not None:
            old = request.cookies.get(COOKIE)
            if old:
                app[SESSION_CACHE].evict(old)
                await end_session(db, old)  # rotate: a session id fixed before login is worthless after
            token, _ = await create_session(db, user.id, app[SETTINGS].session_ttl_seconds)
    context = audit_context(request)
    if user is None:
        await audit(app[SESSIONS], context, "auth.login", Outcome.FAILURE, target_type="user")
        _ = app[TRANSLATOR].gettext
        response = aiohttp_jinja2.render_template(
            "login.html", request,
            {"next": next_url, "error": _("Wrong e-mail or password."), "email": email}, status=401,
        )
        return response
    await audit(app[SESSIONS], context.with_actor(user.id, None), "auth.login", Outcome.SUCCESS,
                target_type="user", target_id=user.id)
    response = web.HTTPFound(next_url)
    response.set_cookie(COOKIE, token, httponly=True, samesite="Lax", path="/",
                        secure=app[SETTINGS].secure_cookies, max_age=app[SETTINGS].session_ttl_seconds)
    if user.locale:
        response.set_cookie(LANG_COOKIE, user.locale, samesite="Lax", path="/", max_age=365 * 86400)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(COOKIE)
    if token:
        request.app[SESSION_CACHE].evict(token)
        async with request.app[SESSIONS].begin() as db:
            await end_session(db, token)
        await audit(request.app[SESSIONS], audit_context(request), "auth.logout", Outcome.SUCCESS)
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


@routes.get("/lang/{code}")
async def switch_language(request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    if code not in LOCALES:
        raise web.HTTPNotFound()
    response = web.HTTPFound(safe_next(request.query.get("next"), default="/"))
    response.set_cookie(LANG_COOKIE, code, samesite="Lax", path="/", max_age=365 * 86400,
                        secure=request.app[SETTINGS].secure_cookies)
    raise response


@routes.get("/rooms", name="rooms")
@aiohttp_jinja2.template("rooms.html")
async def rooms_page(request: web.Request) -> dict[str, object]:
    user = request.get(USER)
    if user is None:
        raise login_redirect(request)
    async with request.app[SESSIONS]() as db:
        rooms = await rooms_of(db, user.id)
    return {"rooms": rooms}


@routes.get("/rooms/{name}", name="room")
@aiohttp_jinja2.template("room.html")
async def room_page(request: web.Request) -> dict[str, object]:
    user = request.get(USER)
    if user is None:
        raise login_redirect(request)
    name = request.match_info["name"]
    async with request.app[SESSIONS]() as db:
        access = await room_access(db, user.id, name)
    if access is None:
        await audit(request.app[SESSIONS], audit_context(request), "room.view", Outcome.DENIED,
                    target_type="room", target_id=name[:64])
        raise web.HTTPNotFound()
    room, grants = access
    return {"room": room, "grants": grants}
