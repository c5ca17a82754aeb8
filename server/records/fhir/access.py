"""Who is asking: a bearer API key, else the browser session (which the FHIR routes accept for GET only)."""

from __future__ import annotations

from aiohttp import web

from server.auth.apikeys import user_for_key
from server.auth.sessions import CurrentUser
from server.keys import SESSIONS
from server.records.audit import Outcome, audit
from server.records.fhir.outcome import unauthenticated
from server.requestctx import USER, audit_context


async def authenticate(request: web.Request) -> CurrentUser:
    header = request.headers.get("Authorization")
    if header is None:
        user = request.get(USER)
        if user is None:
            raise unauthenticated("send Authorization: Bearer <API key>, or log in")
        return user
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthenticated("the Authorization header must be: Bearer <API key>")
    async with request.app[SESSIONS].begin() as db:
        found = await user_for_key(db, key.strip())
    if found is None:
        # A failed key is a failed login: audited, without the key.
        await audit(request.app[SESSIONS], audit_context(request), "auth.apikey", Outcome.FAILURE, target_type="apikey")
        raise unauthenticated("the API key is not valid or has been revoked")
    # Explicit credentials win over a session cookie sent along with them.
    request[USER] = found
    return found
