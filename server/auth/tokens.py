"""Room tokens: short-lived JWTs (HS256) that admit one identity to one room with grants."""

from __future__ import annotations

import secrets
import time

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ISSUER = "caunoi"
AUDIENCE = "caunoi:room"
ALGORITHM = "HS256"


class Grants(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    can_publish: bool = False
    can_subscribe: bool = False
    room_admin: bool = False


class RoomClaims(BaseModel):
    model_config = ConfigDict(frozen=True)

    room: str = Field(min_length=1, max_length=64)
    identity: str = Field(alias="sub", min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    grants: Grants
    exp: int
    iat: int
    jti: str


class InvalidToken(Exception):
    """Missing, malformed, forged or expired; the message says which, without echoing the token."""


def mint_room_token(
    secret: str,
    *,
    room: str,
    identity: str,
    grants: Grants,
    ttl_seconds: int,
    name: str = "",
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": identity,
        "room": room,
        "name": name,
        "grants": grants.model_dump(),
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def verify_room_token(secret: str, token: str) -> RoomClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],  # never trust the token's own "alg"
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the room token has expired") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken("the room token signature is not valid") from None
    except jwt.PyJWTError:
        raise InvalidToken("the room token is malformed") from None
    try:
        return RoomClaims.model_validate(payload)
    except ValidationError:
        raise InvalidToken("the room token lacks required claims") from None
