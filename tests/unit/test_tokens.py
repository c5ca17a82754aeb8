"""Room tokens: minted by the server, verified on every WebSocket join."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from server.auth.tokens import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    Grants,
    InvalidToken,
    mint_room_token,
    verify_room_token,
)

SECRET = "room-token-secret-" + "s" * 50  # 68 bytes: long enough for HS512 too
OTHER_SECRET = "another-secret-entirely-" + "o" * 32


def claims(**overrides: Any) -> dict[str, Any]:
    """A complete, valid payload as mint_room_token would produce it; overrides replace or add keys."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "room": "room-1",
        "name": "Cô giáo Lan",
        "grants": {"can_publish": True, "can_subscribe": True, "room_admin": False},
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": "abc123",
    }
    payload.update(overrides)
    return payload


def rejection(token: str, secret: str = SECRET) -> str:
    """Verify a token that must be refused; return the InvalidToken message."""
    with pytest.raises(InvalidToken) as caught:
        verify_room_token(secret, token)
    return str(caught.value)


def assert_token_not_echoed(message: str, token: str) -> None:
    """Neither the token nor any of its three segments appears in the error message."""
    assert token not in message
    for segment in token.split("."):
        if segment:
            assert segment not in message


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_mint_then_verify_round_trips_every_claim() -> None:
    grants = Grants(can_publish=True, can_subscribe=False, room_admin=True)
    token = mint_room_token(SECRET, room="phong-kham", identity="bs-an", name="Bác sĩ An",
                            grants=grants, ttl_seconds=120)
    verified = verify_room_token(SECRET, token)
    assert verified.room == "phong-kham"
    assert verified.identity == "bs-an"
    assert verified.name == "Bác sĩ An"
    assert verified.grants == grants
    assert verified.exp - verified.iat == 120
    assert verified.jti


def test_token_is_hs256_with_issuer_and_audience() -> None:
    token = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == ALGORITHM == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == ISSUER
    assert payload["aud"] == AUDIENCE


def test_each_token_has_its_own_jti() -> None:
    """Two tokens minted in the same second for the same grant differ by their jti."""
    first = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60, now=1_000_000)
    second = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60, now=1_000_000)
    assert first != second
    jti = [jwt.decode(t, options={"verify_signature": False})["jti"] for t in (first, second)]
    assert jti[0] != jti[1]


def test_default_grants_allow_nothing() -> None:
    token = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60)
    grants = verify_room_token(SECRET, token).grants
    assert (grants.can_publish, grants.can_subscribe, grants.room_admin) == (False, False, False)


def test_expired_token_is_refused_as_expired() -> None:
    token = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=10,
                            now=time.time() - 3600)
    message = rejection(token)
    assert "expired" in message
    assert_token_not_echoed(message, token)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = mint_room_token(OTHER_SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60)
    message = rejection(token)
    assert "signature" in message
    assert_token_not_echoed(message, token)


def test_tampered_payload_is_refused() -> None:
    """Granting oneself room_admin by editing the payload breaks the signature."""
    token = mint_room_token(SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60)
    header, _, signature = token.split(".")
    forged_payload = b64(json.dumps(claims(sub="u", room="r", grants={"room_admin": True})).encode())
    forged = f"{header}.{forged_payload}.{signature}"
    message = rejection(forged)
    assert_token_not_echoed(message, forged)


def test_alg_none_token_is_refused() -> None:
    token = jwt.encode(claims(), key=None, algorithm="none")
    assert jwt.get_unverified_header(token)["alg"] == "none"
    message = rejection(token)
    assert_token_not_echoed(message, token)


def test_hand_made_alg_none_token_is_refused() -> None:
    """The same attack built by hand, with an empty signature segment and a capitalised alg."""
    header = b64(json.dumps({"alg": "None", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims()).encode())
    token = f"{header}.{payload}."
    message = rejection(token)
    assert_token_not_echoed(message, token)


def test_token_signed_with_another_hmac_algorithm_is_refused() -> None:
    """Only HS256 is accepted, even when the signature itself is valid under the secret."""
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    message = rejection(token)
    assert_token_not_echoed(message, token)


def test_token_missing_room_claim_is_refused() -> None:
    payload = claims()
    del payload["room"]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    message = rejection(token)
    assert "claims" in message
    assert_token_not_echoed(message, token)


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "aud", "iss", "grants", "jti"])
def test_token_missing_a_required_claim_is_refused(claim: str) -> None:
    payload = claims()
    del payload[claim]
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    message = rejection(token)
    assert_token_not_echoed(message, token)


@pytest.mark.parametrize(("claim", "value"),
                         [("aud", "caunoi:api"), ("aud", "someone-else"), ("iss", "evil")])
def test_token_for_another_audience_or_issuer_is_refused(claim: str, value: str) -> None:
    token = jwt.encode(claims(**{claim: value}), SECRET, algorithm="HS256")
    message = rejection(token)
    assert_token_not_echoed(message, token)


def test_token_not_yet_valid_is_refused() -> None:
    """nbf in the future (beyond the 5 s leeway) is refused."""
    now = int(time.time())
    token = jwt.encode(claims(iat=now + 600, nbf=now + 600, exp=now + 900), SECRET, algorithm="HS256")
    message = rejection(token)
    assert_token_not_echoed(message, token)


def test_token_with_unknown_grant_is_refused() -> None:
    token = jwt.encode(claims(grants={"can_publish": True, "superuser": True}), SECRET, algorithm="HS256")
    message = rejection(token)
    assert_token_not_echoed(message, token)


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c", "x" * 2000])
def test_malformed_token_is_refused_without_echo(garbage: str) -> None:
    message = rejection(garbage)
    assert "malformed" in message
    if garbage:
        assert garbage not in message


def test_invalid_token_has_no_chained_cause() -> None:
    """``from None``: the PyJWT exception (which may quote the token) is not attached."""
    token = mint_room_token(OTHER_SECRET, room="r", identity="u", grants=Grants(), ttl_seconds=60)
    with pytest.raises(InvalidToken) as caught:
        verify_room_token(SECRET, token)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
