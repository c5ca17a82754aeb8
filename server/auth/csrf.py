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
    if not presented:
        return False
    # Compare bytes: compare_digest refuses non-ASCII str, and a hostile form value must get a 403, not a 500.
    return hmac.compare_digest(csrf_token(secret, binding).encode(), presented.encode("utf-8", "replace"))
