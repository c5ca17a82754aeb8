"""Middlewares, outermost first: request id → errors → locale → session → CSRF.

Security headers are added in on_response_prepare, which also covers WebSocket handshakes and
responses that handlers prepare themselves.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from server.auth import csrf
from server.auth.sessions import COOKIE, load_user
from server.errors import ApiError, json_error
from server.i18n import locale_var, negotiate
from server.keys import SECRET, SESSION_CACHE, SESSIONS, SETTINGS
from server.requestctx import LOCALE, USER, new_request_id, request_id_var

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
LANG_COOKIE = "caunoi_lang"
PENDING_PRE_COOKIE = web.RequestKey("pending_pre_cookie", str)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def is_api(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/ws", "/healthz", "/readyz"))


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id(request.headers.get("X-Request-ID"))
    token = request_id_var.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = request_id
        raise
    finally:
        request_id_var.reset(token)
    if not response.prepared:
        response.headers["X-Request-ID"] = request_id
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if is_api(request) and exc.status >= 400:
            code = exc.reason.lower().replace(" ", "_")
            return json_error(exc.status, code, exc.reason, headers={k: v for k, v in exc.headers.items()
                                                                      if k.lower() == "allow"})
        raise
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        if is_api(request):
            return json_error(500, "internal_error", "internal error")
        raise web.HTTPInternalServerError(text="500: internal error") from None


@web.middleware
async def locale_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    default = request.app[SETTINGS].default_locale
    locale = negotiate(request.cookies.get(LANG_COOKIE), default)
    request[LOCALE] = locale
    token = locale_var.set(locale)
    try:
        return await handler(request)
    finally:
        locale_var.reset(token)


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.cookies.get(COOKIE)
    if token:
        cache = request.app[SESSION_CACHE]
        user = cache.get(token)
        if user is None:
            async with request.app[SESSIONS]() as db:
                user = await load_user(db, token)
            if user is not None:
                cache.put(token, user)
        if user is not None:
            request[USER] = user
            if user.locale and LANG_COOKIE not in request.cookies:
                request[LOCALE] = user.locale
                locale_var.set(user.locale)
    return await handler(request)


def csrf_binding(request: web.Request) -> str | None:
    """What the CSRF token of this request is bound to: the session, else the pre-session cookie."""
    user = request.get(USER)
    if user is not None:
        return "session:" + user.session_id
    pre = request.cookies.get(csrf.PRE_SESSION_COOKIE)
    return "pre:" + pre if pre else None


def csrf_exempt(handler: Handler) -> Handler:
    """Mark a handler that authenticates with a bearer token only (never cookies)."""
    handler.csrf_exempt = True  # type: ignore[attr-defined]
    return handler


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in UNSAFE_METHODS and not getattr(handler, "csrf_exempt", False):
        binding = csrf_binding(request)
        presented = request.headers.get(csrf.HEADER)
        if presented is None and request.content_type in ("application/x-www-form-urlencoded",
                                                           "multipart/form-data"):
            form = await request.post()
            value = form.get(csrf.FORM_FIELD)
            presented = value if isinstance(value, str) else None
        if binding is None or not csrf.csrf_valid(request.app[SECRET], binding, presented):
            raise ApiError(403, "csrf_failed", "missing or invalid CSRF token; reload the page and try again")
    response = await handler(request)
    pre = request.get(PENDING_PRE_COOKIE)
    if pre is not None and not response.prepared:
        # A page rendered a CSRF token before login: bind it to a cookie of its own.
        response.set_cookie(csrf.PRE_SESSION_COOKIE, pre, httponly=True, samesite="Lax", path="/",
                            secure=request.app[SETTINGS].secure_cookies)
    return response


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
    if response.content_type == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("Cache-Control", "no-store")
    if request.app[SETTINGS].secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")


MIDDLEWARES = [request_id_middleware, error_middleware, locale_middleware, session_middleware, csrf_middleware]


def issue_csrf(request: web.Request) -> str:
    """The CSRF token for forms and JSON calls of this page; sets the pre-session cookie if needed."""
    binding = csrf_binding(request)
    if binding is None and PENDING_PRE_COOKIE in request:
        binding = "pre:" + request[PENDING_PRE_COOKIE]
    if binding is None:
        pre = secrets.token_urlsafe(24)
        binding = "pre:" + pre
        request[PENDING_PRE_COOKIE] = pre
    return csrf.csrf_token(request.app[SECRET], binding)


