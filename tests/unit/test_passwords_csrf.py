"""Password hashing (Argon2id) and CSRF tokens (HMAC bound to a session)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from argon2 import PasswordHasher

from server.auth.csrf import csrf_token, csrf_valid
from server.auth.passwords import hash_password, needs_rehash, verify_password

PASSWORD = "mật-khẩu đúng 123"

# --- passwords ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def password_hash() -> str:
    return hash_password(PASSWORD)


def test_hash_is_argon2id(password_hash: str) -> None:
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


def test_hashes_are_salted() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_verify_accepts_the_right_password(password_hash: str) -> None:
    assert verify_password(password_hash, PASSWORD) is True


@pytest.mark.parametrize("attempt", ["", "mật-khẩu đúng 12", "MẬT-KHẨU ĐÚNG 123", PASSWORD + " "])
def test_verify_refuses_a_wrong_password(password_hash: str, attempt: str) -> None:
    assert verify_password(password_hash, attempt) is False


def test_verify_with_no_hash_is_false() -> None:
    """An unknown account (no hash) never verifies, whatever the password."""
    assert verify_password(None, PASSWORD) is False
    assert verify_password(None, "caunoi-timing-equaliser") is False


@pytest.mark.parametrize("broken", ["", "not-a-hash", "$argon2id$v=19$m=1,t=1,p=1$garbage"])
def test_verify_with_a_broken_hash_is_false(broken: str) -> None:
    assert verify_password(broken, PASSWORD) is False


def test_fresh_hash_does_not_need_rehash(password_hash: str) -> None:
    assert needs_rehash(password_hash) is False


def test_weaker_hash_needs_rehash() -> None:
    """A hash made with cheaper parameters than today's is flagged for upgrade at the next login."""
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    assert verify_password(weak, PASSWORD) is True
    assert needs_rehash(weak) is True


# --- CSRF ---------------------------------------------------------------------------------------

SECRET = "csrf-secret-" + "c" * 32


def test_token_is_deterministic_per_secret_and_binding() -> None:
    assert csrf_token(SECRET, "session-a") == csrf_token(SECRET, "session-a")


def test_token_is_the_documented_hmac() -> None:
    expected = hmac.new(SECRET.encode(), b"csrf:session-a", hashlib.sha256).hexdigest()
    assert csrf_token(SECRET, "session-a") == expected
    assert len(expected) == 64


def test_token_differs_per_binding() -> None:
    assert csrf_token(SECRET, "session-a") != csrf_token(SECRET, "session-b")


def test_token_differs_per_secret() -> None:
    assert csrf_token(SECRET, "session-a") != csrf_token(SECRET + "2", "session-a")


def test_valid_token_is_accepted() -> None:
    assert csrf_valid(SECRET, "session-a", csrf_token(SECRET, "session-a")) is True


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "0" * 64,
        csrf_token(SECRET, "session-b"),
        csrf_token("another-secret-" + "z" * 32, "session-a"),
        csrf_token(SECRET, "session-a").upper(),
        csrf_token(SECRET, "session-a")[:-1],
        csrf_token(SECRET, "session-a") + "0",
    ],
    ids=["none", "empty", "zeros", "other-binding", "other-secret", "uppercase", "truncated", "extended"],
)
def test_anything_else_is_refused(presented: str | None) -> None:
    assert csrf_valid(SECRET, "session-a", presented) is False


def test_non_ascii_presented_token_is_refused_not_raised() -> None:
    """A form field is attacker-controlled text; a non-ASCII value is simply invalid."""
    assert csrf_valid(SECRET, "session-a", "ệ" * 64) is False
