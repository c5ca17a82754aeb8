"""CSRF tokens bound to the session (or, before login, to a random pre-session cookie).

token = HMAC-SHA256(secret, purpose + ":" + binding). It is compared against the ``X-CSRF-Token``
header (JSON calls) or the ``csrf_token`` form field (forms) on every state-changing request.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-CSRF-Token"
FORM_FIELD = "csrf_token"
PRE_SESSION_COOKIE = "caunoi_pre"


def csrf_token(secret: str, binding: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{binding}".encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: str, binding: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, binding), presented or "")
