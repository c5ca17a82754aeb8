"""Setting a password from a one-time link (a new staff member's first login, or a reset)."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from server.auth import activation
from server.auth.sessions import COOKIE, create_session
from server.keys import SESSIONS, SETTINGS, TRANSLATOR
from server.records.audit import Outcome, audit
from server.requestctx import audit_context

routes = web.RouteTableDef()
TEMPLATE = "set_password.html"


def _gone(request: web.Request) -> web.Response:
    _ = request.app[TRANSLATOR].gettext
    return aiohttp_jinja2.render_template(TEMPLATE, request, {"invalid": True, "error": _(
        "This link has expired or was already used. Ask your facility's administrator for a new one.")},
        status=410)


@routes.get(activation.LINK_PATH + "{token}")
async def password_form(request: web.Request) -> web.StreamResponse:
    async with request.app[SESSIONS]() as db:
        found = await activation.valid_token(db, request.match_info["token"])
    if found is None:
        await audit(request.app[SESSIONS], audit_context(request), "auth.password_link", Outcome.DENIED,
                    target_type="account_token")
        return _gone(request)
    _token, user = found
    response = aiohttp_jinja2.render_template(TEMPLATE, request, {"invalid": False, "error": None,
                                                                   "email": user.email, "name": user.display_name})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


@routes.post(activation.LINK_PATH + "{token}")
async def set_password(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    password = str(form.get("password", ""))[:1024]
    confirm = str(form.get("confirm", ""))[:1024]
    app = request.app
    _ = app[TRANSLATOR].gettext
    reasons = {"mismatch": _("The two passwords are not the same."),
               "too_short": _("Use at least {n} characters.").format(n=activation.MIN_PASSWORD_LENGTH),
               "is_email": _("Do not use your e-mail address as the password.")}
    async with app[SESSIONS].begin() as db:
        found = await activation.valid_token(db, request.match_info["token"])
        if found is None:
            error = None
        else:
            token, user = found
            try:
                activation.check_password(password, confirm, user)
            except activation.WeakPassword as exc:
                error = reasons[exc.code]
            else:
                error = None
                await activation.set_password(db, token, user, password)
                session, _session_id = await create_session(db, user.id, app[SETTINGS].session_ttl_seconds)
    if found is None:
        await audit(app[SESSIONS], audit_context(request), "auth.password_link", Outcome.DENIED,
                    target_type="account_token")
        return _gone(request)
    if error is not None:
        return aiohttp_jinja2.render_template(TEMPLATE, request, {"invalid": False, "error": error,
                                                                  "email": user.email, "name": user.display_name},
                                              status=422)
    await audit(app[SESSIONS], audit_context(request).with_actor(user.id, None), "auth.password_set",
                Outcome.SUCCESS, target_type="user", target_id=user.id)
    response = web.HTTPFound("/rooms")
    response.set_cookie(COOKIE, session, httponly=True, samesite="Lax", path="/",
                        secure=app[SETTINGS].secure_cookies, max_age=app[SETTINGS].session_ttl_seconds)
    raise response
