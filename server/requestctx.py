"""Per-request context: the request id (for logs) and who is acting (for the audit log)."""

from __future__ import annotations

import contextvars
import re
import secrets

from aiohttp import web

from server.auth.sessions import CurrentUser
from server.records.audit import AuditContext

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

USER = web.RequestKey("user", CurrentUser)
LOCALE = web.RequestKey("locale", str)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def new_request_id(incoming: str | None) -> str:
    # Keep a proxy's id when it is sane, so that one id follows a request across services.
    return incoming if incoming and _SAFE_ID.match(incoming) else secrets.token_hex(8)


def current_user(request: web.Request) -> CurrentUser | None:
    return request.get(USER)


def audit_context(request: web.Request) -> AuditContext:
    user = current_user(request)
    return AuditContext(
        actor_id=user.id if user else None,
        actor_role=user.primary_role if user else None,
        ip=request.remote,
        user_agent=request.headers.get("User-Agent"),
        request_id=request_id_var.get(),
    )
